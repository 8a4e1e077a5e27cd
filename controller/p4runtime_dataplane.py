"""The P4Runtime data plane: every validated change becomes switch writes and worker SA calls.

Three jobs, three modules: :mod:`controller.planner` decides what a change needs (switch updates
and their inverses, SAs to add and remove, indices, retired keys; key reuse and index
exhaustion are request errors there), :mod:`controller.executor` does a batch of plans in few
round trips, and this module owns the life cycle around them — readiness, batching, the drain
before an old SA is removed, reconciliation, counters and tunnel states.

Per :meth:`P4RuntimeDataPlane.apply_batch` (a batch of API requests, in order) the changes are
planned into batches of at most ``MAX_BATCH`` (a batch ends early before a second change of the
same tunnel, a change chaining from a tunnel of the batch, or a change that finds no free index
while the batch frees some) and each batch is executed make before break, because P4Runtime
writes are not atomic across updates:

1. the worker gets the batch's new SAs (AddSa at fresh SA indices, concurrently);
2. one WriteRequest adds what is new on the switch: counter resets for new tunnel indices,
   ``decrypt_sas`` entries, ``tunnel_rules`` entries (INSERT, or MODIFY when the key is the same);
3. one WriteRequest removes what is gone (old rule and SA-index entries);
4. once the frames already sent to the worker have come back (the drain, :meth:`_drain`, for
   all rekeys of the batch at once), the worker drops the old SAs: cleanup that is never undone
   (nothing refers to them any more; a failure leaves a stray that reconciliation removes).

A batch of CREATEs therefore is one WriteRequest, whatever its length. An encrypt rekey adds
the new SA, repoints the rule (MODIFY), then removes the old SA; a decrypt rekey adds the new
SPI's entries beside the old ones: no packet meets a missing SA. Refused updates and AddSa
calls are mapped back to their request, whose other steps are undone (executor module doc):
a worker FAILED_PRECONDITION fails that request alone; any other failure fails it and undoes
every later request of the batch (:class:`DataPlaneUnavailable`, the stream stops there), so
the switch and the worker stay equal to the controller's state. If an undo itself fails, the
next reconciliation repairs it.

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
or retired encrypt key (the planner's check; the service's stream validation refuses them
first, controller.key_guard), the worker's
FAILED_PRECONDITION "key retired" — raises :class:`controller.errors.RequestError`, after the
undo; :class:`DataPlaneUnavailable` means the switch or the worker did not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, Protocol

import finsy as fy

from controller import counter_poller, worker_audit
from controller.allocation import Allocation, allocate
from controller.counter_baselines import CounterBaselines
from controller.counter_figures import CounterFigures
from controller.counter_poller import (
    DEFAULT_MAX_AGE,
    CounterArrayReader,
    CounterPoller,
    CounterReadFailed,
    CounterSnapshot,
)
from controller.crypto_client import (
    CryptoWorkerClient,
    WorkerError,
    WorkerRefused,
    WorkerSa,
    worker_sas,
)
from controller.dataplane import (
    DataPlaneUnavailable,
    SparseCounters,
    TunnelChange,
    TunnelCounters,
)
from controller.errors import ErrorCode, RequestError
from controller.executor import Executor, remove_sas
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
    TUNNEL_COUNTERS,
    TUNNEL_DELTAS,
    TUNNEL_DROP_IN,
    TUNNEL_DROP_OUT,
    TUNNEL_IN,
    TUNNEL_OUT,
    Pipeline,
    Route,
)
from controller.planner import Plan, Planner, entry_key, full_entry

log = logging.getLogger(__name__)

WORKER_POLL_SECONDS = 0.5
SA_DRAIN_SECONDS = 2.0  # at most this long for in-flight frames before removing an old SA
DRAIN_POLL_SECONDS = 0.005
DRAIN_QUIET_POLLS = 20  # polls with nothing entering or leaving: nothing is in flight
FEW_TUNNELS = 16  # a stats read of at most this many tunnels reads their cells if no snapshot
READ_ATTEMPTS = 3  # counter reads per call when the switch's counters restart during one
DROPS_PER_CALL = 8192  # SA indices per worker GetCounters call of a counter poll
STATE_IDS_SHOWN = 20  # tunnel ids named per operational-state log line
# Full checks of the worker's SAs (strays, changed parameters) at least FULL_CHECK_POLLS polls
# apart, further on a large table (controller.worker_audit); the polls between probe PROBE_SAS
# of the wanted SAs (ListSas of 65,535 SAs every 0.5 s cost a core).
FULL_CHECK_POLLS = 20
PROBE_SAS = 8
# Plans per executed batch: one WriteRequest carries at most MAX_BATCH plans' updates (a decrypt
# CREATE is 3: its SA entry, its ESP end point and its rule; a DELETE also resets its index's
# counter cells).
MAX_BATCH = 512


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


_key = entry_key  # (table, match, priority) of an entry as canonical bytes
_full = full_entry  # the whole entry as canonical bytes


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
        self._loaded: dict[int, Allocation] = book.load_allocations()
        self._planner = self._new_planner()
        self._sas = self._all_sas()
        self._lock = asyncio.Lock()
        self._switch_ready = False
        self._worker_ready = worker is None
        self._listeners: list[Callable[[DataPlaneStatus], Coroutine[Any, Any, None]]] = []
        self.connection = SwitchConnection(target, on_ready=self._switch_up,
                                           on_down=self._switch_down)
        self._executor = Executor(connection=self.connection, worker=worker,
                                  on_undo_failed=self._undo_failed)
        # Stats: bulk counter reads (and the worker's drops) shared for up to counter_max_age
        # seconds; a read of a few tunnels with no such snapshot reads just their cells.
        self._counter_reader = CounterArrayReader(
            address=target.address, device_id=target.device_id,
            counters=pipeline.tunnel_counter_arrays(), tls=target.tls,
            with_bytes=TUNNEL_COUNTERS)
        self._main_reader = CounterArrayReader(  # the four tunnel counters, packets and bytes
            address=target.address, device_id=target.device_id,
            counters={name: cells for name, cells in pipeline.tunnel_counter_arrays().items()
                      if name in TUNNEL_COUNTERS},
            tls=target.tls, with_bytes=TUNNEL_COUNTERS)
        self._read_lock = asyncio.Lock()  # one switch read at a time: later reads, later data
        self._whole_poll = False  # the last poll found many tunnels counting out (see there)
        self.counter_poller = CounterPoller(self._poll_counters, max_age=counter_max_age)
        self._monitor: asyncio.Task[None] | None = None
        self._notify_tasks: set[asyncio.Task[Any]] = set()
        self._last_status: DataPlaneStatus | None = None
        self._baselines = CounterBaselines(book)
        self._figures = CounterFigures(pipeline=pipeline, baselines=self._baselines,
                                       allocations=lambda: self._planner.allocations)
        self._degraded: dict[int, str] = {}  # SA index -> why the worker does not hold it
        self._states: dict[int, str] = {}  # tunnel id -> last logged operational state
        self._verified: dict[int, WorkerSa] = {}  # SA index -> SA last found equal on the worker
        self._audit = worker_audit.AuditSchedule(min_interval=FULL_CHECK_POLLS * worker_poll)

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
        alloc = dict(self._planner.allocations)
        for tunnel_id in list(alloc):
            if tunnel_id not in tunnels:
                self._book.save_allocation(tunnel_id, None)
                del alloc[tunnel_id]
        for tunnel_id, tunnel in sorted(tunnels.items()):
            previous = alloc.get(tunnel_id)
            if previous is not None and {spi for spi, _ in previous.sa_pairs} == {
                    sa.spi for sa in tunnel.security_associations}:
                continue
            fresh = allocate(tunnel, previous=previous,
                             keep_spis=[sa.spi for sa in tunnel.security_associations],
                             others=alloc, max_tunnels=self.pipeline.sizes.max_tunnels,
                             max_sas=self.pipeline.sizes.max_sas)
            if fresh != previous:
                self._book.save_allocation(tunnel_id, fresh)
                alloc[tunnel_id] = fresh
        if alloc != self._planner.allocations:
            self._loaded = alloc
            self._planner = self._new_planner()
            self._sas = self._all_sas()
            self._figures.changed(alloc)
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
        await self._main_reader.close()
        if self._worker is not None:
            await self._worker.close()

    # ---- desired state --------------------------------------------------------------------

    def _new_planner(self) -> Planner:
        return Planner(pipeline=self.pipeline, allocations=self._loaded,
                       tunnels=self._tunnels(), fingerprint=self._book.fingerprint,
                       is_retired=self._book.is_retired)

    def _all_sas(self) -> dict[int, WorkerSa]:
        alloc = self._planner.allocations
        return {sa.sa_index: sa for tunnel_id, tunnel in self._tunnels().items()
                if tunnel_id in alloc for sa in worker_sas(tunnel, alloc[tunnel_id].sa_indexes)}

    @property
    def _alloc(self) -> Mapping[int, Allocation]:
        """Every tunnel's allocation (the planner's index)."""
        return self._planner.allocations

    def desired_entries(self) -> list[Any]:
        """Every entry the managed tables must hold: routes and all tunnels."""
        tunnels = self._tunnels()
        entries = [self.pipeline.route_entry(route) for route in self._routes]
        for tunnel_id, tunnel in sorted(tunnels.items()):
            entries += self._planner.entries(tunnel, self._alloc[tunnel_id])
        return entries

    def desired_sas(self) -> Mapping[int, WorkerSa]:
        """Every SA the worker must hold, by SA index (kept per applied plan)."""
        return self._sas

    def allocation(self, tunnel_id: int) -> Allocation | None:
        """The tunnel's indices (tests and logs)."""
        return self._alloc.get(tunnel_id)

    # ---- apply ----------------------------------------------------------------------------

    async def apply(self, change: TunnelChange) -> None:
        """Program one change all-or-nothing (module doc); raises why it was not applied."""
        [error] = await self.apply_batch([change])
        if error is not None:
            raise error

    async def apply_batch(self, changes: Sequence[TunnelChange]) -> list[Exception | None]:
        """Program changes in order, in batches of at most MAX_BATCH (module doc): per change
        None (applied), a :class:`RequestError` (refused, nothing of it applied) or a
        :class:`DataPlaneUnavailable` (not applied; every later change neither)."""
        async with self._lock:
            try:
                return await self._apply_locked(changes)
            finally:
                # A CREATE resets cells: no snapshot from before is cached (one in flight is
                # not used for the tunnels whose index is new or gone: _finish).
                self._figures.changed(())
                self.counter_poller.invalidate()

    def _refusal(self, change: TunnelChange) -> DataPlaneUnavailable | None:
        if not self._switch_ready:
            return DataPlaneUnavailable(f"the switch at {self.connection.target.address} is "
                                        "not connected")
        if not self._worker_ready:
            return DataPlaneUnavailable("the crypto worker is not reachable")
        if self._worker is None and any(t is not None and t.security_associations
                                        for t in (change.before, change.after)):
            return DataPlaneUnavailable("no crypto worker is configured "
                                        "(--crypto-worker-socket)")
        return None

    async def _apply_locked(self, changes: Sequence[TunnelChange]) -> list[Exception | None]:
        """Plan changes into batches and execute each batch. A batch ends before a change of a
        tunnel it already holds (or whose previous tunnel it holds), at MAX_BATCH plans, and
        before a change that finds no free index while the batch frees some."""
        results: list[Exception | None] = [None] * len(changes)
        pending: list[tuple[int, Plan]] = []
        touched: set[int] = set()
        position = 0
        while position < len(changes):
            change = changes[position]
            refusal = self._refusal(change)
            previous_tunnel = (change.after.match.previous_tunnel
                               if change.after is not None else None)
            if pending and (refusal is not None or len(pending) >= MAX_BATCH
                            or change.tunnel_id in touched or previous_tunnel in touched):
                fault = await self._flush(pending, results)
                pending, touched = [], set()
                if fault is not None:
                    results[position:] = [fault] * (len(changes) - position)
                    return results
                continue
            if refusal is not None:
                results[position:] = [refusal] * (len(changes) - position)
                return results
            try:
                plan = self._planner.plan(change)
            except RequestError as error:
                if error.code is ErrorCode.TABLE_FULL and pending:
                    touched.add(change.tunnel_id)  # flush first: its plans may free indices
                    continue
                log.info("tunnel %d: %s refused: %s", change.tunnel_id, change.operation.name,
                         error)
                results[position] = error
                position += 1
                continue
            except LookupError as missing:
                results[position:] = [DataPlaneUnavailable(str(missing))] * (
                    len(changes) - position)
                break
            pending.append((position, plan))
            touched.add(change.tunnel_id)
            position += 1
        fault = await self._flush(pending, results)
        return results

    async def _flush(self, pending: list[tuple[int, Plan]], results: list[Exception | None]
                     ) -> Exception | None:
        """Execute one batch; record each outcome; finish the applied plans. Returns the
        unavailability that stopped the batch, if any."""
        if not pending:
            return None
        outcomes = await self._executor.execute([plan for _, plan in pending])
        applied = []
        for (position, plan), outcome in reversed(list(zip(pending, outcomes, strict=True))):
            results[position] = outcome
            if outcome is None:
                applied.append(plan)
            else:
                self._planner.abort(plan)
        applied.reverse()
        await self._finish(applied)
        fault = next((outcome for outcome in outcomes
                      if isinstance(outcome, DataPlaneUnavailable)), None)
        return fault

    async def _finish(self, applied: list[Plan]) -> None:
        """The switch no longer refers to the applied plans' old SAs: wait for the frames in
        flight (rekeys), retire their encrypt keys, remove them from the worker — cleanup that
        is never undone (re-adding an encrypt SA would restart its sequence numbers, the AEAD
        IVs, under a used key); one the worker keeps is removed by reconciliation. Then the
        plans are final: allocations saved (in the request transaction), indices freed."""
        rekeys = [plan for plan in applied if plan.remove_sas and plan.allocation is not None]
        if rekeys:
            await asyncio.gather(*(self._drain(plan.allocation, plan.previous)
                                   for plan in rekeys if plan.allocation is not None))
        removes: list[WorkerSa] = []
        owner: dict[int, int] = {}  # removed SA index -> the tunnel that keeps (rekeys) it
        for plan in applied:
            for fingerprint in plan.retire:
                self._book.retire(fingerprint)
            for sa in plan.remove_sas:
                self._degraded.pop(sa.sa_index, None)
                self._sas.pop(sa.sa_index, None)
                removes.append(sa)
                if plan.allocation is not None:  # an UPDATE: the tunnel lives on
                    owner[sa.sa_index] = plan.tunnel_id
            for sa in plan.add_sas:
                self._sas[sa.sa_index] = sa
        await self._reset_freed(applied)
        if not removes:
            self._settle(applied, owner, {})
            return
        assert self._worker is not None
        indexes = [sa.sa_index for sa in removes]
        if not owner:  # only DELETEs: their drops go with their tunnels
            await remove_sas(self._worker, indexes, "old SAs")
            self._settle(applied, owner, {})
            return
        # A rekey: no counter read runs from here until the allocations change (one that read
        # the worker after the old SAs went, with the old allocations, would miss their drops).
        async with self._read_lock:
            self._settle(applied, owner, await remove_sas(self._worker, indexes, "old SAs",
                                                          count_drops=True))

    def _settle(self, applied: list[Plan], owner: dict[int, int],
                finals: dict[int, int]) -> None:
        """The applied plans become final, all at once for a counter read (no await): a
        rekeyed tunnel keeps its old SAs' drops (``finals``, by SA index) in its baseline —
        in the request's store transaction, like its allocation — as their SA indices leave
        its allocation, so its inPacketsDrops never goes down."""
        kept: dict[int, int] = {}
        for sa_index, drops in finals.items():
            if drops and sa_index in owner:
                kept[owner[sa_index]] = kept.get(owner[sa_index], 0) + drops
        if kept:
            self._baselines.add_drops(kept)
        # Snapshots read before this are not used for the tunnels whose index is new or gone.
        self._figures.changed(plan.tunnel_id for plan in applied if plan.fresh_index)
        for plan in applied:
            self._planner.commit(plan)
            self._book.save_allocation(plan.tunnel_id, plan.allocation)
            if plan.fresh_index:  # a new tunnel (maybe a reused index) or gone
                self._baselines.forget(plan.tunnel_id)
            index = plan.allocation or plan.previous
            log.debug("tunnel %d: %s programmed: index %s, %d switch update(s), SAs +%d -%d",
                      plan.tunnel_id, plan.change.operation.name,
                      index.tunnel_index if index is not None else "-",
                      plan.switch_updates, len(plan.add_sas), len(plan.remove_sas))
        if applied:
            log.info("%d request(s) programmed in one batch", len(applied))

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

    async def _reset_freed(self, applied: list[Plan]) -> None:
        """Zero the counter cells of the tunnel indices the applied DELETEs free, in one
        WriteRequest, so the next CREATE there writes no resets; if it fails the index is
        simply not known clean (that CREATE resets its cells itself)."""
        freed = [plan.freed_tunnel for plan in applied if plan.freed_tunnel is not None]
        if not freed:
            return
        try:
            await self.connection.write([modify(counter) for index in freed
                                         for counter in self.pipeline.counter_resets(index)])
        except (SwitchUnavailable, SwitchWriteFailed) as error:
            log.warning("counter cells of %d freed tunnel index(es) not reset (%s); a tunnel "
                        "created there resets them", len(freed), error)
            return
        # DELETEd and not yet given back (Planner.commit runs after): allocated to no one.
        self._planner.mark_clean(freed, free=True)

    async def _find_clean(self) -> None:
        """Read the four packet arrays once: a free index none of them counted has all its
        cells at 0 (its byte cells count the same frames), so a CREATE there needs no reset."""
        try:
            async with self._read_lock:
                snapshot = await self._main_reader.read()
        except CounterReadFailed as error:
            log.warning("counter arrays not read (%s); every CREATE resets its cells", error)
            return
        arrays = list(snapshot.packets.values())
        size = min(len(cells) for cells in arrays)
        self._planner.mark_clean(index for index in range(1, size)
                                 if not any(cells[index] for cells in arrays))

    def _undo_failed(self) -> None:
        """An undo did not reach the switch: unavailable until reconciliation repaired it."""
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

    def _by_key(self, entries: Iterable[Any]) -> dict[bytes, Any]:
        return {_key(entry, self.pipeline): entry for entry in entries}

    # ---- counters -------------------------------------------------------------------------

    async def read_counters(self, tunnel_ids: Iterable[int]) -> Mapping[int, TunnelCounters]:
        """Switch per-tunnel counters plus the worker's per-SA drops (into the in-drops).

        Packets and bytes come from the four packets_and_bytes tunnel counters and the length
        deltas of out and drop-out (:meth:`Pipeline.tunnel_figures`): the exact frames each
        tunnel received and emitted. Served from the shared snapshot (counter_poller: at most
        ``counter_max_age`` old, never from before a change) and its figures, computed once
        per snapshot (controller.counter_figures); a read of at most FEW_TUNNELS tunnels with
        no such snapshot reads only their cells and SAs. The answer holds only the non-zero
        tunnels' counters (:class:`SparseCounters`)."""
        ids = tunnel_ids if isinstance(tunnel_ids, list) else list(tunnel_ids)
        if not self._switch_ready:
            raise DataPlaneUnavailable(f"the switch at {self.connection.target.address} is "
                                       "not connected; counters cannot be read")
        try:
            for _ in range(READ_ATTEMPTS):
                counts = self.counter_poller.fresh()
                if counts is None and len(ids) <= FEW_TUNNELS:
                    alloc = [self._alloc[tunnel_id] for tunnel_id in ids
                             if tunnel_id in self._alloc]
                    counts = await self._read_cells(
                        [cell for a in alloc
                         for cell in self.pipeline.counter_cells(a.tunnel_index)],
                        [index for a in alloc for _, index in a.sa_pairs])
                    figures = self._figures.of(counts, ids)
                else:
                    if counts is None:
                        counts = await self.counter_poller.snapshot()
                    figures = self._figures.all(counts)
                if figures is not None:
                    return SparseCounters(ids, figures)
        except CounterReadFailed as error:
            raise DataPlaneUnavailable(str(error)) from None
        raise DataPlaneUnavailable("the switch's counters restarted during every read of "
                                   "them; retry")

    async def _worker_drops(self, sa_indexes: list[int] | None) -> dict[int, int]:
        """The worker's drops of `sa_indexes` in calls of at most DROPS_PER_CALL SAs (each
        call has the worker's call deadline) — None: of every SA that has dropped any, in
        one call (only SAs with drops come back)."""
        drops: dict[int, int] = {}
        if self._worker is None:
            return drops
        try:
            if sa_indexes is None:
                return await self._worker.all_drops()
            for first in range(0, len(sa_indexes), DROPS_PER_CALL):
                drops.update(await self._worker.drops(sa_indexes[first:first + DROPS_PER_CALL]))
        except WorkerError as error:
            raise CounterReadFailed(str(error)) from None
        return drops

    async def _read_cells(self, cells: list[tuple[str, int]] | None,
                          sa_indexes: list[int] | None) -> CounterSnapshot:
        """One counter read (`cells`; None: every cell) and, at the same time, the worker's
        drops of `sa_indexes` (:meth:`_worker_drops`) as one snapshot, stamped with the
        programming generation it began in (CounterReadFailed if either fails)."""
        async with self._read_lock:
            generation = self._figures.generation
            snapshot, drops = await asyncio.gather(self._counter_reader.read(cells),
                                                   self._worker_drops(sa_indexes))
        return dataclasses.replace(snapshot, extra=drops, generation=generation)

    async def _poll_counters(self) -> CounterSnapshot:
        """The poller's read of every allocated tunnel and the drops of every SA that dropped.

        Few tunnels: their cells by index, one request. Else in two steps: the four tunnel
        counters whole, then — only for the tunnel indices whose out or drop-out counted —
        their four cells again with their length-delta cells, one request, so each tunnel's
        figures still come from one read of the switch (a tunnel that emitted nothing has no
        delta term: :meth:`Pipeline.tunnel_figures`). Delta cells are 18 of a tunnel's 22:
        at 65,535 idle tunnels the poll reads 262,144 cells, not 1.4 million. When the second
        step would read most cells anyway (many tunnels emitting), the next polls read every
        array whole in one step, until fewer tunnels count out again."""
        alloc = list(self._alloc.values())
        per_tunnel = len(self.pipeline.counter_cells(0))
        total = sum(size for _, size in self.pipeline.tunnel_counter_arrays().values())
        limit = counter_poller.WHOLE_READ_SHARE * total
        if len(alloc) * per_tunnel <= limit:
            return await self._read_cells(
                [cell for a in alloc for cell in self.pipeline.counter_cells(a.tunnel_index)],
                None)
        async with self._read_lock:
            generation = self._figures.generation
            if self._whole_poll:
                snapshot, drops = await asyncio.gather(self._counter_reader.read(None),
                                                       self._worker_drops(None))
                self._whole_poll = len(_emitting(snapshot)) * per_tunnel > limit
                return dataclasses.replace(snapshot, extra=drops, generation=generation)
            main, drops = await asyncio.gather(self._main_reader.read(None),
                                               self._worker_drops(None))
            active = _emitting(main)
            if active:
                detail = await self._counter_reader.read(
                    [cell for index in active for cell in self.pipeline.counter_cells(index)])
                self._whole_poll = len(active) * per_tunnel > limit
                main = _merged(main, detail, active)
        return dataclasses.replace(main, extra=drops, generation=generation)

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
                self._figures.folded()
                self.counter_poller.invalidate()
            await connection.write(deletes)
            await connection.write(modifies + inserts)
            self._planner.forget_clean()
            await self._find_clean()  # no rule counts at a free index any more
            log.info("switch reconciled: %d entries wanted, %d deleted, %d modified, "
                     "%d inserted", len(desired), len(deletes), len(modifies), len(inserts))
            self._switch_ready = True
        self._notify()

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
        degraded_before = bool(self._degraded)
        audit = self._audit.due()
        if self._worker_ready and self._sas and not self._degraded and not audit:
            # Between full checks a probe of a few SAs: a restarted worker holds none of them.
            if await self._worker.holds(list(itertools.islice(self._sas, PROBE_SAS))):
                return
        started = self._audit.now()
        unlocked = audit and not self._audit.under_lock
        if unlocked:  # listed without the lock: changes go on while the worker answers
            generation = self._figures.generation
            listed = await self._worker.sa_infos()
        async with self._lock:
            if not unlocked:
                listed = await self._worker.sa_infos()
            elif generation != self._figures.generation:
                # Programmed meanwhile: the list may predate it (worker_audit's module doc).
                self._audit.discarded(started)
                return
            desired = self.desired_sas()
            stray, missing, held = await worker_audit.compare(listed, desired, self._verified,
                                                              full=audit)
            del listed
            self._degraded = {index: reason for index, reason in self._degraded.items()
                              if index in desired and index not in held}
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
        if audit:
            self._audit.done(started)
        if changed:
            log.info("crypto worker reachable; %d SA(s)", len(desired))
            self._notify()
        if changed or self._degraded or degraded_before:  # else no state can have changed
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


def _emitting(snapshot: CounterSnapshot) -> list[int]:
    """The tunnel indices whose out or drop-out counter counted (sorted)."""
    return sorted(set(snapshot.counted.get(TUNNEL_OUT, ())).union(
        snapshot.counted.get(TUNNEL_DROP_OUT, ())))


def _merged(main: CounterSnapshot, detail: CounterSnapshot,
            indices: Iterable[int]) -> CounterSnapshot:
    """`main` (the four tunnel counters) with the cells of `indices` and the length-delta
    arrays taken from `detail`, the later read of those tunnels."""
    packets = dict(main.packets)
    octets = dict(main.octets)
    counted = {name: set(cells) for name, cells in main.counted.items()}
    for name in TUNNEL_COUNTERS:
        mine, theirs = packets[name], detail.packets[name]
        mine_b, theirs_b = octets[name], detail.octets[name]
        cells = counted.setdefault(name, set())
        for index in indices:
            mine[index], mine_b[index] = theirs[index], theirs_b[index]
            if mine[index] or mine_b[index]:
                cells.add(index)
            else:
                cells.discard(index)
    for name in TUNNEL_DELTAS.values():
        packets[name] = detail.packets[name]
        counted[name] = set(detail.counted.get(name, ()))
    return dataclasses.replace(main, packets=packets, octets=octets, counted=counted,
                               taken_at=detail.taken_at)
