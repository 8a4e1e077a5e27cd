"""The SAs the worker holds, by sa_index, and the drops that belong to no SA.

The packet thread reads the table without a lock (a dict lookup is atomic under the GIL);
add, replace and remove take a lock so two control calls never interleave. A replace swaps in a
fresh SA object in one assignment, so a packet sees either the old SA or the new one, whole.
"""

from __future__ import annotations

import logging
import threading

from crypto_worker.drops import DropReason
from crypto_worker.sa import CounterSnapshot, SaConfig, SaKeys, SecurityAssociation

log = logging.getLogger(__name__)


class SaTableError(KeyError):
    """add of an index in use, or replace/remove of an index not in use."""

    def __init__(self, field: str, message: str, *, in_use: bool) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.in_use = in_use  # True: the index is taken (add); False: it is free (replace/remove)
        self.message = f"{field}: {message}"

    def __str__(self) -> str:
        return self.message


class SaTable:
    """sa_index → SecurityAssociation, plus unknown-SA and unattributed drop counts."""

    def __init__(self) -> None:
        self._sas: dict[int, SecurityAssociation] = {}
        self._lock = threading.Lock()
        self.unknown_sa_drops: dict[int, int] = {}
        self.unattributed_drops: dict[DropReason, int] = {}

    def get(self, sa_index: int) -> SecurityAssociation | None:
        return self._sas.get(sa_index)

    def add(self, config: SaConfig, keys: SaKeys) -> None:
        with self._lock:
            if config.sa_index in self._sas:
                raise SaTableError("sa_index", f"{config.sa_index} is already in use", in_use=True)
            self._sas[config.sa_index] = SecurityAssociation(config, keys)
        log.info("added %r", self._sas[config.sa_index])

    def replace(self, config: SaConfig, keys: SaKeys) -> CounterSnapshot:
        """Installs a new SA at an index in use; returns the old SA's final counters."""
        with self._lock:
            old = self._sas.get(config.sa_index)
            if old is None:
                raise SaTableError("sa_index", f"{config.sa_index} is not in use", in_use=False)
            new = SecurityAssociation(config, keys)
            self._sas[config.sa_index] = new
        log.info("replaced %r with %r", old, new)
        return old.counters.snapshot(config.sa_index)

    def remove(self, sa_index: int) -> CounterSnapshot:
        """Drops the SA and, with it, the only reference to its keys; returns final counters."""
        with self._lock:
            old = self._sas.pop(sa_index, None)
            if old is None:
                raise SaTableError("sa_index", f"{sa_index} is not in use", in_use=False)
        log.info("removed %r", old)
        return old.counters.snapshot(sa_index)

    def all(self) -> list[SecurityAssociation]:
        with self._lock:
            return [self._sas[i] for i in sorted(self._sas)]

    def count_unknown(self, sa_index: int) -> None:
        self.unknown_sa_drops[sa_index] = self.unknown_sa_drops.get(sa_index, 0) + 1

    def count_unattributed(self, reason: DropReason) -> None:
        self.unattributed_drops[reason] = self.unattributed_drops.get(reason, 0) + 1
