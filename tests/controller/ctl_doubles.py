"""Data-plane test doubles (unit tests only — never shipped): one that records every change and
serves preset counters, one that fails on chosen calls."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from controller.dataplane import DataPlaneUnavailable, TunnelChange, TunnelCounters, apply_each


class RecordingDataPlane:
    """Accepts every change, remembers it, and reports the counters the test preset."""

    name = "recording"

    def __init__(self) -> None:
        self.changes: list[TunnelChange] = []
        self.counters: dict[int, TunnelCounters] = {}

    async def apply(self, change: TunnelChange) -> None:
        self.changes.append(change)

    async def apply_batch(self, changes: Sequence[TunnelChange]) -> list[Exception | None]:
        return await apply_each(self.apply, changes)

    async def read_counters(self, tunnel_ids: Iterable[int]) -> Mapping[int, TunnelCounters]:
        return {tunnel_id: self.counters.get(tunnel_id, TunnelCounters())
                for tunnel_id in tunnel_ids}


class FailingDataPlane(RecordingDataPlane):
    """Raises DataPlaneUnavailable on the listed apply calls (0-based), or on all when
    ``fail_all``; counter reads fail when ``fail_reads``."""

    name = "failing"

    def __init__(self, *, fail_calls: Iterable[int] = (), fail_all: bool = False,
                 fail_reads: bool = False) -> None:
        super().__init__()
        self.fail_calls = set(fail_calls)
        self.fail_all = fail_all
        self.fail_reads = fail_reads
        self.calls = 0

    async def apply(self, change: TunnelChange) -> None:
        call, self.calls = self.calls, self.calls + 1
        if self.fail_all or call in self.fail_calls:
            raise DataPlaneUnavailable(f"switch did not answer (call {call})")
        await super().apply(change)

    async def read_counters(self, tunnel_ids: Iterable[int]) -> Mapping[int, TunnelCounters]:
        if self.fail_reads:
            raise DataPlaneUnavailable("counter read timed out")
        return await super().read_counters(tunnel_ids)
