"""TLS for p4sim's P4Runtime server, with the options simple_switch_grpc takes.

BMv2's ``--grpc-server-ssl`` turns TLS on and needs ``--grpc-server-cert`` and
``--grpc-server-key``; ``--grpc-server-with-client-auth`` requires every client to present a
certificate that verifies against ``--grpc-server-cacert``. Without ``--grpc-server-ssl`` the
server is plaintext, as simple_switch_grpc's is.

The files are checked here, before the server binds, so that a wrong path or a key that does
not belong to the certificate is one precise start-up error instead of a handshake that fails
later for every client. Error messages name the option and the path, never a file's contents.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization


class TlsConfigError(ValueError):
    """The TLS options or files cannot make server credentials (the message names the option)."""


@dataclass(frozen=True, kw_only=True)
class ServerTls:
    """The PEM files of ``--grpc-server-cert/-key/-cacert``, and whether clients need one."""

    cert: Path
    key: Path
    cacert: Path | None = None
    client_auth: bool = False

    def describe(self) -> str:
        """How clients are admitted, for the start-up log and the ready line."""
        return "mutual TLS" if self.client_auth else "TLS"


def server_tls(*, ssl: bool, cert: Path | None, key: Path | None, cacert: Path | None,
               client_auth: bool) -> ServerTls | None:
    """The TLS set-up the options ask for, None for plaintext; TlsConfigError if they disagree.

    simple_switch_grpc warns and serves plaintext when it is given PEM files or client auth
    without ``--grpc-server-ssl``; p4sim refuses instead, since whoever passed a certificate
    meant the channel to be closed to others.
    """
    if not ssl:
        given = [name for name, value in (("--grpc-server-cert", cert), ("--grpc-server-key", key),
                                          ("--grpc-server-cacert", cacert),
                                          ("--grpc-server-with-client-auth", client_auth))
                 if value]
        if given:
            raise TlsConfigError(f"{', '.join(given)} given without --grpc-server-ssl: add "
                                 "--grpc-server-ssl, or drop them to serve plaintext")
        return None
    for name, value in (("--grpc-server-cert", cert), ("--grpc-server-key", key)):
        if value is None:
            raise TlsConfigError(f"--grpc-server-ssl needs {name}")
    if client_auth and cacert is None:
        raise TlsConfigError("--grpc-server-with-client-auth needs --grpc-server-cacert (the CA "
                             "that client certificates must verify against)")
    assert cert is not None and key is not None
    return ServerTls(cert=cert, key=key, cacert=cacert, client_auth=client_auth)


def server_credentials(tls: ServerTls) -> grpc.ServerCredentials:
    """gRPC server credentials for ``tls`` (TlsConfigError naming the option on bad input).

    Without client auth no client is asked for a certificate (``--grpc-server-cacert`` is then
    unused), as in simple_switch_grpc.
    """
    chain_pem = _read("--grpc-server-cert", tls.cert)
    key_pem = _read("--grpc-server-key", tls.key)
    chain = _certificates("--grpc-server-cert", tls.cert, chain_pem)
    _check_key_mode(tls.key)
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):  # the library's message may quote the input: not used
        raise TlsConfigError(f"--grpc-server-key {tls.key}: not an unencrypted PEM private "
                             "key") from None
    if _public_der(key.public_key()) != _public_der(chain[0].public_key()):
        raise TlsConfigError(f"--grpc-server-key {tls.key} is not the key of the certificate in "
                             f"--grpc-server-cert {tls.cert}")
    roots = None
    if tls.cacert is not None and tls.client_auth:
        roots = _read("--grpc-server-cacert", tls.cacert)
        _certificates("--grpc-server-cacert", tls.cacert, roots)
    return grpc.ssl_server_credentials([(key_pem, chain_pem)], root_certificates=roots,
                                       require_client_auth=tls.client_auth)


def _read(option: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise TlsConfigError(f"{option} {path}: {error.strerror or error}") from None


def _certificates(option: str, path: Path, pem: bytes) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise TlsConfigError(f"{option} {path}: no PEM certificate in the file") from None
    return certificates


def _check_key_mode(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o007:
        raise TlsConfigError(f"--grpc-server-key {path} is accessible by others (mode {mode:o}); "
                             "run chmod 600")


def _public_der(key: object) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                            serialization.PublicFormat.SubjectPublicKeyInfo)
