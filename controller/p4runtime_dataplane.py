"""The P4Runtime data plane: every validated change becomes switch writes and worker SA calls.

Per :meth:`P4RuntimeDataPlane.apply` (one API request), in this order — make before break,
because BMv2 has no atomic multi-entry writes:

1. the worker gets the new SAs (AddSa at fresh SA indices);
2. one WriteRequest adds what is new on the switch: counter resets for a new tunnel index,
   ``decrypt_sas`` entries, ``tunnel_rules`` entries (INSERT, or MODIFY when the key is the same);
3. one WriteRequest removes what is gone (old rule and SA-index entries);
4. once the frames already sent to the worker have come back (the drain: the tunnel's
   ``tunnel_out`` plus the worker's drops reach what ``tunnel_in`` minus ``tunnel_drop_in`` was
   right after step 3 — the crypto port is FIFO — or at most ``sa_drain`` seconds), the worker
   drops the old SAs: cleanup that is never undone (nothing refers to them any more; a failure
   leaves a stray that reconciliation removes).

A CREATE therefore is one WriteRequest, a DELETE one, an UPDATE at most two. An encrypt rekey
adds the new SA, repoints the rule (MODIFY), then removes the old SA; a decrypt rekey adds the
new SPI's entries beside the old ones: no packet meets a missing SA. If any step fails, the
steps already done are undone in reverse (per update, using the switch's per-update errors), so
the switch and the worker stay equal to the controller's state, and the request fails with
:class:`DataPlaneUnavailable`. If an undo itself fails, the next reconciliation repairs it.

Reconciliation: whenever the P4Runtime channel comes up (start-up, switch restart — finsy
re-pushes the pipeline when its cookie differs — or a reconnect) the managed tables are read
back and repaired to the desired entries; a monitor lists the worker's SAs periodically,
removes strays and re-installs missing decrypt SAs (worker restart) — never encrypt SAs, whose
sequence numbers (the AEAD IVs) would restart under a used key; those wait for a rekey. Until
both are reconciled, the data plane is unavailable: requests are refused untouched, reads
fail, health is NOT_SERVING.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import finsy as fy

from controller.allocation import Allocation, IndexExhausted, allocate
from controller.counter_poller import (
    DEFAULT_MAX_AGE,
    CounterArrayReader,
    CounterPoller,
    CounterReadFailed,
)
from controller.crypto_client import (
    CryptoWorkerClient,
    WorkerError,
    WorkerSa,
    worker_sas,
)
from controller.dataplane import DataPlaneUnavailable, TunnelChange, TunnelCounters
from controller.model import Tunnel
from controller.p4rt.connection import (
    SwitchConnection,
    SwitchTarget,
    SwitchUnavailable,
    SwitchWriteFailed,
    delete,
    insert,
    modify,
)
from controller.pipeline import (
    TUNNEL_DROP_IN,
    TUNNEL_DROP_OUT,
    TUNNEL_IN,
    TUNNEL_OUT,
    CellCounts,
    Pipeline,
    Route,
)

log = logging.getLogger(__name__)

WORKER_POLL_SECONDS = 0.5
SA_DRAIN_SECONDS = 2.0  # at most this long for in-flight frames before removing an old SA
DRAIN_POLL_SECONDS = 0.005
FEW_TUNNELS = 16  # up to this many, counters are read by index, else whole


class AllocationBook(Protocol):
    """Where allocations persist (the tunnel store, inside the request's transaction)."""

    def load_allocations(self) -> dict[int, Allocation]: ...

    def save_allocation(self, tunnel_id: int, allocation: Allocation | None) -> None: ...


def _key(entity: Any, pipeline: Pipeline) -> bytes:
    """The identity of a table entry (table, match, priority) as canonical bytes."""
    message = entity.encode(pipeline.schema)
    entry = message.table_entry
    entry.ClearField("action")
    entry.ClearField("counter_data")
    return message.SerializeToString(deterministic=True)


def _full(entity: Any, pipeline: Pipeline) -> bytes:
    """The whole entry (with its action) as canonical bytes."""
    message = entity.encode(pipeline.schema)
    message.table_entry.ClearField("counter_data")
    return message.SerializeToString(deterministic=True)


class _RetiredKeys:
    """Fingerprints of encrypt keys that have protected traffic and left the worker, so they are
    never installed again (their sequence numbers — the AEAD IVs — would restart under the same
    key). HMAC-SHA256 under a per-process random key: equality only, no key material kept."""

    def __init__(self) -> None:
        self._hmac_key = os.urandom(32)
        self._seen: set[bytes] = set()

    def _fingerprint(self, sa: WorkerSa) -> bytes:
        secret = sa.sa.secret
        # Key and salt only: the SPI is not part of the AEAD nonce (salt ‖ sequence number).
        return hmac.new(self._hmac_key, secret.reveal_key() + secret.reveal_salt(),
                        hashlib.sha256).digest()

    def retire(self, sa: WorkerSa) -> None:
        if sa.encrypt:
            self._seen.add(self._fingerprint(sa))

    def is_retired(self, sa: WorkerSa) -> bool:
        return sa.encrypt and self._fingerprint(sa) in self._seen


def _same_sa(wanted: Any, actual: Any) -> bool:
    """The fields the controller sets agree (the worker fills in defaults such as the replay
    window; keys cannot be compared, the worker never returns them)."""
    return all(getattr(wanted, name) == getattr(actual, name) for name in (
        "sa_index", "spi", "direction", "cipher", "mode", "nat_traversal"))


@dataclass(frozen=True, kw_only=True)
class DataPlaneStatus:
    """What health reporting needs."""

    switch_ready: bool
    worker_ready: bool

    @property
    def available(self) -> bool:
        """True when requests can be applied."""
        return self.switch_ready and self.worker_ready


class P4RuntimeDataPlane:
    """Programs ``p4src/`` over P4Runtime and the crypto worker's SAs (see module doc)."""

    name = "p4runtime"

    def __init__(self, *, pipeline: Pipeline, target: SwitchTarget,
                 worker: CryptoWorkerClient | None, routes: Sequence[Route],
                 book: AllocationBook, tunnels: Callable[[], Mapping[int, Tunnel]],
                 worker_poll: float = WORKER_POLL_SECONDS,
                 sa_drain: float = SA_DRAIN_SECONDS,
                 counter_max_age: float = DEFAULT_MAX_AGE) -> None:
        self.pipeline = pipeline
        self._worker = worker
        self._routes = tuple(routes)
        self._book = book
        self._tunnels = tunnels
        self._worker_poll = worker_poll
        self._sa_drain = sa_drain
        self._alloc: dict[int, Allocation] = book.load_allocations()
        self._lock = asyncio.Lock()
        self._switch_ready = False
        self._worker_ready = worker is None
        self._listeners: list[Callable[[DataPlaneStatus], Coroutine[Any, Any, None]]] = []
        self.connection = SwitchConnection(target, on_ready=self._switch_up,
                                           on_down=self._switch_down)
        # Stats of many tunnels: bulk counter reads shared for up to counter_max_age seconds.
        self._counter_reader = CounterArrayReader(
            address=target.address, device_id=target.device_id,
            counters=pipeline.tunnel_counter_arrays())
        self.counter_poller = CounterPoller(
            lambda: self._counter_reader.read(self._polled_cells()), max_age=counter_max_age)
        self._monitor: asyncio.Task[None] | None = None
        self._notify_tasks: set[asyncio.Task[Any]] = set()
        self._last_status: DataPlaneStatus | None = None
        self._lost_encrypt: set[int] = set()  # encrypt SA indices the worker lost
        self._retired = _RetiredKeys()

    # ---- life cycle -----------------------------------------------------------------------

    @property
    def status(self) -> DataPlaneStatus:
        """Switch and worker readiness."""
        return DataPlaneStatus(switch_ready=self._switch_ready, worker_ready=self._worker_ready)

    def on_status(self, listener: Callable[[DataPlaneStatus], Coroutine[Any, Any, None]]
                  ) -> None:
        """Call ``listener`` whenever readiness changes (the server drives health with it)."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        status = self.status
        if status == self._last_status:
            return
        self._last_status = status
        for listener in self._listeners:
            task = asyncio.get_running_loop().create_task(listener(status))
            self._notify_tasks.add(task)
            task.add_done_callback(self._notify_tasks.discard)

    async def start(self) -> None:
        """Allocate indices for stored tunnels that lack them, then connect in the background."""
        tunnels = self._tunnels()
        for tunnel_id in list(self._alloc):
            if tunnel_id not in tunnels:
                self._book.save_allocation(tunnel_id, None)
                del self._alloc[tunnel_id]
        for tunnel_id, tunnel in sorted(tunnels.items()):
            previous = self._alloc.get(tunnel_id)
            fresh = allocate(tunnel, previous=previous,
                             keep_spis=[sa.spi for sa in tunnel.security_associations],
                             others=self._alloc, max_tunnels=self.pipeline.sizes.max_tunnels,
                             max_sas=self.pipeline.sizes.max_sas)
            if fresh != previous:
                self._book.save_allocation(tunnel_id, fresh)
                self._alloc[tunnel_id] = fresh
        self.connection.start()
        if self._worker is not None:
            self._monitor = asyncio.create_task(self._watch_worker(), name="worker-monitor")

    async def stop(self) -> None:
        """Stop the monitor and the switch connection."""
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        await self.connection.stop()
        await self._counter_reader.close()
        if self._worker is not None:
            await self._worker.close()

    # ---- desired state --------------------------------------------------------------------

    def _tunnel_indexes(self, allocations: Mapping[int, Allocation]) -> dict[int, int]:
        return {tunnel_id: allocation.tunnel_index
                for tunnel_id, allocation in allocations.items()}

    def _entries(self, tunnel: Tunnel, allocation: Allocation,
                 tunnel_indexes: dict[int, int]) -> list[Any]:
        sa_indexes = allocation.sa_indexes
        entries: list[Any] = []
        if tunnel.kind == "ipsec-decrypt":
            entries += [self.pipeline.decrypt_sa_entry(tunnel_index=allocation.tunnel_index,
                                                       spi=spi, sa_index=sa_index)
                        for spi, sa_index in allocation.sa_pairs]
        entries += self.pipeline.rule_entries(tunnel, tunnel_index=allocation.tunnel_index,
                                              sa_indexes=sa_indexes,
                                              tunnel_indexes=tunnel_indexes)
        return entries

    def desired_entries(self) -> list[Any]:
        """Every entry the managed tables must hold: routes and all tunnels."""
        tunnels = self._tunnels()
        indexes = self._tunnel_indexes(self._alloc)
        entries = [self.pipeline.route_entry(route) for route in self._routes]
        for tunnel_id, tunnel in sorted(tunnels.items()):
            entries += self._entries(tunnel, self._alloc[tunnel_id], indexes)
        return entries

    def desired_sas(self) -> dict[int, WorkerSa]:
        """Every SA the worker must hold, by SA index."""
        sas: dict[int, WorkerSa] = {}
        for tunnel_id, tunnel in self._tunnels().items():
            for sa in worker_sas(tunnel, self._alloc[tunnel_id].sa_indexes):
                sas[sa.sa_index] = sa
        return sas

    def allocation(self, tunnel_id: int) -> Allocation | None:
        """The tunnel's indices (tests and logs)."""
        return self._alloc.get(tunnel_id)

    # ---- apply ----------------------------------------------------------------------------

    async def apply(self, change: TunnelChange) -> None:
        """Program one change all-or-nothing (module doc); DataPlaneUnavailable otherwise."""
        async with self._lock:
            if not self._switch_ready:
                raise DataPlaneUnavailable(f"the switch at {self.connection.target.address} is "
                                           "not connected")
            if not self._worker_ready:
                raise DataPlaneUnavailable("the crypto worker is not reachable")
            needs_worker = any(t is not None and t.security_associations
                               for t in (change.before, change.after))
            if needs_worker and self._worker is None:
                raise DataPlaneUnavailable("no crypto worker is configured "
                                           "(--crypto-worker-socket)")
            try:
                await self._apply_locked(change)
            finally:
                self.counter_poller.invalidate()  # a CREATE resets cells: no stale snapshot

    async def _apply_locked(self, change: TunnelChange) -> None:
        tunnel_id = change.tunnel_id
        before, after = change.before, change.after
        previous = self._alloc.get(tunnel_id)
        if before is not None and previous is None:
            raise DataPlaneUnavailable(f"tunnel {tunnel_id} has no data-plane allocation")
        new_alloc: dict[int, Allocation] = dict(self._alloc)
        if after is None:
            new_alloc.pop(tunnel_id, None)
            allocation = None
        else:
            keep = self._unchanged_spis(before, after)
            try:
                allocation = allocate(after, previous=previous, keep_spis=keep,
                                      others=self._alloc,
                                      max_tunnels=self.pipeline.sizes.max_tunnels,
                                      max_sas=self.pipeline.sizes.max_sas)
            except IndexExhausted as error:
                raise DataPlaneUnavailable(str(error)) from None
            new_alloc[tunnel_id] = allocation
        old_entries = ({} if before is None or previous is None else self._by_key(
            self._entries(before, previous, self._tunnel_indexes(self._alloc))))
        new_entries = ({} if after is None or allocation is None else self._by_key(
            self._entries(after, allocation, self._tunnel_indexes(new_alloc))))
        old_sas = {} if before is None or previous is None else {
            sa.sa_index: sa for sa in worker_sas(before, previous.sa_indexes)}
        new_sas = {} if after is None or allocation is None else {
            sa.sa_index: sa for sa in worker_sas(after, allocation.sa_indexes)}

        make: list[Any] = []
        undo_make: list[Any] = []
        if previous is None and allocation is not None:
            make += [modify(counter) for counter in self.pipeline.counter_resets(
                allocation.tunnel_index)]
            undo_make += [None] * len(make)
        for key, entry in new_entries.items():
            old = old_entries.get(key)
            if old is None:
                make.append(insert(entry))
                undo_make.append(delete(entry))
            elif _full(old, self.pipeline) != _full(entry, self.pipeline):
                make.append(modify(entry))
                undo_make.append(modify(old))
        brk = [delete(entry) for key, entry in old_entries.items() if key not in new_entries]
        undo_brk = [insert(entry) for key, entry in old_entries.items() if key not in new_entries]
        add_sas = [sa for index, sa in new_sas.items() if old_sas.get(index) != sa]
        remove_sas = [sa for index, sa in old_sas.items() if new_sas.get(index) != sa]

        live = [sa for sa in self.desired_sas().values() if sa.encrypt]
        for sa in add_sas:
            twin = next((other for other in live
                         if sa.encrypt and other.sa.secret == sa.sa.secret), None)
            if twin is not None:
                raise DataPlaneUnavailable(
                    f"encrypt SA spi {sa.sa.spi} of tunnel {tunnel_id}: its key is in use by "
                    f"the encrypt SA spi {twin.sa.spi} of tunnel {twin.tunnel_id}; a second SA "
                    "numbering packets from 1 under that key would reuse nonces (a changed "
                    "tunnel type or cipher also needs a new key)")
            if self._retired.is_retired(sa):
                raise DataPlaneUnavailable(
                    f"encrypt SA spi {sa.sa.spi} of tunnel {tunnel_id}: its key has already "
                    "been used by an encrypt SA that is gone; using it again would restart the "
                    "sequence numbers under the same key (nonce reuse): rekey with a new key")
        undo: list[Callable[[], Awaitable[None]]] = []
        try:
            for sa in add_sas:
                await self._worker_call(self._worker_add(sa))
                undo.append(functools.partial(self._worker_remove, sa.sa_index))
            await self._switch_write(make, undo_make, undo)
            await self._switch_write(brk, undo_brk, undo)
        except BaseException as error:  # a fault, a bug or a cancelled call: undo, then raise
            log.warning("tunnel %d: %s failed (%s); undoing %d step(s)", tunnel_id,
                        change.operation.name, error or type(error).__name__, len(undo))
            await self._undo(undo)
            raise
        # The switch no longer refers to the old SAs: the change is done. Removing them is
        # cleanup, never undone (re-adding an encrypt SA would restart its sequence numbers,
        # the AEAD IVs, under a used key); one the worker keeps is removed by reconciliation.
        if remove_sas and after is not None:
            assert allocation is not None
            await self._drain(allocation, previous)
        for sa in remove_sas:
            self._retired.retire(sa)
            try:
                await self._worker_remove(sa.sa_index)
            except WorkerError as error:
                log.warning("tunnel %d: old SA index %d stays on the worker until the next "
                            "reconciliation: %s", tunnel_id, sa.sa_index, error)
        self._alloc = new_alloc
        self._book.save_allocation(tunnel_id, allocation)
        log.info("tunnel %d: %s programmed: index %s, %d switch update(s), SAs +%d -%d",
                 tunnel_id, change.operation.name,
                 allocation.tunnel_index if allocation else previous.tunnel_index
                 if previous else "-", len(make) + len(brk), len(add_sas), len(remove_sas))

    async def _drain(self, allocation: Allocation, previous: Allocation | None) -> None:
        """Wait until every frame this tunnel sent to the worker so far has come back (or was
        dropped there), so removing an old SA loses nothing in flight. Best effort: a read
        failure or ``sa_drain`` seconds end the wait."""
        index = allocation.tunnel_index
        sa_indexes = {sa_index for _, sa_index in allocation.sa_pairs}
        if previous is not None:
            sa_indexes |= {sa_index for _, sa_index in previous.sa_pairs}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._sa_drain
        try:
            counts = await self._drain_counts(index, sa_indexes)
            sent = counts[TUNNEL_IN] - counts[TUNNEL_DROP_IN]
            while counts[TUNNEL_OUT] + counts["worker"] < sent:
                if loop.time() > deadline:
                    log.warning("tunnel %d: %d frame(s) still at the crypto worker after "
                                "%.1f s; removing the old SA anyway", index,
                                sent - counts[TUNNEL_OUT] - counts["worker"], self._sa_drain)
                    return
                await asyncio.sleep(DRAIN_POLL_SECONDS)
                counts = await self._drain_counts(index, sa_indexes)
        except (SwitchUnavailable, WorkerError) as error:
            log.warning("tunnel index %d: drain not checked (%s)", index, error)

    async def _drain_counts(self, index: int, sa_indexes: set[int]) -> dict[str, int]:
        cells = await self.connection.read(
            [fy.P4CounterEntry(name, index=index) for name in (TUNNEL_IN, TUNNEL_OUT,
                                                               TUNNEL_DROP_IN)])
        counts = {self.pipeline.schema.counters[cell.counter_id].name: cell.packet_count
                  for cell in cells}
        assert self._worker is not None
        drops = await self._worker.drops(sa_indexes)
        return {TUNNEL_IN: counts.get(TUNNEL_IN, 0), TUNNEL_OUT: counts.get(TUNNEL_OUT, 0),
                TUNNEL_DROP_IN: counts.get(TUNNEL_DROP_IN, 0), "worker": sum(drops.values())}

    @staticmethod
    def _unchanged_spis(before: Tunnel | None, after: Tunnel) -> list[int]:
        if before is None or type(before.body) is not type(after.body):
            return []
        if worker_sas(before, {sa.spi: 0 for sa in before.security_associations}) and (
                getattr(before.body, "cipher", None) != getattr(after.body, "cipher", None)
                or getattr(before.body, "mode", None) != getattr(after.body, "mode", None)):
            return []
        old = {sa.spi: sa for sa in before.security_associations}
        return [sa.spi for sa in after.security_associations if old.get(sa.spi) == sa]

    def _by_key(self, entries: Iterable[Any]) -> dict[bytes, Any]:
        return {_key(entry, self.pipeline): entry for entry in entries}

    async def _switch_write(self, updates: list[Any], inverses: list[Any],
                            undo: list[Callable[[], Awaitable[None]]]) -> None:
        if not updates:
            return
        try:
            await self.connection.write(updates)
        except SwitchWriteFailed as error:
            applied = ([inverse for index, inverse in enumerate(inverses)
                        if index not in error.failed] if error.failed is not None
                       else list(inverses))
            self._push_switch_undo(applied, undo, strict=error.failed is not None)
            raise DataPlaneUnavailable(str(error)) from None
        except SwitchUnavailable as error:
            raise DataPlaneUnavailable(str(error)) from None
        self._push_switch_undo(list(inverses), undo, strict=True)

    def _push_switch_undo(self, inverses: list[Any], undo: list[Callable[[], Awaitable[None]]],
                          *, strict: bool) -> None:
        real = [inverse for inverse in inverses if inverse is not None]
        if not real:
            return

        async def write_back() -> None:
            if strict:
                await self.connection.write(real)
                return
            for inverse in real:  # unknown which updates landed: undo each on its own
                with contextlib.suppress(SwitchWriteFailed):
                    await self.connection.write([inverse])

        undo.append(write_back)

    async def _undo(self, undo: list[Callable[[], Awaitable[None]]]) -> None:
        for step in reversed(undo):
            try:
                await step()
            except Exception as error:  # noqa: BLE001 - keep undoing; reconciliation repairs
                log.error("undo step failed (%s); reconciliation will repair it", error)
                self._switch_ready = False
                self._notify()
                self._schedule_resync()

    def _schedule_resync(self) -> None:
        async def resync() -> None:
            with contextlib.suppress(SwitchUnavailable, SwitchWriteFailed):
                await self._switch_up(self.connection)

        task = asyncio.get_running_loop().create_task(resync())
        self._notify_tasks.add(task)
        task.add_done_callback(self._notify_tasks.discard)

    async def _worker_call(self, call: Awaitable[None]) -> None:
        try:
            await call
        except WorkerError as error:
            raise DataPlaneUnavailable(str(error)) from None

    async def _worker_add(self, sa: WorkerSa) -> None:
        assert self._worker is not None
        await self._worker.add(sa)

    async def _worker_remove(self, sa_index: int) -> None:
        assert self._worker is not None
        await self._worker.remove(sa_index, missing_ok=True)

    # ---- counters -------------------------------------------------------------------------

    async def read_counters(self, tunnel_ids: Iterable[int]) -> Mapping[int, TunnelCounters]:
        """Switch per-tunnel counters plus the worker's per-SA drops (into the in-drops).

        Packets come from the four packet counters, bytes from their per-bit byte cells
        (:meth:`Pipeline.tunnel_figures`): the exact frames each tunnel received and emitted."""
        ids = list(tunnel_ids)
        if not self._switch_ready:
            raise DataPlaneUnavailable(f"the switch at {self.connection.target.address} is "
                                       "not connected; counters cannot be read")
        alloc = {tunnel_id: self._alloc[tunnel_id] for tunnel_id in ids
                 if tunnel_id in self._alloc}
        if len(alloc) <= FEW_TUNNELS:
            query = [fy.P4CounterEntry(name, index=index) for a in alloc.values()
                     for name, index in self.pipeline.counter_cells(a.tunnel_index)]
            try:
                cells = await self.connection.read(query) if query else []
            except SwitchUnavailable as error:
                raise DataPlaneUnavailable(str(error)) from None
            packets: CellCounts = {
                (self.pipeline.schema.counters[cell.counter_id].name, cell.index):
                cell.packet_count for cell in cells}
        else:  # one bulk read of every allocated tunnel's cells, shared (counter_poller)
            try:
                packets = await self.counter_poller.snapshot()
            except CounterReadFailed as error:
                raise DataPlaneUnavailable(str(error)) from None
        drops: dict[int, int] = {}
        sa_indexes = [index for a in alloc.values() for _, index in a.sa_pairs]
        if sa_indexes and self._worker is not None:
            try:
                drops = await self._worker.drops(sa_indexes)
            except WorkerError as error:
                raise DataPlaneUnavailable(str(error)) from None
        result: dict[int, TunnelCounters] = {}
        for tunnel_id in ids:
            a = alloc.get(tunnel_id)
            if a is None:
                result[tunnel_id] = TunnelCounters()
                continue
            figures = self.pipeline.tunnel_figures(a.tunnel_index, packets)
            in_p, in_b = figures[TUNNEL_IN]
            out_p, out_b = figures[TUNNEL_OUT]
            din_p, din_b = figures[TUNNEL_DROP_IN]
            dout_p, dout_b = figures[TUNNEL_DROP_OUT]
            worker_drops = sum(drops.get(sa_index, 0) for _, sa_index in a.sa_pairs)
            result[tunnel_id] = TunnelCounters(
                in_packets=in_p, in_bytes=in_b, out_packets=out_p, out_bytes=out_b,
                in_packets_drops=din_p + worker_drops, in_bytes_drops=din_b,
                out_packets_drops=dout_p, out_bytes_drops=dout_b)
        return result

    # ---- reconciliation -------------------------------------------------------------------

    async def _switch_up(self, connection: SwitchConnection) -> None:
        """Read back the managed tables and repair them to the desired entries."""
        async with self._lock:
            desired = self._by_key(self.desired_entries())
            actual_entries = await connection.read(
                [fy.P4TableEntry(name) for name in self.pipeline.managed_tables()])
            actual = self._by_key(actual_entries)
            deletes = [delete(entry) for key, entry in actual.items() if key not in desired]
            inserts = [insert(entry) for key, entry in desired.items() if key not in actual]
            modifies = [modify(entry) for key, entry in desired.items() if key in actual and
                        _full(entry, self.pipeline) != _full(actual[key], self.pipeline)]
            await connection.write(deletes)
            await connection.write(modifies + inserts)
            log.info("switch reconciled: %d entries wanted, %d deleted, %d modified, "
                     "%d inserted", len(desired), len(deletes), len(modifies), len(inserts))
            self._switch_ready = True
        self._notify()

    def _polled_cells(self) -> list[tuple[str, int]]:
        """The counter cells of every allocated tunnel (what a bulk stats read needs)."""
        return [cell for a in self._alloc.values()
                for cell in self.pipeline.counter_cells(a.tunnel_index)]

    def _switch_down(self) -> None:
        self.counter_poller.invalidate()
        if self._switch_ready:
            log.warning("data plane unavailable: the switch is not connected")
        self._switch_ready = False
        self._notify()

    async def reconcile_worker(self) -> None:
        """List the worker's SAs; remove stray or changed ones, re-install missing decrypt SAs.

        A missing *encrypt* SA is never re-installed: the worker would start its sequence
        numbers — the AES-GCM/CCM IVs — at 1 again under a key that already protected traffic
        (nonce reuse). It is reported once and stays out until the client rekeys the tunnel
        (UPDATE with a new ``ipsecSA``); its packets are dropped and counted meanwhile.
        """
        assert self._worker is not None
        async with self._lock:
            actual = await self._worker.list()
            desired = self.desired_sas()
            stray = [index for index, params in actual.items()
                     if index not in desired or not _same_sa(desired[index].params, params)]
            missing = [sa for index, sa in desired.items()
                       if index not in actual or not _same_sa(sa.params, actual[index])]
            for index in stray:
                await self._worker.remove(index, missing_ok=True)
            reinstall = [sa for sa in missing if not sa.encrypt]
            for sa in missing:
                if sa.encrypt and sa.sa_index not in self._lost_encrypt:
                    self._lost_encrypt.add(sa.sa_index)
                    self._retired.retire(sa)
                    log.error("tunnel %d: encrypt SA spi %d (index %d) is gone from the crypto "
                              "worker; not re-installed (its sequence numbers would restart "
                              "under the same key: AES-GCM/CCM nonce reuse); rekey the tunnel "
                              "(UPDATE with a new ipsecSA) — its packets are dropped until "
                              "then", sa.tunnel_id, sa.sa.spi, sa.sa_index)
            for sa in reinstall:
                await self._worker.add(sa)
            self._lost_encrypt &= {sa.sa_index for sa in missing if sa.encrypt}
            if stray or reinstall:
                log.info("crypto worker reconciled: %d SA(s) removed, %d decrypt SA(s) "
                         "re-installed (anti-replay windows start afresh)",
                         len(stray), len(reinstall))
            changed = not self._worker_ready
            self._worker_ready = True
        if changed:
            log.info("crypto worker reachable; %d SA(s)", len(desired))
            self._notify()

    async def _watch_worker(self) -> None:
        while True:
            try:
                await self.reconcile_worker()
            except WorkerError as error:
                if self._worker_ready:
                    log.warning("data plane unavailable: %s", error)
                    self._worker_ready = False
                    self._notify()
            await asyncio.sleep(self._worker_poll)
