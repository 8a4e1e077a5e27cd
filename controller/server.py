"""Server assembly: ``create_server(settings)`` builds and binds (tests use port 0);
``serve(settings)`` runs it until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import stat
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry

from controller.capabilities import (
    Capabilities,
    capabilities_for_p4info,
    capabilities_for_pipeline,
)
from controller.crypto_client import CryptoWorkerClient, worker_ciphers
from controller.dataplane import DataPlane, DetachedDataPlane
from controller.journal_recovery import RecoveringStore
from controller.metrics import MetricsServer, RequestMetrics, start_metrics
from controller.p4rt.connection import SwitchTarget
from controller.p4runtime_dataplane import DataPlaneStatus, P4RuntimeDataPlane
from controller.pipeline import Pipeline
from controller.routes import load_routes
from controller.sealing import KeySealer, load_or_create_store_key
from controller.service import TunnelService
from controller.servicer import (
    MAX_REQUEST_BYTES,
    V1ALPHA1_SERVICE,
    V2_SERVICE,
    IpTunnelServicer,
    service_handlers,
)
from controller.settings import Settings
from controller.store import DATABASE_FILE, TunnelStore
from controller.tls import server_credentials, switch_channel_tls

log = logging.getLogger(__name__)

SERVED_SERVICES = (V1ALPHA1_SERVICE, V2_SERVICE)


class ControllerServer:
    """A bound, not yet started controller: the gRPC server, its store and its port."""

    def __init__(self, *, server: grpc.aio.Server, port: int, store: TunnelStore,
                 service: TunnelService, health_servicer: health.aio.HealthServicer,
                 cert_path: Path | None, dataplane: DataPlane) -> None:
        self.server = server
        self.port = port
        self.store = store
        self.service = service
        self.cert_path = cert_path
        self.dataplane = dataplane
        self._health = health_servicer
        self._stopping = False
        self.metrics_registry: CollectorRegistry | None = None  # with --metrics-addr
        self.metrics: MetricsServer | None = None
        self.settings_metrics_addr: str | None = None
        self.worker_socket: str | None = None

    async def start(self) -> None:
        """Start serving. Health is SERVING at once with a detached data plane; with the
        P4Runtime data plane only while the switch and the worker are reconciled."""
        await self.server.start()
        if self.metrics_registry is not None and self.settings_metrics_addr is not None:
            self.metrics = start_metrics(self.settings_metrics_addr,
                                         registry=self.metrics_registry, service=self.service,
                                         dataplane=self.dataplane,
                                         worker_socket=self.worker_socket)
        if isinstance(self.dataplane, P4RuntimeDataPlane):
            await self._set_health(False)
            self.dataplane.on_status(self._on_dataplane_status)
            await self.dataplane.start()
        else:
            await self._set_health(True)

    async def _set_health(self, serving: bool) -> None:
        status = (health_pb2.HealthCheckResponse.SERVING if serving
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        for name in ("", *SERVED_SERVICES):
            await self._health.set(name, status)

    async def _on_dataplane_status(self, status: DataPlaneStatus) -> None:
        if self._stopping:
            return
        log.info("data plane %s (switch %s, crypto worker %s)",
                 "available" if status.available else "UNAVAILABLE",
                 "ready" if status.switch_ready else "not ready",
                 "ready" if status.worker_ready else "not ready")
        await self._set_health(status.available)

    async def stop(self, grace: float | None = 1.0) -> None:
        """Report NOT_SERVING, drain calls for ``grace`` seconds, close the store."""
        self._stopping = True
        await self._health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.service.drain()  # streams whose client left still finish (service doc)
        if self.metrics is not None:
            await self.metrics.stop()
        if isinstance(self.dataplane, P4RuntimeDataPlane):
            await self.dataplane.stop()
        self.store.close()


def _bind_address(listen: str) -> str:
    host, separator, port = listen.rpartition(":")
    if not separator or not port.isdecimal() or not host:
        raise ValueError(f"--listen {listen!r} is not HOST:PORT (e.g. localhost:3443)")
    return listen


async def create_server(settings: Settings, *, dataplane: DataPlane | None = None,
                        capabilities: Capabilities | None = None) -> ControllerServer:
    """Open the state, build the services and bind the port (nothing is served until start)."""
    settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    check_state_dir(settings.state_dir)
    store = RecoveringStore(settings.state_dir / DATABASE_FILE,
                            KeySealer(load_or_create_store_key(settings.state_dir)))
    try:
        if dataplane is None:
            dataplane, capabilities = _build_dataplane(settings, store, capabilities)
        elif capabilities is None:
            capabilities = Capabilities()  # the checked-in P4Info's sizes
    except BaseException:
        store.close()
        raise
    service = TunnelService(store=store, dataplane=dataplane, capabilities=capabilities)
    servicer = IpTunnelServicer(service, spool_dir=settings.state_dir,
                                log_wire=settings.log_wire)

    # No SO_REUSEPORT: a second controller on the same port must fail, not share the traffic.
    # Larger messages are refused by gRPC (RESOURCE_EXHAUSTED) before any of our code runs.
    registry = CollectorRegistry() if settings.metrics_addr is not None else None
    interceptors = [RequestMetrics(registry)] if registry is not None else []
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0),
                                      ("grpc.max_receive_message_length", MAX_REQUEST_BYTES)],
                             interceptors=interceptors)
    server.add_generic_rpc_handlers(service_handlers(servicer))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVED_SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME), server)

    try:
        credentials, cert_path = server_credentials(settings)
        address = _bind_address(settings.listen)
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except BaseException:
        store.close()
        raise
    controller = ControllerServer(server=server, port=port, store=store, service=service,
                                  health_servicer=health_servicer, cert_path=cert_path,
                                  dataplane=dataplane)
    controller.metrics_registry = registry
    controller.settings_metrics_addr = settings.metrics_addr
    controller.worker_socket = (str(settings.crypto_worker_socket)
                                if settings.crypto_worker_socket is not None else None)
    return controller


def is_loopback_listen(listen: str) -> bool:
    """True when ``--listen`` is reachable only from this machine (localhost, 127/8, ::1)."""
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or a wildcard address: assume the network reaches it


def exposure_warning(settings: Settings) -> str | None:
    """The start-up warning for an API the network reaches without client authentication:
    every client that gets there may create, change and delete every tunnel."""
    if is_loopback_listen(settings.listen) or settings.tls_client_ca is not None:
        return None
    how = "in PLAINTEXT (--insecure)" if settings.insecure else "without client certificates"
    return (f"--listen {settings.listen} is reachable from the network {how}: any client that "
            "reaches it can create, change and delete every tunnel and hand in keys; use "
            "--tls-client-ca (mutual TLS) or listen on a loopback address")


def check_state_dir(state_dir: Path) -> None:
    """Refuse a state directory others can write to: they could replace the store key, the
    database or the TLS key with their own. Readable by others is only warned about (every
    file in it is 0600)."""
    mode = stat.S_IMODE(state_dir.stat().st_mode)
    if mode & 0o022:
        raise PermissionError(f"--state-dir {state_dir} is writable by group or others "
                              f"(mode {mode:o}); run chmod 700")
    if mode & 0o055:
        log.warning("--state-dir %s is readable by group or others (mode %o); chmod 700 is "
                    "recommended", state_dir, mode)


def _build_dataplane(settings: Settings, store: TunnelStore,
                     capabilities: Capabilities | None) -> tuple[DataPlane, Capabilities]:
    """The data plane the settings ask for, and the Capabilities it supports."""
    if settings.data_plane == "detached":
        return DetachedDataPlane(), capabilities or capabilities_for_p4info(settings.p4info)
    pipeline = Pipeline.load(settings.p4info)
    routes = load_routes(settings.routes) if settings.routes is not None else []
    device_config = (settings.p4_device_config.read_bytes()
                     if settings.p4_device_config is not None else b"")
    worker = (CryptoWorkerClient(str(settings.crypto_worker_socket))
              if settings.crypto_worker_socket is not None else None)
    switch_tls = switch_channel_tls(settings)
    target = SwitchTarget(address=settings.switch_addr, device_id=settings.device_id,
                          p4info=settings.p4info, device_config=device_config, tls=switch_tls)
    dataplane = P4RuntimeDataPlane(pipeline=pipeline, target=target, worker=worker,
                                   routes=routes, book=store, tunnels=lambda: store.tunnels,
                                   worker_poll=settings.worker_poll,
                                   counter_max_age=settings.counter_max_age)
    caps = capabilities_for_pipeline(
        pipeline.sizes, ciphers=worker_ciphers() if worker is not None else frozenset())
    log.info("data plane: P4Runtime %s device %d, P4Info %s (%d tunnels, %d SAs), crypto "
             "worker %s, %d route(s)", settings.switch_addr, settings.device_id,
             settings.p4info, caps.max_tunnels, caps.max_sas,
             settings.crypto_worker_socket or "none (no IPsec)", len(routes))
    if switch_tls is None:
        log.warning("P4Runtime channel to %s is plaintext (no --switch-ca): any process that "
                    "reaches the switch can become primary and rewrite its tables",
                    settings.switch_addr)
    else:
        log.info("P4Runtime channel to %s: %s", settings.switch_addr, switch_tls.describe())
    return dataplane, caps


async def serve(settings: Settings) -> None:
    """Run the controller until SIGINT or SIGTERM."""
    controller = await create_server(settings)
    await controller.start()
    host = settings.listen.rpartition(":")[0]
    if controller.cert_path is None:
        log.warning("serving PLAINTEXT (--insecure) on %s:%d", host, controller.port)
    else:
        mode = "mutual TLS" if settings.tls_client_ca else "TLS"
        log.info("serving %s on %s:%d; clients trust %s", mode, host, controller.port,
                 controller.cert_path)
    warning = exposure_warning(settings)
    if warning is not None:
        log.warning("%s", warning)
    log.info("services: %s, grpc.health.v1.Health, server reflection",
             ", ".join(SERVED_SERVICES))
    if isinstance(controller.dataplane, DetachedDataPlane):
        log.warning("data plane: detached (--data-plane detached) — changes are validated "
                    "and stored but not "
                    "programmed, and every counter reads 0 until the P4Runtime data plane is "
                    "attached")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("shutting down")
    await controller.stop()
