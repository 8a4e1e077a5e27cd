"""The private PKI of the switch channel: one CA, the switch's server certificate and the
controller's client certificate, generated once into a directory (``make run`` and the Docker
set-up use ``STATE_DIR/switch-tls``).

With these, p4sim (or simple_switch_grpc) serves P4Runtime with ``--grpc-server-ssl
--grpc-server-with-client-auth --grpc-server-cacert ca.crt``, and only a process holding
``controller.key`` can open a P4Runtime channel, become primary and write tables.

The CA's private key is never written anywhere: it signs the two certificates and is dropped,
so nobody can issue a third certificate later. To re-issue (other names, expiry), delete the
directory; the next run generates a new CA and new certificates, and old ones stop verifying.

    python -m controller.switch_pki DIR [--name switch.example --name 10.0.0.2]
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controller.tls import check_private_key, write_private_key

log = logging.getLogger(__name__)

# The names the switch's certificate carries by default: a local p4sim, and the switch service
# of docker/compose.yaml, so the controller verifies the address it dials.
DEFAULT_SWITCH_NAMES = ("localhost", "127.0.0.1", "::1", "switch")
_VALIDITY = datetime.timedelta(days=825)
_ORGANIZATION = "TunnelOffload switch channel"


@dataclass(frozen=True, kw_only=True)
class SwitchPki:
    """Paths of the generated files (keys 0600; the directory 0700)."""

    ca_cert: Path
    switch_cert: Path
    switch_key: Path
    controller_cert: Path
    controller_key: Path

    @classmethod
    def in_directory(cls, directory: Path) -> SwitchPki:
        return cls(ca_cert=directory / "ca.crt",
                   switch_cert=directory / "switch.crt", switch_key=directory / "switch.key",
                   controller_cert=directory / "controller.crt",
                   controller_key=directory / "controller.key")

    def files(self) -> tuple[Path, ...]:
        return (self.ca_cert, self.switch_cert, self.switch_key, self.controller_cert,
                self.controller_key)


def ensure_switch_pki(directory: Path,
                      switch_names: Sequence[str] = DEFAULT_SWITCH_NAMES) -> SwitchPki:
    """The PKI in ``directory``, generated if any file is missing (all five are then replaced,
    since certificates of different CAs would not verify each other)."""
    pki = SwitchPki.in_directory(directory)
    if all(path.exists() for path in pki.files()):
        for key in (pki.switch_key, pki.controller_key):
            check_private_key(key, allow_group=False)
        return pki
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("TunnelOffload switch-channel CA")
    ca = (_builder(ca_name, ca_name, ca_key.public_key(), now)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(_key_usage(cert_sign=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    _issue(ca, ca_key, now, pki.switch_cert, pki.switch_key, common_name="switch",
           usage=ExtendedKeyUsageOID.SERVER_AUTH, names=switch_names)
    _issue(ca, ca_key, now, pki.controller_cert, pki.controller_key,
           common_name="tunnel-offload-controller", usage=ExtendedKeyUsageOID.CLIENT_AUTH,
           names=())
    pki.ca_cert.write_bytes(ca.public_bytes(Encoding.PEM))
    log.info("generated the switch-channel CA %s, switch certificate %s (%s) and controller "
             "certificate %s", pki.ca_cert, pki.switch_cert, ", ".join(switch_names),
             pki.controller_cert)
    return pki


def _issue(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, now: datetime.datetime,
           cert_path: Path, key_path: Path, *, common_name: str, usage: x509.ObjectIdentifier,
           names: Sequence[str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (_builder(_name(common_name), ca.subject, key.public_key(), now)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(_key_usage(cert_sign=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca_key.public_key()), critical=False))
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(name) for name in names]), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    write_private_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(Encoding.PEM))


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
             now: datetime.datetime) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION)])


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not cert_sign, key_cert_sign=cert_sign,
                         crl_sign=cert_sign, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, encipher_only=False,
                         decipher_only=False)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        return x509.DNSName(name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m controller.switch_pki",
        description="Generate (once) the CA, switch certificate and controller certificate of "
                    "the P4Runtime channel into DIR, and print the paths.")
    parser.add_argument("directory", type=Path, metavar="DIR")
    parser.add_argument("--name", dest="names", action="append", default=[], metavar="DNS|IP",
                        help="another name the switch certificate is valid for, besides "
                             f"{', '.join(DEFAULT_SWITCH_NAMES)}; repeatable (used only when "
                             "the files are generated)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    names = tuple(dict.fromkeys([*DEFAULT_SWITCH_NAMES, *(n.strip("[]") for n in args.names)]))
    try:
        pki = ensure_switch_pki(args.directory, names)
    except OSError as error:
        print(f"switch_pki: {error}", file=sys.stderr)
        return 1
    for label, path in (("ca", pki.ca_cert), ("switch-cert", pki.switch_cert),
                        ("switch-key", pki.switch_key), ("controller-cert", pki.controller_cert),
                        ("controller-key", pki.controller_key)):
        print(f"{label}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
