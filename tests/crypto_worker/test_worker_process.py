"""The worker as shipped: its entry point in a subprocess, the SA service on a Unix socket, and
the crypto port over nanomsg, with a small pynng peer in the test playing the switch.

The peer listens (as the switch does), the worker dials and announces its port; frames go out as
PACKET_OUT for port 64 and must come back as PACKET_IN for port 64, transformed. Also checks that
the service never returns key bytes, that bad requests name the field and change nothing, that
drops are counted by reason, and make-before-break across a rekey.

Run just this file: .venv/bin/python -m pytest tests/crypto_worker/test_worker_process.py -q
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pynng
import pytest
from cw_support import Keying, ip_of, p4_decrypt_message, p4_encrypt_message, scapy_sa
from grpc_health.v1 import health_pb2, health_pb2_grpc
from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import ESP
from scapy.packet import Raw

from crypto_worker.ciphers import SUITE_BY_ENC_TYPE_NAME
from crypto_worker.shim import SHIM_BYTES
from tunneloffload.crypto.v1 import worker_pb2 as pb
from tunneloffload.crypto.v1 import worker_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[2]
CRYPTO_PORT = 64
HEADER = struct.Struct("<iii")
GCM = SUITE_BY_ENC_TYPE_NAME["_aes256gcm128"]
CCM = SUITE_BY_ENC_TYPE_NAME["_aes128ccm96"]
OUTER = IP(src="203.0.113.1", dst="203.0.113.2")


class Switch:
    """The switch side of the crypto port: a listening PAIR socket speaking packet-in format."""

    def __init__(self, url: str) -> None:
        self.socket = pynng.Pair0(recv_timeout=5000, send_timeout=5000)
        self.socket.listen(url)
        self.announced_ports: list[int] = []

    def send(self, message: bytes) -> None:
        self.socket.send(HEADER.pack(4, CRYPTO_PORT, len(message)) + message)  # PACKET_OUT

    def receive(self) -> bytes:
        """The next frame the worker returns; records PORT_ADD messages on the way."""
        while True:
            raw = self.socket.recv()
            kind, port, more = HEADER.unpack_from(raw)
            if kind == 0:
                self.announced_ports.append(port)
                continue
            assert (kind, port) == (3, CRYPTO_PORT)  # PACKET_IN on the crypto port
            assert len(raw) - HEADER.size == more
            return raw[HEADER.size :]


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[tuple[Switch, pb_grpc.CryptoWorkerStub]]:
    url = f"ipc://{tmp_path}/crypto-port.ipc"
    sa_socket = str(tmp_path / "sa.sock")
    switch = Switch(url)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [sys.executable, "-m", "crypto_worker", "--sa-socket", sa_socket, "--nanomsg", url,
         "--log-level", "WARNING"],
        cwd=REPO, env=env,
    )
    channel = grpc.insecure_channel(f"unix:{sa_socket}")
    try:
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 20
        while True:  # poll readiness, never sleep a fixed time
            assert process.poll() is None, "worker exited"
            try:
                status = health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert os.stat(sa_socket).st_mode & 0o077 == 0  # owner-only socket
        yield switch, pb_grpc.CryptoWorkerStub(channel)
    finally:
        channel.close()
        process.terminate()
        process.wait(timeout=10)
        switch.socket.close()


def _params(sa_index: int, spi: int, direction: int, cipher: str, **extra: object) -> pb.SaParams:
    return pb.SaParams(sa_index=sa_index, spi=spi, direction=direction,
                       cipher=pb.Cipher.Value(cipher), mode=pb.MODE_TUNNEL, **extra)


def _inner(n: int) -> IP:
    return IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=n, dport=53) / Raw(b"x" * n)


def test_encrypt_and_decrypt_round_trip_through_the_port(
    worker: tuple[Switch, pb_grpc.CryptoWorkerStub],
) -> None:
    switch, stub = worker
    out_keys, in_keys = Keying.random(GCM), Keying.random(CCM)
    stub.AddSa(pb.AddSaRequest(params=_params(10, 0x100A, pb.DIRECTION_ENCRYPT, GCM.proto_name),
                               key=pb.SaKey(key=out_keys.key, salt=out_keys.salt)))
    stub.AddSa(pb.AddSaRequest(params=_params(11, 0x100B, pb.DIRECTION_DECRYPT, CCM.proto_name,
                                              replay_window=1024),
                               key=pb.SaKey(key=in_keys.key, salt=in_keys.salt)))
    message, _ = p4_encrypt_message(_inner(40), sa_index=10, spi=0x100A, tunnel_header=OUTER,
                                    nat_t=False)
    switch.send(message)
    encrypted = switch.receive()
    assert set(switch.announced_ports) == {CRYPTO_PORT}  # PORT_ADD (a repeat is harmless)
    assert encrypted[:SHIM_BYTES] == message[:SHIM_BYTES]
    peer = scapy_sa(GCM, out_keys, spi=0x100A, tunnel_header=OUTER, nat_t=False)
    assert bytes(peer.decrypt(ip_of(encrypted[SHIM_BYTES:]))) == bytes(_inner(40))

    sender = scapy_sa(CCM, in_keys, spi=0x100B, tunnel_header=OUTER, nat_t=False)
    inbound, esp_offset = p4_decrypt_message(sender.encrypt(_inner(41), seq_num=1), sa_index=11,
                                             tunnel=True, nat_t=False)
    switch.send(inbound)
    reply = switch.receive()
    assert reply[9] == 4  # next_header from the trailer
    assert reply[SHIM_BYTES + esp_offset + 8 :] == bytes(_inner(41))

    # Drops: replay, tampered ICV, unknown SA; none of them comes back.
    switch.send(inbound)
    tampered = bytearray(p4_decrypt_message(sender.encrypt(_inner(42), seq_num=2), sa_index=11,
                                            tunnel=True, nat_t=False)[0])
    tampered[-2] ^= 0x10
    switch.send(bytes(tampered))
    unknown = bytearray(message)
    unknown[4:6] = (99).to_bytes(2, "big")
    switch.send(bytes(unknown))
    switch.send(b"\x07" * 20)  # bad shim version
    # Frames are handled in order, so the next reply must be this sentinel's: none of the four
    # dropped frames came back, and all four are counted by the time it arrives.
    switch.send(message)
    sentinel = switch.receive()
    assert ip_of(sentinel[SHIM_BYTES:])[ESP].seq == 2
    counters = stub.GetCounters(pb.GetCountersRequest())
    by_index = {c.sa_index: c for c in counters.sas}
    assert by_index[10].packets == 2
    assert by_index[10].bytes == 2 * (len(encrypted) - SHIM_BYTES)
    assert by_index[11].packets == 1
    assert {pb.DropReason.Name(d.reason): d.packets for d in by_index[11].drops} == {
        "DROP_REASON_ICV_FAILURE": 1, "DROP_REASON_REPLAY": 1}
    assert [(u.sa_index, u.packets) for u in counters.unknown_sa] == [(99, 1)]
    assert [(pb.DropReason.Name(d.reason), d.packets) for d in counters.unattributed] == [
        ("DROP_REASON_MALFORMED", 1)]
    # dropped_only: the SA with drops alone (10 dropped nothing), the rest of the answer the same.
    dropped = stub.GetCounters(pb.GetCountersRequest(dropped_only=True))
    assert [c.sa_index for c in dropped.sas] == [11]
    assert dropped.sas[0] == by_index[11]
    assert list(dropped.unknown_sa) == list(counters.unknown_sa)
    assert list(dropped.unattributed) == list(counters.unattributed)


def test_service_never_returns_keys_and_rejects_bad_requests_without_change(
    worker: tuple[Switch, pb_grpc.CryptoWorkerStub],
) -> None:
    _, stub = worker
    keys = Keying.random(GCM)
    good = pb.AddSaRequest(params=_params(3, 0x3003, pb.DIRECTION_DECRYPT, GCM.proto_name),
                           key=pb.SaKey(key=keys.key, salt=keys.salt))
    stub.AddSa(good)
    before = stub.ListSas(pb.ListSasRequest())
    assert keys.key not in before.SerializeToString()
    assert keys.salt not in before.SerializeToString()
    (info,) = before.sas
    assert (info.key_length, info.salt_length, info.params.replay_window) == (32, 4, 64)

    bad_cases = {
        "params.sa_index: 0": pb.AddSaRequest(
            params=_params(0, 0x3004, pb.DIRECTION_DECRYPT, GCM.proto_name), key=good.key),
        "params.spi: 7": pb.AddSaRequest(
            params=_params(4, 7, pb.DIRECTION_DECRYPT, GCM.proto_name), key=good.key),
        "key.key: 16 bytes": pb.AddSaRequest(
            params=_params(4, 0x3004, pb.DIRECTION_DECRYPT, GCM.proto_name),
            key=pb.SaKey(key=keys.key[:16], salt=keys.salt)),
        "key.salt: 3 bytes": pb.AddSaRequest(
            params=_params(4, 0x3004, pb.DIRECTION_DECRYPT, GCM.proto_name),
            key=pb.SaKey(key=keys.key, salt=keys.salt[:3])),
        "params.cipher: unspecified": pb.AddSaRequest(
            params=pb.SaParams(sa_index=4, spi=0x3004, direction=pb.DIRECTION_DECRYPT,
                               mode=pb.MODE_TUNNEL), key=good.key),
        "params.cipher: 99, not a Cipher value": pb.AddSaRequest(
            params=pb.SaParams(sa_index=4, spi=0x3004, direction=pb.DIRECTION_DECRYPT,
                               cipher=99, mode=pb.MODE_TUNNEL), key=good.key),
        "params.direction: 7, not a Direction value": pb.AddSaRequest(
            params=pb.SaParams(sa_index=4, spi=0x3004, direction=7,
                               cipher=pb.Cipher.Value(GCM.proto_name), mode=pb.MODE_TUNNEL),
            key=good.key),
        "params.replay_window: 5000": pb.AddSaRequest(
            params=_params(4, 0x3004, pb.DIRECTION_DECRYPT, GCM.proto_name, replay_window=5000),
            key=good.key),
    }
    for wanted, request in bad_cases.items():
        with pytest.raises(grpc.RpcError) as raised:
            stub.AddSa(request)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert raised.value.details().startswith(wanted), raised.value.details()
        assert keys.key.hex() not in raised.value.details()
    with pytest.raises(grpc.RpcError) as raised:
        stub.AddSa(good)
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert raised.value.details() == "sa_index: 3 is already in use"
    with pytest.raises(grpc.RpcError) as raised:
        stub.RemoveSa(pb.RemoveSaRequest(sa_index=9))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as raised:
        stub.ReplaceSa(pb.ReplaceSaRequest(params=_params(9, 0x3009, pb.DIRECTION_DECRYPT,
                                                          GCM.proto_name), key=good.key))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert stub.ListSas(pb.ListSasRequest()) == before
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetCounters(pb.GetCountersRequest(sa_indexes=[3, 8]))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == "sa_indexes[1]: 8 is not in use"
    stub.RemoveSa(pb.RemoveSaRequest(sa_index=3))
    assert list(stub.ListSas(pb.ListSasRequest()).sas) == []


def test_make_before_break_rekey_loses_nothing_in_flight(
    worker: tuple[Switch, pb_grpc.CryptoWorkerStub],
) -> None:
    """Inbound rekey: the new SA is added beside the old one; packets of both keep passing
    until the old one is removed, after which only its packets are dropped (as unknown SA)."""
    switch, stub = worker
    old_keys, new_keys = Keying.random(GCM), Keying.random(GCM)
    stub.AddSa(pb.AddSaRequest(params=_params(20, 0x2000, pb.DIRECTION_DECRYPT, GCM.proto_name),
                               key=pb.SaKey(key=old_keys.key, salt=old_keys.salt)))
    old_sender = scapy_sa(GCM, old_keys, spi=0x2000, tunnel_header=OUTER, nat_t=False)
    new_sender = scapy_sa(GCM, new_keys, spi=0x2001, tunnel_header=OUTER, nat_t=False)

    def inbound(sender: object, sa_index: int, seq: int) -> bytes:
        esp = sender.encrypt(_inner(seq), seq_num=seq)  # type: ignore[attr-defined]
        return p4_decrypt_message(esp, sa_index=sa_index, tunnel=True, nat_t=False)[0]

    in_flight_old = [inbound(old_sender, 20, seq) for seq in range(1, 4)]
    stub.AddSa(pb.AddSaRequest(params=_params(21, 0x2001, pb.DIRECTION_DECRYPT, GCM.proto_name),
                               key=pb.SaKey(key=new_keys.key, salt=new_keys.salt)))
    interleaved = [in_flight_old[0], inbound(new_sender, 21, 1), in_flight_old[1],
                   inbound(new_sender, 21, 2), in_flight_old[2]]
    for message in interleaved:
        switch.send(message)
    replies = [switch.receive() for _ in interleaved]
    assert [r[SHIM_BYTES + 14 + 20 + 8 :] for r in replies] == [
        bytes(_inner(n)) for n in (1, 1, 2, 2, 3)]
    final = stub.RemoveSa(pb.RemoveSaRequest(sa_index=20)).final_counters
    assert (final.sa_index, final.packets) == (20, 3)
    switch.send(inbound(old_sender, 20, 4))
    switch.send(inbound(new_sender, 21, 3))
    assert switch.receive()[SHIM_BYTES + 42 :] == bytes(_inner(3))
    counters = stub.GetCounters(pb.GetCountersRequest(sa_indexes=[21]))
    assert counters.sas[0].packets == 3
    assert [(u.sa_index, u.packets) for u in counters.unknown_sa] == [(20, 1)]

    # Outbound rekey by replace: a fresh SA (sequence from 1 again) under the same index.
    stub.AddSa(pb.AddSaRequest(params=_params(22, 0x2200, pb.DIRECTION_ENCRYPT, GCM.proto_name),
                               key=pb.SaKey(key=old_keys.key, salt=old_keys.salt)))
    stub.ReplaceSa(pb.ReplaceSaRequest(
        params=_params(22, 0x2201, pb.DIRECTION_ENCRYPT, GCM.proto_name),
        key=pb.SaKey(key=new_keys.key, salt=new_keys.salt)))
    (info,) = [s for s in stub.ListSas(pb.ListSasRequest()).sas if s.params.sa_index == 22]
    assert (info.params.spi, info.next_sequence) == (0x2201, 1)


def test_oversized_frames_are_counted_and_traffic_goes_on(
    worker: tuple[Switch, pb_grpc.CryptoWorkerStub],
) -> None:
    """Issue 11 defect 2: a legal 65,500-byte IPv4 frame for an encrypt SA killed the packet
    thread (OverflowError); now it and a 9,000-byte one (over the default 9,000 MTU once sealed)
    are dropped as OVERSIZE, and encrypt and decrypt traffic keeps passing."""
    switch, stub = worker
    out_keys, in_keys = Keying.random(GCM), Keying.random(GCM)
    stub.AddSa(pb.AddSaRequest(params=_params(30, 0x3030, pb.DIRECTION_ENCRYPT, GCM.proto_name),
                               key=pb.SaKey(key=out_keys.key, salt=out_keys.salt)))
    stub.AddSa(pb.AddSaRequest(params=_params(31, 0x3031, pb.DIRECTION_DECRYPT, GCM.proto_name),
                               key=pb.SaKey(key=in_keys.key, salt=in_keys.salt)))
    sender = scapy_sa(GCM, in_keys, spi=0x3031, tunnel_header=OUTER, nat_t=False)
    for size in (65500 - 14 - 28, 9000 - 28):  # a 65,500-byte frame, a 9,000-byte packet
        message, _ = p4_encrypt_message(_inner(size), sa_index=30, spi=0x3030,
                                        tunnel_header=OUTER, nat_t=False)
        switch.send(message)
    for seq in range(1, 4):
        good, _ = p4_encrypt_message(_inner(40 + seq), sa_index=30, spi=0x3030,
                                     tunnel_header=OUTER, nat_t=False)
        switch.send(good)
        assert ip_of(switch.receive()[SHIM_BYTES:])[ESP].seq == seq  # 1: none spent on drops
        inbound, offset = p4_decrypt_message(sender.encrypt(_inner(seq), seq_num=seq),
                                             sa_index=31, tunnel=True, nat_t=False)
        switch.send(inbound)
        assert switch.receive()[SHIM_BYTES + offset + 8 :] == bytes(_inner(seq))
    by_index = {c.sa_index: c for c in stub.GetCounters(pb.GetCountersRequest()).sas}
    assert {pb.DropReason.Name(d.reason): d.packets for d in by_index[30].drops} == {
        "DROP_REASON_OVERSIZE": 2}
    assert (by_index[30].packets, by_index[31].packets) == (3, 3)


def test_a_dead_packet_loop_makes_health_not_serving(tmp_path: Path) -> None:
    """If the packet thread ends on an error (here: its port fails underneath it), the worker
    says so: health NOT_SERVING for the service and for "", and an ERROR log line."""
    from crypto_worker.server import Worker, WorkerSettings

    sa_socket = str(tmp_path / "sa.sock")
    switch = Switch(f"ipc://{tmp_path}/crypto-port.ipc")
    worker = Worker(WorkerSettings(sa_socket=sa_socket,
                                   nanomsg_url=f"ipc://{tmp_path}/crypto-port.ipc"))
    worker.start()
    channel = grpc.insecure_channel(f"unix:{sa_socket}")
    health = health_pb2_grpc.HealthStub(channel)
    serving = health_pb2.HealthCheckResponse.SERVING
    try:
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == serving
        worker._port.close()  # the port fails: recv raises in the packet thread
        worker._thread.join(timeout=10)
        assert not worker._thread.is_alive()
        for service in ("", "tunneloffload.crypto.v1.CryptoWorker"):
            status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        channel.close()
        worker.stop()
        switch.socket.close()
