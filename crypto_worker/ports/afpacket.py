"""The crypto port over a Linux interface (AF_PACKET), for BMv2 with a veth pair.

BMv2 sends `shim | frame` raw on the interface bound to its crypto port; the worker reads it on
the other end of the veth and writes the answer back there. The interface MTU must leave room
for the shim and the ESP growth (set it to 9000 on a veth). Only frames arriving on the interface
are read: the socket ignores its own transmissions (PACKET_IGNORE_OUTGOING, with a pkttype check
as a fallback on older kernels).
"""

from __future__ import annotations

import errno
import logging
import select
import socket

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263  # linux/socket.h (not exported by the socket module)
PACKET_IGNORE_OUTGOING = 23  # linux/if_packet.h, Linux 4.20+
_MAX_FRAME = 65535


class AfPacketPort:
    """Reads and writes whole frames on `interface`."""

    def __init__(self, interface: str, *, poll_ms: int = 100) -> None:
        self._interface = interface
        self._poll = poll_ms / 1000
        self._socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            self._socket.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        except OSError as error:
            log.info("PACKET_IGNORE_OUTGOING unavailable (%s); filtering by pkttype", error)
        self._socket.bind((interface, ETH_P_ALL))
        self._socket.setblocking(False)
        # Every read lands in this one buffer (recvfrom_into), and only the frame's own bytes
        # are copied out; recvfrom(65535) would allocate 64 KiB per frame and then shrink it.
        # One byte more than the largest frame, so a frame that did not fit shows by its size.
        self._buffer = bytearray(_MAX_FRAME + 1)
        self._view = memoryview(self._buffer)

    def __repr__(self) -> str:
        return f"<AfPacketPort {self._interface}>"

    def recv_batch(self, max_frames: int) -> list[bytes]:
        frames: list[bytes] = []
        readable, _, _ = select.select([self._socket], [], [], self._poll)
        if not readable:
            return frames
        recvfrom_into = self._socket.recvfrom_into
        buffer, view = self._buffer, self._view
        while len(frames) < max_frames:
            try:
                size, address = recvfrom_into(buffer)
            except BlockingIOError:
                break
            if address[2] == PACKET_OUTGOING:
                continue
            if size > _MAX_FRAME:
                log.warning("%s: ignored a frame over %s bytes", self._interface, _MAX_FRAME)
                continue
            frames.append(view[:size].tobytes())
        return frames

    def send_batch(self, frames: list[bytes]) -> None:
        send = self._socket.send
        for frame in frames:
            while True:
                try:
                    send(frame)
                    break
                except BlockingIOError:
                    select.select([], [self._socket], [], self._poll)
                except OSError as error:
                    if error.errno == errno.EMSGSIZE:
                        log.warning(
                            "%s: %s-byte frame exceeds the interface MTU; dropped",
                            self._interface,
                            len(frame),
                        )
                        break
                    raise

    def close(self) -> None:
        self._socket.close()
