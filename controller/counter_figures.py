"""The API's per-tunnel counters from counter snapshots, computed once per snapshot.

A stats pass over 65,535 tunnels used to turn every tunnel's cells into figures, baselines and
a message per page (issue 12: most of a pass). Here a snapshot's figures are computed once, for
the tunnels whose cells counted anything (``CounterSnapshot.counted``), that have a baseline, or
whose SAs dropped at the worker; every other tunnel is at zero and costs nothing. The result is
sparse: tunnel id → non-zero :class:`TunnelCounters`.

Two races are closed here (both seen with a poll in flight across a change,
tests/controller_dp/test_dp_counters.py):

* a snapshot read before a DELETE and CREATE that reused a tunnel index (or a tunnel id) holds
  the old tunnel's cells. Every programming change bumps a *generation* and logs the tunnels
  whose index is new or gone (:meth:`CounterFigures.changed`); a snapshot carries the
  generation its read began in, and the tunnels changed since are not taken from it (they are
  served from their baselines: zero for a new tunnel). A switch that came back empty folds the
  baselines (:meth:`CounterFigures.folded`): no snapshot from before can be used at all, the
  caller reads again (``None``);
* snapshots observed out of order (a read that began earlier finishing later): the data plane
  reads the switch one read at a time, so a later ``started`` is later data, and a snapshot
  older than the newest one observed only serves the baselines' current figures (never a
  false "reset" that folds a reading twice).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterable, Mapping

from controller.allocation import Allocation
from controller.counter_baselines import CounterBaselines
from controller.counter_poller import CounterSnapshot
from controller.dataplane import ZERO_COUNTERS, TunnelCounters
from controller.pipeline import (
    TUNNEL_COUNTERS,
    TUNNEL_DROP_IN,
    TUNNEL_DROP_OUT,
    TUNNEL_IN,
    TUNNEL_OUT,
    Pipeline,
)

CHANGE_LOG = 256  # generations remembered; a snapshot older than that is read again


class CounterFigures:
    """Sparse API figures per snapshot (module doc)."""

    def __init__(self, *, pipeline: Pipeline, baselines: CounterBaselines,
                 allocations: Callable[[], Mapping[int, Allocation]]) -> None:
        self._pipeline = pipeline
        self._baselines = baselines
        self._allocations = allocations
        self.generation = 0
        self._log: deque[tuple[int, frozenset[int] | None]] = deque(maxlen=CHANGE_LOG)
        self._observed = float("-inf")  # `started` of the newest snapshot observed
        self._maps: tuple[int, dict[int, int], dict[int, int]] | None = None
        self._cached: tuple[CounterSnapshot, int, dict[int, TunnelCounters]] | None = None

    # ---- changes --------------------------------------------------------------------------

    def changed(self, tunnel_ids: Iterable[int]) -> None:
        """Programming changed (allocations, counter resets): a new generation, in which
        `tunnel_ids` have an index that is new or gone."""
        self._advance(frozenset(tunnel_ids))

    def folded(self) -> None:
        """The switch's counters restarted and every baseline was folded."""
        self._advance(None)

    def _advance(self, tunnels: frozenset[int] | None) -> None:
        self.generation += 1
        self._log.append((self.generation, tunnels))
        self._maps = None
        self._cached = None

    def _changed_since(self, generation: int) -> frozenset[int] | None:
        """Tunnels whose index changed after `generation` (None: unknown, or a fold)."""
        if generation == self.generation:
            return frozenset()
        if not self._log or self._log[0][0] > generation + 1:
            return None
        changed: set[int] = set()
        for number, tunnels in self._log:
            if number > generation:
                if tunnels is None:
                    return None
                changed |= tunnels
        return frozenset(changed)

    # ---- figures --------------------------------------------------------------------------

    def _tunnel_maps(self) -> tuple[dict[int, int], dict[int, int]]:
        """(tunnel index → tunnel id, SA index → tunnel id), kept per generation."""
        if self._maps is None or self._maps[0] != self.generation:
            alloc = self._allocations()
            self._maps = (self.generation,
                          {a.tunnel_index: tunnel_id for tunnel_id, a in alloc.items()},
                          {sa_index: tunnel_id for tunnel_id, a in alloc.items()
                           for _, sa_index in a.sa_pairs})
        return self._maps[1], self._maps[2]

    def all(self, snapshot: CounterSnapshot) -> dict[int, TunnelCounters] | None:
        """Every tunnel's non-zero figures (the result is shared while neither the snapshot
        nor the generation changes); None when the snapshot predates a fold: read again."""
        cached = self._cached
        if cached is not None and cached[0] is snapshot and cached[1] == self.generation:
            return cached[2]
        counted = {index for name in TUNNEL_COUNTERS for index in snapshot.counted.get(name, ())}
        ids = set(self._baselines.tracked())
        if counted or any(snapshot.extra.values()):  # else no map is needed (an idle table)
            at_index, of_sa = self._tunnel_maps()
            ids.update(at_index[index] for index in counted if index in at_index)
            ids.update(of_sa[sa_index] for sa_index, drops in snapshot.extra.items()
                       if drops and sa_index in of_sa)
        result = self.of(snapshot, ids)
        if result is not None:
            self._cached = (snapshot, self.generation, result)
        return result

    def of(self, snapshot: CounterSnapshot, tunnel_ids: Iterable[int]
           ) -> dict[int, TunnelCounters] | None:
        """The non-zero figures of `tunnel_ids` from `snapshot` (cells not read count 0);
        None when the snapshot predates a fold: read again."""
        stale = self._changed_since(snapshot.generation)
        if stale is None:
            return None
        alloc = self._allocations()
        raw: dict[int, TunnelCounters] = {}
        kept: list[int] = []
        for tunnel_id in tunnel_ids:
            allocation = alloc.get(tunnel_id)
            if allocation is None:
                continue
            kept.append(tunnel_id)
            if tunnel_id in stale:
                continue
            figures = self._pipeline.tunnel_figures(allocation.tunnel_index, snapshot)
            in_p, in_b = figures[TUNNEL_IN]
            out_p, out_b = figures[TUNNEL_OUT]
            din_p, din_b = figures[TUNNEL_DROP_IN]
            dout_p, dout_b = figures[TUNNEL_DROP_OUT]
            raw[tunnel_id] = TunnelCounters(
                in_packets=in_p, in_bytes=in_b, out_packets=out_p, out_bytes=out_b,
                in_packets_drops=din_p, in_bytes_drops=din_b,
                out_packets_drops=dout_p, out_bytes_drops=dout_b)
        # The switch's figures are monotonic across resets (controller.counter_baselines),
        # observed in the order the switch was read.
        if snapshot.started >= self._observed:
            grown = self._baselines.observe(raw)
            self._observed = snapshot.started
        else:
            grown = {}
        result: dict[int, TunnelCounters] = {}
        for tunnel_id in kept:
            counters = grown.get(tunnel_id)
            if counters is None:
                counters = self._baselines.current(tunnel_id)
            # the worker's drops are added as it reports them (not from a stale snapshot)
            if tunnel_id not in stale and snapshot.extra:
                drops = sum(snapshot.extra.get(sa_index, 0)
                            for _, sa_index in alloc[tunnel_id].sa_pairs)
                if drops:
                    counters = dataclasses.replace(
                        counters, in_packets_drops=counters.in_packets_drops + drops)
            if counters != ZERO_COUNTERS:
                result[tunnel_id] = counters
        return result
