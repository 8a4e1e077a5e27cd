"""A thin typed wrapper over the v1alpha1 stub: the rpcs tunnelctl uses, with results it can print.

It speaks ``tunneloffload.v1alpha1`` (what existing clients speak); the server serves v2 from the
same implementation on the same port.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc

__all__ = ["CreateOutcome", "RequestOutcome", "TunnelClient", "error_codes", "outcome_of"]

_ERROR_ENUMS = (
    ("matchError", pb.MatchError),
    ("tunnelError", pb.TunnelError),
    ("ipsecError", pb.IPSecError),
    ("geneveError", pb.GeneveError),
)


@dataclass(frozen=True, kw_only=True)
class RequestOutcome:
    """What the server said about one request of a createIpTunnel stream."""

    index: int
    tunnel_id: int
    failed: bool
    reason: str
    error_codes: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class CreateOutcome:
    """The whole stream's answer: the status name and one outcome per request sent."""

    status: str
    outcomes: tuple[RequestOutcome, ...]

    @property
    def ok(self) -> bool:
        return self.status == "_TUNNEL_ACCEPTED" and not any(o.failed for o in self.outcomes)


class TunnelClient:
    """The TunnelOffload rpcs over one channel, each with the same deadline."""

    def __init__(self, channel: grpc.Channel, *, timeout: float) -> None:
        self._stub = pb_grpc.ipTunnelServiceStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)
        self._timeout = timeout

    def health(self, service: str = "") -> str:
        """The standard gRPC health status name of ``service`` ("" = the whole server)."""
        reply = self._health.Check(health_pb2.HealthCheckRequest(service=service),
                                   timeout=self._timeout)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    def capabilities(self) -> pb.CapabilityResponse:
        return self._stub.Capabilities(pb.CapabilityRequest(), timeout=self._timeout)

    def send(self, requests: Sequence[pb.ipTunnelRequest]) -> CreateOutcome:
        """Send ``requests`` as one createIpTunnel stream and pair each with its result."""
        reply = self._stub.createIpTunnel(iter(requests), timeout=self._timeout)
        return outcome_of(requests, reply)

    def get(self, tunnel_id: int) -> pb.ipTunnelResponse:
        return self._stub.getIpTunnel(pb.tunnelId(tunnelId=tunnel_id), timeout=self._timeout)

    def stats(self, tunnel_id: int) -> pb.ipTunnelStatsResponse:
        return self._stub.getIpTunnelStats(pb.tunnelId(tunnelId=tunnel_id), timeout=self._timeout)

    def all_tunnels(self, page_size: int = 0) -> Iterator[pb.ipTunnelResponse]:
        pages = self._stub.getAllIpTunnels(pb.tunnelRequestArgs(tunnelsPerRequest=page_size),
                                           timeout=self._timeout)
        for page in pages:
            yield from page.responses

    def all_stats(self, page_size: int = 0) -> Iterator[pb.ipTunnelStatsResponse]:
        pages = self._stub.getAllIpTunnelsStats(
            pb.tunnelRequestArgs(tunnelsPerRequest=page_size), timeout=self._timeout)
        for page in pages:
            yield from page.responses


def outcome_of(requests: Sequence[pb.ipTunnelRequest],
               reply: pb.createIpTunnelResponses) -> CreateOutcome:
    """Pair each request of a stream with what the answer says about it (bit i of errorStatus
    and/or the i-th response's error; a table-full/unavailable stream fails every request it
    gives no response for)."""
    status = pb.ADD_TUNNEL_STATUS.Name(reply.requestStatus)
    outcomes = []
    for index, request in enumerate(requests):
        response = reply.responses[index] if index < len(reply.responses) else None
        outcomes.append(_outcome(index, request, response, reply, status))
    return CreateOutcome(status=status, outcomes=tuple(outcomes))


def error_codes(error: pb.Error) -> tuple[str, ...]:
    """The non-zero error enum names of an ``Error`` (zero is ambiguous in proto3, see api.md)."""
    detail = error.errorMessage
    return tuple(enum.Name(getattr(detail, name)) for name, enum in _ERROR_ENUMS
                 if getattr(detail, name))


def _outcome(index: int, request: pb.ipTunnelRequest, response: pb.createIpTunnelResponse | None,
             reply: pb.createIpTunnelResponses, status: str) -> RequestOutcome:
    bit_set = index < 64 and bool(reply.errorStatus >> index & 1)
    has_error = response is not None and response.HasField("error") and bool(
        response.error.errorString)
    # A table-full/unavailable stream with no response for this request says nothing about it
    # but failure. With one, the response decides: an unavailable data plane can stop a stream
    # after batches of it were applied, and those requests' responses carry no error.
    stream_failed = response is None and status in ("_TUNNEL_TABLE_FULL",
                                                    "_TUNNEL_TABLE_UNAVAILABLE")
    failed = bit_set or has_error or stream_failed
    reason = ""
    codes: tuple[str, ...] = ()
    if response is not None and response.HasField("error"):
        reason = response.error.errorString
        codes = error_codes(response.error)
    if failed and not reason:
        reason = status if stream_failed else "rejected (the server gave no reason)"
    tunnel_id = response.tunnelId if response is not None and response.tunnelId else \
        request.tunnelId
    return RequestOutcome(index=index, tunnel_id=tunnel_id, failed=failed, reason=reason,
                          error_codes=codes)
