"""A switch port bound to a Linux network interface through an AF_PACKET raw socket.

Used for veth setups: the other end of the veth belongs to an external process (the crypto
worker on BMv2-like deployments, or a test). Frames the kernel reports as our own outgoing
frames are skipped, so what we send is never received back as ingress. A VLAN tag the kernel
took off the frame (rx VLAN offload, reported in PACKET_AUXDATA) is put back, so the program
sees the frame as it was on the wire.
"""

from __future__ import annotations

import logging
import select
import socket
import struct
import threading
from collections.abc import Sequence

from p4sim.ports.transport import Deliver

logger = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4  # sll_pkttype of frames sent by this host
MAX_FRAME = 65535
RECEIVE_POLL_S = 0.1
SEND_WAIT_S = 1.0
MAX_BATCH = 256  # frames handed over per wake-up at most
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
ETH_P_8021Q = 0x8100
# struct tpacket_auxdata: status, len, snaplen, mac, net, vlan_tci, vlan_tpid
AUXDATA = struct.Struct("=IIIHHHH")


def restore_vlan_tag(frame: bytes, ancillary: list[tuple[int, int, bytes]]) -> bytes:
    """The frame with the VLAN tag the kernel reported in PACKET_AUXDATA put back after the
    MAC addresses; unchanged when there is none."""
    for level, kind, data in ancillary:
        if level != SOL_PACKET or kind != PACKET_AUXDATA or len(data) < AUXDATA.size:
            continue
        status, _, _, _, _, tci, tpid = AUXDATA.unpack_from(data)
        if not status & TP_STATUS_VLAN_VALID and not tci:
            return frame
        if not status & TP_STATUS_VLAN_TPID_VALID:
            tpid = ETH_P_8021Q
        return frame[:12] + struct.pack("!HH", tpid, tci) + frame[12:]
    return frame


class AfPacketPort:
    """One switch port carried by the interface ``interface``."""

    def __init__(self, interface: str, *, port: int):
        self.interface = interface
        self.port = port
        self.name = f"interface {interface} (port {port})"
        try:
            self._socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError as exc:
            raise OSError(
                f"cannot open a raw socket for interface {interface!r}: {exc} (needs CAP_NET_RAW)"
            ) from exc
        try:
            self._socket.bind((interface, 0))
        except OSError as exc:
            self._socket.close()
            raise OSError(f"cannot bind to interface {interface!r}: {exc.strerror}") from exc
        self._socket.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        self._socket.setblocking(False)  # waits are select()s, so a drain never blocks
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, deliver: Deliver) -> None:
        self._thread = threading.Thread(
            target=self._receive_loop,
            args=(deliver,),
            name=f"p4sim-rx {self.interface}",
            daemon=True,
        )
        self._thread.start()

    def send(self, port: int, frame: bytes) -> None:
        try:
            try:
                self._socket.send(frame)
            except BlockingIOError:  # the socket's send queue is full: wait for room once
                select.select([], [self._socket], [], SEND_WAIT_S)
                self._socket.send(frame)
        except OSError as exc:
            logger.warning(
                "interface %s: frame of %d bytes not sent: %s", self.interface, len(frame), exc
            )

    def send_batch(self, frames: Sequence[tuple[int, bytes]]) -> None:
        for port, frame in frames:
            self.send(port, frame)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._socket.close()

    def _receive_loop(self, deliver: Deliver) -> None:
        # Wait (up to the poll interval) until a frame is there, then take, without waiting,
        # whatever else is queued, so one wake-up hands the dataplane the whole burst.
        sock = self._socket
        recvmsg, port = sock.recvmsg, self.port
        ancillary_size = socket.CMSG_SPACE(AUXDATA.size)
        while not self._closed.is_set():
            try:
                readable, _, _ = select.select([sock], [], [], RECEIVE_POLL_S)
            except (OSError, ValueError):
                if self._closed.is_set():
                    return
                raise
            if not readable:
                continue
            batch: list[tuple[int, bytes]] = []
            while len(batch) < MAX_BATCH:
                try:
                    frame, ancillary, _, address = recvmsg(MAX_FRAME, ancillary_size)
                except BlockingIOError:
                    break
                except OSError:
                    if self._closed.is_set():
                        return
                    raise
                if address[2] == PACKET_OUTGOING:
                    continue
                batch.append((port, restore_vlan_tag(frame, ancillary)))
            if batch:
                deliver(batch)
