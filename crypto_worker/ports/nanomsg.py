"""The crypto port over the embedded target's per-port nanomsg PAIR socket.

The message format is BMv2's `--packet-in` format (bm_sim dev_mgr_packet_in.cpp, as PTF's
DataPlanePacketSourceNN speaks it): a header of three little-endian int32 `(type, port, more)`,
then the frame. The switch listens and the worker dials, like PTF: the switch's frames arrive as
PACKET_OUT for the crypto port, and the worker answers with PACKET_IN for the same port. On
connect the worker announces the port with PORT_ADD, as PTF does, so a switch that enforces
ports accepts its frames.
"""

from __future__ import annotations

import logging
import struct

import pynng
from pynng.exceptions import check_err

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<iii")
_HEADER_BYTES = _HEADER.size
_MAX_MESSAGE = _HEADER_BYTES + 16 + 65535  # header, shim, largest frame
# nng error numbers (nng.h) the loop expects; anything else raises through pynng's check_err.
_NNG_ETIMEDOUT = 5
_NNG_EAGAIN = 8
_NNG_FLAG_NONBLOCK = pynng.lib.NNG_FLAG_NONBLOCK
# nng's own threads: its default is two task threads per core, which hand every message between
# each other under one lock (measured with perf: half of a null worker's CPU was futex waits and
# context switches). One socket with one peer needs few of them.
_NNG_TASK_THREADS = 2
MSG_PORT_ADD = 0
MSG_PACKET_IN = 3  # towards the switch
MSG_PACKET_OUT = 4  # from the switch


def limit_nng_threads() -> None:
    """Caps nng's thread pools for this process; call before the first socket is opened (nng
    reads the parameters once, when it initialises; later calls change nothing)."""
    lib = pynng.lib
    lib.nng_init_set_parameter(lib.NNG_INIT_NUM_TASK_THREADS, _NNG_TASK_THREADS)
    lib.nng_init_set_parameter(lib.NNG_INIT_MAX_TASK_THREADS, _NNG_TASK_THREADS)
    lib.nng_init_set_parameter(lib.NNG_INIT_NUM_EXPIRE_THREADS, 1)
    lib.nng_init_set_parameter(lib.NNG_INIT_NUM_POLLER_THREADS, 1)


class NanomsgPort:
    """Dials `url` and carries the frames of switch port `port_number`."""

    def __init__(
        self, url: str, port_number: int, *, poll_ms: int = 100, queue_frames: int = 1024
    ) -> None:
        self._port = port_number
        # Queues on both sides of the socket let frames pile up while a batch is processed, so
        # the next recv finds a batch waiting instead of handing over one frame per wake-up
        # (measured: about 2x less CPU per frame than nng's unbuffered default).
        self._socket = pynng.Pair0(
            recv_timeout=poll_ms,
            send_timeout=1000,
            recv_buffer_size=queue_frames,
            send_buffer_size=queue_frames,
        )
        self._announced = False
        self._url = url
        # A new connection (first one, or after the switch restarted) must hear PORT_ADD again.
        # The callback runs on an nng thread, so it only raises the flag; the loop sends.
        self._socket.add_post_pipe_connect_cb(self._on_connect)
        # Non-blocking dial: nng keeps retrying in the background until the switch listens.
        self._socket.dial(url, block=False)
        # Receives copy into one reusable buffer through nng_recv without NNG_FLAG_ALLOC, the
        # copy pynng's recv() makes plus its per-call allocations (two cffi objects, nng_alloc,
        # nng_free) avoided; the frame is then sliced out as bytes once. One byte more than the
        # largest message, so a truncated (oversized) message is recognised by its size.
        self._ffi = pynng.ffi
        self._nng_recv = pynng.lib.nng_recv
        self._nng_send = pynng.lib.nng_send
        self._capacity = _MAX_MESSAGE + 1
        self._buffer = self._ffi.new("char[]", self._capacity)
        self._view = self._ffi.buffer(self._buffer)
        self._size = self._ffi.new("size_t *")
        self._nng_socket = self._socket.socket

    def __repr__(self) -> str:
        return f"<NanomsgPort {self._url} port {self._port}>"

    def _on_connect(self, _pipe: pynng.Pipe) -> None:
        self._announced = False

    def _announce(self) -> None:
        """Sends PORT_ADD once connected; a repeat (a connect racing the send) is harmless, the
        switch ignores PORT_ADD for a port it has."""
        if not self._socket.pipes:
            return
        try:
            self._socket.send(_HEADER.pack(MSG_PORT_ADD, self._port, 0))
        except pynng.Timeout:
            return  # not connected yet; try again on the next poll
        self._announced = True
        log.info("announced port %s on %s", self._port, self._url)

    def _frame_in_buffer(self, size: int) -> bytes | None:
        """The frame of the message of `size` bytes in the receive buffer, or None to ignore it."""
        if size < _HEADER_BYTES:
            log.warning("ignored a %s-byte message shorter than the header", size)
            return None
        if size >= self._capacity:  # nng reports a longer message's full size, not the copy
            log.warning("ignored a message over %s bytes", _MAX_MESSAGE)
            return None
        view = self._view
        kind, port, more = _HEADER.unpack_from(view)
        if kind != MSG_PACKET_OUT or port != self._port:
            log.debug("ignored message type %s for port %s", kind, port)
            return None
        if size - _HEADER_BYTES != more:
            log.warning("ignored a frame of %s bytes declared as %s", size - _HEADER_BYTES, more)
            return None
        return view[_HEADER_BYTES:size]

    def recv_batch(self, max_frames: int) -> list[bytes]:
        if not self._announced:
            self._announce()
        frames: list[bytes] = []
        # One loop with everything in locals: this runs once per frame, and each Python call
        # saved is a measurable share of the per-frame cost (docs/crypto-worker.md, Speed).
        recv, nng_socket, buffer, size = self._nng_recv, self._nng_socket, self._buffer, self._size
        view, capacity, unpack_from = self._view, self._capacity, _HEADER.unpack_from
        wanted = (MSG_PACKET_OUT, self._port)
        header_bytes = _HEADER_BYTES
        flags = 0  # the first receive waits up to the poll interval, the rest take what is queued
        while True:
            size[0] = capacity
            error = recv(nng_socket, buffer, size, flags)
            if error:
                if error in (_NNG_ETIMEDOUT, _NNG_EAGAIN):
                    return frames
                check_err(error)
            flags = _NNG_FLAG_NONBLOCK
            length = size[0]
            if header_bytes <= length < capacity:
                kind, port, more = unpack_from(view)
            else:
                kind = port = more = -1
            if (kind, port) == wanted and more == length - header_bytes:
                frames.append(view[header_bytes:length])
            else:
                frame = self._frame_in_buffer(length)  # says why the message is ignored
                if frame is None:
                    continue
                frames.append(frame)
            if len(frames) >= max_frames:
                return frames

    def send_batch(self, frames: list[bytes]) -> None:
        pack = _HEADER.pack
        send = self._nng_send
        socket = self._nng_socket
        port = self._port
        for frame in frames:
            message = pack(MSG_PACKET_IN, port, len(frame)) + frame
            # Blocking send (the socket's 1 s send timeout), as pynng's send() does.
            error = send(socket, message, len(message), 0)
            if error:
                check_err(error)

    def close(self) -> None:
        self._socket.close()
