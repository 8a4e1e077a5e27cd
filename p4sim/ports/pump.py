"""Moves frames between the transports and the switch: one pipeline thread, in arrival order.

Transports hand frames in from their receive threads, all the frames of one wake-up in one
call; the pipeline thread takes every batch that is waiting, runs each frame through the
processor (which takes the switch lock per packet, so P4Runtime write batches land between
packets), then sends what the switch emitted, grouped by transport, one `send_batch` per
transport and batch. Frames from one transport are processed in arrival order, and the outputs
of each port leave in the order the switch emitted them (BMv2's per-port order). A frame for a
port nobody carries is counted, never lost silently. Counters are updated once per batch.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from p4sim.ports.pcap import PcapCapture
from p4sim.ports.transport import Transport

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 256  # frames run per pipeline wake-up before their outputs are sent


class FrameSwitch(Protocol):
    """The switch as the dataplane sees it (``p4sim.switch.Switch`` fits)."""

    def process(self, ingress_port: int, frame: bytes) -> list[tuple[int, bytes]]: ...


@dataclass(frozen=True, kw_only=True)
class PumpStats:
    frames_in: int
    frames_out: int
    frames_unroutable: int
    processing_errors: int


class PacketPump:
    """Runs the switch on frames from ``device_socket`` (all ports) and per-port transports."""

    def __init__(
        self,
        processor: FrameSwitch,
        *,
        device_socket: Transport | None = None,
        port_transports: Mapping[int, Transport] | None = None,
        batch_size: int = DEFAULT_BATCH,
        capture: PcapCapture | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._processor = processor
        self._device_socket = device_socket
        self._port_transports = dict(port_transports or {})
        self._batch_size = batch_size
        self._capture = capture
        self._queue: queue.SimpleQueue[list[tuple[int, bytes]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._counts_lock = threading.Lock()
        self._frames_in = 0
        self._frames_out = 0
        self._unroutable = 0
        self._errors = 0

    @property
    def transports(self) -> list[Transport]:
        found = list(self._port_transports.values())
        if self._device_socket is not None:
            found.append(self._device_socket)
        return found

    def stats(self) -> PumpStats:
        with self._counts_lock:
            return PumpStats(
                frames_in=self._frames_in,
                frames_out=self._frames_out,
                frames_unroutable=self._unroutable,
                processing_errors=self._errors,
            )

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._pipeline_loop, name="p4sim-pipeline", daemon=True
        )
        self._thread.start()
        for transport in self.transports:
            transport.start(self.inject_batch)
            logger.info("listening for frames on %s", transport.name)

    def stop(self) -> None:
        for transport in self.transports:
            transport.close()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None
        if self._capture is not None:
            self._capture.close()

    def inject(self, port: int, frame: bytes) -> None:
        """Queue one frame entering the switch on ``port`` (thread-safe)."""
        self._queue.put([(port, frame)])

    def inject_batch(self, frames: list[tuple[int, bytes]]) -> None:
        """Queue frames entering the switch, [(port, frame), ...], in order (thread-safe); the
        list is the dataplane's from now on."""
        self._queue.put(frames)

    def transmit(self, outputs: Iterable[tuple[int, bytes]]) -> None:
        """Send frames that leave the switch, each on the transport carrying its port."""
        by_transport: dict[int, tuple[Transport, list[tuple[int, bytes]]]] = {}
        unroutable = 0
        transports, default = self._port_transports, self._device_socket
        debug = logger.isEnabledFor(logging.DEBUG)
        for port, frame in outputs:
            transport = transports.get(port, default)
            if transport is None:
                unroutable += 1
                if debug:
                    logger.debug("no transport carries port %d; frame of %d bytes dropped",
                                 port, len(frame))
                continue
            if debug:
                logger.debug("frame out on port %d, %d bytes", port, len(frame))
            entry = by_transport.get(id(transport))
            if entry is None:
                by_transport[id(transport)] = (transport, [(port, frame)])
            else:
                entry[1].append((port, frame))
        if self._capture is not None:
            self._capture.record_out([out for _, group in by_transport.values()
                                      for out in group])
        sent = 0
        for transport, frames in by_transport.values():
            transport.send_batch(frames)
            sent += len(frames)
        with self._counts_lock:
            self._unroutable += unroutable
            self._frames_out += sent

    def _pipeline_loop(self) -> None:
        get, get_nowait = self._queue.get, self._queue.get_nowait
        while True:
            batch = get()
            if batch is None:
                return
            frames = batch
            stop = False
            while len(frames) < self._batch_size:  # small batches waiting: run them together
                try:
                    more = get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                if frames is batch:
                    frames = list(batch)
                frames += more
            if frames:
                self._run(frames)
            if stop:
                return

    def _run(self, frames: Sequence[tuple[int, bytes]]) -> None:
        process = self._processor.process
        outputs: list[tuple[int, bytes]] = []
        errors = 0
        debug = logger.isEnabledFor(logging.DEBUG)
        if self._capture is not None:
            self._capture.record_in(frames)
        for port, frame in frames:
            if debug:
                logger.debug("frame in on port %d, %d bytes", port, len(frame))
            try:
                outputs += process(port, frame)
            except Exception:
                errors += 1
                logger.exception("processing a frame from port %d failed; frame dropped", port)
        with self._counts_lock:
            self._frames_in += len(frames)
            self._errors += errors
        if outputs:
            self.transmit(outputs)
