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
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pynng
import pytest
from google.protobuf import text_format

from p4sim.p4runtime.device import Device
from p4sim.p4runtime.proto import p4i, p4r, p4r_grpc, rpc_code
from p4sim.p4runtime.server import ServerSettings, create_server
from p4sim.ports.nn_protocol import MsgType, decode, encode_frame
from tests.p4sim.p4runtime.fake_switch import CPU_PORT, FakeProgram, FakeSwitch, fake_p4info

PROGRAM = Path(__file__).parent / "programs" / "conformance.p4"
TIMEOUT = 5.0
EXTERNAL = os.environ.get("P4RT_TARGET")


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


class Ids:
    """P4Info ids by name (full name or alias), so tests never spell an id."""

    def __init__(self, p4info: p4i.P4Info) -> None:
        self.p4info = p4info

    @staticmethod
    def _find(items, name: str):  # type: ignore[no-untyped-def]
        for item in items:
            p = item.preamble
            if name in (p.name, p.alias) or p.name.endswith("." + name):
                return item
        raise KeyError(name)

    def table(self, name: str) -> int:
        return self._find(self.p4info.tables, name).preamble.id

    def field(self, table: str, name: str) -> int:
        for m in self._find(self.p4info.tables, table).match_fields:
            if m.name == name:
                return m.id
        raise KeyError(f"{table}.{name}")

    def action(self, name: str) -> int:
        return self._find(self.p4info.actions, name).preamble.id

    def param(self, action: str, name: str) -> int:
        for p in self._find(self.p4info.actions, action).params:
            if p.name == name:
                return p.id
        raise KeyError(f"{action}.{name}")

    def counter(self, name: str) -> int:
        return self._find(self.p4info.counters, name).preamble.id

    def register(self, name: str) -> int:
        return self._find(self.p4info.registers, name).preamble.id

    def packet_meta(self, header: str, name: str) -> int:
        for m in self._find(self.p4info.controller_packet_metadata, header).metadata:
            if m.name == name:
                return m.id
        raise KeyError(f"{header}.{name}")


@dataclass
class Target:
    address: str
    device_id: int
    p4info: p4i.P4Info
    p4info_path: Path
    device_config: bytes
    inject: Callable[[int, bytes], list[tuple[int, bytes]]]
    device: Device | None = None

    @property
    def ids(self) -> Ids:
        return Ids(self.p4info)


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


class Stream:
    """A StreamChannel driven by hand: send requests, wait for responses."""

    def __init__(self, stub: p4r_grpc.P4RuntimeStub, device_id: int) -> None:
        self.device_id = device_id
        self._requests: queue.SimpleQueue[p4r.StreamMessageRequest | None] = queue.SimpleQueue()
        self.responses: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._call = stub.StreamChannel(iter(self._requests.get, None))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for response in self._call:
                self.responses.put(response)
        except grpc.RpcError as error:
            self.responses.put(error)

    def send(self, request: p4r.StreamMessageRequest) -> None:
        self._requests.put(request)

    def arbitrate(self, election_id: int | None, *, role: str = "",
                  device_id: int | None = None) -> None:
        update = p4r.MasterArbitrationUpdate(
            device_id=self.device_id if device_id is None else device_id)
        if election_id is not None:
            update.election_id.CopyFrom(election(election_id))
        if role:
            update.role.name = role
        self.send(p4r.StreamMessageRequest(arbitration=update))

    def next(self, timeout: float = TIMEOUT) -> object:
        return self.responses.get(timeout=timeout)

    def next_of(self, kind: str, timeout: float = TIMEOUT) -> object:
        """The next response of one kind ("arbitration", "packet", "error"), skipping others."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.next(max(0.01, deadline - time.monotonic()))
            if isinstance(item, grpc.RpcError):
                raise item
            assert isinstance(item, p4r.StreamMessageResponse)
            if item.WhichOneof("update") == kind:
                return getattr(item, kind)

    def next_arbitration(self) -> p4r.MasterArbitrationUpdate:
        return self.next_of("arbitration")  # type: ignore[return-value]

    def close(self) -> None:
        self._requests.put(None)
        self._call.cancel()


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


def election(value: int) -> p4r.Uint128:
    return p4r.Uint128(high=value >> 64, low=value & ((1 << 64) - 1))


SET = p4r.SetForwardingPipelineConfigRequest


def set_pipeline(stub, target: Target, election_id: int, *, action=SET.VERIFY_AND_COMMIT,
                 p4info: p4i.P4Info | None = None, cookie: int | None = None,
                 device_config: bytes | None = None) -> None:
    config = p4r.ForwardingPipelineConfig(
        p4info=p4info or target.p4info,
        p4_device_config=target.device_config if device_config is None else device_config)
    if cookie is not None:
        config.cookie.cookie = cookie
    stub.SetForwardingPipelineConfig(SET(device_id=target.device_id,
                                         election_id=election(election_id), action=action,
                                         config=config))


def become_primary(open_stream, election_id: int = 10) -> Stream:
    stream = open_stream()
    stream.arbitrate(election_id)
    assert stream.next_arbitration().status.code == rpc_code.OK
    return stream


@pytest.fixture
def programmed(stub, target, open_stream) -> Stream:
    """A primary stream (election id 10) and the conformance pipeline committed."""
    stream = become_primary(open_stream, 10)
    set_pipeline(stub, target, 10)
    return stream
