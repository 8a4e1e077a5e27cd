#!/usr/bin/env bash
# Run the data-plane PTF suite against p4sim serving p4src/tunnel_offload.p4 (PTF owns ports 0-7
# and the crypto port 64):   ptf_tests/dataplane/run.sh [PTF test specs...]   e.g. dp_geneve
exec "$(dirname "${BASH_SOURCE[0]}")/../run_on_p4sim.sh" "$@"
