#!/usr/bin/env bash
# Run one PTF suite against p4sim: the suites that program the switch over P4Runtime themselves
# (ptf_tests/dataplane, ptf_tests/smoke) share this launcher.
#
#   TEST_DIR=ptf_tests/smoke PROGRAM=ptf_tests/smoke/router.p4 PORTS=0-7 ptf_tests/run_on_p4sim.sh
#   ptf_tests/run_on_p4sim.sh [PTF test specs...]   (defaults: the data-plane suite on p4src/)
#
# Starts `p4sim run` in the background (stopped by the trap however the script ends), polls its
# ready line for the P4Runtime port, then runs PTF over BMv2's nanomsg packet protocol with PTF
# owning PORTS (default 0-7 and the crypto port 64). On BMv2 run PTF directly with
# --test-params "...;device_config='tunnel_offload.json'" (p4c's output).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV="${VENV:-.venv}"
PY="${PY:-$VENV/bin/python}"
PROGRAM="${PROGRAM:-p4src/tunnel_offload.p4}"
PORTS="${PORTS:-0-7,64}"
TEST_DIR="${TEST_DIR:-ptf_tests/dataplane}"
READY_TIMEOUT="${READY_TIMEOUT:-60}"

tmp=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

"$PY" -m p4sim p4info "$PROGRAM" -o "$tmp/p4info.txt"
"$PY" -m p4sim run "$PROGRAM" --packet-socket "ipc://$tmp/p4sim.ipc" --grpc-addr 127.0.0.1:0 \
    --device-id 1 --log-console >"$tmp/p4sim.out" 2>"$tmp/p4sim.log" &
pid=$!

deadline=$((SECONDS + READY_TIMEOUT))
until grep -q '^p4sim ready' "$tmp/p4sim.out"; do
    kill -0 "$pid" 2>/dev/null || { echo "p4sim exited:"; cat "$tmp/p4sim.log"; exit 1; }
    [ "$SECONDS" -lt "$deadline" ] || { echo "p4sim not ready:"; cat "$tmp/p4sim.log"; exit 1; }
    sleep 0.1
done
port=$(sed -n 's/.*grpc-port=\([0-9]*\).*/\1/p' "$tmp/p4sim.out")

"$VENV/bin/ptf" --platform nn --device-socket "0-{$PORTS}@ipc://$tmp/p4sim.ipc" \
    --test-dir "$TEST_DIR" --pypath "$PWD" --log-file "$tmp/ptf.log" \
    --test-params "grpc_addr='127.0.0.1:$port';device_id=1;p4info='$tmp/p4info.txt'" "$@" \
    || { echo "--- p4sim log"; tail -n 60 "$tmp/p4sim.log"; echo "--- ptf log"; \
         tail -n 60 "$tmp/ptf.log"; exit 1; }
