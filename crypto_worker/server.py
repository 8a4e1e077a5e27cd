"""Starts the SA service on its Unix socket and the packet loop on the crypto port.

`create_server(settings, table)` only builds and binds, so tests can start one on a temporary
socket; `Worker` owns the running pieces and stops them in order.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from crypto_worker.packet_loop import DEFAULT_BATCH, PacketLoop
from crypto_worker.ports.afpacket import AfPacketPort
from crypto_worker.ports.base import CryptoPortIo
from crypto_worker.ports.nanomsg import NanomsgPort
from crypto_worker.processor import FrameProcessor
from crypto_worker.sa_table import SaTable
from crypto_worker.servicer import CryptoWorkerServicer
from tunneloffload.crypto.v1 import worker_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = "tunneloffload.crypto.v1.CryptoWorker"
CRYPTO_PORT = 64  # docs/dataplane.md


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """Where the SA service listens and which crypto port I/O to use (exactly one of the two)."""

    sa_socket: str
    nanomsg_url: str | None = None
    interface: str | None = None
    crypto_port: int = CRYPTO_PORT
    batch: int = DEFAULT_BATCH

    def __post_init__(self) -> None:
        if (self.nanomsg_url is None) == (self.interface is None):
            raise ValueError(
                f"nanomsg_url: {self.nanomsg_url!r}, interface: {self.interface!r}; "
                "give exactly one"
            )


def create_server(settings: WorkerSettings, table: SaTable) -> grpc.Server:
    """The SA service bound to `unix:<sa_socket>` (not started); the socket is owner-only."""
    if os.path.exists(settings.sa_socket):
        os.unlink(settings.sa_socket)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    worker_pb2_grpc.add_CryptoWorkerServicer_to_server(CryptoWorkerServicer(table), server)
    health_servicer = health.HealthServicer()
    health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    old_umask = os.umask(0o077)
    try:
        server.add_insecure_port(f"unix:{settings.sa_socket}")
    finally:
        os.umask(old_umask)
    return server


def open_port(settings: WorkerSettings) -> CryptoPortIo:
    if settings.nanomsg_url is not None:
        return NanomsgPort(settings.nanomsg_url, settings.crypto_port)
    assert settings.interface is not None
    return AfPacketPort(settings.interface)


class Worker:
    """The SA service plus the packet loop thread, sharing one SaTable."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.table = SaTable()
        self._server = create_server(settings, self.table)
        self._port = open_port(settings)
        self._loop = PacketLoop(self._port, FrameProcessor(self.table), batch=settings.batch)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop.run, args=(self._stop,), name="packet-loop", daemon=True
        )

    def start(self) -> None:
        self._server.start()
        self._thread.start()
        log.info("SA service on unix:%s", self.settings.sa_socket)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.stop(grace=1).wait()
        self._port.close()
        if os.path.exists(self.settings.sa_socket):
            os.unlink(self.settings.sa_socket)
