"""The crypto worker's AF_PACKET port on its TPACKET_V2 transmit ring, on a veth pair in a
private network namespace: every frame of a batch leaves once, in order, byte for byte, also
when a batch is larger than the ring and when slots are reused; a frame over the interface MTU
is logged and dropped without disturbing the order of the others; without the ring the same
holds with one `send` per frame, and small batches (plain sends) interleave with ring batches
in order.

Needs root (CI runs as root); skipped otherwise. Run just this file:
    .venv/bin/python -m pytest tests/crypto_worker/test_afpacket_tx_ring.py -q
"""

from __future__ import annotations

import itertools
import logging
import os
import select
import socket
import time

import pytest
from test_afpacket_ring import _frame, _ours, _port_in_namespace, veth  # noqa: F401 - fixture

from bench.crypto.netns import socket_in_namespace
from crypto_worker.ports import afpacket
from crypto_worker.ports.afpacket import TX_BLOCK_BYTES, TX_BLOCKS, TX_SLOT_BYTES, AfPacketPort

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
SO_RCVBUFFORCE = 33  # asm-generic/socket.h: root may exceed rmem_max
SLOTS = TX_BLOCK_BYTES * TX_BLOCKS // TX_SLOT_BYTES


def _peer(namespace: str) -> socket.socket:
    """The switch's end, with a receive buffer large enough that the veth drops nothing."""
    peer = socket_in_namespace(namespace, "cwr-a", ignore_outgoing=True)
    peer.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
    peer.setblocking(False)
    return peer


def _receive(peer: socket.socket, count: int, seconds: float = 10) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + seconds
    while len(got) < count and time.monotonic() < deadline:
        select.select([peer], [], [], 0.1)
        try:
            while True:
                got += _ours([peer.recv(65535)])
        except BlockingIOError:
            continue
    return got


def _check_batches(port: AfPacketPort, peer: socket.socket) -> None:
    # One batch longer than the ring (the port waits for slots), then batches of mixed sizes
    # (ring and plain sends interleaved) that wrap around the ring several times; sizes from
    # the minimum to the MTU's limit (9,000 + 14).
    first = [_frame(i, 60 + (i * 53) % 1500) for i in range(SLOTS + 100)]
    port.send_batch(first)
    assert _receive(peer, len(first)) == first
    rest = [_frame(10_000 + i, 60 + (i * 911) % 8955) for i in range(SLOTS * 3)]
    rest.append(_frame(20_000, 9014))
    start = 0
    for size in itertools.cycle((64, 1, 7, 8, 33)):  # below and above TX_RING_MIN_BATCH
        port.send_batch(rest[start:start + size])
        start += size
        if start >= len(rest):
            break
    assert _receive(peer, len(rest)) == rest
    assert _ours(port.recv_batch(64)) == []  # the port's own transmissions are not input


def test_the_tx_ring_sends_every_frame_in_order(veth: str) -> None:  # noqa: F811
    port = _port_in_namespace(veth, "cwr-b")
    peer = _peer(veth)
    try:
        assert port._tx_ring is not None, "the TPACKET_V2 transmit ring was not set up"
        _check_batches(port, peer)
    finally:
        port.close()
        peer.close()


def test_an_oversized_frame_is_dropped_and_the_rest_keep_their_order(
    veth: str, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    port = _port_in_namespace(veth, "cwr-b")
    peer = _peer(veth)
    try:
        assert port._tx_ring is not None
        before = [_frame(i, 1400) for i in range(30)]
        after = [_frame(100 + i, 200) for i in range(30)]
        with caplog.at_level(logging.WARNING, logger=afpacket.__name__):
            port.send_batch([*before, _frame(99, 9100), *after])
        assert _receive(peer, 60) == before + after
        assert "9100-byte frame exceeds the interface MTU; dropped" in caplog.text
    finally:
        port.close()
        peer.close()


def test_without_the_tx_ring_frames_go_one_send_each(
    veth: str, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    def refuse(self: AfPacketPort) -> None:
        raise OSError(95, "refused for the test")

    monkeypatch.setattr(AfPacketPort, "_map_tx_ring", refuse)
    port = _port_in_namespace(veth, "cwr-b")
    peer = _peer(veth)
    try:
        assert port._tx_ring is None
        _check_batches(port, peer)
    finally:
        port.close()
        peer.close()
