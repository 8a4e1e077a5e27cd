"""Sequence numbers (outbound) and the replay high-water mark (inbound), reserved in blocks made
durable before use.

Outbound: no sequence number above the durable limit is ever sent, so after a crash the SA resumes
at limit + 1 and never repeats an IV under its key. Inbound: no sequence number above the limit
is ever accepted, so after a crash every frame at or below it is refused as a replay. The packet
thread pays one integer compare per packet (`refill_at`); when half a block is left it hands the
next reservation (one fsynced commit) to the store's writer thread, and only blocks on the disk
itself if the block runs out first (or an inbound sequence number jumps past it).

Bound: the limit is at most one block above the highest number used or accepted, so a crash skips
fewer than `block` outbound sequence numbers and refuses at most `block` legitimate inbound ones.
If the limit cannot be made durable the SA says so (ERROR log) and stops at its limit: frames
that would need a number above it are dropped as STATE_UNAVAILABLE, never sent or accepted.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Executor

from crypto_worker.drops import DropReason, PacketDropped
from crypto_worker.sa_state import SaIdentity, SaStateStore, StateStoreError

log = logging.getLogger(__name__)

DEFAULT_BLOCK = 1 << 16


class Reservation:
    """The durable limit of one SA and its refill, shared by the packet thread and the writer."""

    __slots__ = ("limit", "refill_at", "_store", "_identity", "_block", "_half", "_max",
                 "_executor", "_lock", "_pending", "_failed")

    def __init__(self, store: SaStateStore, identity: SaIdentity, *, limit: int, block: int,
                 maximum: int, executor: Executor) -> None:
        self._store = store
        self._identity = identity
        self._block = block
        self._half = block // 2
        self._max = maximum
        self._executor = executor
        self._lock = threading.Lock()
        self._pending = False
        self._failed = False
        self.limit = limit
        self.refill_at = min(limit - self._half, maximum)

    @property
    def identity(self) -> SaIdentity:
        return self._identity

    @property
    def failed(self) -> bool:
        return self._failed

    def reach(self, position: int) -> None:
        """The packet thread is about to use (or accept) `position` > `refill_at`: make sure it
        is under the durable limit, and reserve the next block early. Raises PacketDropped."""
        if position > self.limit:
            self._extend_now(position)
        elif not self._pending and not self._failed:
            self._pending = True
            self.refill_at = self.limit  # no further trigger before the limit itself
            self._executor.submit(self._extend_in_background, position)

    def _new_limit(self, position: int) -> int:
        return min(position + self._block, self._max)

    def _extend_now(self, position: int) -> None:
        with self._lock:
            if position <= self.limit:
                return  # the writer thread got there first
            if not self._failed:
                try:
                    self._store.extend(self._identity, self._new_limit(position))
                except StateStoreError as error:
                    self._fail(error)
                else:
                    self._set(self._new_limit(position))
                    return
        raise PacketDropped(
            DropReason.STATE_UNAVAILABLE,
            f"sa_index {self._identity.sa_index}: sequence {position} is above the durable "
            f"limit {self.limit}, which cannot be raised",
        )

    def _extend_in_background(self, position: int) -> None:
        with self._lock:
            try:
                new = self._new_limit(position)
                if new > self.limit and not self._failed:
                    self._store.extend(self._identity, new)
                    self._set(new)
            except StateStoreError as error:
                self._fail(error)
            finally:
                self._pending = False

    def _set(self, limit: int) -> None:
        self.limit = limit  # first the limit, then the trigger: the packet thread reads both
        self.refill_at = min(limit - self._half, self._max)

    def _fail(self, error: StateStoreError) -> None:
        if not self._failed:
            log.error("sa_index %s spi %s: durable state cannot be written (%s); the SA stops "
                      "at sequence %s (frames beyond are dropped as STATE_UNAVAILABLE)",
                      self._identity.sa_index, self._identity.spi, error, self.limit)
        self._failed = True
