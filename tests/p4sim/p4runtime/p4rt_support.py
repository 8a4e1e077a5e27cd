"""Shared helpers of the P4Runtime conformance tests: ids by name, targets, streams, election
ids. Kept out of conftest.py so tests and fixtures share one copy of the module state."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from p4sim.p4runtime.device import Device
from p4sim.p4runtime.proto import p4i, p4r, p4r_grpc, rpc_code

PROGRAM = Path(__file__).parent / "programs" / "conformance.p4"
TIMEOUT = 5.0
EXTERNAL = os.environ.get("P4RT_TARGET")


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


_election_base = [0]


def eid(value: int) -> int:
    """The election id a test calls ``value`` (offset on an external target)."""
    return _election_base[0] + value


def election(value: int) -> p4r.Uint128:
    value = eid(value)
    return p4r.Uint128(high=value >> 64, low=value & ((1 << 64) - 1))


def next_election_base() -> None:
    """Called before each test: on an external server, bid above every earlier test."""
    if EXTERNAL:
        _election_base[0] += 1000


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


