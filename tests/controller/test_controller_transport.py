"""Transport and infrastructure: the generated self-signed certificate, mutual TLS (and a failing
handshake without a client certificate), --insecure, gRPC health, server reflection, and the
console entry point started as a real process.

Run just this file: .venv/bin/python -m pytest tests/controller/test_controller_transport.py -q
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import re
import signal
import stat
import sys
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ctl_builders import geneve_encap
from ctl_client import create, wait_serving
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc

REPO_ROOT = Path(__file__).resolve().parents[2]


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _issue(common_name: str, *, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
           | None, ca: bool = False, san: list[x509.GeneralName] | None = None
           ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (name, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=1))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(signing_key, hashes.SHA256()), key


def test_self_signed_certificate_is_for_localhost(tmp_path: Path) -> None:
    from controller.tls import ensure_self_signed

    cert_path, key_path = ensure_self_signed(tmp_path)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    again = ensure_self_signed(tmp_path)
    assert again == (cert_path, key_path)
    assert x509.load_pem_x509_certificate(cert_path.read_bytes()) == cert  # generated once


async def test_mutual_tls(start_controller, tmp_path: Path) -> None:
    ca = _issue("test CA", issuer=None, ca=True)
    server_cert, server_key = _issue("localhost", issuer=ca, san=[
        x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client_cert, client_key = _issue("ike-daemon", issuer=ca)
    rogue_ca = _issue("rogue CA", issuer=None, ca=True)
    rogue_cert, rogue_key = _issue("ike-daemon", issuer=rogue_ca)
    files = {"ca.pem": _pem(ca[0]), "server.pem": _pem(server_cert),
             "server.key": _key_pem(server_key)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "server.key").chmod(0o600)  # a world-readable --tls-key is refused
    controller = await start_controller(tls_cert=tmp_path / "server.pem",
                                        tls_key=tmp_path / "server.key",
                                        tls_client_ca=tmp_path / "ca.pem")
    target = f"localhost:{controller.port}"

    good = grpc.ssl_channel_credentials(_pem(ca[0]), _key_pem(client_key), _pem(client_cert))
    async with grpc.aio.secure_channel(target, good) as channel:
        await wait_serving(channel)
        response = await create(pb_grpc.ipTunnelServiceStub(channel), geneve_encap(1))
        assert response.requestStatus == pb._TUNNEL_ACCEPTED

    without_cert = grpc.ssl_channel_credentials(_pem(ca[0]))
    wrong_ca = grpc.ssl_channel_credentials(_pem(ca[0]), _key_pem(rogue_key), _pem(rogue_cert))
    for credentials in (without_cert, wrong_ca):
        async with grpc.aio.secure_channel(target, credentials) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await pb_grpc.ipTunnelServiceStub(channel).Capabilities(
                    pb.CapabilityRequest(), timeout=5)
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_tls_client_must_trust_the_server(controller) -> None:
    other_cert, _ = _issue("localhost", issuer=None, ca=True)
    credentials = grpc.ssl_channel_credentials(_pem(other_cert))
    async with grpc.aio.secure_channel(f"localhost:{controller.port}", credentials) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await pb_grpc.ipTunnelServiceStub(channel).Capabilities(pb.CapabilityRequest(),
                                                                    timeout=5)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_taken_port_fails_instead_of_being_shared(controller, tmp_path: Path) -> None:
    from controller.server import create_server
    from controller.settings import Settings

    with pytest.raises(RuntimeError, match="bind"):
        await create_server(Settings(listen=f"127.0.0.1:{controller.port}",
                                     state_dir=tmp_path / "second"))


async def test_insecure_is_plaintext_only_when_asked(start_controller) -> None:
    controller = await start_controller(insecure=True)
    assert controller.cert_path is None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{controller.port}") as channel:
        await wait_serving(channel)
        caps = await pb_grpc.ipTunnelServiceStub(channel).Capabilities(pb.CapabilityRequest())
        assert caps.geneveCapabilities.numberGeneveOptionsSupported == 4


async def test_health_reports_both_services(channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "tunneloffload.v1alpha1.ipTunnelService",
                    "tunneloffload.v2.IpTunnelService"):
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_reflection_lists_and_describes_both_services(channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [reflection_pb2.ServerReflectionRequest(list_services=""),
                reflection_pb2.ServerReflectionRequest(
                    file_containing_symbol="tunneloffload.v2.IpTunnelService")]
    responses = [response async for response in stub.ServerReflectionInfo(iter(requests))]
    names = {service.name for service in responses[0].list_services_response.service}
    assert {"tunneloffload.v1alpha1.ipTunnelService", "tunneloffload.v2.IpTunnelService",
            "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names
    assert responses[1].file_descriptor_response.file_descriptor_proto


def test_help_documents_every_option() -> None:
    from controller.settings import build_parser

    text = build_parser().format_help()
    for flag in ("--listen", "--state-dir", "--tls-cert", "--tls-key", "--tls-client-ca",
                 "--insecure", "--log-level", "--log-wire", "localhost:3443"):
        assert flag in text


async def test_entry_point_serves_and_stops_cleanly(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controller", "--listen", "127.0.0.1:0", "--state-dir",
        str(tmp_path / "state"), "--data-plane", "detached", cwd=REPO_ROOT,
        stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    log_lines: list[str] = []
    try:
        port = None
        while port is None:
            line = (await asyncio.wait_for(process.stderr.readline(), timeout=20)).decode()
            assert line, "".join(log_lines)
            log_lines.append(line)
            found = re.search(r"serving TLS on 127\.0\.0\.1:(\d+); clients trust (\S+)", line)
            if found:
                port, cert = int(found.group(1)), Path(found.group(2))
        credentials = grpc.ssl_channel_credentials(cert.read_bytes())
        async with grpc.aio.secure_channel(f"localhost:{port}", credentials) as channel:
            await wait_serving(channel)
        process.send_signal(signal.SIGTERM)
        rest = (await asyncio.wait_for(process.stderr.read(), timeout=20)).decode()
        assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = "".join(log_lines) + rest
    assert "data plane: detached" in text and "every counter reads 0" in text
    assert "shutting down" in text
