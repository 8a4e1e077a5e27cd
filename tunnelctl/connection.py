"""How tunnelctl reaches the controller: address and TLS, with the same defaults as the server.

Without options the server address and the state directory (whose generated certificate is
trusted) come from, first to last: ``$TUNNELCTL_SERVER`` / ``$TUNNELOFFLOAD_STATE_DIR``, the
per-user config file (``$XDG_CONFIG_HOME/tunneloffload/tunnelctl.yaml``), the record ``make run``
writes (``$XDG_CONFIG_HOME/tunneloffload/make-run.yaml``), then the controller's own defaults
(``localhost:3443``, ``$XDG_STATE_HOME/tunneloffload``). So tunnelctl works from any directory.
Connection failures are turned into one line naming the likely cause and the flag that fixes it.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import grpc
import yaml

__all__ = [
    "DEFAULT_SERVER",
    "DEFAULT_STATE_DIR",
    "UsageError_",
    "config_dir",
    "explain_unreachable",
    "resolve_defaults",
    "ConnectionError_",
    "ConnectionSettings",
    "default_ca_path",
    "key_file_warning",
    "open_channel",
    "plaintext_warning",
    "settings_from_args",
]

DEFAULT_SERVER = "localhost:3443"
# Read only when nothing else names a state directory: the controller's own default.
DEFAULT_STATE_DIR = "$XDG_STATE_HOME/tunneloffload"
STATE_DIR_ENV = "TUNNELOFFLOAD_STATE_DIR"
LEGACY_STATE_DIR_ENV = "TUNNELCTL_STATE_DIR"
SERVER_ENV = "TUNNELCTL_SERVER"
METRICS_ENV = "TUNNELCTL_METRICS"   # the controller's --metrics-addr, for `stats --reasons`
CONFIG_NAME = "tunnelctl.yaml"
# Written by scripts/run.sh once its controller is SERVING (server: and state_dir: lines).
MAKE_RUN_RECORD = "make-run.yaml"
CONFIG_KEYS = ("server", "state_dir", "ca", "cert", "key", "server_name", "metrics")
# The file name the controller writes its generated self-signed certificate to, inside --state-dir.
GENERATED_CERT_NAME = "tls/server.crt"


class ConnectionError_(RuntimeError):  # noqa: N801 - the builtin name is taken
    """The channel cannot be set up (a missing certificate file, say); the message says which."""


class UsageError_(ValueError):  # noqa: N801 - named like ConnectionError_
    """Connection options that contradict each other (exit 2: nothing was sent)."""


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


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/tunneloffload`` (``~/.config/tunneloffload``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "tunneloffload"


def _controller_state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base).expanduser() / "tunneloffload")


def _read_config(path: Path) -> dict[str, str]:
    """A flat YAML mapping of CONFIG_KEYS; a missing file is empty, a broken one an error."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise UsageError_(f"cannot read {path}: {error.strerror or error}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise UsageError_(f"{path}: not YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UsageError_(f"{path}: expected a mapping of {', '.join(CONFIG_KEYS)}")
    unknown = sorted(set(map(str, data)) - set(CONFIG_KEYS))
    if unknown:
        raise UsageError_(f"{path}: unknown key(s) {', '.join(unknown)}; "
                          f"known: {', '.join(CONFIG_KEYS)}")
    values = {str(k): str(v) for k, v in data.items() if v is not None}
    # Relative paths in a file are relative to that file, not to wherever tunnelctl runs.
    for name in ("state_dir", "ca", "cert", "key"):
        if name in values:
            values[name] = str(path.parent / Path(values[name]).expanduser())
    return values


def resolve_defaults(args: argparse.Namespace) -> dict[str, str]:
    """Fill the connection options the command line left out; returns where each came from
    (used to word errors). Order: flags, environment, config file, make-run record, defaults."""
    config = _read_config(config_dir() / CONFIG_NAME)
    record = _read_config(config_dir() / MAKE_RUN_RECORD)
    env_state = os.environ.get(STATE_DIR_ENV) or os.environ.get(LEGACY_STATE_DIR_ENV)
    sources: dict[str, str] = {}
    layers: list[tuple[str, dict[str, str]]] = [
        ("environment", {k: v for k, v in (("server", os.environ.get(SERVER_ENV)),
                                           ("state_dir", env_state),
                                           ("metrics", os.environ.get(METRICS_ENV))) if v}),
        (str(config_dir() / CONFIG_NAME), config),
        (str(config_dir() / MAKE_RUN_RECORD), {k: v for k, v in record.items()
                                               if k in ("server", "state_dir", "metrics")}),
        ("default", {"server": DEFAULT_SERVER, "state_dir": _controller_state_dir()}),
    ]
    for name in CONFIG_KEYS:
        if getattr(args, name, None) is not None:
            sources[name] = "flag"
            continue
        if args.insecure and name in ("ca", "cert", "key", "server_name"):
            continue  # a config file's TLS settings do not apply to a plaintext connection
        for where, values in layers:
            if name in values:
                setattr(args, name, values[name])
                sources[name] = where
                break
    return sources


def settings_from_args(args: argparse.Namespace) -> ConnectionSettings:
    """The connection options of the command line (see ``tunnelctl --help``), with the defaults
    :func:`resolve_defaults` fills in."""
    if args.state_dir is None or args.server is None:
        resolve_defaults(args)
    return ConnectionSettings(server=args.server, state_dir=args.state_dir, ca=args.ca,
                              cert=args.cert, key=args.key, server_name=args.server_name,
                              insecure=args.insecure, timeout=args.timeout)


def check_options(settings: ConnectionSettings) -> None:
    """Options that contradict each other are bad arguments (exit 2), caught before any I/O."""
    if settings.insecure and (settings.ca or settings.cert or settings.key):
        raise UsageError_("--insecure cannot be combined with --ca, --cert or --key")
    if bool(settings.cert) != bool(settings.key):
        raise UsageError_("--cert and --key go together (mutual TLS needs both)")


def default_ca_path(state_dir: str) -> Path:
    """The certificate ``make run``'s controller generated, which the CLI trusts by default."""
    return Path(state_dir) / GENERATED_CERT_NAME


def open_channel(settings: ConnectionSettings) -> grpc.Channel:
    """Plaintext with ``insecure``, else TLS (mutual TLS when a cert and key are given)."""
    check_options(settings)
    if settings.insecure:
        return grpc.insecure_channel(settings.server)
    ca_path = Path(settings.ca) if settings.ca else default_ca_path(settings.state_dir)
    root = _read(ca_path, "trusted CA certificate",
                 hint="" if settings.ca else
                 " (the controller writes it on first start; start it with `make run`, "
                 "or pass --ca FILE, or --insecure for a plaintext server)")
    _check_pem(root, ca_path, "--ca", b"CERTIFICATE")
    chain = _read(Path(settings.cert), "client certificate") if settings.cert else None
    key = _read(Path(settings.key), "client key") if settings.key else None
    if chain is not None and key is not None:
        _check_pem(chain, Path(str(settings.cert)), "--cert", b"CERTIFICATE")
        _check_pem(key, Path(str(settings.key)), "--key", b"PRIVATE KEY")
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


def _check_pem(data: bytes, path: Path, flag: str, label: bytes) -> None:
    """Refuse what gRPC would reject with C-core log lines: a file that is not PEM ``label``."""
    if b"-----BEGIN " not in data or label not in data:
        what = "a PEM certificate" if label == b"CERTIFICATE" else "a PEM private key"
        raise ConnectionError_(f"{flag} {os.fspath(path)} is not {what} "
                               f"(expected a '-----BEGIN ...{label.decode()}-----' block)")
    if label == b"CERTIFICATE":
        from cryptography import x509

        try:
            x509.load_pem_x509_certificates(data)
        except ValueError:
            raise ConnectionError_(f"{flag} {os.fspath(path)}: its PEM certificate does not "
                                   "parse") from None


def explain_unreachable(settings: ConnectionSettings, code: grpc.StatusCode | None,
                        details: str) -> str:
    """One line: why the channel failed, as far as gRPC's text tells, and the flag that fixes it.

    gRPC reports every connection failure as UNAVAILABLE with OpenSSL's or the socket's words;
    these are matched here (the raw text is kept at the end for what is not recognised).
    """
    server = settings.server
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return (f"no answer from {server} within --timeout {settings.timeout:g}s (a busy or "
                "hung server; raise --timeout, or check --server)")
    if "Connection refused" in details or "Name or service not known" in details or (
            "DNS resolution failed" in details):
        return (f"nothing is listening at {server} (is the controller running? start it with "
                "`make run` or tunnel-offload-controller, or point --server at it)")
    if "CERTIFICATE_VERIFY_FAILED" in details:
        ca = settings.ca or default_ca_path(settings.state_dir)
        return (f"the server's certificate is not signed by the trusted CA {ca} (wrong CA: pass "
                "--ca with the server's --tls-cert/CA, or --state-dir of that controller)")
    if "WRONG_VERSION_NUMBER" in details:
        return (f"{server} speaks plaintext gRPC, not TLS (a controller started with "
                "--insecure): pass --insecure")
    if "Hostname Verification" in details or "Peer name" in details:
        host = settings.server_name or server.rpartition(":")[0] or server
        return (f"the server's certificate does not name {host!r} (wrong server name: pass "
                "--server-name with a name in its certificate, or use that name in --server)")
    if "Socket closed" in details or "Connection reset" in details:
        if settings.insecure:
            return (f"{server} closed the plaintext connection: it probably expects TLS (drop "
                    "--insecure; pass --ca if its certificate is not the generated one)")
        if not settings.cert:
            return (f"{server} closed the TLS handshake: it probably requires a client "
                    "certificate (mutual TLS, --tls-client-ca): pass --cert and --key")
        return (f"{server} closed the TLS handshake: it probably does not trust the client "
                f"certificate {settings.cert} (check the server's --tls-client-ca, or --cert)")
    name = code.name if code is not None else "ERROR"
    return f"{name}: {details}"
