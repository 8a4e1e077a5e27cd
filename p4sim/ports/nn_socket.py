"""A nanomsg PAIR socket the switch listens on, speaking BMv2's packet-in message format.

Clients (PTF, the crypto worker) dial it, as they dial BMv2's ``--packet-in`` socket. A device
socket carries every port that has no transport of its own; a port socket carries exactly one
port (frames for another port number on it are refused and logged). Port add/remove/status
messages are recorded as BMv2 records them; like BMv2 without ``--enforce-ports`` (our default)
frames are accepted on every port, with ``enforce_ports`` only added, up ports take frames.
Info requests are answered "not supported", as BMv2 answers them.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import pynng

from p4sim.ports.nn_protocol import (
    InfoStatus,
    MsgType,
    NnMessage,
    NnProtocolError,
    PortStatus,
    decode,
    encode_frame,
    encode_info_reply,
)
from p4sim.ports.transport import Deliver

logger = logging.getLogger(__name__)

RECEIVE_POLL_MS = 100  # how often the receive thread checks whether it must stop


@dataclass(frozen=True, kw_only=True)
class PortInfo:
    """What a client told us about one port through port messages."""

    port: int
    is_up: bool


class NnPacketSocket:
    """A listening PAIR socket carrying all ports (``port=None``) or one port."""

    def __init__(self, address: str, *, port: int | None = None, enforce_ports: bool = False):
        self.address = address
        self.port = port
        self.name = f"nanomsg {address}" + ("" if port is None else f" (port {port})")
        self._enforce_ports = enforce_ports
        self._ports: dict[int, PortInfo] = {}
        self._ports_lock = threading.Lock()
        self._socket = pynng.Pair0(recv_timeout=RECEIVE_POLL_MS)
        try:
            self._socket.listen(address)
        except pynng.NNGException as exc:
            self._socket.close()
            raise OSError(f"cannot listen on packet socket {address!r}: {exc}") from exc
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self.rejected_messages = 0

    def ports(self) -> dict[int, PortInfo]:
        """The ports added by the client, with their status."""
        with self._ports_lock:
            return dict(self._ports)

    def start(self, deliver: Deliver) -> None:
        self._thread = threading.Thread(
            target=self._receive_loop,
            args=(deliver,),
            name=f"p4sim-rx {self.address}",
            daemon=True,
        )
        self._thread.start()

    def send(self, port: int, frame: bytes) -> None:
        try:
            self._socket.send(encode_frame(MsgType.PACKET_OUT, port, frame))
        except pynng.Closed:
            logger.debug("packet socket %s closed; frame for port %d not sent", self.address, port)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._socket.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def _receive_loop(self, deliver: Deliver) -> None:
        while not self._closed.is_set():
            try:
                raw = self._socket.recv()
            except pynng.Timeout:
                continue
            except pynng.Closed:
                return
            try:
                self._handle(decode(raw), deliver)
            except NnProtocolError as exc:
                self.rejected_messages += 1
                logger.warning("packet socket %s: refused message: %s", self.address, exc)

    def _handle(self, message: NnMessage, deliver: Deliver) -> None:
        kind = message.kind
        if self.port is not None and kind != MsgType.INFO_REQ and message.port != self.port:
            raise NnProtocolError(
                f"{kind.name} names port {message.port} but this socket carries port {self.port}"
            )
        if kind == MsgType.PACKET_IN:
            if self._enforce_ports and not self._is_up(message.port):
                logger.debug("port %d is not added and up; frame dropped", message.port)
                return
            deliver(message.port, message.payload)
        elif kind == MsgType.PORT_ADD:
            with self._ports_lock:
                self._ports.setdefault(message.port, PortInfo(port=message.port, is_up=True))
            logger.info("packet socket %s: port %d added", self.address, message.port)
        elif kind == MsgType.PORT_REMOVE:
            with self._ports_lock:
                self._ports.pop(message.port, None)
            logger.info("packet socket %s: port %d removed", self.address, message.port)
        elif kind == MsgType.PORT_SET_STATUS:
            self._set_status(message.port, message.more)
        elif kind == MsgType.INFO_REQ:
            self._socket.send(
                encode_info_reply(message.port, message.more, InfoStatus.NOT_SUPPORTED)
            )
        else:
            raise NnProtocolError(f"{kind.name} is sent by the switch, never to it")

    def _set_status(self, port: int, raw_status: int) -> None:
        try:
            status = PortStatus(raw_status)
        except ValueError:
            raise NnProtocolError(f"unknown port status {raw_status} for port {port}") from None
        with self._ports_lock:
            if port in self._ports:
                self._ports[port] = PortInfo(port=port, is_up=status == PortStatus.UP)
        logger.info("packet socket %s: port %d is %s", self.address, port, status.name)

    def _is_up(self, port: int) -> bool:
        with self._ports_lock:
            info = self._ports.get(port)
        return info is not None and info.is_up
