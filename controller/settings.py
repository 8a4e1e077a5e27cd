"""Start-up settings: one frozen value built from the command line (``--help`` lists them all)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_LISTEN = "localhost:3443"
DEFAULT_SWITCH_ADDR = "127.0.0.1:9559"
DEFAULT_MAX_AGE = 1.0  # seconds a stats figure may be old (--counter-max-age, counter_poller)
# The environment variable naming the state directory, read by the controller and tunnelctl alike.
STATE_DIR_ENV = "TUNNELOFFLOAD_STATE_DIR"


def default_state_dir() -> Path:
    """Where state lives when ``--state-dir`` is not given: ``$TUNNELOFFLOAD_STATE_DIR``, else
    ``$XDG_STATE_HOME/tunneloffload``, else ``~/.local/state/tunneloffload`` (always absolute, so
    the controller and tunnelctl agree whatever directory each is started from)."""
    if os.environ.get(STATE_DIR_ENV):
        return Path(os.environ[STATE_DIR_ENV]).expanduser().absolute()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base).expanduser().absolute() / "tunneloffload"


def p4src_dir() -> Path:
    """The P4 program and its P4Info: shipped inside the package by the wheel build (setup.py),
    else the checkout's ``p4src/`` (editable installs, ``make``)."""
    installed = Path(__file__).resolve().parent / "p4src"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[1] / "p4src"


DEFAULT_P4INFO = p4src_dir() / "tunnel_offload.p4info.txtpb"
DATA_PLANES = ("p4runtime", "detached")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything ``create_server`` needs; tests build it directly with ``listen=...:0``."""

    listen: str = DEFAULT_LISTEN
    state_dir: Path = field(default_factory=default_state_dir)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    insecure: bool = False
    log_level: str = "INFO"
    log_wire: bool = False
    data_plane: str = "p4runtime"
    switch_addr: str = DEFAULT_SWITCH_ADDR
    # The switch channel's TLS (controller.tls.switch_channel_tls): no CA = plaintext.
    switch_ca: Path | None = None
    switch_cert: Path | None = None
    switch_key: Path | None = None
    device_id: int = 1
    p4info: Path = DEFAULT_P4INFO
    p4_device_config: Path | None = None
    crypto_worker_socket: Path | None = None
    routes: Path | None = None
    worker_poll: float = 0.5
    counter_max_age: float = DEFAULT_MAX_AGE  # seconds a stats figure may be old (counter_poller)
    metrics_addr: str | None = None

    def __post_init__(self) -> None:
        if self.data_plane not in DATA_PLANES:
            raise ValueError(f"--data-plane {self.data_plane!r}: choose one of "
                             f"{', '.join(DATA_PLANES)}")
        if not 0 <= self.counter_max_age <= 60:
            raise ValueError(f"--counter-max-age {self.counter_max_age}: between 0 and 60 "
                             "seconds")
        if self.device_id < 1:
            raise ValueError(f"--device-id {self.device_id}: P4Runtime device ids start at 1")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if (self.switch_cert is None) != (self.switch_key is None):
            raise ValueError("--switch-cert and --switch-key go together")
        if self.switch_cert is not None and self.switch_ca is None:
            raise ValueError("--switch-cert needs --switch-ca (the CA that signed the switch's "
                             "certificate)")
        if self.insecure and (self.tls_cert or self.tls_client_ca):
            raise ValueError("--insecure cannot be combined with --tls-cert/--tls-client-ca")
        if self.metrics_addr is not None:
            from controller.metrics import parse_metrics_addr

            parse_metrics_addr(self.metrics_addr)


def build_parser() -> argparse.ArgumentParser:
    """The ``tunnel-offload-controller`` command line."""
    parser = argparse.ArgumentParser(
        prog="tunnel-offload-controller",
        description="Serve the TunnelOffload API (tunneloffload.v1alpha1 ipTunnelService and "
                    "tunneloffload.v2 IpTunnelService on one port, plus gRPC health and "
                    "reflection).",
    )
    parser.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                        help="address to serve on (default: %(default)s; port 0 picks a free "
                             "port; IPv6 as [::1]:3443)")
    parser.add_argument("--state-dir", type=Path, default=default_state_dir(), metavar="DIR",
                        help="where the tunnel database, the store key and the generated TLS "
                             "certificate live (default: $TUNNELOFFLOAD_STATE_DIR, else "
                             "$XDG_STATE_HOME/tunneloffload, else ~/.local/state/tunneloffload; "
                             "now %(default)s; created 0700)")
    parser.add_argument("--tls-cert", type=Path, metavar="PEM",
                        help="server certificate chain (default: a self-signed localhost "
                             "certificate generated once into --state-dir)")
    parser.add_argument("--tls-key", type=Path, metavar="PEM",
                        help="private key for --tls-cert")
    parser.add_argument("--tls-client-ca", type=Path, metavar="PEM",
                        help="require client certificates signed by this CA (mutual TLS)")
    parser.add_argument("--insecure", action="store_true",
                        help="serve plaintext gRPC without TLS (only for local debugging)")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log level (default: %(default)s)")
    parser.add_argument("--log-wire", action="store_true",
                        help="log every request and response message (keys redacted) to the "
                             "'controller.wire' logger at DEBUG")
    parser.add_argument("--metrics-addr", metavar="HOST:PORT",
                        help="serve Prometheus metrics on http://HOST:PORT/metrics (default: "
                             "off; docs/operations.md \"Metrics\"); plain HTTP, so keep it on "
                             "loopback or a management network")
    dataplane = parser.add_argument_group("data plane")
    dataplane.add_argument("--data-plane", choices=DATA_PLANES, default="p4runtime",
                           help="p4runtime: program the switch and the crypto worker "
                                "(default); detached: validate and store only, counters 0")
    dataplane.add_argument("--switch-addr", default=DEFAULT_SWITCH_ADDR, metavar="HOST:PORT",
                           help="the switch's P4Runtime server (default: %(default)s)")
    dataplane.add_argument("--switch-ca", type=Path, metavar="PEM",
                           help="connect to the switch with TLS and verify its certificate "
                                "against this CA (default: plaintext P4Runtime, which any local "
                                "process can use too)")
    dataplane.add_argument("--switch-cert", type=Path, metavar="PEM",
                           help="client certificate the controller presents to the switch "
                                "(for simple_switch_grpc/p4sim --grpc-server-with-client-auth)")
    dataplane.add_argument("--switch-key", type=Path, metavar="PEM",
                           help="private key for --switch-cert")
    dataplane.add_argument("--device-id", type=int, default=1, metavar="N",
                           help="P4Runtime device id (default: %(default)s)")
    dataplane.add_argument("--p4info", type=Path, default=DEFAULT_P4INFO, metavar="FILE",
                           help="P4Info text file of the pipeline (default: the one installed "
                                "with the package, %(default)s)")
    dataplane.add_argument("--p4-device-config", type=Path, metavar="FILE",
                           help="p4_device_config sent with the pipeline: for p4sim its JSON "
                                "(p4sim device-config), for BMv2 p4c's JSON (default: empty, "
                                "which p4sim reads as 'the program given to p4sim run')")
    dataplane.add_argument("--crypto-worker-socket", type=Path, metavar="PATH",
                           help="the crypto worker's SA service Unix socket (without it no "
                                "IPsec is offered)")
    dataplane.add_argument("--routes", type=Path, metavar="FILE",
                           help="routes file for the forwarding tables (docs/operations.md)")
    dataplane.add_argument("--counter-max-age", type=float, default=DEFAULT_MAX_AGE,
                           metavar="SECONDS",
                           help="how old a stats figure may be: counters are read in bulk and "
                                "shared for this long, never across a change (default "
                                f"{DEFAULT_MAX_AGE:g}; docs/operations.md)")
    return parser


def parse_settings(argv: Sequence[str] | None = None) -> Settings:
    """Parse the command line into :class:`Settings` (exits with usage on errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return Settings(listen=args.listen, state_dir=args.state_dir, tls_cert=args.tls_cert,
                        tls_key=args.tls_key, tls_client_ca=args.tls_client_ca,
                        insecure=args.insecure, log_level=args.log_level,
                        log_wire=args.log_wire, data_plane=args.data_plane,
                        switch_addr=args.switch_addr, switch_ca=args.switch_ca,
                        switch_cert=args.switch_cert, switch_key=args.switch_key,
                        device_id=args.device_id,
                        p4info=args.p4info, p4_device_config=args.p4_device_config,
                        crypto_worker_socket=args.crypto_worker_socket, routes=args.routes,
                        counter_max_age=args.counter_max_age, metrics_addr=args.metrics_addr)
    except ValueError as error:
        parser.error(str(error))
