"""Moves frames between the transports and the switch: one pipeline thread, in arrival order.

Transports hand frames in from their receive threads; the pipeline thread takes them in batches
(up to ``batch_size`` at a time, so a burst costs one wake-up) and runs each through the
processor, which takes the switch lock per packet, so P4Runtime write batches land between
packets. Frames the switch emits go to the transport bound to the egress port, else to the
device socket; a frame for a port nobody carries is counted, never lost silently.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from p4sim.ports.transport import Transport

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 64
_STOP = object()


class FrameProcessor(Protocol):
    """The switch as the dataplane sees it (``p4sim.switch.Switch`` fits)."""

    def process(self, ingress_port: int, frame: bytes) -> list[tuple[int, bytes]]: ...


@dataclass(frozen=True, kw_only=True)
class DataplaneStats:
    frames_in: int
    frames_out: int
    frames_unroutable: int
    processing_errors: int


class Dataplane:
    """Runs the switch on frames from ``device_socket`` (all ports) and per-port transports."""

    def __init__(
        self,
        processor: FrameProcessor,
        *,
        device_socket: Transport | None = None,
        port_transports: Mapping[int, Transport] | None = None,
        batch_size: int = DEFAULT_BATCH,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._processor = processor
        self._device_socket = device_socket
        self._port_transports = dict(port_transports or {})
        self._batch_size = batch_size
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
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

    def stats(self) -> DataplaneStats:
        with self._counts_lock:
            return DataplaneStats(
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
            transport.start(self.inject)
            logger.info("listening for frames on %s", transport.name)

    def stop(self) -> None:
        for transport in self.transports:
            transport.close()
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=5)
            self._thread = None

    def inject(self, port: int, frame: bytes) -> None:
        """Queue one frame entering the switch on ``port`` (thread-safe)."""
        self._queue.put((port, frame))

    def transmit(self, outputs: Iterable[tuple[int, bytes]]) -> None:
        """Send frames that leave the switch, each on the transport carrying its port."""
        for port, frame in outputs:
            transport = self._port_transports.get(port, self._device_socket)
            if transport is None:
                with self._counts_lock:
                    self._unroutable += 1
                logger.debug(
                    "no transport carries port %d; frame of %d bytes dropped", port, len(frame)
                )
                continue
            logger.debug("frame out on port %d, %d bytes", port, len(frame))
            transport.send(port, frame)
            with self._counts_lock:
                self._frames_out += 1

    def _pipeline_loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self._batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for item in batch:
                if item is _STOP:
                    return
                assert isinstance(item, tuple)
                self._run_one(item[0], item[1])

    def _run_one(self, port: int, frame: bytes) -> None:
        with self._counts_lock:
            self._frames_in += 1
        logger.debug("frame in on port %d, %d bytes", port, len(frame))
        try:
            outputs = self._processor.process(port, frame)
        except Exception:
            with self._counts_lock:
                self._errors += 1
            logger.exception("processing a frame from port %d failed; frame dropped", port)
            return
        self.transmit(outputs)
