"""Fixtures: a real p4sim switch running p4src/, a real crypto worker, and the controller with
the P4Runtime data plane on free ports.

Run: .venv/bin/python -m pytest tests/controller_dp -q
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from dp_support import SwitchProcess, SwitchReader, WorkerProcess, wait_serving

from controller.server import ControllerServer, create_server
from controller.settings import Settings
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc

# The request builders of tests/controller (same encodings as the reference client).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "controller"))

ROUTES = """\
# prefix       port  source MAC          next-hop MAC
0.0.0.0/0      3     02:00:00:00:00:01   02:00:00:00:01:03
6.6.6.0/24     2     02:00:00:00:00:01   02:00:00:00:01:02
2001:db8::/32  2     02:00:00:00:00:01   02:00:00:00:01:02
"""


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Unix socket paths are limited to ~100 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="dp-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def switch(workdir: Path) -> Iterator[SwitchProcess]:
    process = SwitchProcess(workdir)
    process.start()
    yield process
    process.kill()


@pytest.fixture
def worker(workdir: Path, switch: SwitchProcess) -> Iterator[WorkerProcess]:
    process = WorkerProcess(workdir, switch.crypto_url)
    process.start()
    yield process
    process.kill()


@pytest.fixture
def reader(switch: SwitchProcess) -> SwitchReader:
    return SwitchReader(switch)


@pytest.fixture
def routes_file(workdir: Path) -> Path:
    path = workdir / "routes.txt"
    path.write_text(ROUTES)
    return path


@pytest.fixture
async def start_dp_controller(tmp_path: Path, switch: SwitchProcess, worker: WorkerProcess,
                              routes_file: Path) -> AsyncIterator[Any]:
    """Factory: a controller on the P4Runtime data plane (plaintext on 127.0.0.1:0)."""
    started: list[ControllerServer] = []

    async def start(*, wait: bool = True, **overrides: Any) -> ControllerServer:
        settings = Settings(**{
            "listen": "127.0.0.1:0", "state_dir": tmp_path / "state", "insecure": True,
            "switch_addr": switch.address, "crypto_worker_socket": worker.socket,
            "routes": routes_file, "worker_poll": 0.2, **overrides})
        controller = await create_server(settings)
        await controller.start()
        started.append(controller)
        if wait:
            await wait_serving(controller)
        return controller

    yield start
    for controller in started:
        await controller.stop(grace=None)


@pytest.fixture
async def controller(start_dp_controller: Any) -> ControllerServer:
    return await start_dp_controller()


@pytest.fixture
async def v1(controller: ControllerServer) -> AsyncIterator[pb_grpc.ipTunnelServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{controller.port}") as channel:
        yield pb_grpc.ipTunnelServiceStub(channel)
