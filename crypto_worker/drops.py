"""Why a packet was dropped, the exception that carries the reason out of the ESP code, and the
writer that keeps the drop counters across restarts."""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


class DropReason(enum.Enum):
    """Every reason the worker drops a frame; the values are the proto's `DropReason` names."""

    ICV_FAILURE = "DROP_REASON_ICV_FAILURE"
    REPLAY = "DROP_REASON_REPLAY"
    UNKNOWN_SA = "DROP_REASON_UNKNOWN_SA"
    SPI_MISMATCH = "DROP_REASON_SPI_MISMATCH"
    MALFORMED = "DROP_REASON_MALFORMED"
    SEQUENCE_EXHAUSTED = "DROP_REASON_SEQUENCE_EXHAUSTED"
    SA_MISMATCH = "DROP_REASON_SA_MISMATCH"
    DUMMY_PACKET = "DROP_REASON_DUMMY_PACKET"
    OVERSIZE = "DROP_REASON_OVERSIZE"
    INTERNAL = "DROP_REASON_INTERNAL"
    STATE_UNAVAILABLE = "DROP_REASON_STATE_UNAVAILABLE"


class PacketDropped(Exception):
    """Raised inside the ESP transforms; the processor counts it and sends nothing back."""

    def __init__(self, reason: DropReason, detail: str) -> None:
        super().__init__(f"{reason.name}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, kw_only=True)
class DropSnapshot:
    """The drop counts to persist: per live SA (by its durable identity), unattributed by
    reason, unknown-SA by sa_index. Only non-empty SAs are listed."""

    by_sa: tuple[tuple[Any, dict[DropReason, int]], ...] = ()
    unattributed: dict[DropReason, int] = field(default_factory=dict)
    unknown_sa: dict[int, int] = field(default_factory=dict)

    def changed_since(self, last: DropSnapshot) -> DropSnapshot:
        """Only the counts that differ from `last` (what a flush needs to write)."""
        previous = dict(last.by_sa)
        return DropSnapshot(
            by_sa=tuple((identity, {reason: count for reason, count in drops.items()
                                    if previous.get(identity, {}).get(reason) != count})
                        for identity, drops in self.by_sa if previous.get(identity) != drops),
            unattributed={reason: count for reason, count in self.unattributed.items()
                          if last.unattributed.get(reason) != count},
            unknown_sa={index: count for index, count in self.unknown_sa.items()
                        if last.unknown_sa.get(index) != count})

    def empty(self) -> bool:
        return not (self.by_sa or self.unattributed or self.unknown_sa)


DEFAULT_FLUSH_INTERVAL = 0.25  # seconds: what a crash may lose of the drop counts


class DropCounterWriter:
    """Persists the drop counters on its own thread, at most every `interval` seconds and only
    when a count changed, so the packet thread never waits for the disk and a restart loses at
    most the drops of the last interval (docs/operations.md "What survives a restart").

    A failed write is logged once at ERROR and retried at the next interval: drop counts are
    statistics, not safety state (sequence numbers and replay marks are: reservation.py)."""

    def __init__(self, snapshot: Callable[[], DropSnapshot],
                 save: Callable[[DropSnapshot], None], *,
                 interval: float = DEFAULT_FLUSH_INTERVAL) -> None:
        self._snapshot = snapshot
        self._save = save
        self._interval = interval
        self._written = DropSnapshot()
        self._failing = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drop-counters", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def flush(self) -> None:
        """Write what changed since the last successful write."""
        current = self._snapshot()
        changed = current.changed_since(self._written)
        if changed.empty():
            return
        try:
            self._save(changed)
        except Exception as error:  # noqa: BLE001 - StateStoreError or a bug: keep counting
            if not self._failing:
                log.error("drop counters cannot be persisted (%s); retrying every %.2f s",
                          error, self._interval)
            self._failing = True
            return
        if self._failing:
            log.info("drop counters are persisted again")
        self._failing = False
        self._written = current

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def stop(self) -> None:
        """Stop the thread after one last flush (a clean stop loses nothing)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.flush()
