"""Adversarial checks: input limits, key material in logs and at rest, file and directory
permissions, and the trust check on the crypto worker's Unix socket.

Run just these tests: .venv/bin/python -m pytest tests/controller/test_controller_security.py -q
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from ctl_builders import geneve_encap, hex_key, ipsec_dec, match_ipv4
from ctl_client import create, tls_channel, wait_serving

from controller.capabilities import Capabilities
from controller.crypto_client import CryptoWorkerClient, WorkerSa, WorkerUnavailable
from controller.errors import ErrorCode, RequestError
from controller.keys import SaKey
from controller.model import Cipher, SecurityAssociation
from controller.servicer import MAX_REQUEST_BYTES, MAX_STREAM_BYTES, redacted
from controller.validation import validate_request
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc

# --- input limits ---------------------------------------------------------------------------


def _with_interface(tunnel_id: int, text: str) -> pb.ipTunnelRequest:
    request = geneve_encap(tunnel_id)
    request.match_criteria.ingressInterface = text
    return request


async def test_a_huge_ingress_interface_is_a_short_field_error_not_internal(v1) -> None:
    response = await create(v1, _with_interface(1, "1" * 5000), geneve_encap(2))
    first, second = response.responses
    assert first.error.errorMessage.matchError == pb.invalidField
    assert first.error.errorString.startswith("match_criteria.ingressInterface: ")
    assert "(5000 characters)" in first.error.errorString
    assert len(first.error.errorString) < 200  # the 5000 digits are not echoed back
    assert not second.HasField("error")  # the rest of the stream still applies


def test_ingress_interface_takes_ascii_digits_only() -> None:
    with pytest.raises(RequestError, match="ingressInterface") as raised:
        validate_request(_with_interface(1, "\u0663"), view={}, caps=Capabilities())  # Arabic 3
    assert raised.value.code is ErrorCode.INVALID_FIELD
    change = validate_request(_with_interface(1, "3"), view={}, caps=Capabilities())
    assert change.after is not None and change.after.match.ingress_port == 3


def _decrypt_with_sas(tunnel_id: int, count: int) -> pb.ipTunnelRequest:
    request = ipsec_dec(tunnel_id)
    del request.ipsecTunnel.ipsecDec.ipsecSAs[:]
    for index in range(count):
        request.ipsecTunnel.ipsecDec.ipsecSAs.add(spi=1000 + index, encryptionKey=hex_key(),
                                                  operation=pb._CREATE)
    return request


def test_more_sas_than_the_device_holds_are_refused_before_any_key_is_parsed() -> None:
    request = _decrypt_with_sas(1, 5)
    request.ipsecTunnel.ipsecDec.ipsecSAs[4].encryptionKey = b"short"  # never reached
    with pytest.raises(RequestError) as raised:
        validate_request(request, view={}, caps=Capabilities(max_sas=4))
    assert raised.value.code is ErrorCode.IPSEC_FIELD
    assert raised.value.field == "ipsecTunnel.ipsecDec.ipsecSAs"
    assert "5 SAs; this device holds at most 4" in str(raised.value)


async def test_a_message_over_the_size_limit_is_refused_by_grpc(v1) -> None:
    big = _with_interface(1, "x" * (MAX_REQUEST_BYTES + 1))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await create(v1, big)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_stream_over_the_byte_budget_is_refused_and_applies_nothing(
        v1, monkeypatch: pytest.MonkeyPatch) -> None:
    """The byte bound (256 MiB of spool in production, lowered here to keep the test short)."""
    assert MAX_STREAM_BYTES == 256 << 20
    monkeypatch.setattr("controller.servicer.MAX_STREAM_BYTES", 4 << 20)
    per_request = MAX_REQUEST_BYTES - 1024
    count = (4 << 20) // per_request + 1
    requests = [geneve_encap(1)] + [_with_interface(2 + index, "9" * per_request)
                                    for index in range(count)]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await create(v1, *requests)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"at most {4 << 20} bytes" in (raised.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await v1.getIpTunnel(pb.tunnelId(tunnelId=1))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_request_that_does_not_decode_refuses_the_stream_whole(channel) -> None:
    """createIpTunnel's requests reach the controller undecoded (they are spooled as received):
    one that is not an ipTunnelRequest refuses the whole stream before anything applies."""
    call = channel.stream_unary("/tunneloffload.v1alpha1.ipTunnelService/createIpTunnel",
                                request_serializer=None,
                                response_deserializer=pb.createIpTunnelResponses.FromString)
    valid = geneve_encap(1).SerializeToString()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call(iter([valid, b"\x0a\xff\xff"]), timeout=10)  # field 1, length past the end
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request 1 of the stream is not an ipTunnelRequest" in (raised.value.details() or "")
    v1 = pb_grpc.ipTunnelServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await v1.getIpTunnel(pb.tunnelId(tunnelId=1))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_streams_share_one_buffer_budget_and_an_idle_one_blocks_nobody(
        v1, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("controller.servicer.MAX_BUFFERED_BYTES", 3 << 20)
    big = MAX_REQUEST_BYTES - 1024
    release = asyncio.Event()

    async def held_open() -> AsyncIterator[pb.ipTunnelRequest]:
        for index in range(2):  # ~2 MiB buffered, then the client just waits
            yield _with_interface(10 + index, "7" * big)
        await release.wait()

    holder = asyncio.ensure_future(v1.createIpTunnel(held_open(), timeout=30))
    small = await create(v1, geneve_encap(1))  # small streams pass beside it
    assert small.requestStatus == pb._TUNNEL_ACCEPTED
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:  # poll until the held stream's bytes are in the budget
        try:
            await create(v1, _with_interface(20, "8" * big), _with_interface(21, "8" * big))
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "the server is already reading" in (error.details() or "")
            break
        assert loop.time() < deadline, "the second big stream was never refused"
    release.set()
    held = await holder
    assert held.requestStatus == pb._TUNNEL_REJECTED  # its requests were read and judged
    again = await create(v1, _with_interface(22, "8" * big), _with_interface(23, "8" * big))
    assert again.requestStatus == pb._TUNNEL_REJECTED  # the budget was given back


# --- keys in logs -----------------------------------------------------------------------------


def test_wire_redactor_covers_every_message_that_can_hold_a_key() -> None:
    key = b"K" * 64
    request = ipsec_dec(7, key=key)
    response = pb.ipTunnelResponse(tunnelId=7, ipTunnel=request)
    responses = pb.ipTunnelResponses(responses=[response])
    for message in (request, response, responses):
        text = redacted(message)
        assert "KKKK" not in text and "<redacted>" in text
    assert request.ipsecTunnel.ipsecDec.ipsecSAs[0].encryptionKey == key  # the copy is redacted


# --- files and directories at rest ------------------------------------------------------------


async def test_a_loosened_generated_tls_key_is_refused(start_controller, state_dir: Path) -> None:
    controller = await start_controller()
    await controller.stop(grace=None)
    key = state_dir / "tls" / "server.key"
    assert key.stat().st_mode & 0o777 == 0o600
    key.chmod(0o640)
    with pytest.raises(PermissionError, match="server.key is accessible by group"):
        await start_controller()


async def test_a_regenerated_tls_key_is_0600_even_over_a_loose_leftover(
        start_controller, state_dir: Path) -> None:
    (state_dir / "tls").mkdir(parents=True, mode=0o700)
    leftover = state_dir / "tls" / "server.key"
    leftover.write_bytes(b"old")
    leftover.chmod(0o644)
    controller = await start_controller()  # no certificate yet: both are generated
    assert leftover.stat().st_mode & 0o777 == 0o600
    async with tls_channel(controller) as channel:
        await wait_serving(channel)


async def test_a_world_readable_tls_key_option_is_refused(start_controller, tmp_path: Path,
                                                          state_dir: Path) -> None:
    from controller.tls import ensure_self_signed

    cert, key = ensure_self_signed(tmp_path / "pki")
    key.chmod(0o604)
    with pytest.raises(PermissionError, match="accessible by others"):
        await start_controller(tls_cert=cert, tls_key=key)
    key.chmod(0o640)  # group-readable (ssl-cert convention): served, with a warning
    controller = await start_controller(tls_cert=cert, tls_key=key)
    assert controller.cert_path == cert


async def test_a_state_dir_others_can_write_is_refused(start_controller, state_dir: Path) -> None:
    state_dir.mkdir()
    state_dir.chmod(0o777)
    with pytest.raises(PermissionError, match="writable by group or others"):
        await start_controller()


@pytest.mark.parametrize("name", ["tunnels.sqlite3", "tunnels.sqlite3-wal"])
async def test_a_database_file_others_can_read_is_refused(start_controller, state_dir: Path,
                                                          name: str) -> None:
    controller = await start_controller()
    await controller.stop(grace=None)
    database = state_dir / name
    database.touch()
    database.chmod(0o644)
    with pytest.raises(PermissionError, match=f"{name} is accessible"):
        await start_controller()


async def test_database_wal_and_shm_are_private_and_hold_no_key(v1, state_dir: Path) -> None:
    key = hex_key()
    response = await create(v1, ipsec_dec(1, key=key, match=match_ipv4(source="10.0.0.9")))
    assert response.requestStatus == pb._TUNNEL_ACCEPTED
    files = sorted(state_dir.glob("tunnels.sqlite3*"))
    assert {path.name for path in files} >= {"tunnels.sqlite3", "tunnels.sqlite3-wal"}
    for path in files:
        assert path.stat().st_mode & 0o077 == 0, path
        data = path.read_bytes()
        assert key not in data and bytes.fromhex(key.decode()) not in data, path


# --- the crypto worker's socket ---------------------------------------------------------------


def _listening_socket(path: Path) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    listener.setblocking(False)
    return listener


def _worker_sa() -> WorkerSa:
    secret = SaKey(key=bytes(range(1, 33)), salt=b"salt")
    return WorkerSa(sa_index=1, tunnel_id=1, encrypt=True, cipher=Cipher.AES256_GCM128,
                    tunnel_mode=False, nat_traversal=False,
                    sa=SecurityAssociation(spi=4096, secret=secret))


async def test_a_worker_socket_in_a_directory_anyone_can_write_is_refused(
        tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ValueError, match="writable by group or others"):
        CryptoWorkerClient(str(shared / "worker.sock"))
    shared.chmod(0o1777)  # sticky, like /tmp: others cannot replace our socket
    await CryptoWorkerClient(str(shared / "worker.sock")).close()


async def test_a_socket_directory_that_does_not_exist_yet_is_checked_at_the_first_key(
        tmp_path: Path) -> None:
    later = tmp_path / "later"
    client = CryptoWorkerClient(str(later / "worker.sock"))  # the worker may create it later
    try:
        later.mkdir()
        later.chmod(0o777)
        with pytest.raises(WorkerUnavailable, match="writable by group or others"):
            await client.add(_worker_sa())
    finally:
        await client.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a socket to another uid needs root")
async def test_no_key_is_sent_to_a_socket_another_user_owns(tmp_path: Path) -> None:
    path = tmp_path / "worker.sock"
    listener = _listening_socket(path)
    os.chown(path, 4242, 4242)  # an impostor's socket
    client = CryptoWorkerClient(str(path))
    try:
        with pytest.raises(WorkerUnavailable, match="belongs to uid 4242"):
            await client.add(_worker_sa())
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody ever connected
    finally:
        await client.close()
        listener.close()


async def test_no_key_is_sent_to_a_path_that_is_not_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "worker.sock"
    path.write_bytes(b"")
    client = CryptoWorkerClient(str(path))
    try:
        with pytest.raises(WorkerUnavailable, match="is not a socket"):
            await client.add(_worker_sa())
    finally:
        await client.close()


async def test_ordinary_streams_pass_the_limits(v1: pb_grpc.ipTunnelServiceStub) -> None:
    """The limits leave ordinary streams alone."""
    response = await create(v1, *(geneve_encap(index, match=match_ipv4(source=f"192.0.2.{index}"))
                                  for index in range(1, 50)))
    assert response.requestStatus == pb._TUNNEL_ACCEPTED


def test_reprs_of_everything_holding_a_key_show_only_its_length() -> None:
    change = validate_request(ipsec_dec(3, key=b"A" * 64), view={}, caps=Capabilities())
    worker_sa = _worker_sa()
    for text in (repr(change), str(change.after), repr(worker_sa), f"{worker_sa.sa.secret}"):
        assert "AAAA" not in text and "\\x01\\x02" not in text and "salt" not in text
    assert "<secret len=36>" in repr(change) and "<secret len=36>" in repr(worker_sa)


@pytest.mark.parametrize(("listen", "extra", "warned"), [
    ("localhost:3443", {}, False),
    ("127.0.0.1:0", {"insecure": True}, False),
    ("[::1]:3443", {}, False),
    ("0.0.0.0:3443", {}, True),
    ("[::]:3443", {"insecure": True}, True),
    ("controller.example:3443", {}, True),
    ("0.0.0.0:3443", {"tls_client_ca": Path("ca.pem")}, False),
])
def test_an_api_the_network_reaches_without_client_auth_is_warned(
        listen: str, extra: dict[str, object], warned: bool) -> None:
    from controller.server import exposure_warning
    from controller.settings import Settings

    warning = exposure_warning(Settings(listen=listen, **extra))  # type: ignore[arg-type]
    assert (warning is not None) == warned
    if warning is not None:
        assert warning.startswith(f"--listen {listen} is reachable from the network")
        assert ("PLAINTEXT" in warning) == bool(extra.get("insecure"))
