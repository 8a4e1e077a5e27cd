"""The worker monitor's full check: the crypto worker's SAs against the ones the controller wants.

Measured at 65,535 tunnels (issue 12): one full check — ListSas, a dict of every SA's
parameters, a comparison of each — cost the controller about 1.2 s of CPU (py-spy: the dict of
65,535 messages half of it), held the data-plane lock throughout and stalled the event loop, so
every API call, every 10 s (the first stats pass after loading took 1.2 s, later ones 0.15 s;
after this change 0.28 s). Here:

* :class:`AuditSchedule` spaces full checks by what they cost: at least ``min_interval`` apart,
  and at most ``max_share`` of the time (a check that took 1 s is followed by 49 s without
  one). The polls in between probe a few SAs, as before: a restarted worker holds none of them,
  so a restart is still found at the next poll whatever the table's size; what only a full
  check finds (a stray SA, changed parameters) is found later on a large table. A check
  listed without the lock is discarded when something was programmed while the worker
  answered; it is spaced like a completed one (the worker's ListSas cost as much), and the
  next one lists under the lock, so checks complete however busy the controller is (before,
  a discarded check was retried at every poll: at 50,000 SAs, during a long stream or a run
  of single-request streams, ListSas took 65 % of the worker's CPU).
* :func:`compare` walks the worker's list as protobuf parsed it, one message at a time and none
  kept, yielding to the event loop every ``AUDIT_CHUNK`` SAs. It compares the SAs present on one
  side only, the ones not verified since they were last changed, and on a full check every one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from controller.crypto_client import SA_FIELDS, WorkerSa

AUDIT_CHUNK = 4096  # SAs compared between two yields to the event loop
FULL_CHECK_SHARE = 0.02  # full checks take at most this share of the time


def same_sa(wanted: WorkerSa, actual: Any) -> bool:
    """The fields the controller sets agree (the worker fills in defaults such as the replay
    window; keys cannot be compared, the worker never returns them)."""
    return wanted.fields == tuple(getattr(actual, name) for name in SA_FIELDS)


async def compare(listed: Iterable[Any], desired: Mapping[int, WorkerSa],
                  verified: dict[int, WorkerSa], *, full: bool
                  ) -> tuple[list[int], list[WorkerSa], set[int]]:
    """(SA indices to remove, SAs to install, SA indices listed) for the worker's `listed`
    SaInfo messages.

    `verified` maps an SA index to the wanted SA last found equal on the worker; it is updated
    here. An SA found with other parameters is both removed and installed again. `desired` must
    not change while this runs (the caller holds the data-plane lock)."""
    stray: list[int] = []
    missing: list[WorkerSa] = []
    seen: set[int] = set()
    for count, info in enumerate(listed, 1):
        params = info.params
        index = params.sa_index
        seen.add(index)
        wanted = desired.get(index)
        if wanted is None:
            stray.append(index)
        elif full or verified.get(index) is not wanted:
            if same_sa(wanted, params):
                verified[index] = wanted
            else:
                stray.append(index)
                missing.append(wanted)
        if count % AUDIT_CHUNK == 0:
            await asyncio.sleep(0)
    missing += [sa for index, sa in desired.items() if index not in seen]
    for sa in missing:
        verified.pop(sa.sa_index, None)
    if len(verified) > len(desired):  # entries of SAs no longer wanted
        kept = {index: sa for index, sa in verified.items() if desired.get(index) is sa}
        verified.clear()
        verified.update(kept)
    return stray, missing, seen


class AuditSchedule:
    """When the next full check is due (module doc)."""

    def __init__(self, *, min_interval: float, max_share: float = FULL_CHECK_SHARE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._min_interval = min_interval
        self._max_share = max_share
        self._clock = clock
        self._next = clock() + min_interval
        self.under_lock = False  # the next check lists the worker's SAs under the lock

    def due(self) -> bool:
        """True when a full check should run now."""
        return self._clock() >= self._next

    def done(self, started: float) -> None:
        """A full check that began at `started` (this schedule's clock) has ended."""
        now = self._clock()
        self._next = now + max(self._min_interval, (now - started) / self._max_share)
        self.under_lock = False

    def discarded(self, started: float) -> None:
        """A check that began at `started` was discarded (the table changed while the worker
        answered): the next waits as after a completed one, and lists under the lock."""
        self.done(started)
        self.under_lock = True

    def now(self) -> float:
        """The schedule's clock (to pass its reading to :meth:`done`)."""
        return self._clock()
