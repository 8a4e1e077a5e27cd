"""Starts the SA service on its Unix socket and the packet loop on the crypto port.

`create_server(settings, table)` only builds and binds, so tests can start one on a temporary
socket; `Worker` owns the running pieces and stops them in order.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import threading
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from crypto_worker.esp import DEFAULT_MTU
from crypto_worker.packet_loop import DEFAULT_BATCH, PacketLoop
from crypto_worker.ports.afpacket import AfPacketPort, FanoutMembership
from crypto_worker.ports.base import CryptoPortIo
from crypto_worker.ports.nanomsg import NanomsgPort
from crypto_worker.processor import FrameProcessor
from crypto_worker.reservation import DEFAULT_BLOCK
from crypto_worker.sa_state import SaStateStore
from crypto_worker.sa_table import SaTable
from crypto_worker.servicer import CryptoWorkerServicer
from crypto_worker.state_layout import check_layout
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
    mtu: int = DEFAULT_MTU
    state_dir: str | None = None
    sequence_block: int = DEFAULT_BLOCK

    def __post_init__(self) -> None:
        if (self.nanomsg_url is None) == (self.interface is None):
            raise ValueError(
                f"nanomsg_url: {self.nanomsg_url!r}, interface: {self.interface!r}; "
                "give exactly one"
            )


class SaSocketError(Exception):
    """The SA service's socket path cannot be used safely (named in the message)."""


def check_socket_directory(path: str) -> None:
    """Refuse a socket directory other users could swap the socket in.

    Keys arrive over this socket, so whoever can replace it can receive them: its directory must
    belong to this user (or root) and not be writable by group or others, unless sticky (/tmp).
    """
    directory = os.path.dirname(os.path.abspath(path))
    info = os.stat(directory)
    if info.st_uid not in (os.getuid(), 0):
        raise SaSocketError(f"sa_socket: directory {directory!r} belongs to uid {info.st_uid}")
    if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
        raise SaSocketError(
            f"sa_socket: directory {directory!r} is writable by others "
            f"(mode {stat.S_IMODE(info.st_mode):o}) and not sticky"
        )


def remove_stale_socket(path: str) -> None:
    """Remove a socket a dead worker left behind; refuse anything else at ``path``.

    A regular file, a directory or a socket some process still answers on is never deleted: it is
    either a mistake in --sa-socket or another worker, and both deserve an error, not an unlink.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise SaSocketError(f"sa_socket: {path!r} exists and is not a socket; not removing it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)   # nobody listens: stale
        return
    except OSError as error:
        raise SaSocketError(f"sa_socket: cannot probe {path!r}: {error.strerror}") from None
    finally:
        probe.close()
    raise SaSocketError(f"sa_socket: {path!r} is in use by a running process")


def create_server(
    settings: WorkerSettings,
    table: SaTable,
    health_servicer: health.HealthServicer | None = None,
) -> grpc.Server:
    """The SA service bound to `unix:<sa_socket>` (not started); the socket is owner-only.

    The worker passes its `health_servicer` so it can turn it NOT_SERVING if the packet loop
    dies."""
    check_socket_directory(settings.sa_socket)
    remove_stale_socket(settings.sa_socket)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    worker_pb2_grpc.add_CryptoWorkerServicer_to_server(CryptoWorkerServicer(table), server)
    health_servicer = health_servicer or health.HealthServicer()
    health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bind_sa_socket(server, settings.sa_socket)
    return server


def bind_sa_socket(server: grpc.Server, path: str) -> None:
    """Binds `server` to `unix:<path>`, owner-only (0600)."""
    # gRPC creates the socket file itself, so its mode comes from the umask; this runs before the
    # worker starts any thread of its own. The chmod afterwards makes the mode certain either way.
    old_umask = os.umask(0o077)
    try:
        server.add_insecure_port(f"unix:{path}")
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)


def open_port(settings: WorkerSettings,
              fanout_membership: FanoutMembership | None = None) -> CryptoPortIo:
    if settings.nanomsg_url is not None:
        return NanomsgPort(settings.nanomsg_url, settings.crypto_port)
    assert settings.interface is not None
    return AfPacketPort(settings.interface, fanout_membership=fanout_membership)


def open_table(settings: WorkerSettings, state_dir: str | None) -> SaTable:
    """The SA table on the durable store in `state_dir` (in memory without one, with a
    WARNING: nothing survives a restart)."""
    if state_dir is not None:
        store = SaStateStore.open(state_dir)
    else:
        store = SaStateStore.in_memory()
        log.warning("no --state-dir: SA state is kept in memory only; after a restart no SA "
                    "can be resumed and used encrypt keys are not recognised")
    return SaTable(store, block=settings.sequence_block)


class Worker:
    """The SA service plus the packet loop thread, sharing one SaTable."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        if settings.state_dir is not None:
            check_layout(settings.state_dir, 1)
        self.table = open_table(settings, settings.state_dir)
        self._health = health.HealthServicer()
        self._server = create_server(settings, self.table, self._health)
        self._socket_inode = os.lstat(settings.sa_socket).st_ino
        self._port = open_port(settings)
        self._loop = PacketLoop(
            self._port, FrameProcessor(self.table, mtu=settings.mtu), batch=settings.batch
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop.run,
            args=(self._stop, self._loop_died),
            name="packet-loop",
            daemon=True,
        )

    def _loop_died(self) -> None:
        """The packet loop ended on an error: nothing is transformed any more, so the worker
        must not look healthy (the controller reads this health and reports it)."""
        for service in ("", SERVICE_NAME):
            self._health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        log.error("health is NOT_SERVING: the packet loop is dead; restart the worker")

    def start(self) -> None:
        self._server.start()
        self._thread.start()
        log.info("SA service on unix:%s", self.settings.sa_socket)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.stop(grace=1).wait()
        self._port.close()
        self.table.close()
        # Remove the socket only if it is still ours (not one a newer worker bound meanwhile).
        try:
            if os.lstat(self.settings.sa_socket).st_ino == self._socket_inode:
                os.unlink(self.settings.sa_socket)
        except FileNotFoundError:
            pass
