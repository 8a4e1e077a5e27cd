"""The SAs the worker holds, by sa_index, and the drops that belong to no SA.

The packet thread reads the table without a lock (a dict lookup is atomic under the GIL);
add, replace and remove take a lock so two control calls never interleave. A replace swaps in a
fresh SA object in one assignment, so a packet sees either the old SA or the new one, whole.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from crypto_worker.drops import DEFAULT_FLUSH_INTERVAL, DropCounterWriter, DropReason, DropSnapshot
from crypto_worker.reservation import DEFAULT_BLOCK, Reservation
from crypto_worker.sa import (
    CounterSnapshot,
    Direction,
    SaConfig,
    SaKeys,
    SecurityAssociation,
    max_sequence,
)
from crypto_worker.sa_state import SaStateRefused, SaStateStore, StateStoreError

log = logging.getLogger(__name__)

STATE_SHOWN = 8  # SAs named per batch log line


class SaTableError(KeyError):
    """add of an index in use, or replace/remove of an index not in use."""

    def __init__(self, field: str, message: str, *, in_use: bool) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.in_use = in_use  # True: the index is taken (add); False: it is free (replace/remove)
        self.message = f"{field}: {message}"

    def __str__(self) -> str:
        return self.message


class SaBatchError(Exception):
    """An SA of an add_many/remove_many batch was refused (nothing of the batch happened):
    ``position`` in the batch and the refusal (SaTableError or SaStateRefused)."""

    def __init__(self, position: int, error: Exception) -> None:
        super().__init__(f"[{position}]: {error}")
        self.position = position
        self.error = error


class SaTable:
    """sa_index → SecurityAssociation, plus unknown-SA and unattributed drop counts.

    Every add, replace and remove goes through the durable `store` first
    (crypto_worker/sa_state.py): an SA is live only once its first reservation is on disk.
    Without a store the table keeps its state in memory (in-process tests, benchmarks).
    """

    def __init__(self, store: SaStateStore | None = None, *, block: int = DEFAULT_BLOCK,
                 drop_flush_interval: float = DEFAULT_FLUSH_INTERVAL) -> None:
        self._sas: dict[int, SecurityAssociation] = {}
        # The SAs that have dropped anything: the drop writer and dropped-only reads look at
        # these, not at every SA (a scan of 60,000 SAs every flush interval costs ~2.5 % of a
        # core). Added to by the packet thread (count_drop), pruned of removed SAs by readers.
        self._dropping: set[SecurityAssociation] = set()
        self._lock = threading.Lock()
        self.store = store if store is not None else SaStateStore.in_memory()
        # Drop counters continue from the durable state (crypto_worker/drops.py).
        self.unattributed_drops, self.unknown_sa_drops = self.store.load_worker_drops()
        self._block = block
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sa-state")
        self._drop_writer: DropCounterWriter | None = None
        if self.store.durable:
            self._drop_writer = DropCounterWriter(self.drop_snapshot, self.store.save_drops,
                                                  interval=drop_flush_interval)
            self._drop_writer.start()

    def drop_snapshot(self) -> DropSnapshot:
        """Every drop count, for the writer (live SAs with drops only)."""
        return DropSnapshot(
            by_sa=tuple((sa.reservation.identity, dict(sa.counters.drops))
                        for sa in self.dropping()),
            unattributed=dict(self.unattributed_drops), unknown_sa=dict(self.unknown_sa_drops))

    def count_drop(self, sa: SecurityAssociation, reason: DropReason) -> None:
        """One frame of `sa` dropped for `reason` (packet thread)."""
        sa.counters.count_drop(reason)
        self._dropping.add(sa)

    def dropping(self) -> list[SecurityAssociation]:
        """The live SAs with drops, by sa_index; SAs removed since they dropped are forgotten
        here. (list() of a set runs without releasing the GIL, so the packet thread's adds
        cannot change it during the copy.)"""
        live = []
        for sa in list(self._dropping):
            if self._sas.get(sa.config.sa_index) is sa:
                live.append(sa)
            else:
                self._dropping.discard(sa)
        live.sort(key=lambda sa: sa.config.sa_index)
        return live

    def get(self, sa_index: int) -> SecurityAssociation | None:
        return self._sas.get(sa_index)

    def _new_sa(self, config: SaConfig, keys: SaKeys, *, resume: bool) -> SecurityAssociation:
        """Builds the SA after its durable state is written; raises SaStateRefused or
        StateStoreError and then nothing has changed."""
        identity = self.store.identity(config.sa_index, config.spi, config.direction, keys)
        maximum = max_sequence(config)
        start_after = 0
        if resume:
            start_after = self.store.resume(identity)
            limit = min(start_after + self._block, maximum)
            self.store.extend(identity, limit)
        else:
            limit = min(self._block, maximum)
            self.store.begin(identity, limit)
        reservation = Reservation(self.store, identity, limit=limit, block=self._block,
                                  maximum=maximum, executor=self._writer)
        sa = SecurityAssociation(config, keys, reservation, start_after=start_after)
        if resume:
            sa.counters.drops.update(self.store.load_drops(identity))
            if sa.counters.drops:
                self._dropping.add(sa)
        return sa

    def _release(self, sa: SecurityAssociation) -> None:
        identity = sa.reservation.identity
        try:
            self.store.release(identity)
        except StateStoreError as error:
            # The row stays "used", so a fresh SA with this key is still refused.
            log.error("%r removed, but its durable state could not be updated: %s", sa, error)

    def add(self, config: SaConfig, keys: SaKeys, *, resume: bool = False) -> None:
        with self._lock:
            if config.sa_index in self._sas:
                raise SaTableError("sa_index", f"{config.sa_index} is already in use", in_use=True)
            sa = self._new_sa(config, keys, resume=resume)
            self._sas[config.sa_index] = sa
        log.info("%s %r", "resumed" if resume else "added", sa)

    def add_many(self, items: list[tuple[SaConfig, SaKeys]], *, check_only: bool = False
                 ) -> None:
        """Adds new SAs all or nothing: every index free and not repeated, every encrypt key
        unused (before, and within the batch) — checked before anything is written; then one
        durable transaction for all their first reservations. Raises :class:`SaBatchError`
        naming the position of the SA refused; nothing has changed then. ``check_only``: the
        checks alone, nothing written (`--workers N` checks every process before any adds)."""
        with self._lock:
            seen: set[int] = set()
            encrypt_keys: set[bytes] = set()
            statements: list[tuple[str, tuple[object, ...]]] = []
            prepared = []
            for position, (config, keys) in enumerate(items):
                try:
                    if config.sa_index in self._sas or config.sa_index in seen:
                        raise SaTableError("sa_index", f"{config.sa_index} is already in use"
                                           if config.sa_index in self._sas else
                                           f"{config.sa_index} is repeated in the batch",
                                           in_use=True)
                    seen.add(config.sa_index)
                    identity = self.store.identity(config.sa_index, config.spi,
                                                   config.direction, keys)
                    self.store.check_new(identity)
                    if identity.direction is Direction.ENCRYPT:
                        if identity.fingerprint in encrypt_keys:
                            raise SaStateRefused(
                                f"key retired: sa_index {config.sa_index} spi {config.spi}: "
                                "this encrypt key is already used by another SA of the batch; "
                                "use a new key")
                        encrypt_keys.add(identity.fingerprint)
                except (SaTableError, SaStateRefused) as error:
                    raise SaBatchError(position, error) from None
                limit = min(self._block, max_sequence(config))
                statements += self.store.begin_statements(identity, limit)
                prepared.append((config, keys, identity, limit))
            if check_only:
                return
            if statements:
                self.store.write(statements)
            for config, keys, identity, limit in prepared:
                reservation = Reservation(self.store, identity, limit=limit, block=self._block,
                                          maximum=max_sequence(config), executor=self._writer)
                self._sas[config.sa_index] = SecurityAssociation(config, keys, reservation)
        log.info("added %d SA(s): %s", len(prepared),
                 ", ".join(f"{config.sa_index}/spi {config.spi}"
                           for config, *_ in prepared[:STATE_SHOWN])
                 + (" …" if len(prepared) > STATE_SHOWN else ""))

    def remove_many(self, sa_indexes: list[int], *, missing_ok: bool = False
                    ) -> list[CounterSnapshot]:
        """Removes SAs all or nothing (an unused index is :class:`SaBatchError` unless
        ``missing_ok``, which skips it); their durable rows are retired in one transaction.
        Returns the final counters of the SAs removed, in order."""
        with self._lock:
            old = []
            seen: set[int] = set()
            for position, sa_index in enumerate(sa_indexes):
                sa = self._sas.get(sa_index)
                if sa is None or sa_index in seen:
                    if missing_ok:
                        continue
                    raise SaBatchError(position, SaTableError(
                        "sa_index", f"{sa_index} is not in use", in_use=False))
                seen.add(sa_index)
                old.append(sa)
            statements = [statement for sa in old
                          for statement in self.store.release_statements(sa.reservation.identity)]
            if statements:
                try:
                    self.store.write(statements)
                except StateStoreError as error:
                    # The rows stay "used", so a fresh SA with these keys is still refused.
                    log.error("%d SA(s) removed, but their durable state could not be "
                              "updated: %s", len(old), error)
            for sa in old:
                del self._sas[sa.config.sa_index]
        log.info("removed %d SA(s): %s", len(old),
                 ", ".join(str(sa.config.sa_index) for sa in old[:STATE_SHOWN])
                 + (" …" if len(old) > STATE_SHOWN else ""))
        return [sa.counters.snapshot(sa.config.sa_index) for sa in old]

    def replace(self, config: SaConfig, keys: SaKeys) -> CounterSnapshot:
        """Installs a new SA at an index in use; returns the old SA's final counters."""
        with self._lock:
            old = self._sas.get(config.sa_index)
            if old is None:
                raise SaTableError("sa_index", f"{config.sa_index} is not in use", in_use=False)
            new = self._new_sa(config, keys, resume=False)
            self._sas[config.sa_index] = new
            if new.reservation.identity != old.reservation.identity:
                self._release(old)
        log.info("replaced %r with %r", old, new)
        return old.counters.snapshot(config.sa_index)

    def remove(self, sa_index: int) -> CounterSnapshot:
        """Drops the SA and, with it, the only reference to its keys; returns final counters.
        An encrypt SA's key is retired in the durable state: never installed fresh again."""
        with self._lock:
            old = self._sas.pop(sa_index, None)
            if old is None:
                raise SaTableError("sa_index", f"{sa_index} is not in use", in_use=False)
            self._release(old)
        log.info("removed %r", old)
        return old.counters.snapshot(sa_index)

    def close(self) -> None:
        if self._drop_writer is not None:
            self._drop_writer.stop()
        self._writer.shutdown(wait=True)
        self.store.close()

    def all(self) -> list[SecurityAssociation]:
        with self._lock:
            return [self._sas[i] for i in sorted(self._sas)]

    def count_unknown(self, sa_index: int) -> None:
        self.unknown_sa_drops[sa_index] = self.unknown_sa_drops.get(sa_index, 0) + 1

    def count_unattributed(self, reason: DropReason) -> None:
        self.unattributed_drops[reason] = self.unattributed_drops.get(reason, 0) + 1
