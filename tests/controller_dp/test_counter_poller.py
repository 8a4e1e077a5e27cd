"""controller/counter_poller.py: bulk counter reads against a real p4sim P4Runtime server, and
the sharing rules of the poller (staleness bound, one read for concurrent callers, no snapshot
from before a change).

Run just this file: .venv/bin/python -m pytest tests/controller_dp/test_counter_poller.py -q
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.counter_poller import (
    CounterArrayReader,
    CounterPoller,
    CounterReadFailed,
    CounterSnapshot,
    ZeroCells,
    _Decoder,
)
from controller.pipeline import TUNNEL_COUNTERS, TUNNEL_DELTAS, TUNNEL_IN, TUNNEL_OUT, Pipeline
from p4sim.p4runtime.device import Device
from p4sim.p4runtime.server import ServerSettings, create_server
from p4sim.program import load_program

REPO = Path(__file__).resolve().parents[2]
PROGRAM = REPO / "p4src" / "tunnel_offload.p4"
P4INFO = REPO / "p4src" / "tunnel_offload.p4info.txtpb"


@pytest.fixture(scope="module")
def switch() -> Iterator[tuple[str, Device]]:
    program = load_program(PROGRAM)
    device = Device(device_id=1, default_program=program)
    device.commit(device.verify(program.p4info, b"", None))
    server, port = create_server(device, ServerSettings(address="127.0.0.1:0"))
    server.start()
    try:
        yield f"127.0.0.1:{port}", device
    finally:
        server.stop(grace=None)


def _counter(device: Device, pipeline: Pipeline, name: str):  # type: ignore[no-untyped-def]
    assert device.running is not None
    return device.running.switch.state.counters[pipeline.schema.counters[name].id]


async def test_by_index_and_whole_reads_give_the_switch_counts(switch) -> None:
    address, device = switch
    pipeline = Pipeline.load(P4INFO)
    tunnel_in = _counter(device, pipeline, TUNNEL_IN)
    tunnel_out = _counter(device, pipeline, TUNNEL_OUT)
    out_delta = _counter(device, pipeline, TUNNEL_DELTAS[TUNNEL_OUT])
    bits = pipeline.delta_bits
    tunnel_in.write(7, 3, 180)
    tunnel_in.write(65535, 1 << 40, 1 << 50)
    tunnel_out.write(7, 2, 200)          # two frames of 100 bytes as they entered the pass ...
    out_delta.write(7 * bits + bits - 1, 2, 0)   # ... emitted at the pass length: offset only
    out_delta.write(7 * bits + 4, 2, 0)          # ... plus 16 bytes each (an encap's header)
    tunnel_in.write(9, 4, 240)  # not asked for by index
    reader = CounterArrayReader(address=address, device_id=1,
                                counters=pipeline.tunnel_counter_arrays(),
                                with_bytes=TUNNEL_COUNTERS)
    try:
        by_index = await reader.read(pipeline.counter_cells(7) + pipeline.counter_cells(65535))
        whole = await reader.read(None)
    finally:
        await reader.close()
    for snapshot in (by_index, whole):
        figures = pipeline.tunnel_figures(7, snapshot)
        assert figures[TUNNEL_IN] == (3, 180)
        assert figures[TUNNEL_OUT] == (2, 2 * 116)
        assert snapshot.get((TUNNEL_IN, 65535)) == 1 << 40
        assert snapshot.get_bytes((TUNNEL_IN, 65535)) == 1 << 50
        assert snapshot.get((TUNNEL_IN, 8)) == 0
    # by index reads only what was asked; whole reads every cell
    assert (by_index.get((TUNNEL_IN, 9)), whole.get((TUNNEL_IN, 9))) == (0, 4)
    assert whole.get_bytes((TUNNEL_IN, 9)) == 240


@pytest.mark.parametrize("size", [1, 128, 16385, 589824])
def test_zero_cells_are_protobufs_encoding_of_every_cell_at_zero(size: int) -> None:
    from finsy.proto import p4r
    zero = ZeroCells(0x12345678, size)
    for index in {0, 1, 127, 128, 16383, 16384, size - 1} & set(range(size)):
        element = p4r.ReadResponse(entities=[p4r.Entity(counter_entry=p4r.CounterEntry(
            counter_id=0x12345678, index=p4r.Index(index=index),
            data=p4r.CounterData()))]).SerializeToString()
        assert zero.blob[zero.offset(index):zero.offset(index + 1)] == element
    assert zero.offset(size) == len(zero.blob)


def test_answers_in_another_order_are_decoded_by_their_own_indices() -> None:
    """The fast path assumes index order; a server answering otherwise is still read right."""
    from finsy.proto import p4r
    order = [5, 1, 0, 2, 4, 3]
    data = p4r.ReadResponse(entities=[p4r.Entity(counter_entry=p4r.CounterEntry(
        counter_id=9, index=p4r.Index(index=index),
        data=p4r.CounterData(packet_count=index * 10, byte_count=index)))
        for index in order]).SerializeToString()
    packets, octets = array("Q", bytes(48)), array("Q", bytes(48))
    counted: set[int] = set()
    _Decoder({9: (packets, octets, counted)}).decode(data, [(9, ZeroCells(9, 6), 0, 6)])
    assert list(packets) == [0, 10, 20, 30, 40, 50] and list(octets) == [0, 1, 2, 3, 4, 5]
    assert counted == {1, 2, 3, 4, 5}  # index 0 counted nothing


async def test_a_switch_that_does_not_answer_is_a_read_failure() -> None:
    reader = CounterArrayReader(address="127.0.0.1:1", device_id=1,
                                counters={TUNNEL_IN: (1, 4)}, timeout=2)
    with pytest.raises(CounterReadFailed, match="127.0.0.1:1: counter read failed: UNAVAILABLE"):
        await reader.read(None)
    await reader.close()


class _FakeRead:
    def __init__(self) -> None:
        self.now = 100.0
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> CounterSnapshot:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        return CounterSnapshot(started=self.now, taken_at=self.now,
                               packets={"c": array("Q", [self.calls])})


async def test_snapshots_are_shared_within_the_staleness_bound() -> None:
    read = _FakeRead()
    poller = CounterPoller(read, max_age=1.0, clock=lambda: read.now)
    first = await poller.snapshot()
    read.now += 0.9
    assert await poller.snapshot() is first and read.calls == 1
    read.now += 0.2  # 1.1 s after the read ended
    assert (await poller.snapshot()).get(("c", 0)) == 2


async def test_concurrent_callers_share_one_read() -> None:
    read = _FakeRead()
    read.gate = asyncio.Event()
    poller = CounterPoller(read, clock=lambda: read.now)
    waiting = [asyncio.ensure_future(poller.snapshot()) for _ in range(5)]
    await asyncio.sleep(0)
    read.gate.set()
    results = await asyncio.gather(*waiting)
    assert read.calls == 1 and all(r is results[0] for r in results)


async def test_no_snapshot_from_before_a_change_is_served_after_it() -> None:
    read = _FakeRead()
    read.gate = asyncio.Event()
    poller = CounterPoller(read, clock=lambda: read.now)
    before = asyncio.ensure_future(poller.snapshot())
    await asyncio.sleep(0)
    poller.invalidate()  # a change lands while that read is in flight
    read.gate.set()
    await before
    after = await poller.snapshot()
    assert read.calls == 2 and after.get(("c", 0)) == 2
    poller.invalidate()
    assert (await poller.snapshot()).get(("c", 0)) == 3
