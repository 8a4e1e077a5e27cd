"""The P4Runtime data plane: every validated change becomes switch writes and worker SA calls.

Per :meth:`P4RuntimeDataPlane.apply` (one API request), in this order — make before break,
because BMv2 has no atomic multi-entry writes:

1. the worker gets the new SAs (AddSa at fresh SA indices);
2. one WriteRequest adds what is new on the switch: counter resets for a new tunnel index,
   ``decrypt_sas`` entries, ``tunnel_rules`` entries (INSERT, or MODIFY when the key is the same);
3. one WriteRequest removes what is gone (old rule and SA-index entries);
4. once the frames already sent to the worker have come back (the drain, :meth:`_drain`), the
   worker drops the old SAs: cleanup that is never undone (nothing refers to them any more; a
   failure leaves a stray that reconciliation removes).

A CREATE therefore is one WriteRequest, a DELETE one, an UPDATE at most two. An encrypt rekey
adds the new SA, repoints the rule (MODIFY), then removes the old SA; a decrypt rekey adds the
new SPI's entries beside the old ones: no packet meets a missing SA. If any step fails, the
steps already done are undone in reverse (per update, using the switch's per-update errors), so
the switch and the worker stay equal to the controller's state, and the request fails with
:class:`DataPlaneUnavailable`. If an undo itself fails, the next reconciliation repairs it.

Reconciliation: whenever the P4Runtime channel comes up (start-up, switch restart — finsy
re-pushes the pipeline when its cookie differs — or a reconnect) the managed tables are read
back and repaired to the desired entries (a switch that came back empty also folds its
counters into the per-tunnel baselines, controller.counter_baselines); a monitor lists the
worker's SAs periodically, removes strays and re-installs every missing SA with AddSa
resume=true (the worker continues from its durable sequence/replay state); one it cannot resume
is never added afresh under its used key and its tunnel is degraded (:meth:`tunnel_states`)
until a rekey. Until both are reconciled, the data plane is unavailable: requests are refused
untouched, reads fail, health is NOT_SERVING.

A request's own fault found here — an SA index the make-before-break peak cannot get, a reused
or retired encrypt key (last guard; the service's planner refuses them first), the worker's
FAILED_PRECONDITION "key retired" — raises :class:`controller.errors.RequestError`, after the
undo; :class:`DataPlaneUnavailable` means the switch or the worker did not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, Protocol

import finsy as fy

from controller.allocation import Allocation, IndexExhausted, allocate
from controller.counter_baselines import CounterBaselines
from controller.counter_poller import (
    DEFAULT_MAX_AGE,
    CounterArrayReader,
    CounterPoller,
    CounterReadFailed,
)
from controller.crypto_client import (
    CryptoWorkerClient,
    WorkerError,
    WorkerRefused,
    WorkerSa,
    worker_sas,
)
from controller.dataplane import DataPlaneUnavailable, TunnelChange, TunnelCounters
from controller.errors import ErrorCode, RequestError
from controller.key_guard import KEY_FIELD
from controller.keys import SaKey
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
DRAIN_QUIET_POLLS = 20  # polls with nothing entering or leaving: nothing is in flight
WHOLE_READ_SHARE = 0.5  # counters are read whole when a read names more than this share of cells
STATE_IDS_SHOWN = 20  # tunnel ids named per operational-state log line


class AllocationBook(Protocol):
    """Where allocations and retired keys persist (the tunnel store, inside the request's
    transaction)."""

    def load_allocations(self) -> dict[int, Allocation]: ...

    def save_allocation(self, tunnel_id: int, allocation: Allocation | None) -> None: ...

    def fingerprint(self, secret: SaKey) -> bytes: ...

    def is_retired(self, fingerprint: bytes) -> bool: ...

    def retire(self, fingerprint: bytes) -> None: ...

    def load_baselines(self) -> dict[int, tuple[TunnelCounters, TunnelCounters]]: ...

    def save_baselines(self, rows: Mapping[int, tuple[TunnelCounters, TunnelCounters] | None]
                       ) -> None: ...


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


def _same_sa(wanted: Any, actual: Any) -> bool:
    """The fields the controller sets agree (the worker fills in defaults such as the replay
    window; keys cannot be compared, the worker never returns them)."""
    return all(getattr(wanted, name) == getattr(actual, name) for name in (
        "sa_index", "spi", "direction", "cipher", "mode", "nat_traversal"))


@dataclasses.dataclass(frozen=True, kw_only=True)
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
            counters=pipeline.tunnel_counter_arrays(), tls=target.tls)
        self.counter_poller = CounterPoller(
            lambda: self._counter_reader.read(self._polled_cells()), max_age=counter_max_age)
        self._monitor: asyncio.Task[None] | None = None
        self._notify_tasks: set[asyncio.Task[Any]] = set()
        self._last_status: DataPlaneStatus | None = None
        self._baselines = CounterBaselines(book)
        self._degraded: dict[int, str] = {}  # SA index -> why the worker does not hold it
        self._states: dict[int, str] = {}  # tunnel id -> last logged operational state

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
        self.log_states()
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
            except IndexExhausted as error:  # the make-before-break peak needs one more
                raise RequestError(ErrorCode.TABLE_FULL, "", f"not applied: {error}; this "
                                   "change holds its old and new SAs at once") from None
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
            # Last guard (the service's planner refuses these first, controller.key_guard).
            if twin is not None:
                raise RequestError(
                    ErrorCode.INVALID_KEY, KEY_FIELD,
                    f"the key of spi {sa.sa.spi} is in use by the encrypt SA spi "
                    f"{twin.sa.spi} of tunnel {twin.tunnel_id}; a second SA numbering packets "
                    "from 1 under that key would reuse AES nonces: send a new key")
            if sa.encrypt and self._book.is_retired(self._book.fingerprint(sa.sa.secret)):
                raise RequestError(
                    ErrorCode.INVALID_KEY, KEY_FIELD,
                    f"the key of spi {sa.sa.spi} has already protected traffic in an encrypt "
                    "SA that is gone (retired key); send a new key")
        undo: list[Callable[[], Awaitable[None]]] = []
        try:
            for sa in add_sas:
                # Undo first: an AddSa that timed out may still have landed on the worker (the
                # index is fresh, so removing it — missing is fine — is right); one the worker
                # refused did not, and the index may hold someone else's SA: keep it.
                undo.append(functools.partial(self._worker_remove, sa.sa_index))
                try:
                    await self._worker_add(sa)
                except WorkerRefused:
                    undo.pop()
                    raise
            await self._switch_write(make, undo_make, undo)
            await self._switch_write(brk, undo_brk, undo)
        except BaseException as error:  # a fault, a refusal or a bug: undo, then raise
            log.warning("tunnel %d: %s failed (%s); undoing %d step(s)", tunnel_id,
                        change.operation.name, error or type(error).__name__, len(undo))
            await self._undo(undo)
            if isinstance(error, WorkerError):
                raise self._worker_failure(error) from None
            raise
        # The switch no longer refers to the old SAs: the change is done. Removing them is
        # cleanup, never undone (re-adding an encrypt SA would restart its sequence numbers,
        # the AEAD IVs, under a used key); one the worker keeps is removed by reconciliation.
        if remove_sas and after is not None:
            assert allocation is not None
            await self._drain(allocation, previous)
        for sa in remove_sas:
            if sa.encrypt:
                self._book.retire(self._book.fingerprint(sa.sa.secret))
            self._degraded.pop(sa.sa_index, None)
            try:
                await self._worker_remove(sa.sa_index)
            except WorkerError as error:
                log.warning("tunnel %d: old SA index %d stays on the worker until the next "
                            "reconciliation: %s", tunnel_id, sa.sa_index, error)
        self._alloc = new_alloc
        self._book.save_allocation(tunnel_id, allocation)
        if previous is None or allocation is None:  # a new tunnel (maybe a reused index) or gone
            self._baselines.forget(tunnel_id)
        log.info("tunnel %d: %s programmed: index %s, %d switch update(s), SAs +%d -%d",
                 tunnel_id, change.operation.name,
                 allocation.tunnel_index if allocation else previous.tunnel_index
                 if previous else "-", len(make) + len(brk), len(add_sas), len(remove_sas))

    async def _drain(self, allocation: Allocation, previous: Allocation | None) -> None:
        """Wait until the frames this tunnel sent to the worker before the repoint have come
        back (or were dropped there), so removing an old SA loses nothing in flight.

        Done as soon as one of these holds (the crypto port is FIFO):
        the tunnel's ``tunnel_out`` + drops reach ``tunnel_in`` − ``tunnel_drop_in`` as read
        right after the repoint; or the worker has finished a frame of a *new* SA since then
        (every older frame is through); or nothing moves — no frame entered the tunnel and the
        worker finished none of its SAs for ``DRAIN_QUIET_POLLS`` polls (nothing in flight;
        the totals may differ for old reasons, e.g. a worker restart). Only frames really
        outstanding after ``sa_drain`` seconds are warned about. Best effort: a read failure
        ends the wait."""
        index = allocation.tunnel_index
        new_sas = {sa_index for _, sa_index in allocation.sa_pairs}
        old_sas = set() if previous is None else {i for _, i in previous.sa_pairs} - new_sas
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._sa_drain
        try:
            counts = await self._drain_counts(index, new_sas | old_sas)
            sent = counts[TUNNEL_IN] - counts[TUNNEL_DROP_IN]
            start, last, quiet = counts, counts, 0
            while counts[TUNNEL_OUT] + counts[TUNNEL_DROP_OUT] + counts["worker"] < sent:
                if any(counts["handled"][i] > start["handled"][i] for i in new_sas):
                    return
                moved = (counts[TUNNEL_IN] != last[TUNNEL_IN]
                         or counts["handled"] != last["handled"])
                quiet = 0 if moved else quiet + 1
                if quiet >= DRAIN_QUIET_POLLS:
                    return
                if loop.time() > deadline:
                    log.warning("tunnel %d: %d frame(s) still at the crypto worker after "
                                "%.1f s; removing the old SA anyway", index,
                                sent - counts[TUNNEL_OUT] - counts[TUNNEL_DROP_OUT]
                                - counts["worker"], self._sa_drain)
                    return
                await asyncio.sleep(DRAIN_POLL_SECONDS)
                last, counts = counts, await self._drain_counts(index, new_sas | old_sas)
        except (SwitchUnavailable, WorkerError) as error:
            log.warning("tunnel index %d: drain not checked (%s)", index, error)

    async def _drain_counts(self, index: int, sa_indexes: set[int]) -> dict[str, Any]:
        names = (TUNNEL_IN, TUNNEL_OUT, TUNNEL_DROP_IN, TUNNEL_DROP_OUT)
        cells = await self.connection.read([fy.P4CounterEntry(name, index=index)
                                            for name in names])
        counts: dict[str, Any] = {name: 0 for name in names}
        counts.update({self.pipeline.schema.counters[cell.counter_id].name: cell.packet_count
                       for cell in cells})
        assert self._worker is not None
        counts["worker"] = sum((await self._worker.drops(sa_indexes)).values())
        counts["handled"] = await self._worker.handled(sa_indexes)
        return counts

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

    @staticmethod
    def _worker_failure(error: WorkerError) -> Exception:
        """A worker refusal of the request's own making (FAILED_PRECONDITION, e.g. "key
        retired") is a request error; anything else means the data plane is unavailable."""
        if isinstance(error, WorkerRefused) and error.code == "FAILED_PRECONDITION":
            return RequestError(ErrorCode.INVALID_KEY, KEY_FIELD,
                                f"not applied: {error}; send a new key")
        return DataPlaneUnavailable(str(error))

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
        # By index unless that names more than WHOLE_READ_SHARE of all cells (whole arrays are
        # then cheaper): finsy and the switch pay per cell, and the whole arrays are 68 cells
        # per tunnel index — reading them for a page of 110 tunnels took 4-5x longer than
        # reading its 110 x 68 cells (profiled; it was the getAllIpTunnels page-size-0 cost).
        if len(alloc) <= WHOLE_READ_SHARE * (self.pipeline.sizes.max_tunnels + 1):
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
        raw: dict[int, TunnelCounters] = {}
        worker: dict[int, int] = {}
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
            raw[tunnel_id] = TunnelCounters(
                in_packets=in_p, in_bytes=in_b, out_packets=out_p, out_bytes=out_b,
                in_packets_drops=din_p, in_bytes_drops=din_b,
                out_packets_drops=dout_p, out_bytes_drops=dout_b)
            worker[tunnel_id] = worker_drops
        # The switch's figures are monotonic across switch restarts (controller.counter_baselines);
        # the worker's drops are added as it reports them.
        for tunnel_id, grown in self._baselines.observe(raw).items():
            result[tunnel_id] = dataclasses.replace(
                grown, in_packets_drops=grown.in_packets_drops + worker[tunnel_id])
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
            tunnel_keys = desired.keys() - self._by_key(
                self.pipeline.route_entry(route) for route in self._routes).keys()
            if tunnel_keys and not tunnel_keys & actual.keys():
                # The switch came back empty (restarted): its counters restarted at 0.
                self._baselines.fold(self._tunnels())
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
        """List the worker's SAs; remove stray or changed ones, re-install missing ones.

        A missing SA (the worker restarted) is re-installed with ``resume=True``: the worker
        continues from its durable state — outbound after the last sequence-number block it
        reserved, inbound refusing everything at or below its replay high-water mark — so no
        nonce is used twice and no old frame is accepted again. An SA the worker cannot resume
        (FAILED_PRECONDITION "no durable state", …) is never added afresh under its key: its
        tunnel is ``degraded`` (:meth:`tunnel_states`) until the client rekeys it.
        """
        assert self._worker is not None
        async with self._lock:
            actual = await self._worker.list()
            desired = self.desired_sas()
            stray = [index for index, params in actual.items()
                     if index not in desired or not _same_sa(desired[index].params, params)]
            missing = [sa for index, sa in desired.items()
                       if index not in actual or not _same_sa(sa.params, actual[index])]
            self._degraded = {index: reason for index, reason in self._degraded.items()
                              if index in desired and index not in actual}
            for index in stray:
                await self._worker.remove(index, missing_ok=True)
            resumed = 0
            for sa in missing:
                if sa.sa_index in self._degraded:
                    continue  # refused before; the worker's durable state does not come back
                try:
                    await self._worker.add(sa, resume=True)
                    resumed += 1
                except WorkerRefused as error:
                    self._degraded[sa.sa_index] = (
                        f"{'encrypt' if sa.encrypt else 'decrypt'} SA spi {sa.sa.spi} (index "
                        f"{sa.sa_index}) is missing at the crypto worker and cannot be resumed "
                        f"({error}); it is not re-added under its used key: rekey the tunnel")
            if stray or resumed:
                log.info("crypto worker reconciled: %d SA(s) removed, %d SA(s) resumed from "
                         "the worker's durable state", len(stray), resumed)
            changed = not self._worker_ready
            self._worker_ready = True
        if changed:
            log.info("crypto worker reachable; %d SA(s)", len(desired))
            self._notify()
        self.log_states()

    def tunnel_states(self) -> dict[int, str]:
        """Each tunnel's operational state: ``active`` or ``degraded: <reason>``."""
        states: dict[int, str] = {}
        for tunnel_id, tunnel in self._tunnels().items():
            allocation = self._alloc.get(tunnel_id)
            reasons: list[str] = []
            if not self._switch_ready:
                reasons.append(f"the switch at {self.connection.target.address} is unreachable")
            if tunnel.security_associations and not self._worker_ready:
                reasons.append("the crypto worker is unreachable")
            if allocation is not None:
                reasons += [self._degraded[index] for _, index in allocation.sa_pairs
                            if index in self._degraded]
            states[tunnel_id] = f"degraded: {'; '.join(reasons)}" if reasons else "active"
        return states

    def log_states(self) -> None:
        """Log every tunnel whose operational state changed, at WARNING, once per transition
        (tunnels that change to the same state together share one line)."""
        states = self.tunnel_states()
        changed: dict[str, list[int]] = {}
        for tunnel_id, state in sorted(states.items()):
            if self._states.get(tunnel_id, "active") != state:
                changed.setdefault(state, []).append(tunnel_id)
        self._states = states
        for state, ids in changed.items():
            shown = ", ".join(str(tunnel_id) for tunnel_id in ids[:STATE_IDS_SHOWN])
            more = f" and {len(ids) - STATE_IDS_SHOWN} more" if len(ids) > STATE_IDS_SHOWN else ""
            log.warning("tunnel(s) %s%s now %s", shown, more, state)

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
