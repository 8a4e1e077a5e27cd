"""API counters that only grow: per-tunnel baselines over the data plane's raw counters.

The switch's counters restart at 0 when it restarts (the pipeline is pushed again), and the
worker's drop counts when it restarts. The API's counters must not: for each tunnel the
controller keeps the last raw figures it read and a baseline, both persisted in the store. A raw
figure below the last one read means its source was reset in between: the last reading is
folded into the baseline. A switch that came back empty folds every tunnel at once (even if
traffic since the restart already passed the last reading). What a reset can lose is bounded:
the packets counted between the last read before the reset and the reset itself.

A new tunnel (CREATE, possibly on a reused tunnel index) starts from zero: :meth:`forget`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Protocol

from controller.dataplane import TunnelCounters

_ZERO = TunnelCounters()
FIELDS = tuple(field.name for field in dataclasses.fields(TunnelCounters))


class BaselineBook(Protocol):
    """Where baselines persist (the tunnel store)."""

    def load_baselines(self) -> dict[int, tuple[TunnelCounters, TunnelCounters]]: ...

    def save_baselines(self, rows: Mapping[int, tuple[TunnelCounters, TunnelCounters] | None]
                       ) -> None: ...


def _add(a: TunnelCounters, b: TunnelCounters) -> TunnelCounters:
    if a == _ZERO:  # most tunnels never had a reset: no new object per tunnel per read
        return b
    return TunnelCounters(**{name: getattr(a, name) + getattr(b, name) for name in FIELDS})


class CounterBaselines:
    """baseline + raw per tunnel; see the module doc."""

    def __init__(self, book: BaselineBook) -> None:
        self._book = book
        self._rows: dict[int, tuple[TunnelCounters, TunnelCounters]] = book.load_baselines()

    def observe(self, raw: Mapping[int, TunnelCounters]) -> dict[int, TunnelCounters]:
        """The API figures for freshly read raw counters (persisting what changed)."""
        result: dict[int, TunnelCounters] = {}
        changed: dict[int, tuple[TunnelCounters, TunnelCounters] | None] = {}
        for tunnel_id, now in raw.items():
            row = self._rows.get(tunnel_id)
            if row is None and now == _ZERO:
                result[tunnel_id] = now  # nothing counted yet: no row to keep or persist
                continue
            base, last = row or (_ZERO, _ZERO)
            reset = {name: getattr(base, name) + getattr(last, name) for name in FIELDS
                     if getattr(now, name) < getattr(last, name)}
            if reset:
                base = dataclasses.replace(base, **reset)
            if (base, now) != row:
                self._rows[tunnel_id] = (base, now)
                changed[tunnel_id] = (base, now)
            result[tunnel_id] = _add(base, now)
        if changed:
            self._book.save_baselines(changed)
        return result

    def tracked(self) -> Iterable[int]:
        """The tunnels with a baseline or a last reading (every other one is at zero)."""
        return self._rows.keys()

    def current(self, tunnel_id: int) -> TunnelCounters:
        """The API figures as last observed (zero for a tunnel never seen counting)."""
        row = self._rows.get(tunnel_id)
        return _ZERO if row is None else _add(*row)

    def fold(self, tunnel_ids: Iterable[int]) -> None:
        """The source of these tunnels' counters was reset: the last reading joins the base."""
        changed: dict[int, tuple[TunnelCounters, TunnelCounters] | None] = {}
        for tunnel_id in tunnel_ids:
            row = self._rows.get(tunnel_id)
            if row is not None and row[1] != TunnelCounters():
                self._rows[tunnel_id] = changed[tunnel_id] = (_add(*row), TunnelCounters())
        if changed:
            self._book.save_baselines(changed)

    def add_drops(self, drops: Mapping[int, int]) -> None:
        """In-drops counted where the raw figures no longer look — the final drops of SAs a
        rekey removed from the worker — join these tunnels' baselines (persisted)."""
        changed: dict[int, tuple[TunnelCounters, TunnelCounters] | None] = {}
        for tunnel_id, packets in drops.items():
            base, last = self._rows.get(tunnel_id) or (_ZERO, _ZERO)
            base = dataclasses.replace(base, in_packets_drops=base.in_packets_drops + packets)
            self._rows[tunnel_id] = changed[tunnel_id] = (base, last)
        if changed:
            self._book.save_baselines(changed)

    def forget(self, tunnel_id: int) -> None:
        """A new (or deleted) tunnel: its counters start from zero."""
        if self._rows.pop(tunnel_id, None) is not None:
            self._book.save_baselines({tunnel_id: None})
