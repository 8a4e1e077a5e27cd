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

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<iii")
MSG_PORT_ADD = 0
MSG_PACKET_IN = 3  # towards the switch
MSG_PACKET_OUT = 4  # from the switch


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

    def _frame_of(self, message: bytes) -> bytes | None:
        if len(message) < _HEADER.size:
            log.warning("ignored a %s-byte message shorter than the header", len(message))
            return None
        kind, port, more = _HEADER.unpack_from(message)
        if kind != MSG_PACKET_OUT or port != self._port:
            log.debug("ignored message type %s for port %s", kind, port)
            return None
        frame = message[_HEADER.size :]
        if len(frame) != more:
            log.warning("ignored a frame of %s bytes declared as %s", len(frame), more)
            return None
        return frame

    def recv_batch(self, max_frames: int) -> list[bytes]:
        if not self._announced:
            self._announce()
        frames: list[bytes] = []
        try:
            message = self._socket.recv()
        except pynng.Timeout:
            return frames
        while True:
            frame = self._frame_of(message)
            if frame is not None:
                frames.append(frame)
                if len(frames) >= max_frames:
                    return frames
            try:
                message = self._socket.recv(block=False)
            except pynng.TryAgain:
                return frames

    def send_batch(self, frames: list[bytes]) -> None:
        pack = _HEADER.pack
        send = self._socket.send
        for frame in frames:
            send(pack(MSG_PACKET_IN, self._port, len(frame)) + frame)

    def close(self) -> None:
        self._socket.close()
