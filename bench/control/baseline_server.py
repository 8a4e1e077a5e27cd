"""The cost floor of the TunnelOffload API on this machine: a v1alpha1 ipTunnelService that
only keeps CREATE requests in a dict and answers stats with zero counters.

Same transport as the controller's default (gRPC over TLS with a self-signed localhost
certificate, the same message size limit), same messages, no validation, no store, no data
plane. ``make bench-control`` measures every workload against it in the same run.

Run alone: .venv/bin/python -m bench.control.baseline_server STATE_DIR  (prints
``baseline ready port=N cert=PATH``)
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from controller.servicer import MAX_REQUEST_BYTES
from controller.tls import ensure_self_signed
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc


class DictServicer(pb_grpc.ipTunnelServiceServicer):
    """Stores each CREATE by tunnel id; stats are zeros of the stored tunnels."""

    def __init__(self) -> None:
        self.tunnels: dict[int, pb.ipTunnelRequest] = {}

    async def Capabilities(self, request: pb.CapabilityRequest,  # noqa: N802
                           context: grpc.aio.ServicerContext) -> pb.CapabilityResponse:
        return pb.CapabilityResponse()

    async def createIpTunnel(self, request_iterator: AsyncIterator[pb.ipTunnelRequest],  # noqa: N802
                             context: grpc.aio.ServicerContext) -> pb.createIpTunnelResponses:
        answer = pb.createIpTunnelResponses(requestStatus=pb._TUNNEL_ACCEPTED)
        async for request in request_iterator:
            self.tunnels[request.tunnelId] = request
            answer.responses.add(tunnelId=request.tunnelId)
        return answer

    async def getIpTunnelStats(self, request: pb.tunnelId,  # noqa: N802
                               context: grpc.aio.ServicerContext) -> pb.ipTunnelStatsResponse:
        return pb.ipTunnelStatsResponse(tunnelId=request.tunnelId,
                                        tunnelCounters=pb.counters())

    async def getAllIpTunnelsStats(self, request: pb.tunnelRequestArgs,  # noqa: N802
                                   context: grpc.aio.ServicerContext
                                   ) -> AsyncIterator[pb.ipTunnelStatsResponses]:
        page = max(1, request.tunnelsPerRequest)
        ids = sorted(self.tunnels)
        for first in range(0, len(ids), page):
            yield pb.ipTunnelStatsResponses(responses=[
                pb.ipTunnelStatsResponse(tunnelId=i, tunnelCounters=pb.counters())
                for i in ids[first:first + page]])


async def serve(state_dir: Path) -> None:
    cert, key = ensure_self_signed(state_dir)
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_REQUEST_BYTES)])
    pb_grpc.add_ipTunnelServiceServicer_to_server(DictServicer(), server)
    credentials = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    print(f"baseline ready port={port} cert={cert}", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1])))
