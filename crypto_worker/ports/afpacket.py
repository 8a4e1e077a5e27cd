"""The crypto port over a Linux interface (AF_PACKET), for BMv2 with a veth pair.

BMv2 sends `shim | frame` raw on the interface bound to its crypto port; the worker reads it on
the other end of the veth and writes the answer back there. The interface MTU must leave room
for the shim and the ESP growth (set it to 9000 on a veth). Only frames arriving on the interface
are read: the socket ignores its own transmissions (PACKET_IGNORE_OUTGOING, with a pkttype check
as a fallback on older kernels).

Receive uses a PACKET_MMAP ring (TPACKET_V3): the kernel writes frames into blocks of a ring
shared with this process and hands over a whole block at once, so one wake-up (one `select`)
yields every frame of the block without a system call per frame; each frame is copied out once
(a slice of the mapping), and the block is given back by writing its status word. A block is
handed over when full or after `RING_BLOCK_TIMEOUT_MS`, which bounds the latency a frame can
gain. If the kernel refuses the ring, the port falls back to one `recvfrom_into` per frame.

Transmit uses a second PACKET_MMAP ring (TPACKET_V2 TX ring) on a socket of its own (protocol 0:
it receives nothing): each frame of a batch is copied into the next free slot and marked
SEND_REQUEST, and one `send` per batch asks the kernel to transmit every marked slot, in ring
order, within that call; slots come back (AVAILABLE) when the kernel has freed their packet. A
frame larger than a slot, or than the interface MTU read at start-up, goes out through the
receive socket's plain `send` after the ring has been flushed, so order is kept and an
oversized frame is still logged and dropped as before. A batch of fewer than
`TX_RING_MIN_BATCH` frames, or every batch when the kernel refused the ring, is one `send` per
frame: the ring only pays for itself over several frames. Both paths transmit synchronously
within their system call, so mixing them keeps the order.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import mmap
import select
import socket
import struct
import time
from dataclasses import dataclass

from crypto_worker import fanout

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263  # linux/socket.h (not exported by the socket module)
PACKET_IGNORE_OUTGOING = 23  # linux/if_packet.h, Linux 4.20+
_MAX_FRAME = 65535
PACKET_RX_RING = 5  # linux/if_packet.h
PACKET_VERSION = 10
TPACKET_V3 = 2
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
RING_BLOCK_BYTES = 1 << 18  # 256 KiB: holds the largest frame (65,535 bytes) with room to spare
RING_BLOCKS = 64  # 16 MiB of ring: ~11,000 frames of 1,400 bytes in flight
RING_FRAME_BYTES = 1 << 11  # nominal frame slot (TPACKET_V3 packs frames by their real size)
RING_BLOCK_TIMEOUT_MS = 1  # a partly filled block is handed over after this long
# struct tpacket_req3: block size, block count, frame size, frame count, retire timeout (ms),
# private area size, feature word
_TPACKET_REQ3 = struct.Struct("=7I")
_TPACKET_REQ = struct.Struct("=4I")  # struct tpacket_req (V2): the first four of the above
# struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1: block_status,
# num_pkts, offset_to_first_pkt, ...
_BLOCK_STATUS, _BLOCK_PACKETS, _BLOCK_FIRST = 8, 12, 16
_U32 = struct.Struct("=I")
# struct tpacket3_hdr: tp_next_offset, tp_sec, tp_nsec, tp_snaplen, tp_len, tp_status (u32),
# tp_mac, tp_net (u16) ...; 48 bytes, then the struct sockaddr_ll (sll_pkttype at byte 10).
_FRAME_HEADER = struct.Struct("=I8xII4xH")
_SLL_PKTTYPE = 48 + 10
PACKET_TX_RING = 13  # linux/if_packet.h
PACKET_LOSS = 14
TPACKET_V2 = 1
TP_STATUS_AVAILABLE = 0
TP_STATUS_SEND_REQUEST = 1
TX_SLOT_BYTES = 1 << 14  # one frame per slot: a 9,000-byte MTU frame with its header fits
TX_BLOCK_BYTES = 1 << 16  # four slots per block (a slot never spans blocks)
TX_BLOCKS = 64  # 256 slots, four batches of 64
# Below this many frames a batch goes out as plain sends: the ring's fixed cost per batch (the
# kick, the slot checks) is more than what it saves per frame (measured on a veth: 3.5 vs 2.3 µs
# per frame alone, 1.9 vs 2.4 µs per frame in batches of 16 and 64; docs/crypto-worker.md).
TX_RING_MIN_BATCH = 8
TX_STALL_SECONDS = 5  # a slot the kernel keeps longer than this: the port is broken
# A TX slot starts with struct tpacket2_hdr (tp_status, tp_len, tp_snaplen ..., 32 bytes); the
# frame's bytes follow it at TPACKET2_HDRLEN - sizeof(struct sockaddr_ll) = 52 - 20.
_TX_DATA = 32
_TX_HEADER = struct.Struct("=II")  # tp_status, tp_len
_SIOCGIFMTU = 0x8921
_IFREQ_MTU = struct.Struct("16si12x")
_ETH_HEADER = 14
_SO_SNDTIMEO = struct.Struct("@ll")  # struct timeval (native longs)


@dataclass(frozen=True, kw_only=True)
class FanoutMembership:
    """This port's receive socket is one of `members` sharing the interface by SA
    (crypto_worker/fanout.py); `group` None: the first member, which creates the group."""

    group: int | None
    members: int


class AfPacketPort:
    """Reads and writes whole frames on `interface`; with `fanout`, only the frames of the SAs
    this process owns (the group id is then `fanout_group`)."""

    def __init__(self, interface: str, *, poll_ms: int = 100,
                 fanout_membership: FanoutMembership | None = None) -> None:
        self._interface = interface
        self.fanout_group: int | None = None
        self._poll = poll_ms / 1000
        self._socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            self._socket.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        except OSError as error:
            log.info("PACKET_IGNORE_OUTGOING unavailable (%s); filtering by pkttype", error)
        self._ring: mmap.mmap | None = None
        try:
            self._ring = self._map_ring()
        except OSError as error:
            log.warning("%s: no TPACKET_V3 receive ring (%s); one recvfrom per frame",
                        interface, error)
        self._block = 0  # the ring block read next
        self._in_block = 0  # frames of the current block not yet read
        self._offset = 0  # where the next of them starts in the ring
        if fanout_membership is not None:
            fanout.attach_drop_all(self._socket)  # nothing is read before the group's share
        self._socket.bind((interface, ETH_P_ALL))
        if fanout_membership is not None:
            self.fanout_group = fanout.join(self._socket, group=fanout_membership.group,
                                            members=fanout_membership.members)
            fanout.detach_filter(self._socket)
        self._socket.setblocking(False)
        self._tx_socket: socket.socket | None = None
        self._tx_ring: mmap.mmap | None = None
        self._tx_slot = 0  # the TX ring slot written next
        # Frames up to this size go through the TX ring: a slot's room, and the MTU (plus the
        # Ethernet header) the interface has now; a larger one takes the plain path.
        self._tx_limit = 0
        try:
            self._tx_socket, self._tx_ring = self._map_tx_ring()
            mtu = _IFREQ_MTU.unpack(fcntl.ioctl(self._socket.fileno(), _SIOCGIFMTU,
                                                _IFREQ_MTU.pack(interface.encode(), 0)))[1]
            self._tx_limit = min(TX_SLOT_BYTES - _TX_DATA, mtu + _ETH_HEADER)
        except OSError as error:
            log.warning("%s: no TPACKET_V2 transmit ring (%s); one send per frame",
                        interface, error)
            self.close_tx()
        # Every read lands in this one buffer (recvfrom_into), and only the frame's own bytes
        # are copied out; recvfrom(65535) would allocate 64 KiB per frame and then shrink it.
        # One byte more than the largest frame, so a frame that did not fit shows by its size.
        self._buffer = bytearray(_MAX_FRAME + 1)
        self._view = memoryview(self._buffer)

    def __repr__(self) -> str:
        return f"<AfPacketPort {self._interface}>"

    def _map_ring(self) -> mmap.mmap:
        sock = self._socket
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        frames = RING_BLOCK_BYTES * RING_BLOCKS // RING_FRAME_BYTES
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, _TPACKET_REQ3.pack(
            RING_BLOCK_BYTES, RING_BLOCKS, RING_FRAME_BYTES, frames, RING_BLOCK_TIMEOUT_MS, 0, 0))
        return mmap.mmap(sock.fileno(), RING_BLOCK_BYTES * RING_BLOCKS, mmap.MAP_SHARED,
                         mmap.PROT_READ | mmap.PROT_WRITE)

    def _map_tx_ring(self) -> tuple[socket.socket, mmap.mmap]:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: no receive
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
            # A slot the kernel cannot send (never expected: sizes are checked first) is
            # skipped instead of stopping the ring for good.
            sock.setsockopt(SOL_PACKET, PACKET_LOSS, 1)
            slots = TX_BLOCK_BYTES * TX_BLOCKS // TX_SLOT_BYTES
            sock.setsockopt(SOL_PACKET, PACKET_TX_RING, _TPACKET_REQ.pack(
                TX_BLOCK_BYTES, TX_BLOCKS, TX_SLOT_BYTES, slots))
            sock.bind((self._interface, 0))
            # Blocking, so that a flush can wait for slots in flight; never longer than this.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                            _SO_SNDTIMEO.pack(1, 0))
            ring = mmap.mmap(sock.fileno(), TX_BLOCK_BYTES * TX_BLOCKS, mmap.MAP_SHARED,
                             mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError:
            sock.close()
            raise
        return sock, ring

    def _block_ready(self) -> bool:
        assert self._ring is not None
        status = _U32.unpack_from(self._ring, self._block * RING_BLOCK_BYTES + _BLOCK_STATUS)[0]
        return bool(status & TP_STATUS_USER)

    def _recv_ring(self, max_frames: int) -> list[bytes]:
        """Frames from the ring: whole blocks, the last one possibly left half read (its place
        kept) when `max_frames` is reached."""
        ring = self._ring
        assert ring is not None
        frames: list[bytes] = []
        if not self._in_block and not self._block_ready():
            readable, _, _ = select.select([self._socket], [], [], self._poll)
            if not readable:
                return frames
        unpack_header, unpack_u32 = _FRAME_HEADER.unpack_from, _U32.unpack_from
        while len(frames) < max_frames:
            base = self._block * RING_BLOCK_BYTES
            if not self._in_block:
                if not unpack_u32(ring, base + _BLOCK_STATUS)[0] & TP_STATUS_USER:
                    break
                self._in_block = unpack_u32(ring, base + _BLOCK_PACKETS)[0]
                self._offset = base + unpack_u32(ring, base + _BLOCK_FIRST)[0]
            offset, left = self._offset, self._in_block
            while left and len(frames) < max_frames:
                next_offset, snaplen, length, mac = unpack_header(ring, offset)
                if ring[offset + _SLL_PKTTYPE] != PACKET_OUTGOING:
                    if snaplen == length:
                        frames.append(ring[offset + mac:offset + mac + snaplen])
                    else:
                        log.warning("%s: ignored a frame of %s bytes cut to %s", self._interface,
                                    length, snaplen)
                left -= 1
                offset += next_offset
            self._offset, self._in_block = offset, left
            if not left:  # the block is read: give it back to the kernel, go to the next
                _U32.pack_into(ring, base + _BLOCK_STATUS, TP_STATUS_KERNEL)
                self._block = (self._block + 1) % RING_BLOCKS
        return frames

    def recv_batch(self, max_frames: int) -> list[bytes]:
        if self._ring is not None:
            return self._recv_ring(max_frames)
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
        if self._tx_ring is None or len(frames) < TX_RING_MIN_BATCH:
            for frame in frames:
                self._send_one(frame)
            return
        ring, limit = self._tx_ring, self._tx_limit
        slots = TX_BLOCK_BYTES * TX_BLOCKS // TX_SLOT_BYTES
        slot = self._tx_slot
        pack_into, unpack_from = _TX_HEADER.pack_into, _U32.unpack_from
        pending = 0
        for frame in frames:
            length = len(frame)
            if length > limit:
                if pending:
                    self._flush(slot)
                    pending = 0
                self._send_one(frame)
                continue
            base = slot * TX_SLOT_BYTES
            if unpack_from(ring, base)[0] != TP_STATUS_AVAILABLE:
                self._wait_for_slot(base)
                pending = 0
            ring[base + _TX_DATA:base + _TX_DATA + length] = frame
            pack_into(ring, base, TP_STATUS_SEND_REQUEST, length)
            pending += 1
            slot = slot + 1 if slot + 1 < slots else 0
        self._tx_slot = slot
        if pending:
            self._flush(slot)

    def _flush(self, next_slot: int) -> None:
        """Has the kernel take every SEND_REQUEST slot, up to the one before `next_slot`.

        One non-blocking `send` normally does it; if the socket's send buffer was full, some
        slots are left marked, and this waits until the kernel has taken them: a plain `send`
        that follows (a small batch, an oversized frame) must not overtake them."""
        assert self._tx_ring is not None
        slots = TX_BLOCK_BYTES * TX_BLOCKS // TX_SLOT_BYTES
        last = ((next_slot - 1) % slots) * TX_SLOT_BYTES
        self._kick(wait=False)
        deadline = time.monotonic() + TX_STALL_SECONDS
        while _U32.unpack_from(self._tx_ring, last)[0] == TP_STATUS_SEND_REQUEST:
            if time.monotonic() > deadline:  # the packet loop dies: health NOT_SERVING
                raise OSError(errno.ETIMEDOUT, f"{self._interface}: TX ring not taken by the "
                              f"kernel for {TX_STALL_SECONDS} s")
            self._kick(wait=True)

    def _kick(self, *, wait: bool) -> None:
        """Has the kernel send every SEND_REQUEST slot now (within this call); with `wait`,
        also waits (up to the socket's 1 s send timeout) until the packets in flight are freed
        and their slots AVAILABLE again."""
        assert self._tx_socket is not None
        try:
            self._tx_socket.send(b"", 0 if wait else socket.MSG_DONTWAIT)
        except (BlockingIOError, TimeoutError):
            pass  # slots still in flight; the caller looks at their status again

    def _wait_for_slot(self, base: int) -> None:
        """The slot at `base` is still the kernel's: send what is pending, then wait until it
        is free (a slow receiver can keep slots in flight for a while)."""
        assert self._tx_ring is not None
        deadline = time.monotonic() + TX_STALL_SECONDS
        while True:
            self._kick(wait=True)
            status = _U32.unpack_from(self._tx_ring, base)[0]
            if status == TP_STATUS_AVAILABLE:
                return
            if time.monotonic() > deadline:  # the packet loop dies: health NOT_SERVING
                raise OSError(errno.ETIMEDOUT, f"{self._interface}: TX ring slot held by the "
                              f"kernel for {TX_STALL_SECONDS} s (status {status})")
            select.select([], [], [], 0.001)

    def _send_one(self, frame: bytes) -> None:
        send = self._socket.send
        while True:
            try:
                send(frame)
                return
            except BlockingIOError:
                select.select([], [self._socket], [], self._poll)
            except OSError as error:
                if error.errno == errno.EMSGSIZE:
                    log.warning(
                        "%s: %s-byte frame exceeds the interface MTU; dropped",
                        self._interface,
                        len(frame),
                    )
                    return
                raise

    def close_tx(self) -> None:
        if self._tx_ring is not None:
            self._tx_ring.close()
            self._tx_ring = None
        if self._tx_socket is not None:
            self._tx_socket.close()
            self._tx_socket = None

    def close(self) -> None:
        self.close_tx()
        if self._ring is not None:
            self._ring.close()
            self._ring = None
        self._socket.close()
