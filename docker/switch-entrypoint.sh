#!/bin/sh
# Switch container entry point: create the veth pairs, then exec BMv2 simple_switch_grpc.
#
#   front-panel port N  <->  swN   (switch end)  /  hostN   (where traffic is sent and captured)
#   crypto port 64      <->  crypto-sw           /  crypto-wk (owned by the crypto worker, which
#                                                   shares this container's network namespace)
#
# The pipeline is not loaded here (--no-p4): the controller pushes the P4Info and the BMv2 JSON
# with SetForwardingPipelineConfig, and pushes them again if the switch restarts.
# Extra arguments are passed to simple_switch_grpc before `--` (e.g. --log-console).
#
# GRPC_TLS_DIR (compose sets it): serve P4Runtime with mutual TLS from the switch-channel PKI in
# that directory (ca.crt, switch.crt, switch.key; controller/switch_pki.py writes them), so only
# the controller's certificate opens the channel. Unset: plaintext, as simple_switch_grpc's default.
set -eu

FRONT_PORTS="${FRONT_PORTS:-8}"
CRYPTO_PORT="${CRYPTO_PORT:-64}"
DEVICE_ID="${DEVICE_ID:-1}"
GRPC_ADDR="${GRPC_ADDR:-0.0.0.0:9559}"
GRPC_TLS_DIR="${GRPC_TLS_DIR:-}"

tls_args=""
if [ -n "$GRPC_TLS_DIR" ]; then
  for file in ca.crt switch.crt switch.key; do
    [ -r "$GRPC_TLS_DIR/$file" ] || {
      echo "switch-entrypoint: GRPC_TLS_DIR=$GRPC_TLS_DIR has no readable $file" >&2
      exit 1
    }
  done
  tls_args="--grpc-server-ssl --grpc-server-cert $GRPC_TLS_DIR/switch.crt"
  tls_args="$tls_args --grpc-server-key $GRPC_TLS_DIR/switch.key"
  tls_args="$tls_args --grpc-server-cacert $GRPC_TLS_DIR/ca.crt --grpc-server-with-client-auth"
fi

veth_pair() {  # veth_pair SWITCH_END PEER_END
  ip link show "$1" >/dev/null 2>&1 || ip link add "$1" type veth peer name "$2"
  for dev in "$1" "$2"; do
    ip link set dev "$dev" mtu 9500 up
    # No IPv6 router solicitations, MLD reports or DAD probes on the data-plane ports: the kernel
    # would send them into the switch, where they count as drops (and on the crypto port as bad
    # shims). Written to /proc directly because the image has no sysctl (procps); best effort,
    # since /proc/sys is read-only in an unprivileged container: compose and the CI job set
    # net.ipv6.conf.default.disable_ipv6=1 before the veths exist, which is what takes effect.
    { echo 1 >"/proc/sys/net/ipv6/conf/$dev/disable_ipv6"; } 2>/dev/null || true
  done
}

ports=""
i=0
while [ "$i" -lt "$FRONT_PORTS" ]; do
  veth_pair "sw$i" "host$i"
  ports="$ports -i $i@sw$i"
  i=$((i + 1))
done
veth_pair crypto-sw crypto-wk

# shellcheck disable=SC2086  # $ports and $tls_args are lists of words on purpose
exec simple_switch_grpc --device-id "$DEVICE_ID" --no-p4 $ports -i "$CRYPTO_PORT@crypto-sw" \
  "$@" -- --grpc-server-addr "$GRPC_ADDR" $tls_args
