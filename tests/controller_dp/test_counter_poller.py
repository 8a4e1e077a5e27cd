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
)
from controller.pipeline import TUNNEL_BYTES, TUNNEL_IN, Pipeline
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
    in_bytes = _counter(device, pipeline, TUNNEL_BYTES[TUNNEL_IN])
    tunnel_in.write(7, 3, 0)
    tunnel_in.write(65535, 1 << 40, 0)
    in_bytes.write(7 * 16 + 5, 2, 0)
    tunnel_in.write(9, 4, 0)  # not asked for by index
    reader = CounterArrayReader(address=address, device_id=1,
                                counters=pipeline.tunnel_counter_arrays())
    # whole reads of the 1,048,576-cell byte arrays take seconds here; one packet array will do
    packets_only = CounterArrayReader(address=address, device_id=1, counters={
        TUNNEL_IN: pipeline.tunnel_counter_arrays()[TUNNEL_IN]})
    try:
        by_index = await reader.read(pipeline.counter_cells(7) + pipeline.counter_cells(65535))
        whole = await packets_only.read(None)
    finally:
        await reader.close()
        await packets_only.close()
    assert pipeline.tunnel_figures(7, by_index)[TUNNEL_IN] == (3, 2 << 5)
    for snapshot in (by_index, whole):
        assert snapshot.get((TUNNEL_IN, 7)) == 3
        assert snapshot.get((TUNNEL_IN, 65535)) == 1 << 40
        assert snapshot.get((TUNNEL_IN, 8)) == 0
    # by index reads only what was asked; whole reads every cell
    assert (by_index.get((TUNNEL_IN, 9)), whole.get((TUNNEL_IN, 9))) == (0, 4)


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
