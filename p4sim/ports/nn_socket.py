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
import os
import stat
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pynng
from pynng.exceptions import check_err

from p4sim.ports.nn_protocol import (
    HEADER,
    InfoStatus,
    MsgType,
    NnMessage,
    NnProtocolError,
    PortStatus,
    decode,
    encode_info_reply,
)
from p4sim.ports.transport import Deliver

logger = logging.getLogger(__name__)

NNG_TASK_THREADS = 2
IPC_SCHEME = "ipc://"
IPC_MODE = 0o600  # only the switch's user may connect to an ipc:// packet socket
RECEIVE_POLL_MS = 100  # how often the receive thread checks whether it must stop
SEND_TIMEOUT_MS = 1000  # a peer that takes nothing for this long loses the frame (logged)
QUEUE_MESSAGES = 1024  # nng's queues on each side: a burst waits there, read in one wake-up
MAX_BATCH = 256  # frames handed to the dataplane per wake-up at most
MAX_MESSAGE = HEADER.size + 65535 + 16  # header, largest frame, room for a crypto shim
# nng error numbers (nng.h)
_NNG_ECLOSED, _NNG_ETIMEDOUT, _NNG_EAGAIN = 7, 5, 8
_NNG_FLAG_NONBLOCK = pynng.lib.NNG_FLAG_NONBLOCK
_PACKET_IN = int(MsgType.PACKET_IN)
_PACKET_OUT = int(MsgType.PACKET_OUT)


@dataclass(frozen=True, kw_only=True)
class PortInfo:
    """What a client told us about one port through port messages."""

    port: int
    is_up: bool


def limit_nng_threads() -> None:
    """Caps nng's thread pools for this process (call before the first socket opens; nng reads
    the parameters once). Its default, two task threads per core, hands every message between
    threads under one lock; a switch with a few sockets needs few of them."""
    lib = pynng.lib
    lib.nng_init_set_parameter(lib.NNG_INIT_NUM_TASK_THREADS, NNG_TASK_THREADS)
    lib.nng_init_set_parameter(lib.NNG_INIT_MAX_TASK_THREADS, NNG_TASK_THREADS)
    lib.nng_init_set_parameter(lib.NNG_INIT_NUM_EXPIRE_THREADS, 1)
    lib.nng_init_set_parameter(lib.NNG_INIT_NUM_POLLER_THREADS, 1)


def _listen_private(sock: pynng.Socket, address: str) -> None:
    """Listen on ``address``; an ipc:// socket file gets mode 0600 whatever the umask.

    The crypto port's socket carries clear packets, so only this user may connect. nng's
    ``ipc:permissions`` listener option chmods the file after bind() and before listen(), so
    there is no moment at which another user could connect; the mode is checked afterwards.
    """
    lib, ffi = pynng.lib, pynng.ffi
    listener = ffi.new("nng_listener *")
    check_err(lib.nng_listener_create(listener, sock.socket, address.encode()))
    path = address[len(IPC_SCHEME):] if address.startswith(IPC_SCHEME) else None
    if path is not None:
        check_err(lib.nng_listener_set_int(listener[0], b"ipc:permissions", IPC_MODE))
    error = lib.nng_listener_start(listener[0], 0)
    if error:
        lib.nng_listener_close(listener[0])
        check_err(error)
    if path is not None:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode != IPC_MODE:  # an nng without the option: never leave it open to others
            os.chmod(path, IPC_MODE)
            logger.warning("packet socket %s was mode %o; set to %o", address, mode, IPC_MODE)


class NnPacketSocket:
    """A listening PAIR socket carrying all ports (``port=None``) or one port."""

    def __init__(self, address: str, *, port: int | None = None, enforce_ports: bool = False):
        self.address = address
        self.port = port
        self.name = f"nanomsg {address}" + ("" if port is None else f" (port {port})")
        self._enforce_ports = enforce_ports
        self._ports: dict[int, PortInfo] = {}
        self._ports_lock = threading.Lock()
        self._socket = pynng.Pair0(recv_timeout=RECEIVE_POLL_MS, send_timeout=SEND_TIMEOUT_MS,
                                   recv_buffer_size=QUEUE_MESSAGES,
                                   send_buffer_size=QUEUE_MESSAGES)
        try:
            _listen_private(self._socket, address)
        except pynng.NNGException as exc:
            self._socket.close()
            raise OSError(f"cannot listen on packet socket {address!r}: {exc}") from exc
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self.rejected_messages = 0
        # Receives go through nng_recv into one reusable buffer (no NNG_FLAG_ALLOC): pynng's
        # recv() allocates two cffi objects and an nng message per call and copies the data
        # twice. One byte more than the largest message, so an oversized one shows by its size.
        ffi = pynng.ffi
        self._capacity = MAX_MESSAGE + 1
        self._buffer = ffi.new("char[]", self._capacity)
        self._view = ffi.buffer(self._buffer)
        self._size = ffi.new("size_t *")
        self._nng_socket = self._socket.socket

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
        self.send_batch(((port, frame),))

    def send_batch(self, frames: Sequence[tuple[int, bytes]]) -> None:
        # nng_send copies the message into its own nng_msg; pynng's send() adds a check of the
        # socket's state and a cffi buffer per call, which this loop does without.
        send, nng_socket, pack = pynng.lib.nng_send, self._nng_socket, HEADER.pack
        for port, frame in frames:
            message = pack(_PACKET_OUT, port, len(frame)) + frame
            error = send(nng_socket, message, len(message), 0)
            if error:
                if error == _NNG_ECLOSED:
                    logger.debug("packet socket %s closed; frame for port %d not sent",
                                 self.address, port)
                    return
                if error == _NNG_ETIMEDOUT:
                    logger.warning("packet socket %s: peer took no frame for %d ms; frame for "
                                   "port %d dropped", self.address, SEND_TIMEOUT_MS, port)
                    continue
                check_err(error)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._socket.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def _receive_loop(self, deliver: Deliver) -> None:
        # The first receive of a wake-up waits (up to the poll interval); the rest take what is
        # queued without waiting, and the whole batch goes to the dataplane in one call. Frame
        # messages take the fast path below; every other message is decoded and handled in
        # order, so a PORT_ADD before a frame of the same burst still applies to it.
        recv, nng_socket = pynng.lib.nng_recv, self._nng_socket
        buffer, size, view, capacity = self._buffer, self._size, self._view, self._capacity
        unpack_from, header_size = HEADER.unpack_from, HEADER.size
        only_port, enforce = self.port, self._enforce_ports
        while True:
            batch: list[tuple[int, bytes]] = []
            flags = 0
            while len(batch) < MAX_BATCH:
                size[0] = capacity
                error = recv(nng_socket, buffer, size, flags)
                if error:
                    if error in (_NNG_ETIMEDOUT, _NNG_EAGAIN):
                        break
                    if error == _NNG_ECLOSED or self._closed.is_set():
                        if batch:
                            deliver(batch)
                        return
                    check_err(error)
                flags = _NNG_FLAG_NONBLOCK
                length = size[0]
                if header_size <= length < capacity:
                    kind, port, more = unpack_from(view)
                    if (kind == _PACKET_IN and more == length - header_size and not enforce
                            and (only_port is None or port == only_port)):
                        batch.append((port, view[header_size:length]))
                        continue
                self._slow_path(length, batch)
            if batch:
                deliver(batch)
            elif self._closed.is_set():
                return

    def _slow_path(self, length: int, batch: list[tuple[int, bytes]]) -> None:
        """Any message but a plain frame: decoded, checked, handled (frames join `batch`)."""
        if length >= self._capacity:
            self.rejected_messages += 1
            logger.warning("packet socket %s: refused a message over %d bytes", self.address,
                           MAX_MESSAGE)
            return
        try:
            self._handle(decode(self._view[:length]), batch.append)
        except NnProtocolError as exc:
            self.rejected_messages += 1
            logger.warning("packet socket %s: refused message: %s", self.address, exc)

    def _handle(self, message: NnMessage, deliver: Callable[[tuple[int, bytes]], None]) -> None:
        kind = message.kind
        if self.port is not None and kind != MsgType.INFO_REQ and message.port != self.port:
            raise NnProtocolError(
                f"{kind.name} names port {message.port} but this socket carries port {self.port}"
            )
        if kind == MsgType.PACKET_IN:
            if self._enforce_ports and not self._is_up(message.port):
                logger.debug("port %d is not added and up; frame dropped", message.port)
                return
            deliver((message.port, message.payload))
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
            try:
                self._socket.send(
                    encode_info_reply(message.port, message.more, InfoStatus.NOT_SUPPORTED)
                )
            except (pynng.Timeout, pynng.Closed):
                logger.warning("packet socket %s: info reply for port %d not sent",
                               self.address, message.port)
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
