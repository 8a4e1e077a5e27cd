"""Fixtures: a P4Runtime server on a free port, over the fake router of fake_switch.py."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import text_format

from p4sim.p4runtime.device import Device
from p4sim.p4runtime.proto import p4r, p4r_grpc
from p4sim.p4runtime.server import ServerSettings, create_server
from tests.p4sim.p4runtime.fake_switch import CPU_PORT, FakeProgram, FakeSwitch, fake_p4info

DEVICE_ID = 1
TIMEOUT = 5.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "bmv2: behaviour BMv2's simple_switch_grpc shares; must pass there too")


@dataclass
class Target:
    address: str
    device: Device
    p4info_path: str

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.address)


@pytest.fixture
def target(tmp_path) -> Iterator[Target]:
    p4info = fake_p4info()
    device = Device(device_id=DEVICE_ID, cpu_port=CPU_PORT,
                    default_program=FakeProgram(p4info=p4info),  # type: ignore[arg-type]
                    switch_factory=FakeSwitch)  # type: ignore[arg-type]
    server, port = create_server(device, ServerSettings(address="127.0.0.1:0"))
    server.start()
    path = tmp_path / "p4info.txt"
    path.write_text(text_format.MessageToString(p4info))
    try:
        yield Target(address=f"127.0.0.1:{port}", device=device, p4info_path=str(path))
    finally:
        server.stop(grace=None)


class Stream:
    """A StreamChannel driven by hand: send requests, wait for responses."""

    def __init__(self, stub: p4r_grpc.P4RuntimeStub) -> None:
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
                  device_id: int = DEVICE_ID) -> None:
        update = p4r.MasterArbitrationUpdate(device_id=device_id)
        if election_id is not None:
            update.election_id.high = election_id >> 64
            update.election_id.low = election_id & ((1 << 64) - 1)
        if role:
            update.role.name = role
        self.send(p4r.StreamMessageRequest(arbitration=update))

    def next(self, timeout: float = TIMEOUT) -> object:
        return self.responses.get(timeout=timeout)

    def next_arbitration(self) -> p4r.MasterArbitrationUpdate:
        item = self.next()
        assert isinstance(item, p4r.StreamMessageResponse), item
        assert item.HasField("arbitration"), item
        return item.arbitration

    def close(self) -> None:
        self._requests.put(None)
        self._call.cancel()


@pytest.fixture
def stub(target) -> Iterator[p4r_grpc.P4RuntimeStub]:
    with target.channel() as channel:
        yield p4r_grpc.P4RuntimeStub(channel)


@pytest.fixture
def open_stream(stub):
    streams: list[Stream] = []

    def opener() -> Stream:
        stream = Stream(stub)
        streams.append(stream)
        return stream

    yield opener
    for stream in streams:
        stream.close()


def election(value: int) -> p4r.Uint128:
    return p4r.Uint128(high=value >> 64, low=value & ((1 << 64) - 1))
