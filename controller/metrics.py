"""The Prometheus endpoint (``--metrics-addr``, off by default): what operators graph and alert on.

* ``tunneloffload_requests_total`` / ``tunneloffload_request_duration_seconds``: every rpc of the
  API by method and gRPC result code, counted by a server interceptor as the call ends.
* ``tunneloffload_tunnel_{packets,bytes}_total``: per tunnel and direction (``in``/``out``), and
  ``tunneloffload_tunnel_dropped_{packets,bytes}_total``: the API's four drop counters — read
  from the data plane at scrape time, exactly what ``getIpTunnelStats`` returns.
* ``tunneloffload_worker_drops_total``: the crypto worker's drops by reason (bad ICV, replay,
  unknown SA ...) from its ``GetCounters``, per tunnel when the SA is one of a tunnel's, else
  ``tunnel=""`` (frames no SA could own). The API has no per-reason field; this is where they are
  (``tunnelctl stats --reasons`` reads them here).
* ``tunneloffload_switch_drops_total``: the switch's drops by reason (its ``drop_reasons``
  counter, one cell per DROP_* code of p4src/include/defines.p4), switch-wide: the switch does
  not count reasons per tunnel; ``tunneloffload_switch_parser_errors_total``: the
  ``parser_error`` drops by kind. Every reason the P4 source names is reported, 0 included.
* ``tunneloffload_dataplane_{available,switch_ready,worker_ready}``: data-plane health (1/0).
* ``tunneloffload_scrape_errors_total``: scrapes whose data-plane read failed (the counters of
  that scrape are left out instead of reported as 0).

Scrapes run on prometheus-client's HTTP thread; the reads they need run on the controller's event
loop (``run_coroutine_threadsafe``), so the data plane is only ever touched from its own loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from controller.counter_poller import CounterArrayReader
from controller.drop_reasons import DropReasonNames, load_drop_reason_names
from tunneloffload.crypto.v1 import worker_pb2 as wpb
from tunneloffload.crypto.v1 import worker_pb2_grpc as wpb_grpc

log = logging.getLogger(__name__)

__all__ = ["MetricsServer", "RequestMetrics", "parse_metrics_addr", "start_metrics"]

SCRAPE_TIMEOUT = 5.0  # seconds a scrape waits for the data plane before giving up
PREFIX = "tunneloffload"


def parse_metrics_addr(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464``; port 0 picks a free one) → (host, port)."""
    host, separator, port = text.rpartition(":")
    if not separator or not host or not port.isdecimal() or int(port) > 65535:
        raise ValueError(f"--metrics-addr {text!r} is not HOST:PORT (e.g. localhost:9464)")
    return host.strip("[]"), int(port)


class RequestMetrics(grpc.aio.ServerInterceptor):
    """Counts and times every rpc by method name and final gRPC status code."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(f"{PREFIX}_requests", "API calls by rpc and gRPC result code",
                                ["rpc", "code"], registry=registry)
        self.latency = Histogram(f"{PREFIX}_request_duration_seconds",
                                 "API call duration by rpc and gRPC result code",
                                 ["rpc", "code"], registry=registry)

    def _observe(self, rpc: str, code: str, started: float) -> None:
        self.requests.labels(rpc=rpc, code=code).inc()
        self.latency.labels(rpc=rpc, code=code).observe(time.perf_counter() - started)

    async def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails],
                                         Awaitable[grpc.RpcMethodHandler]],
            handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method  # type: ignore[attr-defined]
        if handler is None or method.startswith(("/grpc.health.", "/grpc.reflection.")):
            return handler
        rpc = method.rsplit("/", 1)[-1]
        service = method.strip("/").split("/", 1)[0]
        rpc = f"{service.rsplit('.', 2)[-2]}.{rpc}" if service.count(".") >= 2 else rpc
        return _wrapped(handler, rpc, self._observe)


def _code_of(context: Any, error: BaseException | None) -> str:
    code = context.code() if hasattr(context, "code") else None
    if code is None:
        if error is None:
            return "OK"
        return "CANCELLED" if isinstance(error, asyncio.CancelledError) else "UNKNOWN"
    return str(code.name) if isinstance(code, grpc.StatusCode) else str(code)


def _wrapped(handler: grpc.RpcMethodHandler, rpc: str,
             observe: Callable[[str, str, float], None]) -> grpc.RpcMethodHandler:
    """The same handler, observed when each call ends (however it ends)."""

    def unary(behaviour: Any) -> Any:
        async def call(request: Any, context: Any) -> Any:
            started, error = time.perf_counter(), None
            try:
                return await behaviour(request, context)
            except BaseException as raised:
                error = raised
                raise
            finally:
                observe(rpc, _code_of(context, error), started)
        return call

    def streaming(behaviour: Any) -> Any:
        async def call(request: Any, context: Any) -> Any:
            started, error = time.perf_counter(), None
            try:
                async for item in behaviour(request, context):
                    yield item
            except BaseException as raised:
                error = raised
                raise
            finally:
                observe(rpc, _code_of(context, error), started)
        return call

    kinds = {
        "unary_unary": (unary, grpc.unary_unary_rpc_method_handler),
        "unary_stream": (streaming, grpc.unary_stream_rpc_method_handler),
        "stream_unary": (unary, grpc.stream_unary_rpc_method_handler),
        "stream_stream": (streaming, grpc.stream_stream_rpc_method_handler),
    }
    for attribute, (wrap, make) in kinds.items():
        behaviour = getattr(handler, attribute)
        if behaviour is not None:
            return make(wrap(behaviour),  # type: ignore[operator]
                        request_deserializer=handler.request_deserializer,
                        response_serializer=handler.response_serializer)
    return handler


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """What one scrape reports, read on the event loop."""

    counters: dict[int, Any] = field(default_factory=dict)
    worker_drops: dict[tuple[str, str], int] = field(default_factory=dict)  # (tunnel, reason)
    switch_drops: dict[str, int] = field(default_factory=dict)          # reason -> packets
    parser_errors: dict[str, int] = field(default_factory=dict)         # kind -> packets
    health: dict[str, bool] = field(default_factory=dict)
    error: str | None = None


class DataPlaneCollector(Collector):
    """Per-tunnel counters, worker drops by reason and data-plane health, read at scrape time."""

    def __init__(self, *, loop: asyncio.AbstractEventLoop, service: Any, dataplane: Any,
                 worker_socket: str | None) -> None:
        self._loop = loop
        self._service = service
        self._dataplane = dataplane
        self._worker_socket = worker_socket
        self._channel: grpc.aio.Channel | None = None
        self._scrape_errors = 0
        self._drop_reader: CounterArrayReader | None = None
        self._drop_names = DropReasonNames()
        self._drop_arrays: list[str] = []   # [drops by reason, parser errors], P4 names

    async def _switch_drops(self) -> tuple[dict[str, int], dict[str, int]]:
        """(drops by reason, parser errors by kind) from the switch's counters; nothing when
        the data plane has no switch (detached)."""
        pipeline = getattr(self._dataplane, "pipeline", None)
        connection = getattr(self._dataplane, "connection", None)
        if pipeline is None or connection is None:
            return {}, {}
        if self._drop_reader is None:
            arrays = pipeline.drop_counter_arrays()
            self._drop_names = load_drop_reason_names(pipeline.p4info_path)
            self._drop_arrays = list(arrays)  # DROP_REASONS, PARSER_ERRORS in that order
            self._drop_reader = CounterArrayReader(
                address=connection.target.address, device_id=connection.target.device_id,
                counters=arrays, timeout=SCRAPE_TIMEOUT, tls=connection.target.tls)
        snapshot = await self._drop_reader.read()
        drops_array, parser_array = (snapshot.packets[name] for name in self._drop_arrays)
        names = self._drop_names

        def by_name(cells: Any, named: dict[int, str], name_of: Callable[[int], str]
                    ) -> dict[str, int]:
            found = {name_of(index): 0 for index in named}   # every named reason, 0 included
            for index, packets in enumerate(cells):
                if packets:
                    found[name_of(index)] = found.get(name_of(index), 0) + packets
            return found

        drops = by_name(drops_array, names.drops, names.drop)
        return drops, by_name(parser_array, names.parser_errors, names.parser_error)

    async def _worker_drops(self, tunnels: list[Any]) -> dict[tuple[str, str], int]:
        if self._worker_socket is None:
            return {}
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(f"unix:{self._worker_socket}")
        stub = wpb_grpc.CryptoWorkerStub(self._channel)
        response = await stub.GetCounters(wpb.GetCountersRequest(), timeout=SCRAPE_TIMEOUT)
        owner: dict[int, str] = {}
        allocation = getattr(self._dataplane, "allocation", None)
        for tunnel in tunnels:
            found = allocation(tunnel.tunnel_id) if allocation is not None else None
            for sa_index in (found.sa_indexes.values() if found is not None else ()):
                owner[sa_index] = str(tunnel.tunnel_id)
        drops: dict[tuple[str, str], int] = {}

        def add(tunnel: str, reason: int, packets: int) -> None:
            name = wpb.DropReason.Name(reason).removeprefix("DROP_REASON_").lower()
            drops[(tunnel, name)] = drops.get((tunnel, name), 0) + packets

        for sa in response.sas:
            for drop in sa.drops:
                add(owner.get(sa.sa_index, ""), drop.reason, drop.packets)
        for unknown in response.unknown_sa:
            add("", wpb.DROP_REASON_UNKNOWN_SA, unknown.packets)
        for drop in response.unattributed:
            add("", drop.reason, drop.packets)
        return drops

    async def snapshot(self) -> Snapshot:
        status = getattr(self._dataplane, "status", None)
        health = ({"available": status.available, "switch_ready": status.switch_ready,
                   "worker_ready": status.worker_ready} if status is not None else
                  {"available": True, "switch_ready": True, "worker_ready": True})
        tunnels = list(self._service.list_tunnels())
        try:
            counters = dict(await self._dataplane.read_counters(
                [t.tunnel_id for t in tunnels]))
            drops = await self._worker_drops(tunnels)
            switch_drops, parser_errors = await self._switch_drops()
        except Exception as error:  # noqa: BLE001 - a scrape reports, it does not crash
            return Snapshot(health=health, error=f"{type(error).__name__}: {error}")
        return Snapshot(counters=counters, worker_drops=drops, health=health,
                        switch_drops=switch_drops, parser_errors=parser_errors)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        if self._drop_reader is not None:
            await self._drop_reader.close()

    def collect(self) -> Iterator[Any]:
        try:
            snap = asyncio.run_coroutine_threadsafe(self.snapshot(), self._loop).result(
                SCRAPE_TIMEOUT + 1)
        except Exception as error:  # noqa: BLE001 - the loop is gone or too slow
            snap = Snapshot(error=f"{type(error).__name__}: {error}")
        if snap.error is not None:
            self._scrape_errors += 1
            log.warning("metrics scrape: data plane read failed: %s", snap.error)
        errors = CounterMetricFamily(f"{PREFIX}_scrape_errors",
                                     "scrapes whose data-plane read failed")
        errors.add_metric([], self._scrape_errors)
        yield errors
        for name, value in snap.health.items():
            gauge = GaugeMetricFamily(f"{PREFIX}_dataplane_{name}",
                                      f"data plane {name.replace('_', ' ')} (1 yes, 0 no)")
            gauge.add_metric([], 1 if value else 0)
            yield gauge
        if snap.error is not None:
            return
        families = {
            "packets": CounterMetricFamily(f"{PREFIX}_tunnel_packets",
                                           "packets a tunnel received (in) and emitted (out)",
                                           labels=["tunnel", "direction"]),
            "bytes": CounterMetricFamily(f"{PREFIX}_tunnel_bytes",
                                         "frame bytes a tunnel received (in) and emitted (out)",
                                         labels=["tunnel", "direction"]),
            "dropped_packets": CounterMetricFamily(
                f"{PREFIX}_tunnel_dropped_packets", "a tunnel's dropped packets "
                "(in: before it produced output, out: after)", labels=["tunnel", "direction"]),
            "dropped_bytes": CounterMetricFamily(
                f"{PREFIX}_tunnel_dropped_bytes", "the frame bytes of a tunnel's dropped "
                "packets", labels=["tunnel", "direction"]),
        }
        for tunnel_id, c in sorted(snap.counters.items()):
            for direction in ("in", "out"):
                labels = [str(tunnel_id), direction]
                families["packets"].add_metric(labels, getattr(c, f"{direction}_packets"))
                families["bytes"].add_metric(labels, getattr(c, f"{direction}_bytes"))
                families["dropped_packets"].add_metric(
                    labels, getattr(c, f"{direction}_packets_drops"))
                families["dropped_bytes"].add_metric(
                    labels, getattr(c, f"{direction}_bytes_drops"))
        yield from families.values()
        worker = CounterMetricFamily(f"{PREFIX}_worker_drops",
                                     "packets the crypto worker dropped, by tunnel and reason",
                                     labels=["tunnel", "reason"])
        for (tunnel, reason), packets in sorted(snap.worker_drops.items()):
            worker.add_metric([tunnel, reason], packets)
        yield worker
        if snap.switch_drops or snap.parser_errors:
            switch = CounterMetricFamily(f"{PREFIX}_switch_drops",
                                         "packets the switch dropped, by reason (switch-wide)",
                                         labels=["reason"])
            for reason, packets in sorted(snap.switch_drops.items()):
                switch.add_metric([reason], packets)
            yield switch
            parser = CounterMetricFamily(f"{PREFIX}_switch_parser_errors",
                                         "the switch's parser_error drops, by kind",
                                         labels=["error"])
            for kind, packets in sorted(snap.parser_errors.items()):
                parser.add_metric([kind], packets)
            yield parser


@dataclass
class MetricsServer:
    """The running endpoint: its port (for ``:0``) and how to stop it."""

    port: int
    _http: Any
    _thread: Any
    _collector: DataPlaneCollector

    async def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)
        await self._collector.close()


def start_metrics(addr: str, *, registry: CollectorRegistry, service: Any, dataplane: Any,
                  worker_socket: str | None) -> MetricsServer:
    """Serve ``registry`` plus the data-plane collector on ``addr`` (call on the event loop)."""
    from prometheus_client import start_http_server

    host, port = parse_metrics_addr(addr)
    collector = DataPlaneCollector(loop=asyncio.get_running_loop(), service=service,
                                   dataplane=dataplane, worker_socket=worker_socket)
    registry.register(collector)
    http, thread = start_http_server(port, addr=host, registry=registry)
    bound = int(http.server_address[1])
    log.info("metrics: Prometheus endpoint on http://%s:%d/metrics", host, bound)
    return MetricsServer(port=bound, _http=http, _thread=thread, _collector=collector)
