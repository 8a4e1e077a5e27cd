"""Transport security: server credentials, the self-signed localhost certificate that is
generated once into the state directory when no ``--tls-cert`` is given, and the TLS of the
controller's own P4Runtime channel to the switch (``--switch-ca/--switch-cert/--switch-key``)."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import finsy as fy
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


# -- the switch channel (P4Runtime client side) --------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class SwitchChannelTls:
    """The checked PEM files of ``--switch-ca/--switch-cert/--switch-key``.

    finsy gets the paths, not the bytes, so no key is ever held in an options object whose
    repr could be logged; the files are re-read at each reconnect (a renewed certificate is
    picked up without a restart).
    """

    ca: Path
    cert: Path | None = None
    key: Path | None = None

    def credentials(self) -> fy.GRPCCredentialsTLS:
        return fy.GRPCCredentialsTLS(cacert=self.ca, cert=self.cert, private_key=self.key)

    def describe(self) -> str:
        if self.cert is None:
            return f"TLS (switch verified against {self.ca}, no client certificate)"
        return f"mutual TLS (switch verified against {self.ca}, client certificate {self.cert})"


def switch_channel_tls(settings: Settings) -> SwitchChannelTls | None:
    """The switch channel's TLS files, checked now so that a wrong path or a key that is not the
    certificate's is one start-up error (ValueError naming the option and the path, never the
    contents); None for plaintext."""
    if settings.switch_ca is None:
        return None
    _certificates_in("--switch-ca", settings.switch_ca)
    if settings.switch_cert is not None and settings.switch_key is not None:
        [leaf, *_] = _certificates_in("--switch-cert", settings.switch_cert)
        key_pem = _read_pem("--switch-key", settings.switch_key)
        check_private_key(settings.switch_key, allow_group=True)
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError):  # the library's message is not passed on: it may quote
            raise ValueError(f"--switch-key {settings.switch_key}: not an unencrypted PEM "
                             "private key") from None
        if _spki(key.public_key()) != _spki(leaf.public_key()):
            raise ValueError(f"--switch-key {settings.switch_key} is not the key of the "
                             f"certificate in --switch-cert {settings.switch_cert}")
    return SwitchChannelTls(ca=settings.switch_ca, cert=settings.switch_cert,
                            key=settings.switch_key)


def explain_switch_failure(tls: SwitchChannelTls | None, message: str) -> str | None:
    """What an operator must fix when the switch channel failed with gRPC's ``message`` because
    of TLS (a configuration error, logged once at ERROR); None for other failures (switch down,
    restarting), which are retried quietly."""
    text = message.lower()
    if "certificate_verify_failed" in text:
        reason = message.rsplit("CERTIFICATE_VERIFY_FAILED", 1)[-1].strip(": ")
        reason = reason.removesuffix(": OK").strip() or "verification failed"
        ca = tls.ca if tls is not None else "the CA"
        return (f"TLS handshake failed: the switch's certificate does not verify against "
                f"--switch-ca {ca} ({reason})")
    if "wrong_version_number" in text:
        return ("TLS handshake failed: the switch does not speak TLS (plaintext P4Runtime); "
                "start it with --grpc-server-ssl or drop --switch-ca")
    if "peer name" in text or ("hostname" in text and "handshake" in text):
        return ("TLS handshake failed: the switch's certificate is not valid for the address "
                "dialed (--switch-addr); issue it for that name")
    if "handshake failed" in text:
        detail = message.rsplit("handshake failed", 1)[-1].strip(": ")
        return f"TLS handshake failed: {detail}"
    if "socket closed" in text:
        if tls is None:
            return ("the switch closed the connection before any P4Runtime answer: it likely "
                    "requires TLS; give --switch-ca (and --switch-cert/--switch-key when it "
                    "checks client certificates)")
        if tls.cert is None:
            return ("the switch closed the connection during the TLS handshake: it requires a "
                    "client certificate; give --switch-cert and --switch-key")
        return (f"the switch closed the connection during the TLS handshake: it refused the "
                f"client certificate --switch-cert {tls.cert} (not signed by the CA the switch "
                f"trusts with --grpc-server-cacert)")
    return None


def _read_pem(option: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ValueError(f"{option} {path}: {error.strerror or error}") from None


def _certificates_in(option: str, path: Path) -> list[x509.Certificate]:
    pem = _read_pem(option, path)
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise ValueError(f"{option} {path}: no PEM certificate in the file") from None


def _spki(public_key: object) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
