"""Helpers: a real controller (``python -m controller``) on a free port, TLS with the certificate
it generates, and an independent raw gRPC stub to check the server's state after each command."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc

from tunnelctl.__main__ import main
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, kw_only=True)
class Result:
    status: int
    out: str
    err: str


@dataclass(frozen=True, kw_only=True)
class Controller:
    """A running controller and how to reach it."""

    address: str
    state_dir: Path
    log: Path

    @property
    def cert(self) -> Path:
        return self.state_dir / "tls" / "server.crt"

    def cli(self, *argv: str) -> Result:
        """Run tunnelctl in-process with this server's address and state dir."""
        out, err = io.StringIO(), io.StringIO()
        status = main(["--server", self.address, "--state-dir", str(self.state_dir), *argv],
                      out=out, err=err)
        return Result(status=status, out=out.getvalue(), err=err.getvalue())

    def stub(self) -> tuple[grpc.Channel, pb_grpc.ipTunnelServiceStub]:
        """A plain grpc stub (not tunnelctl's code) that checks what the server holds."""
        channel = grpc.secure_channel(
            self.address, grpc.ssl_channel_credentials(self.cert.read_bytes()))
        return channel, pb_grpc.ipTunnelServiceStub(channel)

    def tunnels(self) -> dict[int, pb.ipTunnelRequest]:
        channel, stub = self.stub()
        with channel:
            return {response.tunnelId: response.ipTunnel
                    for page in stub.getAllIpTunnels(pb.tunnelRequestArgs(), timeout=10)
                    for response in page.responses}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_controller(state_dir: Path, *extra: str) -> tuple[subprocess.Popen[bytes], Controller]:
    address = f"localhost:{free_port()}"
    log = state_dir.parent / f"{state_dir.name}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "controller", "--listen", address, "--state-dir",
             str(state_dir), "--data-plane", "detached", *extra],
            cwd=REPO, stdout=handle, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return process, Controller(address=address, state_dir=state_dir, log=log)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()




def other_self_signed_cert() -> bytes:
    """A self-signed localhost certificate the controller did not issue (to test distrust)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def write_client_ca_and_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a client certificate + key it signed, for mutual TLS: (ca, cert, key) paths."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tunnelctl test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tunnelctl")]))
              .issuer_name(ca_name).public_key(client_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=1))
              .not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    paths = (directory / "client-ca.crt", directory / "client.crt", directory / "client.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(client.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(client_key.private_bytes(serialization.Encoding.PEM,
                                                  serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return paths
