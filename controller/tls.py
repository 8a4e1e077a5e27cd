"""Transport security: server credentials, and the self-signed localhost certificate that is
generated once into the state directory when no ``--tls-cert`` is given."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import stat
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from controller.settings import Settings

log = logging.getLogger(__name__)

SELF_SIGNED_CERT = "tls/server.crt"
SELF_SIGNED_KEY = "tls/server.key"
_VALIDITY = datetime.timedelta(days=825)


def ensure_self_signed(state_dir: Path) -> tuple[Path, Path]:
    """Return (cert, key) paths in ``state_dir``, generating them on first use.

    The certificate is for ``localhost`` with SAN DNS:localhost, IP:127.0.0.1 and IP:::1, an
    ECDSA P-256 key (0600) and is its own CA, so clients pin it with ``ssl_channel_credentials``.
    """
    cert_path, key_path = state_dir / SELF_SIGNED_CERT, state_dir / SELF_SIGNED_KEY
    if cert_path.exists() and key_path.exists():
        check_private_key(key_path, allow_group=False)
        return cert_path, key_path
    cert_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TunnelOffload controller")])
    now = datetime.datetime.now(datetime.UTC)
    san = x509.SubjectAlternativeName([
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
        x509.IPAddress(ipaddress.IPv6Address("::1")),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    log.info("generated self-signed certificate %s (SAN DNS:localhost, IP:127.0.0.1, IP:::1)",
             cert_path)
    return cert_path, key_path


def write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write ``key`` as unencrypted PKCS#8 PEM, mode 0600 from the first byte."""
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)  # a key file left over from an earlier run keeps its mode otherwise
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_pem)


def check_private_key(path: Path, *, allow_group: bool) -> None:
    """Refuse a TLS private key others can read or write (PermissionError naming the mode).

    The generated key must be 0600; an operator's ``--tls-key`` may also be group-readable
    (Debian's ``ssl-cert`` group convention), with a warning, but never world-accessible.
    """
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o007 or (mode & 0o070 and not allow_group):
        raise PermissionError(f"TLS private key {path} is accessible by "
                              f"{'others' if mode & 0o007 else 'group'} (mode {mode:o}); "
                              "run chmod 600")
    if mode & 0o070:
        log.warning("TLS private key %s is group-accessible (mode %o)", path, mode)


def server_credentials(settings: Settings) -> tuple[grpc.ServerCredentials | None, Path | None]:
    """The server's credentials and the certificate path clients should trust (None if
    ``--insecure``)."""
    if settings.insecure:
        return None, None
    if settings.tls_cert is not None and settings.tls_key is not None:
        cert_path, key_path = settings.tls_cert, settings.tls_key
        check_private_key(key_path, allow_group=True)
    else:
        cert_path, key_path = ensure_self_signed(settings.state_dir)
    client_ca = (settings.tls_client_ca.read_bytes() if settings.tls_client_ca is not None
                 else None)
    credentials = grpc.ssl_server_credentials(
        [(key_path.read_bytes(), cert_path.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )
    return credentials, cert_path
