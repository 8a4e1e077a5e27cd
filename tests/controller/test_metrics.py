"""--metrics-addr: a detached controller's Prometheus endpoint scraped by a real HTTP client and
parsed with prometheus_client's parser (request counts by rpc and code, tunnel counters, health).

Run just this file: .venv/bin/python -m pytest tests/controller/test_metrics.py -q
"""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

import grpc
from prometheus_client.parser import text_string_to_metric_families

from controller.server import create_server
from controller.settings import Settings
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc


async def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    url = f"http://127.0.0.1:{port}/metrics"
    text = await asyncio.to_thread(
        lambda: urllib.request.urlopen(url, timeout=10).read().decode())
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics_endpoint_counts_requests_and_reports_health(tmp_path: Path) -> None:
    settings = Settings(listen="127.0.0.1:0", state_dir=tmp_path / "state", insecure=True,
                        data_plane="detached", metrics_addr="127.0.0.1:0")
    controller = await create_server(settings)
    await controller.start()
    try:
        assert controller.metrics is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{controller.port}") as channel:
            stub = pb_grpc.ipTunnelServiceStub(channel)
            await stub.Capabilities(pb.CapabilityRequest(), timeout=5)
            await stub.Capabilities(pb.CapabilityRequest(), timeout=5)
            try:
                await stub.getIpTunnel(pb.tunnelId(tunnelId=5), timeout=5)
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.NOT_FOUND
        samples = await _scrape(controller.metrics.port)
        requests = "tunneloffload_requests_total"
        assert samples[(requests, (("code", "OK"), ("rpc", "v1alpha1.Capabilities")))] == 2
        assert samples[(requests, (("code", "NOT_FOUND"),
                                   ("rpc", "v1alpha1.getIpTunnel")))] == 1
        assert samples[("tunneloffload_request_duration_seconds_count",
                        (("code", "OK"), ("rpc", "v1alpha1.Capabilities")))] == 2
        assert samples[("tunneloffload_dataplane_available", ())] == 1
        assert samples[("tunneloffload_scrape_errors_total", ())] == 0
    finally:
        await controller.stop(grace=None)
