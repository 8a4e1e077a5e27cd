#!/usr/bin/env bash
# `make run`: bring up the switch target, the crypto worker and the controller, and serve the
# TunnelOffload API until Ctrl-C, which stops every process this script started.
#
#   TARGET=auto  BMv2 simple_switch_grpc in Docker when `docker info` works, else p4sim (default)
#   TARGET=bmv2  BMv2 in Docker (docker/compose.yaml); fails if there is no working Docker engine
#   TARGET=sim   p4sim, the embedded v1model target, with the crypto worker on its nanomsg port
#
# Readiness is polled (a TCP connect, a Unix socket, the gRPC health check), never slept for.
# Every setting below can be overridden from the environment (docs/operations.md, docs/docker.md).
set -euo pipefail
# Everything this run creates (state, logs, sockets, the pipeline JSON) is for this user only.
umask 077
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TARGET="${TARGET:-auto}"
VENV="${VENV:-.venv}"
PY="${PY:-$VENV/bin/python}"
STATE_DIR="${STATE_DIR:-state}"
LISTEN="${LISTEN:-localhost:3443}"
P4RT_ADDR="${P4RT_ADDR:-127.0.0.1:9559}"
DEVICE_ID="${DEVICE_ID:-1}"
PROGRAM="${PROGRAM:-p4src/tunnel_offload.p4}"
P4INFO="${P4INFO:-p4src/tunnel_offload.p4info.txtpb}"
ROUTES="${ROUTES:-examples/routes.txt}"
CRYPTO_PORT="${CRYPTO_PORT:-64}"
# TARGET=bmv2: crypto worker processes sharing the AF_PACKET crypto port by SA (--workers); on
# p4sim the nanomsg crypto port takes one.
CRYPTO_WORKERS="${CRYPTO_WORKERS:-$(nproc)}"
READY_TIMEOUT="${READY_TIMEOUT:-60}"
COMPOSE_FILE="${COMPOSE_FILE:-docker/compose.yaml}"
P4SIM_ARGS="${P4SIM_ARGS:-}"  # extra `p4sim run` arguments (TARGET=sim), e.g. "--pcap state/pcap"
# P4Runtime between the controller and p4sim: mutual TLS with the private CA generated once into
# $STATE_DIR/switch-tls (controller/switch_pki.py); SWITCH_TLS=off serves it plaintext, open to
# every local process (debugging only).
SWITCH_TLS="${SWITCH_TLS:-mutual}"
# The controller's Prometheus endpoint (docs/operations.md "Metrics"; `tunnelctl stats --reasons`
# reads it); loopback only, plain HTTP, counters and names but never keys. METRICS_ADDR=off: none.
METRICS_ADDR="${METRICS_ADDR:-127.0.0.1:9464}"

case "$STATE_DIR" in /*) STATE_ABS="$STATE_DIR" ;; *) STATE_ABS="$PWD/$STATE_DIR" ;; esac
RUN_DIR="$STATE_ABS/run"
LOG_DIR="$STATE_DIR/logs"
PACKET_SOCKET="${PACKET_SOCKET:-ipc://$RUN_DIR/ports.ipc}"
CRYPTO_SOCKET="${CRYPTO_SOCKET:-ipc://$RUN_DIR/crypto-port.ipc}"
SA_SOCKET="${SA_SOCKET:-$RUN_DIR/crypto-sa.sock}"
SWITCH_TLS_DIR="$STATE_ABS/switch-tls"

say() { printf 'run: %s\n' "$*"; }
die() { printf 'run: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Processes we start, stopped in reverse order by the trap (only these pids, nothing else).
PIDS=()
NAMES=()
STOPPING=0

stop_all() {  # stop_all [signal]: with "signal" (Ctrl-C, SIGTERM) the run ends with status 0
  local status=$?
  [ "${1:-}" = signal ] && status=0
  [ "$STOPPING" = 1 ] && return
  STOPPING=1
  trap - INT TERM EXIT
  local i pid
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid="${PIDS[$i]}"
    if kill -0 "$pid" 2>/dev/null; then
      say "stopping ${NAMES[$i]} (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid="${PIDS[$i]}"
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "${NAMES[$i]} (pid $pid) ignored SIGTERM for 10s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  [ "${1:-}" = signal ] && say "stopped; state kept in $STATE_ABS"
  exit "$status"
}

# Where tunnelctl finds this run from any directory (tunnelctl/connection.py, docs/cli.md).
RUN_RECORD="${XDG_CONFIG_HOME:-$HOME/.config}/tunneloffload/make-run.yaml"
record_run() {
  mkdir -p "$(dirname "$RUN_RECORD")"
  local metrics_line=""
  [ "${1:-}" = with-metrics ] && [ "$METRICS_ADDR" != off ] && metrics_line="metrics: $METRICS_ADDR\n"
  printf "# written by make run (scripts/run.sh) when its controller was ready\nserver: %s\nstate_dir: %s\n$metrics_line" \
    "$LISTEN" "$STATE_ABS" >"$RUN_RECORD.tmp" && mv "$RUN_RECORD.tmp" "$RUN_RECORD"
  say "recorded server $LISTEN and state $STATE_ABS in $RUN_RECORD"
}

start() {  # start NAME COMMAND...: run in the background, output to $LOG_DIR/NAME.log
  local name="$1"
  shift
  "$@" >"$LOG_DIR/$name.log" 2>&1 &
  PIDS+=("$!")
  NAMES+=("$name")
  say "started $name (pid $!), log $LOG_DIR/$name.log"
}

wait_ready() {  # wait_ready NAME WHAT CHECK...: poll CHECK until it succeeds or NAME dies
  local name="$1" what="$2"
  shift 2
  local pid="${PIDS[${#PIDS[@]} - 1]}"
  local deadline=$((SECONDS + READY_TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$LOG_DIR/$name.log" >&2 || true
      die "$name exited before $what (log: $LOG_DIR/$name.log)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 20 "$LOG_DIR/$name.log" >&2 || true
      die "$name: no $what after ${READY_TIMEOUT}s (log: $LOG_DIR/$name.log)"
    fi
    sleep 0.2
  done
  say "$name ready ($what)"
}

tcp_open() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

port_free() {  # port_free WHAT HOST:PORT: refuse to start beside something already listening
  # (gRPC servers bind with SO_REUSEPORT, so a second server would start and share the port).
  if tcp_open "$2"; then
    die "$2 ($1) is already in use by another process; stop it, or choose another address"
  fi
}

require_options() {  # require_options NAME "HELP COMMAND" OPTION...: one clear line if missing
  local name="$1" help_cmd="$2" help option
  shift 2
  help="$($help_cmd --help 2>&1)" || die "$name cannot start: '$help_cmd --help' failed: $(
    printf '%s' "$help" | tail -n 1)"
  for option in "$@"; do
    grep -q -- "$option\b" <<<"$help" ||
      die "$name has no $option option yet, so the embedded target cannot be started" \
        "(run '$help_cmd --help' to see what it takes)"
  done
}

# ---------------------------------------------------------------------------------------------
choose_target() {
  case "$TARGET" in
    bmv2)
      docker info >/dev/null 2>&1 ||
        die "TARGET=bmv2 needs a working Docker engine, and 'docker info' failed"
      ;;
    sim) ;;
    auto)
      if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        TARGET=bmv2
      else
        say "no working Docker engine ('docker info' failed): running the embedded target" \
          "p4sim instead of BMv2"
        TARGET=sim
      fi
      ;;
    *) die "TARGET must be auto, bmv2 or sim (got '$TARGET')" ;;
  esac
}

print_banner() {  # print_banner TARGET_TEXT EXTRA_LINES...
  local target_text="$1" tunnelctl="$VENV/bin/tunnelctl"
  shift
  # The options tunnelctl needs only when this run left its defaults (localhost:3443, ./state).
  [ "$LISTEN" = localhost:3443 ] || tunnelctl+=" --server $LISTEN"
  [ "$STATE_DIR" = state ] || tunnelctl+=" --state-dir $STATE_DIR"
  cat <<EOF

TunnelOffload is serving on $LISTEN (tunneloffload.v1alpha1 and tunneloffload.v2), TLS
  target:   $target_text
  trust:    $STATE_DIR/tls/server.crt   (tunnelctl trusts it by default)
  try:      $tunnelctl capabilities
            $tunnelctl create -f examples/1-ipsec-geneve.yaml && $tunnelctl graph
EOF
  local line
  for line in "$@"; do printf '  %s\n' "$line"; done
  printf '  stop:     Ctrl-C (stops everything this command started)\n\n'
}

run_sim() {
  [ -x "$PY" ] || die "no $PY: run 'make proto' first (make run does)"
  [ -f "$PROGRAM" ] || die "no P4 program at $PROGRAM"
  [ -f "$ROUTES" ] || die "no routes file at $ROUTES"
  require_options "p4sim" "$PY -m p4sim run" --packet-socket --port --grpc-addr --device-id
  require_options "p4sim" "$PY -m p4sim" device-config
  require_options "the crypto worker" "$PY -m crypto_worker" --sa-socket --nanomsg
  require_options "the controller" "$PY -m controller" --listen --state-dir --data-plane \
    --switch-addr --device-id --p4info --p4-device-config --crypto-worker-socket --routes
  # Unix socket paths (sun_path) hold at most 107 bytes; the longest name here is 15 + "/".
  [ "${#RUN_DIR}" -le 90 ] ||
    die "$RUN_DIR is too long for the Unix sockets under it; set STATE_DIR to a shorter path"
  port_free "the TunnelOffload API, LISTEN" "$LISTEN"
  port_free "P4Runtime, P4RT_ADDR" "$P4RT_ADDR"
  local metrics_args=()
  if [ "$METRICS_ADDR" != off ]; then
    port_free "the metrics endpoint, METRICS_ADDR" "$METRICS_ADDR"
    metrics_args=(--metrics-addr "$METRICS_ADDR")
  fi
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  chmod 700 "$STATE_DIR"
  rm -f "$SA_SOCKET"

  local switch_tls_args=() controller_tls_args=() channel_text="PLAINTEXT (SWITCH_TLS=off)"
  case "$SWITCH_TLS" in
    mutual)
      require_options "p4sim" "$PY -m p4sim run" --grpc-server-ssl --grpc-server-with-client-auth
      require_options "the controller" "$PY -m controller" --switch-ca --switch-cert --switch-key
      # First run: a CA, the switch's and the controller's certificates (keys 0600); kept after.
      "$PY" -m controller.switch_pki "$SWITCH_TLS_DIR" --name "${P4RT_ADDR%:*}" \
        >"$LOG_DIR/switch-pki.log" 2>&1 ||
        die "cannot create the switch-channel certificates in $SWITCH_TLS_DIR: $(
          tail -n 1 "$LOG_DIR/switch-pki.log")"
      switch_tls_args=(--grpc-server-ssl --grpc-server-cert "$SWITCH_TLS_DIR/switch.crt"
        --grpc-server-key "$SWITCH_TLS_DIR/switch.key" --grpc-server-with-client-auth
        --grpc-server-cacert "$SWITCH_TLS_DIR/ca.crt")
      controller_tls_args=(--switch-ca "$SWITCH_TLS_DIR/ca.crt"
        --switch-cert "$SWITCH_TLS_DIR/controller.crt"
        --switch-key "$SWITCH_TLS_DIR/controller.key")
      channel_text="mutual TLS, certificates in $STATE_DIR/switch-tls"
      ;;
    off) say "SWITCH_TLS=off: P4Runtime on $P4RT_ADDR is plaintext, open to every local process" ;;
    *) die "SWITCH_TLS must be mutual or off (got '$SWITCH_TLS')" ;;
  esac

  trap 'stop_all signal' INT TERM
  trap stop_all EXIT
  # The pipeline the controller pushes (and pushes again if the switch restarts).
  "$PY" -m p4sim device-config "$PROGRAM" >"$RUN_DIR/device-config.json" ||
    die "'p4sim device-config $PROGRAM' failed"

  start switch "$PY" -m p4sim run "$PROGRAM" --packet-socket "$PACKET_SOCKET" \
    --port "$CRYPTO_PORT@$CRYPTO_SOCKET" --grpc-addr "$P4RT_ADDR" --device-id "$DEVICE_ID" \
    "${switch_tls_args[@]}" $P4SIM_ARGS  # P4SIM_ARGS word-split on purpose: several arguments
  wait_ready switch "P4Runtime on $P4RT_ADDR" tcp_open "$P4RT_ADDR"

  start crypto-worker "$PY" -m crypto_worker --sa-socket "$SA_SOCKET" --nanomsg "$CRYPTO_SOCKET" \
    --state-dir "$STATE_ABS/crypto-worker"
  wait_ready crypto-worker "gRPC health SERVING on unix:$SA_SOCKET" \
    "$PY" -m tunnelctl --server "unix:$SA_SOCKET" --insecure --timeout 2 health

  # Health turns SERVING once the controller has the switch and the worker (issue 7).
  start controller "$PY" -m controller --listen "$LISTEN" --state-dir "$STATE_DIR" \
    --data-plane p4runtime --switch-addr "$P4RT_ADDR" "${controller_tls_args[@]}" \
    --device-id "$DEVICE_ID" --p4info "$P4INFO" --p4-device-config "$RUN_DIR/device-config.json" \
    --crypto-worker-socket "$SA_SOCKET" --routes "$ROUTES" ${metrics_args[@]+"${metrics_args[@]}"}
  wait_ready controller "gRPC health SERVING on $LISTEN" \
    "$PY" -m tunnelctl --server "$LISTEN" --state-dir "$STATE_DIR" --timeout 2 health
  record_run with-metrics

  print_banner "p4sim (embedded v1model target) running $PROGRAM, P4Runtime $P4RT_ADDR" \
    "switch:   P4Runtime $channel_text" \
    "metrics:  $([ "$METRICS_ADDR" = off ] && echo off || echo "http://$METRICS_ADDR/metrics")" \
    "packets:  front-panel ports on $PACKET_SOCKET (PTF nanomsg);" \
    "          crypto port $CRYPTO_PORT on $CRYPTO_SOCKET, owned by the crypto worker" \
    "routes:   $ROUTES" \
    "logs:     $LOG_DIR/{switch,crypto-worker,controller}.log"

  # Stay in the foreground until Ctrl-C or until one of the processes exits on its own.
  local status=0 i
  wait -n "${PIDS[@]}" || status=$?
  for i in "${!PIDS[@]}"; do
    kill -0 "${PIDS[$i]}" 2>/dev/null || say "${NAMES[$i]} exited (status $status)"
  done
  say "stopping the others"
  exit "$status"
}

run_bmv2() {
  local compose=(docker compose -f "$COMPOSE_FILE" --project-name tunnel-offload)
  port_free "the TunnelOffload API" "127.0.0.1:3443"
  mkdir -p "$STATE_DIR"
  chmod 700 "$STATE_DIR"
  down() {
    trap - INT TERM EXIT
    say "stopping the containers"
    "${compose[@]}" down --timeout 10 >/dev/null 2>&1 || true
  }
  trap down INT TERM EXIT
  # --wait returns once every service's health check passes (and fails if one turns unhealthy).
  HOST_UID="$(id -u)" HOST_GID="$(id -g)" STATE_DIR="$STATE_ABS" CRYPTO_WORKERS="$CRYPTO_WORKERS" \
    "${compose[@]}" up --build --detach --wait \
    --wait-timeout "$READY_TIMEOUT"
  record_run
  print_banner "BMv2 simple_switch_grpc in Docker ($COMPOSE_FILE)" \
    "logs:     docker compose -f $COMPOSE_FILE --project-name tunnel-offload logs"
  "${compose[@]}" logs --follow || true
}

choose_target
if [ "$TARGET" = bmv2 ]; then run_bmv2; else run_sim; fi
