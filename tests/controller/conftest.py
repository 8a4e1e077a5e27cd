"""Fixtures: a real controller on a free port (TLS, fresh state dir) and real gRPC clients.

Run just these tests: .venv/bin/python -m pytest tests/controller -q
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from ctl_client import tls_channel, wait_serving

from controller.server import ControllerServer, create_server
from controller.settings import Settings
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc
from tunneloffload.v2 import tunneloffload_pb2_grpc as pb2_grpc

StartController = Callable[..., Any]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
async def start_controller(state_dir: Path) -> AsyncIterator[StartController]:
    """Factory: start a controller (TLS on 127.0.0.1:0 by default); all are stopped at the end."""
    started: list[ControllerServer] = []

    async def start(**overrides: Any) -> ControllerServer:
        dataplane = overrides.pop("dataplane", None)
        kwargs = {"capabilities": overrides.pop("capabilities")} if (
            "capabilities" in overrides) else {}
        settings = Settings(**{"listen": "127.0.0.1:0", "state_dir": state_dir,
                               "data_plane": "detached", **overrides})
        controller = await create_server(settings, dataplane=dataplane, **kwargs)
        await controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        await controller.stop(grace=None)


@pytest.fixture
async def controller(start_controller: StartController) -> ControllerServer:
    return await start_controller()


@pytest.fixture
async def channel(controller: ControllerServer) -> AsyncIterator[grpc.aio.Channel]:
    async with tls_channel(controller) as channel:
        await wait_serving(channel)
        yield channel


@pytest.fixture
def v1(channel: grpc.aio.Channel) -> pb_grpc.ipTunnelServiceStub:
    return pb_grpc.ipTunnelServiceStub(channel)


@pytest.fixture
def v2(channel: grpc.aio.Channel) -> pb2_grpc.IpTunnelServiceStub:
    return pb2_grpc.IpTunnelServiceStub(channel)
