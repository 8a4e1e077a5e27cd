"""The worker's data path: read a batch from the crypto port, transform it, write it back."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from crypto_worker.ports.base import CryptoPortIo
from crypto_worker.processor import FrameProcessor

log = logging.getLogger(__name__)

DEFAULT_BATCH = 64


class PacketLoop:
    """Runs until `stop` is set; one thread, so per-SA state needs no lock.

    Per-frame errors never reach this loop (FrameProcessor drops and counts them); what can end
    it early is the port itself failing. `run` then logs at ERROR and calls `on_death`, which
    the worker uses to turn its health NOT_SERVING: a dead data path is never reported healthy.
    """

    def __init__(
        self, port: CryptoPortIo, processor: FrameProcessor, *, batch: int = DEFAULT_BATCH
    ) -> None:
        self._port = port
        self._processor = processor
        self._batch = batch

    def run(self, stop: threading.Event, on_death: Callable[[], None] = lambda: None) -> None:
        try:
            self._run(stop)
        except BaseException:  # noqa: BLE001 - logged here; the thread ends either way
            log.error("packet loop on %r died; no frame is processed any more", self._port,
                      exc_info=True)
            on_death()

    def _run(self, stop: threading.Event) -> None:
        log.info("packet loop started on %r, batch %s", self._port, self._batch)
        recv_batch = self._port.recv_batch
        send_batch = self._port.send_batch
        process_batch = self._processor.process_batch
        while not stop.is_set():
            frames = recv_batch(self._batch)
            if frames:
                replies = process_batch(frames)
                if replies:
                    send_batch(replies)
        log.info("packet loop stopped")
