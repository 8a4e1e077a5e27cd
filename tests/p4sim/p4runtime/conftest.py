"""Fixtures for the P4Runtime conformance tests: one target per run mode.

- ``fake``: p4sim's server over fake_switch.py (hand-written P4Info, real runtime state);
- ``real``: p4sim's server running programs/conformance.p4 through p4sim's own front end and
  executor (skipped while the core cannot load that program);
- ``external``: a running P4Runtime server such as BMv2 ``simple_switch_grpc``, selected with
  P4RT_TARGET=host:port plus P4RT_P4INFO, P4RT_DEVICE_CONFIG, P4RT_DEVICE_ID and optionally
  P4RT_PACKET_SOCKET (its nanomsg ``--packet-in`` address). Only tests marked ``bmv2`` run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pynng
import pytest
from google.protobuf import text_format

from p4sim.p4runtime.device import Device
from p4sim.p4runtime.proto import p4i, p4r_grpc
from p4sim.p4runtime.server import ServerSettings, create_server
from p4sim.ports.nn_protocol import MsgType, decode, encode_frame
from tests.p4sim.p4runtime.fake_switch import CPU_PORT, FakeProgram, FakeSwitch, fake_p4info
from tests.p4sim.p4runtime.p4rt_support import (
    EXTERNAL,
    PROGRAM,
    Stream,
    Target,
    become_primary,
    next_election_base,
    set_pipeline,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "bmv2: behaviour BMv2's simple_switch_grpc shares; must pass there too")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not EXTERNAL:
        return
    skip = pytest.mark.skip(reason="P4RT_TARGET set: only tests marked bmv2 run")
    for item in items:
        if "p4runtime" in str(item.fspath) and "bmv2" not in item.keywords:
            item.add_marker(skip)


_loaded: dict[str, object] = {}


def _real_program():  # type: ignore[no-untyped-def]
    """programs/conformance.p4 loaded by p4sim's front end, once per test session."""
    from p4sim.program import load_program

    if "program" not in _loaded:
        try:
            _loaded["program"] = load_program(PROGRAM)
        except Exception as error:  # noqa: BLE001 - any failure means "core not ready"
            _loaded["program"] = error
    found = _loaded["program"]
    if isinstance(found, Exception):
        pytest.skip(f"p4sim cannot run programs/conformance.p4 yet: {found}")
    return found


def _local_target(tmp_path: Path, mode: str) -> tuple[Target, grpc.Server]:
    if mode == "fake":
        p4info = fake_p4info()
        device = Device(device_id=1, cpu_port=CPU_PORT,
                        default_program=FakeProgram(p4info=p4info),  # type: ignore[arg-type]
                        switch_factory=FakeSwitch)  # type: ignore[arg-type]
    else:
        program = _real_program()
        p4info = program.p4info
        device = Device(device_id=1, cpu_port=CPU_PORT, default_program=program)
    server, port = create_server(device, ServerSettings(address="127.0.0.1:0"))
    server.start()
    path = tmp_path / "p4info.txt"
    path.write_text(text_format.MessageToString(p4info))
    target = Target(address=f"127.0.0.1:{port}", device_id=1, p4info=p4info, p4info_path=path,
                    device_config=b"", inject=device.process, device=device)
    return target, server


def _external_target() -> Target:
    path = Path(os.environ["P4RT_P4INFO"])
    p4info = text_format.Parse(path.read_text(), p4i.P4Info())
    socket_address = os.environ.get("P4RT_PACKET_SOCKET")

    def inject(port: int, frame: bytes) -> list[tuple[int, bytes]]:
        if not socket_address:
            pytest.skip("P4RT_PACKET_SOCKET not set")
        out = []
        with pynng.Pair0(dial=socket_address, recv_timeout=500) as sock:
            sock.send(encode_frame(MsgType.PACKET_IN, port, frame))
            try:
                while True:
                    message = decode(sock.recv())
                    if message.kind == MsgType.PACKET_OUT:
                        out.append((message.port, message.payload))
            except pynng.Timeout:
                return out

    return Target(address=str(EXTERNAL), device_id=int(os.environ.get("P4RT_DEVICE_ID", "1")),
                  p4info=p4info, p4info_path=path,
                  device_config=Path(os.environ["P4RT_DEVICE_CONFIG"]).read_bytes(),
                  inject=inject)


@pytest.fixture(params=["fake", "real"])
def target(request, tmp_path) -> Iterator[Target]:
    if EXTERNAL:
        if request.param == "real":
            pytest.skip("external target: runs once")
        yield _external_target()
        return
    found, server = _local_target(tmp_path, request.param)
    try:
        yield found
    finally:
        server.stop(grace=None)


@pytest.fixture
def stub(target) -> Iterator[p4r_grpc.P4RuntimeStub]:
    with grpc.insecure_channel(target.address) as channel:
        yield p4r_grpc.P4RuntimeStub(channel)


@pytest.fixture
def open_stream(stub, target):
    streams: list[Stream] = []

    def opener() -> Stream:
        stream = Stream(stub, target.device_id)
        streams.append(stream)
        return stream

    yield opener
    for stream in streams:
        stream.close()


@pytest.fixture(autouse=True)
def _fresh_election_ids() -> None:
    next_election_base()


@pytest.fixture
def programmed(stub, target, open_stream) -> Stream:
    """A primary stream (election id 10) and the conformance pipeline committed."""
    stream = become_primary(open_stream, 10)
    set_pipeline(stub, target, 10)
    return stream
