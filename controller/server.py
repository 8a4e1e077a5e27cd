"""Server assembly: ``create_server(settings)`` builds and binds (tests use port 0);
``serve(settings)`` runs it until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from controller.capabilities import DEFAULT_CAPABILITIES, Capabilities
from controller.dataplane import DataPlane, DetachedDataPlane
from controller.sealing import KeySealer, load_or_create_store_key
from controller.service import TunnelService
from controller.servicer import V1ALPHA1_SERVICE, V2_SERVICE, IpTunnelServicer, v2_handler
from controller.settings import Settings
from controller.store import DATABASE_FILE, TunnelStore
from controller.tls import server_credentials
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc

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

    async def start(self) -> None:
        """Start serving and mark every service SERVING in the health service."""
        await self.server.start()
        for name in ("", *SERVED_SERVICES):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float | None = 1.0) -> None:
        """Report NOT_SERVING, drain calls for ``grace`` seconds, close the store."""
        await self._health.enter_graceful_shutdown()
        await self.server.stop(grace)
        self.store.close()


def _bind_address(listen: str) -> str:
    host, separator, port = listen.rpartition(":")
    if not separator or not port.isdecimal() or not host:
        raise ValueError(f"--listen {listen!r} is not HOST:PORT (e.g. localhost:3443)")
    return listen


async def create_server(settings: Settings, *, dataplane: DataPlane | None = None,
                        capabilities: Capabilities = DEFAULT_CAPABILITIES) -> ControllerServer:
    """Open the state, build the services and bind the port (nothing is served until start)."""
    settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = TunnelStore(settings.state_dir / DATABASE_FILE,
                        KeySealer(load_or_create_store_key(settings.state_dir)))
    dataplane = dataplane if dataplane is not None else DetachedDataPlane()
    service = TunnelService(store=store, dataplane=dataplane, capabilities=capabilities)
    servicer = IpTunnelServicer(service, log_wire=settings.log_wire)

    # No SO_REUSEPORT: a second controller on the same port must fail, not share the traffic.
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    pb_grpc.add_ipTunnelServiceServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers((v2_handler(servicer),))
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
    return ControllerServer(server=server, port=port, store=store, service=service,
                            health_servicer=health_servicer, cert_path=cert_path,
                            dataplane=dataplane)


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
    log.info("services: %s, grpc.health.v1.Health, server reflection",
             ", ".join(SERVED_SERVICES))
    if isinstance(controller.dataplane, DetachedDataPlane):
        log.warning("data plane: detached — changes are validated and stored but not "
                    "programmed, and every counter reads 0 until the P4Runtime data plane is "
                    "attached")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("shutting down")
    await controller.stop()
