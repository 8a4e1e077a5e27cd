"""The nanomsg port on its own, against a pynng peer playing the switch: message format,
batching, filtering, and PORT_ADD again after the switch restarts.

Run just this file: .venv/bin/python -m pytest tests/crypto_worker/test_nanomsg_port.py -q
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pynng

from crypto_worker.ports.nanomsg import NanomsgPort

HEADER = struct.Struct("<iii")


def _switch(url: str) -> pynng.Pair0:
    switch = pynng.Pair0(recv_timeout=5000, send_timeout=5000)
    switch.listen(url)
    return switch


def _recv_skipping_port_add(switch: pynng.Pair0) -> bytes:
    """The next message that is not a PORT_ADD (a repeated PORT_ADD is allowed)."""
    while True:
        message = switch.recv()
        if HEADER.unpack_from(message) != (0, 64, 0):
            return message


def _frames_until(port: NanomsgPort, count: int) -> list[list[bytes]]:
    batches: list[list[bytes]] = []
    deadline = time.monotonic() + 10
    while sum(len(b) for b in batches) < count and time.monotonic() < deadline:
        batch = port.recv_batch(64)
        if batch:
            batches.append(batch)
    return batches


def _announced(port: NanomsgPort, switch: pynng.Pair0) -> None:
    """Polls the port until the switch has its PORT_ADD (the dial completes in the background)."""
    switch.recv_timeout = 100
    deadline = time.monotonic() + 10
    try:
        while True:
            port.recv_batch(1)
            try:
                message = switch.recv()
            except pynng.Timeout:
                assert time.monotonic() < deadline, "no PORT_ADD"
                continue
            assert HEADER.unpack(message) == (0, 64, 0)
            return
    finally:
        switch.recv_timeout = 5000


def test_frames_in_batches_replies_as_packet_in_and_foreign_messages_ignored(
    tmp_path: Path,
) -> None:
    url = f"ipc://{tmp_path}/p.ipc"
    switch = _switch(url)
    port = NanomsgPort(url, 64)
    try:
        _announced(port, switch)
        switch.send(HEADER.pack(4, 7, 3) + b"abc")  # another port: ignored
        switch.send(HEADER.pack(6, 64, 0))  # not a frame: ignored
        switch.send(HEADER.pack(4, 64, 9) + b"short")  # length mismatch: ignored
        for n in range(100):
            switch.send(HEADER.pack(4, 64, 2) + n.to_bytes(2, "big"))
        batches = _frames_until(port, 100)
        frames = [f for batch in batches for f in batch]
        assert frames == [n.to_bytes(2, "big") for n in range(100)]
        assert max(len(b) for b in batches) > 1  # frames were read in batches
        assert all(len(b) <= 64 for b in batches)
        port.send_batch([b"one", b"three"])
        assert _recv_skipping_port_add(switch) == HEADER.pack(3, 64, 3) + b"one"
        assert _recv_skipping_port_add(switch) == HEADER.pack(3, 64, 5) + b"three"
    finally:
        port.close()
        switch.close()


def test_port_is_announced_again_after_the_switch_restarts(tmp_path: Path) -> None:
    url = f"ipc://{tmp_path}/p.ipc"
    switch = _switch(url)
    port = NanomsgPort(url, 64)
    try:
        _announced(port, switch)
        switch.close()
        switch = _switch(url)
        deadline = time.monotonic() + 10
        switch.recv_timeout = 200
        while True:  # the port redials by itself; each poll may send PORT_ADD once connected
            port.recv_batch(1)
            try:
                message = switch.recv()
                break
            except pynng.Timeout:
                assert time.monotonic() < deadline, "no PORT_ADD after the restart"
        assert HEADER.unpack(message) == (0, 64, 0)
    finally:
        port.close()
        switch.close()
