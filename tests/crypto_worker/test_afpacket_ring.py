"""The crypto worker's AF_PACKET port on its TPACKET_V3 receive ring, on a veth pair in a
private network namespace: every frame arrives once, in order, byte for byte, also when a batch
stops in the middle of a ring block; frames the port sends are not read back as input.

Needs root (CI runs as root); skipped otherwise. Run just this file:
    .venv/bin/python -m pytest tests/crypto_worker/test_afpacket_ring.py -q
"""

from __future__ import annotations

import os
import select
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from bench.crypto.netns import in_namespace, socket_in_namespace
from crypto_worker.ports.afpacket import AfPacketPort

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
ETHERTYPE = b"\x88\xb5"  # local experimental: nothing else on the veth uses it


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=30)


def _port_in_namespace(namespace: str, interface: str) -> AfPacketPort:
    return in_namespace(namespace, lambda: AfPacketPort(interface, poll_ms=50))


@pytest.fixture
def veth() -> Iterator[str]:
    namespace = f"cwr-{uuid.uuid4().hex[:8]}"
    try:
        _run("ip", "netns", "add", namespace)
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        pytest.skip(f"cannot create a network namespace here: {error}")
    try:
        _run("ip", "-n", namespace, "link", "add", "cwr-a", "type", "veth", "peer", "name", "cwr-b")
        for name in ("cwr-a", "cwr-b"):
            knob = f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6"
            _run("ip", "netns", "exec", namespace, "sh", "-c",
                 f"if [ -e {knob} ]; then echo 1 > {knob}; fi")
            _run("ip", "-n", namespace, "link", "set", name, "mtu", "9000", "up")
        yield namespace
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False, timeout=30)


def _frame(number: int, size: int) -> bytes:
    head = b"\x02" * 6 + b"\x04" * 6 + ETHERTYPE + number.to_bytes(4, "big")
    return head + bytes((number + i) & 0xFF for i in range(size - len(head)))


def _ours(frames: list[bytes]) -> list[bytes]:
    return [f for f in frames if f[12:14] == ETHERTYPE]


def test_the_ring_delivers_every_frame_in_order_across_partial_batches(veth: str) -> None:
    port = _port_in_namespace(veth, "cwr-b")
    peer = socket_in_namespace(veth, "cwr-a", ignore_outgoing=True)
    try:
        assert port._ring is not None, "the TPACKET_V3 ring was not set up"
        sent = [_frame(i, 60 + (i * 37) % 8900) for i in range(400)]
        for frame in sent:
            peer.send(frame)
        got: list[bytes] = []
        deadline = time.monotonic() + 10
        while len(got) < len(sent) and time.monotonic() < deadline:
            batch = port.recv_batch(7)  # far fewer than a block holds: blocks are read in parts
            assert len(batch) <= 7
            got += _ours(batch)
        assert got == sent
        assert _ours(port.recv_batch(64)) == []  # nothing twice

        replies = [_frame(1000 + i, 1400) for i in range(50)]
        port.send_batch(replies)
        echoed: list[bytes] = []
        peer.setblocking(False)
        deadline = time.monotonic() + 5
        while len(echoed) < len(replies) and time.monotonic() < deadline:
            select.select([peer], [], [], 0.1)
            try:
                echoed += _ours([peer.recv(65535)])
            except BlockingIOError:
                continue
        assert echoed == replies
        assert _ours(port.recv_batch(64)) == []  # our own transmissions are not input
    finally:
        port.close()
        peer.close()


def test_the_ring_is_reused_after_wrapping_around(veth: str) -> None:
    """More data than the ring holds, sent in rounds: blocks given back are filled again."""
    port = _port_in_namespace(veth, "cwr-b")
    peer = socket_in_namespace(veth, "cwr-a", ignore_outgoing=True)
    try:
        total = 0
        for round_number in range(6):
            sent = [_frame(round_number * 10000 + i, 8000) for i in range(500)]  # 4 MB a round
            got: list[bytes] = []
            for start in range(0, len(sent), 100):
                for frame in sent[start:start + 100]:
                    peer.send(frame)
                deadline = time.monotonic() + 10
                while len(got) < start + 100 and time.monotonic() < deadline:
                    got += _ours(port.recv_batch(64))
            assert got == sent, f"round {round_number}"
            total += len(got)
        assert total == 3000
    finally:
        port.close()
        peer.close()
