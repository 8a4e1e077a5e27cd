"""controller/counter_figures.py: the API figures of a snapshot — only counted tunnels cost
anything, a snapshot from before a change never lends a new tunnel old counts, one from before
a fold is refused, and an older snapshot observed late never looks like a counter reset.

Run just this file: .venv/bin/python -m pytest tests/controller/test_counter_figures.py -q
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from pathlib import Path

import pytest

from controller.allocation import Allocation
from controller.counter_baselines import CounterBaselines
from controller.counter_figures import CHANGE_LOG, CounterFigures
from controller.counter_poller import CounterSnapshot
from controller.dataplane import TunnelCounters
from controller.pipeline import TUNNEL_COUNTERS, TUNNEL_DELTAS, TUNNEL_IN, Pipeline

P4INFO = Path(__file__).resolve().parents[2] / "p4src" / "tunnel_offload.p4info.txtpb"


class _Book:  # the store's baseline rows, in memory (unit test)
    def __init__(self) -> None:
        self.rows: dict[int, tuple[TunnelCounters, TunnelCounters]] = {}
        self.saves = 0

    def load_baselines(self) -> dict[int, tuple[TunnelCounters, TunnelCounters]]:
        return dict(self.rows)

    def save_baselines(self, rows: Mapping[int, tuple[TunnelCounters, TunnelCounters] | None]
                       ) -> None:
        self.saves += 1
        for tunnel_id, row in rows.items():
            if row is None:
                self.rows.pop(tunnel_id, None)
            else:
                self.rows[tunnel_id] = row


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline.load(P4INFO)


def _snapshot(pipeline: Pipeline, started: float, generation: int,
              in_packets: Mapping[int, int], extra: Mapping[int, int] | None = None
              ) -> CounterSnapshot:
    sizes = pipeline.tunnel_counter_arrays()
    packets = {name: array("Q", bytes(8 * size)) for name, (_, size) in sizes.items()}
    octets = {name: array("Q", bytes(8 * sizes[name][1])) for name in TUNNEL_COUNTERS}
    for index, count in in_packets.items():
        packets[TUNNEL_IN][index] = count
        octets[TUNNEL_IN][index] = 100 * count
    counted = {name: set() for name in sizes}
    counted[TUNNEL_IN] = {index for index, count in in_packets.items() if count}
    return CounterSnapshot(started=started, taken_at=started, packets=packets, octets=octets,
                           counted=counted, extra=dict(extra or {}), generation=generation)


def _figures(pipeline: Pipeline, alloc: dict[int, Allocation]
             ) -> tuple[CounterFigures, CounterBaselines, _Book]:
    book = _Book()
    baselines = CounterBaselines(book)
    return (CounterFigures(pipeline=pipeline, baselines=baselines, allocations=lambda: alloc),
            baselines, book)


def test_only_counted_tunnels_appear_and_an_idle_table_costs_no_map(pipeline) -> None:
    alloc = {tunnel_id: Allocation(tunnel_index=tunnel_id, sa_pairs=((tunnel_id, tunnel_id),))
             for tunnel_id in range(1, 1001)}
    figures, _, book = _figures(pipeline, alloc)
    assert figures.all(_snapshot(pipeline, 1.0, 0, {})) == {}
    assert figures._maps is None and book.saves == 0  # nothing built, nothing persisted
    result = figures.all(_snapshot(pipeline, 2.0, 0, {7: 2}, extra={9: 4}))
    assert result == {7: TunnelCounters(in_packets=2, in_bytes=200),
                      9: TunnelCounters(in_packets_drops=4)}


def test_a_snapshot_from_before_an_index_reuse_lends_the_new_tunnel_nothing(pipeline) -> None:
    alloc = {1: Allocation(tunnel_index=5)}
    figures, _, _ = _figures(pipeline, alloc)
    before = _snapshot(pipeline, 1.0, figures.generation, {5: 3})  # tunnel 1's frames
    del alloc[1]
    alloc[2] = Allocation(tunnel_index=5)  # DELETE 1, CREATE 2 on index 5 while in flight
    figures.changed([1, 2])
    assert figures.all(before) == {}
    assert figures.of(before, [2]) == {}
    after = _snapshot(pipeline, 2.0, figures.generation, {5: 1})
    assert figures.all(after) == {2: TunnelCounters(in_packets=1, in_bytes=100)}


def test_a_snapshot_from_before_a_fold_is_refused_and_one_too_old_too(pipeline) -> None:
    figures, _, _ = _figures(pipeline, {1: Allocation(tunnel_index=1)})
    before = _snapshot(pipeline, 1.0, figures.generation, {1: 3})
    figures.folded()
    assert figures.all(before) is None
    old = _snapshot(pipeline, 2.0, figures.generation, {1: 1})
    for _ in range(CHANGE_LOG):
        figures.changed(())
    assert figures.of(old, [1]) is not None  # every change since is still logged
    figures.changed(())
    assert figures.of(old, [1]) is None  # the log no longer reaches back: read again


def test_an_older_snapshot_observed_late_is_no_reset(pipeline) -> None:
    figures, baselines, _ = _figures(pipeline, {1: Allocation(tunnel_index=1)})
    older = _snapshot(pipeline, 1.0, 0, {1: 3})
    newer = _snapshot(pipeline, 2.0, 0, {1: 5})
    assert figures.of(newer, [1]) == {1: TunnelCounters(in_packets=5, in_bytes=500)}
    assert figures.of(older, [1]) == {1: TunnelCounters(in_packets=5, in_bytes=500)}
    later = _snapshot(pipeline, 3.0, 0, {1: 6})
    assert figures.of(later, [1]) == {1: TunnelCounters(in_packets=6, in_bytes=600)}
    assert baselines.current(1) == TunnelCounters(in_packets=6, in_bytes=600)


def test_a_real_reset_still_folds(pipeline) -> None:
    figures, _, _ = _figures(pipeline, {1: Allocation(tunnel_index=1)})
    figures.all(_snapshot(pipeline, 1.0, 0, {1: 4}))
    # the counters restarted (not seen as an empty switch): 1 more frame since
    assert figures.all(_snapshot(pipeline, 2.0, 0, {1: 1})) == {
        1: TunnelCounters(in_packets=5, in_bytes=500)}
    assert TUNNEL_DELTAS  # the delta arrays are part of every snapshot here
