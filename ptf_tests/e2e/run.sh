#!/usr/bin/env bash
# Run the end-to-end PTF suite: the tests are TunnelOffload API clients, the packets are real.
#
#   ptf_tests/e2e/run.sh [PTF test specs...]       e.g.  ptf_tests/e2e/run.sh e2e_reference
#                                                        ptf_tests/e2e/run.sh e2e_rekey.RekeyEncryptUnderTrafficTest
#
# Starts, each in the background with its log in a temporary directory (all stopped by the trap
# however the script ends, only these pids):
#   1. `p4sim run p4src/tunnel_offload.p4`: front-panel ports on a device socket PTF owns
#      (ports 0-7), the crypto port 64 on its own socket, P4Runtime on a free port (port 0; the
#      port is read from its ready line);
#   2. `tunnel-offload-crypto-worker` dialing the crypto-port socket, its SA service on a Unix
#      socket in the temporary directory (ready when its gRPC health check answers SERVING);
#   3. `tunnel-offload-controller` on a free port (port 0; read from its "serving" log line) with
#      a fresh state directory, programming the switch over P4Runtime and the worker's SAs, its
#      routes from ptf_tests/e2e/routes.txt (ready when its gRPC health check answers SERVING);
# then PTF with the test parameters the tests need to reach the API (TLS, trusting the
# certificate the controller generated) and to read the switch back over P4Runtime.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

VENV="${VENV:-.venv}"
PY="${PY:-$VENV/bin/python}"
PROGRAM="${PROGRAM:-p4src/tunnel_offload.p4}"
P4INFO="${P4INFO:-p4src/tunnel_offload.p4info.txtpb}"
ROUTES="${ROUTES:-ptf_tests/e2e/routes.txt}"
PORTS="${PORTS:-0-7}"
CRYPTO_PORT="${CRYPTO_PORT:-64}"
DEVICE_ID="${DEVICE_ID:-1}"
READY_TIMEOUT="${READY_TIMEOUT:-60}"
KEEP_LOGS="${KEEP_LOGS:-}"          # a directory to copy the four logs into when the run ends

tmp=$(mktemp -d)
pids=()
cleanup() {
    local status=$? i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; done
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do wait "${pids[$i]}" 2>/dev/null || true; done
    if [ "$status" != 0 ]; then
        for log in p4sim crypto-worker controller ptf; do
            [ -s "$tmp/$log.log" ] && { echo "--- $log log (last 40 lines)"; tail -n 40 "$tmp/$log.log"; }
        done
    fi
    if [ -n "$KEEP_LOGS" ]; then mkdir -p "$KEEP_LOGS" && cp "$tmp"/*.log "$KEEP_LOGS"/ || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

die() { echo "e2e: $*" >&2; exit 1; }

# wait_for WHAT PID CHECK...: poll CHECK until it succeeds; fail when PID exits or time runs out.
wait_for() {
    local what="$1" pid="$2" deadline=$((SECONDS + READY_TIMEOUT))
    shift 2
    until "$@" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || die "exited before $what"
        [ "$SECONDS" -lt "$deadline" ] || die "no $what after ${READY_TIMEOUT}s"
        sleep 0.1
    done
}

# The controller flags this suite relies on (issue 7); a controller without them cannot run it.
help="$("$PY" -m controller --help 2>&1)" || die "'$PY -m controller --help' failed"
for option in --switch-addr --device-id --p4info --p4-device-config --crypto-worker-socket \
    --routes --data-plane; do
    grep -q -- "$option\b" <<<"$help" ||
        die "the controller has no $option option yet (issue 7), so the end-to-end suite cannot run"
done

# 1. The switch.
"$PY" -m p4sim run "$PROGRAM" --packet-socket "ipc://$tmp/ports.ipc" \
    --port "$CRYPTO_PORT@ipc://$tmp/crypto-port.ipc" --grpc-addr 127.0.0.1:0 \
    --device-id "$DEVICE_ID" --log-console >"$tmp/p4sim.out" 2>"$tmp/p4sim.log" &
pids+=($!)
wait_for "the p4sim ready line" "${pids[-1]}" grep -q '^p4sim ready' "$tmp/p4sim.out"
p4rt_port=$(sed -n 's/.*grpc-port=\([0-9]*\).*/\1/p' "$tmp/p4sim.out")
"$PY" -m p4sim device-config "$PROGRAM" >"$tmp/device-config.json"

# 2. The crypto worker.
"$PY" -m crypto_worker --sa-socket "$tmp/crypto-sa.sock" --nanomsg "ipc://$tmp/crypto-port.ipc" \
    --state-dir "$tmp/crypto-worker-state" \
    >"$tmp/crypto-worker.log" 2>&1 &
pids+=($!)
wait_for "the crypto worker's SA service" "${pids[-1]}" "$PY" - "$tmp/crypto-sa.sock" <<'EOF'
import sys
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
with grpc.insecure_channel(f"unix:{sys.argv[1]}") as channel:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
sys.exit(reply.status != health_pb2.HealthCheckResponse.SERVING)
EOF

# 3. The controller.
"$PY" -m controller --listen 127.0.0.1:0 --state-dir "$tmp/state" \
    --switch-addr "127.0.0.1:$p4rt_port" --device-id "$DEVICE_ID" --p4info "$P4INFO" \
    --p4-device-config "$tmp/device-config.json" --crypto-worker-socket "$tmp/crypto-sa.sock" \
    --routes "$ROUTES" --data-plane p4runtime >"$tmp/controller.log" 2>&1 &
pids+=($!)
wait_for "the controller's serving line" "${pids[-1]}" \
    grep -q 'controller.server: serving TLS on' "$tmp/controller.log"
api_port=$(sed -n 's/.*serving TLS on [^ ]*:\([0-9]*\);.*/\1/p' "$tmp/controller.log" | head -n 1)
[ -n "$api_port" ] || die "cannot read the controller's port from its log"
wait_for "the controller's health SERVING" "${pids[-1]}" "$PY" -m tunnelctl \
    --server "127.0.0.1:$api_port" --state-dir "$tmp/state" --timeout 2 health

"$VENV/bin/ptf" --platform nn --device-socket "0-{$PORTS}@ipc://$tmp/ports.ipc" \
    --test-dir ptf_tests/e2e --pypath "$PWD" --pypath "$PWD/ptf_tests/dataplane" \
    --log-file "$tmp/ptf.log" --qlen 1000 --default-negative-timeout 0.5 \
    --test-params "api_addr='127.0.0.1:$api_port';state_dir='$tmp/state';p4rt_addr='127.0.0.1:$p4rt_port';device_id=$DEVICE_ID;p4info='$P4INFO';sa_socket='$tmp/crypto-sa.sock'" \
    "$@"
