"""Packet I/O over nanomsg, driven by PTF's own client class.

Run: .venv/bin/python -m pytest tests/p4sim/test_ports_socket.py -q
"""

from __future__ import annotations

import os
import stat
import struct
import threading
import time

import pynng
import pytest
from ptf.dataplane import DataPlanePacketSourceNN

from p4sim.ports import NnPacketSocket, PacketPump
from p4sim.ports.nn_protocol import MsgType, decode, encode_frame, encode_port_message

TIMEOUT_MS = 2000


class ForwardToNextPort:
    """A stand-in switch for these unit tests: frame from port p leaves on port p + 1."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, bytes]] = []
        self.lock = threading.Lock()

    def process(self, ingress_port: int, frame: bytes) -> list[tuple[int, bytes]]:
        with self.lock:
            self.seen.append((ingress_port, frame))
        if frame == b"drop":
            return []
        if frame == b"boom":
            raise RuntimeError("processor failure")
        return [(ingress_port + 1, frame)]


def wait_for(predicate, timeout=2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def ptf_recv(client: DataPlanePacketSourceNN):
    """PTF's recv returns None for info replies and unknown ports; skip those."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        got = client.recv()
        if got is not None:
            return got
    raise AssertionError("no frame from the switch")


@pytest.fixture
def address(tmp_path):
    return f"ipc://{tmp_path}/device.ipc"


@pytest.fixture
def running(address):
    processor = ForwardToNextPort()
    device = NnPacketSocket(address)
    dataplane = PacketPump(processor, device_socket=device)
    dataplane.start()
    yield processor, device, dataplane
    dataplane.stop()


def test_ptf_client_sends_a_frame_and_receives_the_switch_output(running, address):
    processor, device, dataplane = running
    client = DataPlanePacketSourceNN(0, address, TIMEOUT_MS, TIMEOUT_MS)
    try:
        client.port_add(1)
        client.port_add(2)
        client.send(1, b"\xaa" * 60)
        device_number, port, frame, _ = ptf_recv(client)
        assert (device_number, port, frame) == (0, 2, b"\xaa" * 60)
        assert processor.seen == [(1, b"\xaa" * 60)]
        assert set(device.ports()) == {1, 2}
        assert wait_for(lambda: dataplane.stats().frames_out == 1)
        assert dataplane.stats().frames_in == 1
    finally:
        client.close()


def test_info_request_is_answered_not_supported(running, address):
    client = DataPlanePacketSourceNN(0, address, TIMEOUT_MS, TIMEOUT_MS)
    try:
        client.port_add(5)
        result: dict[str, object] = {}
        reader = threading.Thread(target=lambda: result.setdefault("rx", client.recv()))
        reader.start()
        started = time.monotonic()
        # PTF's get_mac waits on its receive thread's cache; emulate that thread with one recv.
        client._DataPlanePacketSourceNN__request_mac(5)  # noqa: SLF001 (PTF's own request)
        reader.join(timeout=3)
        assert result["rx"] is None  # an info reply, not a frame
        assert client.mac_addresses == {5: None}  # status NOT_SUPPORTED -> None
        assert time.monotonic() - started < 2
    finally:
        client.close()


def test_port_remove_and_status_follow_bmv2(running, address):
    _, device, _ = running
    with pynng.Pair0(dial=address, recv_timeout=TIMEOUT_MS) as raw:
        raw.send(encode_port_message(MsgType.PORT_ADD, 3))
        raw.send(encode_port_message(MsgType.PORT_ADD, 4))
        raw.send(encode_port_message(MsgType.PORT_SET_STATUS, 3, 0))  # BMv2: 0 is DOWN
        raw.send(encode_port_message(MsgType.PORT_REMOVE, 4))
        assert wait_for(lambda: set(device.ports()) == {3} and not device.ports()[3].is_up)


def test_bad_messages_are_refused_and_the_socket_keeps_working(running, address):
    processor, device, _ = running
    with pynng.Pair0(dial=address, recv_timeout=TIMEOUT_MS) as raw:
        raw.send(struct.pack("<iii", 3, 1, 10) + b"short")
        raw.send(encode_frame(MsgType.PACKET_OUT, 1, b"x"))  # only the switch sends these
        raw.send(encode_frame(MsgType.PACKET_IN, 1, b"ok"))
        reply = decode(raw.recv())
        assert (reply.kind, reply.port, reply.payload) == (MsgType.PACKET_OUT, 2, b"ok")
    assert device.rejected_messages == 2
    assert processor.seen == [(1, b"ok")]


def test_enforced_ports_take_frames_only_when_added_and_up(tmp_path):
    address = f"ipc://{tmp_path}/enforced.ipc"
    processor = ForwardToNextPort()
    dataplane = PacketPump(processor, device_socket=NnPacketSocket(address, enforce_ports=True))
    dataplane.start()
    try:
        with pynng.Pair0(dial=address, recv_timeout=TIMEOUT_MS) as raw:
            raw.send(encode_frame(MsgType.PACKET_IN, 1, b"not-added"))
            raw.send(encode_port_message(MsgType.PORT_ADD, 1))
            raw.send(encode_frame(MsgType.PACKET_IN, 1, b"added"))
            assert decode(raw.recv()).payload == b"added"
        assert processor.seen == [(1, b"added")]
    finally:
        dataplane.stop()


def test_a_port_bound_to_its_own_socket(tmp_path):
    device_address = f"ipc://{tmp_path}/device.ipc"
    crypto_address = f"ipc://{tmp_path}/crypto.ipc"
    processor = ForwardToNextPort()
    crypto = NnPacketSocket(crypto_address, port=9)
    dataplane = PacketPump(
        processor, device_socket=NnPacketSocket(device_address), port_transports={9: crypto}
    )
    dataplane.start()
    try:
        with (
            pynng.Pair0(dial=device_address, recv_timeout=TIMEOUT_MS) as ptf,
            pynng.Pair0(dial=crypto_address, recv_timeout=TIMEOUT_MS) as worker,
        ):
            ptf.send(encode_frame(MsgType.PACKET_IN, 8, b"to-crypto"))
            got = decode(worker.recv())
            assert (got.kind, got.port, got.payload) == (MsgType.PACKET_OUT, 9, b"to-crypto")
            worker.send(encode_frame(MsgType.PACKET_IN, 3, b"wrong-port"))
            worker.send(encode_frame(MsgType.PACKET_IN, 9, b"from-crypto"))
            got = decode(ptf.recv())
            assert (got.port, got.payload) == (10, b"from-crypto")
        assert crypto.rejected_messages == 1
    finally:
        dataplane.stop()


def test_unroutable_and_failing_frames_are_counted(tmp_path):
    address = f"ipc://{tmp_path}/only9.ipc"
    processor = ForwardToNextPort()
    dataplane = PacketPump(processor, port_transports={9: NnPacketSocket(address, port=9)})
    dataplane.start()
    try:
        with pynng.Pair0(dial=address, recv_timeout=TIMEOUT_MS) as raw:
            raw.send(encode_frame(MsgType.PACKET_IN, 9, b"to-10"))
            raw.send(encode_frame(MsgType.PACKET_IN, 9, b"boom"))
            raw.send(encode_frame(MsgType.PACKET_IN, 9, b"drop"))
        assert wait_for(lambda: dataplane.stats().frames_in == 3)
        stats = dataplane.stats()
        assert (stats.frames_unroutable, stats.processing_errors, stats.frames_out) == (1, 1, 0)
    finally:
        dataplane.stop()


def test_a_burst_is_processed_in_order(running, address):
    processor, _, _ = running
    frames = [i.to_bytes(2, "big") * 30 for i in range(300)]
    with pynng.Pair0(dial=address, recv_timeout=TIMEOUT_MS) as raw:
        for frame in frames:
            raw.send(encode_frame(MsgType.PACKET_IN, 1, frame))
        received = [decode(raw.recv()).payload for _ in frames]
    assert received == frames
    assert [frame for _, frame in processor.seen] == frames


def test_listening_twice_on_one_address_is_a_clear_error(running, address):
    with pytest.raises(OSError, match="cannot listen on packet socket"):
        NnPacketSocket(address)


@pytest.mark.parametrize("umask", [0o002, 0o000, 0o022])
def test_ipc_socket_files_are_0600_whatever_the_umask(tmp_path, umask):
    """The crypto port's socket carries clear packets: only the switch's user may connect."""
    path = tmp_path / "crypto.ipc"
    old = os.umask(umask)
    try:
        sock = NnPacketSocket(f"ipc://{path}", port=64)
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with pynng.Pair0(dial=f"ipc://{path}", recv_timeout=TIMEOUT_MS) as peer:
            peer.send(encode_frame(MsgType.PORT_ADD, 64, b""))  # still usable by its owner
    finally:
        sock.close()
