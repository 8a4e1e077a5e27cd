"""gRPC in/out only: wire messages to service calls and back, for both API versions.

One servicer implements ``tunneloffload.v1alpha1.ipTunnelService``. It and the v2 service
``tunneloffload.v2.IpTunnelService`` are served by the same methods through generic handlers
(:func:`service_handlers`) that (de)serialize with the v1alpha1 message classes — the two
versions have identical field numbers and types, so their bytes are the same (docs/api.md).
createIpTunnel's requests are not deserialized here: their bytes go to a spool on disk
(controller/spool.py) as they arrive, and the service parses them when it judges the stream.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import grpc
from google.protobuf import text_format
from google.protobuf.message import DecodeError

from controller.dataplane import DataPlaneUnavailable
from controller.errors import GRPC_STATUS
from controller.read_messages import (
    capabilities_to_proto,
    counters_to_proto,
    error_to_proto,
    stats_responses,
    tunnel_to_proto,
)
from controller.service import TunnelService
from controller.spool import RequestSpool
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc
from tunneloffload.v2 import tunneloffload_pb2 as pb_v2

log = logging.getLogger(__name__)
wire_log = logging.getLogger("controller.wire")

V1ALPHA1_SERVICE = pb.DESCRIPTOR.services_by_name["ipTunnelService"].full_name
V2_SERVICE = pb_v2.DESCRIPTOR.services_by_name["IpTunnelService"].full_name
# Bounds for createIpTunnel streams. A stream is read whole before it is validated and applied
# (the API's capacity rule — a stream whose peak does not fit applies nothing — needs the whole
# stream before the first write), into a sealed spool file in the state directory
# (controller/spool.py), so these bound disk, not memory: at most MAX_STREAM_REQUESTS requests
# (twice the default table: a stream that replaces every tunnel), one message at most
# MAX_REQUEST_BYTES (the server's max_receive_message_length; a decrypt tunnel with thousands of
# SAs is ~180 KB), one stream at most MAX_STREAM_BYTES (2 KiB per request at the request bound;
# an IPsec CREATE is ~100 bytes, one with 16 SAs ~1.3 KB), and all streams being read or
# applied at the same time at most MAX_BUFFERED_BYTES together. A stream that would pass a
# bound is refused (RESOURCE_EXHAUSTED) instead of waiting, so clients that open streams and
# never finish them cannot block the others — only fill the shared budget while they send.
MAX_STREAM_REQUESTS = 1 << 17
MAX_REQUEST_BYTES = 1 << 20
MAX_STREAM_BYTES = 256 << 20
MAX_BUFFERED_BYTES = 1 << 30

_R = TypeVar("_R")


def redacted(message: Any) -> str:
    """One-line text of a message with every key field replaced — for wire logging.

    Walks every set field of every nested message (whatever the message type, API version or
    nesting), so a key cannot reach the log through a path this function did not foresee.
    """
    copy = type(message)()
    copy.CopyFrom(message)
    _redact(copy)
    return text_format.MessageToString(copy, as_one_line=True)


SECRET_FIELDS = frozenset({"encryptionKey", "encryption_key"})


def _redact(message: Any) -> None:
    message.DiscardUnknownFields()  # unknown bytes could be a key under another field number
    for field, value in message.ListFields():
        if field.name in SECRET_FIELDS:
            message.ClearField(field.name)
            if field.type == field.TYPE_BYTES:
                setattr(message, field.name, b"<redacted>")
        elif field.message_type is not None:
            is_map = field.message_type.GetOptions().map_entry
            if field.is_repeated and not is_map:
                for item in value:
                    _redact(item)
            elif not is_map:
                _redact(value)


def _failure_status(error: Exception) -> tuple[grpc.StatusCode, str]:
    for exception_type, code in GRPC_STATUS.items():
        if isinstance(error, exception_type):
            return code, str(error)
    if isinstance(error, DataPlaneUnavailable):
        return grpc.StatusCode.UNAVAILABLE, f"data plane unavailable: {error}"
    reference = uuid.uuid4().hex[:12]
    log.error("internal error, reference %s", reference, exc_info=error)
    return grpc.StatusCode.INTERNAL, f"internal error (reference {reference}, see server log)"


def _unary(method: Callable[..., Awaitable[_R]]) -> Callable[..., Awaitable[_R]]:
    """Map exceptions to gRPC statuses; unknown ones become INTERNAL with a reference id."""

    @functools.wraps(method)
    async def wrapper(self: IpTunnelServicer, request: Any, context: grpc.aio.ServicerContext
                      ) -> _R:
        try:
            return await method(self, request, context)
        except Exception as error:  # noqa: BLE001 - every failure gets a status
            if isinstance(error, grpc.aio.AbortError):
                raise
            code, details = _failure_status(error)
        await context.abort(code, details)
        raise AssertionError("unreachable")  # context.abort raises

    return wrapper


def _streaming(method: Callable[..., AsyncIterator[_R]]) -> Callable[..., AsyncIterator[_R]]:
    """The streaming counterpart of :func:`_unary`."""

    @functools.wraps(method)
    async def wrapper(self: IpTunnelServicer, request: Any, context: grpc.aio.ServicerContext
                      ) -> AsyncIterator[_R]:
        try:
            async for item in method(self, request, context):
                yield item
            return
        except Exception as error:  # noqa: BLE001 - every failure gets a status
            if isinstance(error, grpc.aio.AbortError):
                raise
            code, details = _failure_status(error)
        await context.abort(code, details)

    return wrapper


def _pages(items: list[_R], size: int) -> list[list[_R]]:
    if size == 0 or not items:
        return [items]
    return [items[start:start + size] for start in range(0, len(items), size)]


class IpTunnelServicer(pb_grpc.ipTunnelServiceServicer):
    """The six rpcs of the TunnelOffload API."""

    def __init__(self, service: TunnelService, *, spool_dir: Path | None = None,
                 log_wire: bool = False) -> None:
        self._service = service
        self._spool_dir = spool_dir  # where createIpTunnel streams are spooled (None: tempdir)
        self._log_wire = log_wire
        self._buffered_bytes = 0  # request bytes in the spools of open or running streams

    def _wire(self, what: str, message: Any) -> None:
        if self._wiring():
            wire_log.debug("%s: %s", what, redacted(message))

    def _wiring(self) -> bool:
        return self._log_wire and wire_log.isEnabledFor(logging.DEBUG)

    def _wire_request(self, request: bytes) -> None:
        """Wire-log a createIpTunnel request that arrived as bytes (decoded for the log only)."""
        try:
            message = pb.ipTunnelRequest.FromString(request)
        except DecodeError:
            wire_log.debug("createIpTunnel request: <%d bytes that are not an ipTunnelRequest>",
                           len(request))
            return
        self._wire("createIpTunnel request", message)

    def _release(self, size: int) -> None:
        """A spool was closed: its bytes leave the shared budget."""
        self._buffered_bytes -= size

    def _refusal(self, count: int, stream_bytes: int, size: int) -> str | None:
        """Why the next request of a stream cannot be buffered, or None."""
        if count == MAX_STREAM_REQUESTS:
            return (f"a createIpTunnel stream carries at most {MAX_STREAM_REQUESTS} requests; "
                    "nothing was applied")
        if stream_bytes > MAX_STREAM_BYTES:
            return (f"a createIpTunnel stream carries at most {MAX_STREAM_BYTES} bytes of "
                    f"requests (request {count} passes it); nothing was applied")
        if self._buffered_bytes + size > MAX_BUFFERED_BYTES:
            return (f"the server is already reading {self._buffered_bytes} bytes of "
                    f"createIpTunnel streams (at most {MAX_BUFFERED_BYTES}); nothing was "
                    "applied, retry later")
        return None

    @_unary
    async def Capabilities(self, request: pb.CapabilityRequest,
                           context: grpc.aio.ServicerContext) -> pb.CapabilityResponse:
        return capabilities_to_proto(self._service.capabilities)

    @_unary
    async def createIpTunnel(self, request_iterator: AsyncIterable[bytes],
                             context: grpc.aio.ServicerContext) -> pb.createIpTunnelResponses:
        # The requests arrive serialized (no request deserializer: service_handlers) and go to
        # the spool as received; the service parses them when it judges the stream.
        spool = RequestSpool(self._spool_dir, on_close=self._release)
        try:
            async for request in request_iterator:
                refusal = self._refusal(spool.count, spool.size + len(request), len(request))
                if refusal is not None:
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, refusal)
                failure = self._spool(spool, request)
                if failure is not None:
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, failure)
                if self._wiring():
                    self._wire_request(request)
        except BaseException:
            spool.close()  # refused, or the client went away before the end: nothing ran
            raise
        # The service owns the spool from here. gRPC ends the request iterator alike for a
        # client that finished its stream and one that cancelled it; the cancellation arrives
        # just after, and the service applies nothing if it comes before the first write.
        result = await self._service.submit(spool)
        response = pb.createIpTunnelResponses(
            requestStatus=cast(pb.ADD_TUNNEL_STATUS, int(result.status)),
            errorStatus=result.error_bits)
        for outcome in result.outcomes():
            item = response.responses.add(tunnelId=outcome.tunnel_id)
            if outcome.error is not None:
                error_to_proto(outcome.error, item.error)
        self._wire("createIpTunnel response", response)
        return response

    def _spool(self, spool: RequestSpool, request: bytes) -> str | None:
        """Append one request (its bytes count in the shared budget until the spool closes);
        why it could not be, if the disk failed."""
        size = spool.size
        try:
            spool.append(request)
        except OSError as error:
            log.error("could not spool a createIpTunnel stream in %s: %s",
                      self._spool_dir or "the temp directory", error)
            return (f"the controller could not store the stream while reading it "
                    f"({error.strerror}); nothing was applied")
        finally:
            self._buffered_bytes += spool.size - size
        return None

    @_unary
    async def getIpTunnel(self, request: pb.tunnelId,
                          context: grpc.aio.ServicerContext) -> pb.ipTunnelResponse:
        tunnel = self._service.get(request.tunnelId)
        counters = await self._service.counters([tunnel.tunnel_id])
        response = pb.ipTunnelResponse(tunnelId=tunnel.tunnel_id,
                                       ipTunnel=tunnel_to_proto(tunnel))
        counters_to_proto(counters[tunnel.tunnel_id], response.tunnelCounters)
        return response

    @_unary
    async def getIpTunnelStats(self, request: pb.tunnelId,
                               context: grpc.aio.ServicerContext) -> pb.ipTunnelStatsResponse:
        tunnel = self._service.get(request.tunnelId)
        counters = await self._service.counters([tunnel.tunnel_id])
        response = pb.ipTunnelStatsResponse(tunnelId=tunnel.tunnel_id)
        counters_to_proto(counters[tunnel.tunnel_id], response.tunnelCounters)
        return response

    @_streaming
    async def getAllIpTunnels(self, request: pb.tunnelRequestArgs,
                              context: grpc.aio.ServicerContext
                              ) -> AsyncIterator[pb.ipTunnelResponses]:
        for page in _pages(self._service.list_tunnels(), request.tunnelsPerRequest):
            counters = await self._service.counters([tunnel.tunnel_id for tunnel in page])
            message = pb.ipTunnelResponses()
            for tunnel in page:
                item = message.responses.add(tunnelId=tunnel.tunnel_id,
                                             ipTunnel=tunnel_to_proto(tunnel))
                counters_to_proto(counters[tunnel.tunnel_id], item.tunnelCounters)
            yield message

    @_streaming
    async def getAllIpTunnelsStats(self, request: pb.tunnelRequestArgs,
                                   context: grpc.aio.ServicerContext
                                   ) -> AsyncIterator[pb.ipTunnelStatsResponses]:
        for page in _pages(self._service.list_ids(), request.tunnelsPerRequest):
            yield stats_responses(page, await self._service.counters(page))


# v1alpha1 method → (v2 method, handler factory, request class or None, response class).
# createIpTunnel has no request class: its requests reach the servicer as the bytes received.
_METHODS: dict[str, tuple[str, Callable[..., grpc.RpcMethodHandler], Any, Any]] = {
    "Capabilities": ("Capabilities", grpc.unary_unary_rpc_method_handler,
                     pb.CapabilityRequest, pb.CapabilityResponse),
    "createIpTunnel": ("CreateIpTunnel", grpc.stream_unary_rpc_method_handler,
                       None, pb.createIpTunnelResponses),
    "getIpTunnel": ("GetIpTunnel", grpc.unary_unary_rpc_method_handler,
                    pb.tunnelId, pb.ipTunnelResponse),
    "getIpTunnelStats": ("GetIpTunnelStats", grpc.unary_unary_rpc_method_handler,
                         pb.tunnelId, pb.ipTunnelStatsResponse),
    "getAllIpTunnels": ("GetAllIpTunnels", grpc.unary_stream_rpc_method_handler,
                        pb.tunnelRequestArgs, pb.ipTunnelResponses),
    "getAllIpTunnelsStats": ("GetAllIpTunnelsStats", grpc.unary_stream_rpc_method_handler,
                             pb.tunnelRequestArgs, pb.ipTunnelStatsResponses),
}


def service_handlers(servicer: IpTunnelServicer) -> tuple[grpc.GenericRpcHandler, ...]:
    """Serve ``tunneloffload.v1alpha1.ipTunnelService`` and ``tunneloffload.v2.IpTunnelService``
    with the servicer's methods (the v2 messages are the v1alpha1 bytes, module doc)."""
    services = (pb.DESCRIPTOR.services_by_name["ipTunnelService"],
                pb_v2.DESCRIPTOR.services_by_name["IpTunnelService"])
    for descriptor, served in zip(services, (set(_METHODS),
                                             {entry[0] for entry in _METHODS.values()}),
                                  strict=True):
        declared = {method.name for method in descriptor.methods}
        if declared != served:
            raise RuntimeError(f"{descriptor.full_name} methods {sorted(declared)} differ from "
                               f"the served {sorted(served)}")
    handlers: tuple[dict[str, grpc.RpcMethodHandler], dict[str, grpc.RpcMethodHandler]] = ({}, {})
    for method, (v2_method, factory, request, response) in _METHODS.items():
        handler = factory(getattr(servicer, method),
                          request_deserializer=None if request is None else request.FromString,
                          response_serializer=response.SerializeToString)
        handlers[0][method] = handler
        handlers[1][v2_method] = handler
    return (grpc.method_handlers_generic_handler(V1ALPHA1_SERVICE, handlers[0]),
            grpc.method_handlers_generic_handler(V2_SERVICE, handlers[1]))
