"""Client helpers for the controller tests: TLS channels, readiness polling, stream calls."""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from controller.server import ControllerServer
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc

READY_TIMEOUT = 10.0


async def wait_serving(channel: grpc.aio.Channel) -> None:
    """Poll the health service until SERVING (never sleep-and-hope)."""
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=""),
                                timeout=READY_TIMEOUT, wait_for_ready=True)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def tls_channel(controller: ControllerServer, **credentials: Any) -> grpc.aio.Channel:
    assert controller.cert_path is not None
    creds = grpc.ssl_channel_credentials(controller.cert_path.read_bytes(), **credentials)
    return grpc.aio.secure_channel(f"localhost:{controller.port}", creds)


async def create(stub: pb_grpc.ipTunnelServiceStub,
                 *requests: pb.ipTunnelRequest) -> pb.createIpTunnelResponses:
    """Send one createIpTunnel stream."""
    return await stub.createIpTunnel(iter(requests), timeout=10)


async def all_tunnels(stub: pb_grpc.ipTunnelServiceStub) -> list[pb.ipTunnelResponse]:
    """Every tunnel as the server reports it (one page)."""
    pages = [page async for page in stub.getAllIpTunnels(pb.tunnelRequestArgs(), timeout=10)]
    return [item for page in pages for item in page.responses]
