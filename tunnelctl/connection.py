"""How tunnelctl reaches the controller: address and TLS, with the same defaults as the server.

With no options the CLI dials what ``make run`` started: ``localhost:3443`` over TLS, trusting the
self-signed certificate the controller generated into its state directory (``./state``).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import grpc

__all__ = [
    "DEFAULT_SERVER",
    "DEFAULT_STATE_DIR",
    "ConnectionError_",
    "ConnectionSettings",
    "default_ca_path",
    "key_file_warning",
    "open_channel",
    "plaintext_warning",
    "settings_from_args",
]

DEFAULT_SERVER = "localhost:3443"
DEFAULT_STATE_DIR = "state"
# The file name the controller writes its generated self-signed certificate to, inside --state-dir.
GENERATED_CERT_NAME = "tls/server.crt"


class ConnectionError_(RuntimeError):  # noqa: N801 - the builtin name is taken
    """The channel cannot be set up (a missing certificate file, say); the message says which."""


@dataclass(frozen=True, kw_only=True)
class ConnectionSettings:
    """Everything needed to open a channel; built from the command line."""

    server: str = DEFAULT_SERVER
    state_dir: str = DEFAULT_STATE_DIR
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    server_name: str | None = None
    insecure: bool = False
    timeout: float = 10.0


def settings_from_args(args: argparse.Namespace) -> ConnectionSettings:
    """The connection options of the command line (see ``tunnelctl --help``)."""
    return ConnectionSettings(server=args.server, state_dir=args.state_dir, ca=args.ca,
                              cert=args.cert, key=args.key, server_name=args.server_name,
                              insecure=args.insecure, timeout=args.timeout)


def default_ca_path(state_dir: str) -> Path:
    """The certificate ``make run``'s controller generated, which the CLI trusts by default."""
    return Path(state_dir) / GENERATED_CERT_NAME


def open_channel(settings: ConnectionSettings) -> grpc.Channel:
    """Plaintext with ``insecure``, else TLS (mutual TLS when a cert and key are given)."""
    if settings.insecure:
        if settings.ca or settings.cert or settings.key:
            raise ConnectionError_("--insecure cannot be combined with --ca, --cert or --key")
        return grpc.insecure_channel(settings.server)
    if bool(settings.cert) != bool(settings.key):
        raise ConnectionError_("--cert and --key go together (mutual TLS needs both)")
    ca_path = Path(settings.ca) if settings.ca else default_ca_path(settings.state_dir)
    root = _read(ca_path, "trusted CA certificate",
                 hint="" if settings.ca else
                 " (the controller writes it on first start; start it with `make run`, "
                 "or pass --ca FILE, or --insecure for a plaintext server)")
    chain = _read(Path(settings.cert), "client certificate") if settings.cert else None
    key = _read(Path(settings.key), "client key") if settings.key else None
    credentials = grpc.ssl_channel_credentials(root_certificates=root, private_key=key,
                                               certificate_chain=chain)
    options: list[tuple[str, str]] = []
    if settings.server_name:
        options.append(("grpc.ssl_target_name_override", settings.server_name))
    return grpc.secure_channel(settings.server, credentials, options=options)


def plaintext_warning(settings: ConnectionSettings) -> str | None:
    """The warning for ``--insecure`` towards anything but a Unix socket or a loopback address:
    tunnel definitions and SA keys would cross the network in clear text."""
    if not settings.insecure or settings.server.startswith(("unix:", "unix-abstract:")):
        return None
    host = settings.server.rpartition(":")[0].strip("[]") if ":" in settings.server else (
        settings.server)
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return (f"warning: --insecure: requests to {settings.server}, SA keys included, travel "
            "unencrypted and the server is not authenticated")


def key_file_warning(settings: ConnectionSettings) -> str | None:
    """The warning for a ``--key`` (the client's TLS private key) that others can read: with
    mutual TLS that key is what lets its holder change every tunnel."""
    if not settings.key:
        return None
    try:
        mode = stat.S_IMODE(os.stat(settings.key).st_mode)
    except OSError:
        return None  # open_channel reports the unreadable file
    if not mode & 0o077:
        return None
    return (f"warning: client key {settings.key} is accessible by group or others "
            f"(mode {mode:o}); chmod 600 it")


def _read(path: Path, what: str, hint: str = "") -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConnectionError_(
            f"cannot read the {what} {os.fspath(path)}: {reason}{hint}") from None
