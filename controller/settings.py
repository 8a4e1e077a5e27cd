"""Start-up settings: one frozen value built from the command line (``--help`` lists them all)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LISTEN = "localhost:3443"
DEFAULT_STATE_DIR = Path("state")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything ``create_server`` needs; tests build it directly with ``listen=...:0``."""

    listen: str = DEFAULT_LISTEN
    state_dir: Path = DEFAULT_STATE_DIR
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    insecure: bool = False
    log_level: str = "INFO"
    log_wire: bool = False

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.insecure and (self.tls_cert or self.tls_client_ca):
            raise ValueError("--insecure cannot be combined with --tls-cert/--tls-client-ca")


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
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, metavar="DIR",
                        help="where the tunnel database, the store key and the generated TLS "
                             "certificate live (default: ./%(default)s, created 0700)")
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
    return parser


def parse_settings(argv: Sequence[str] | None = None) -> Settings:
    """Parse the command line into :class:`Settings` (exits with usage on errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return Settings(listen=args.listen, state_dir=args.state_dir, tls_cert=args.tls_cert,
                        tls_key=args.tls_key, tls_client_ca=args.tls_client_ca,
                        insecure=args.insecure, log_level=args.log_level,
                        log_wire=args.log_wire)
    except ValueError as error:
        parser.error(str(error))
