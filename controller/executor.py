"""Execute: apply a batch of plans (controller.planner) to the worker and the switch in a few
round trips, each plan all-or-nothing.

For a batch, in this order (make before break, as for a single request):

1. the worker gets every plan's new SAs in one AddSas call per ADD_CHUNK SAs (all or nothing
   on the worker, one durable commit there; an older worker without it gets concurrent AddSa
   calls);
2. one WriteRequest with every plan's ``make`` updates (counter resets, inserts, modifies);
3. one WriteRequest with every plan's ``brk`` updates (the deletes).

Steps 1 and 2 are sent at once, not one after the other, when no plan of the batch needs its
SAs on the worker before the switch points at them (:func:`overlaps`): every plan that adds SAs
creates a new decrypt tunnel. Such a tunnel's switch entries take only ESP carrying its own
new SPIs, so until its AddSas lands the worker drops those frames (no SA), where a moment
earlier the switch dropped them as an unknown SPI or passed them on still encrypted: nothing
leaves in clear or under another key (an SA the worker might still hold at a fresh index, from
a removal that failed, decrypts only ESP made with its own key). The two round trips then
cost one (the worker's AddSas with its fsync and the switch's write proceed together, on two
processes). An encrypt SA is always added first: its entry would send cleartext to the worker
(or take a shadowed tunnel's traffic) before the SA is there; so is every rekey (make before
break). A refusal maps back to its plan as in the
sequential order; the plan's switch updates that landed meanwhile are undone with it.

P4Runtime writes are not atomic across updates; the switch answers per update. Each refused
update is mapped back to its plan, and so is each refused AddSa: that plan is undone (its
other updates inverted, its SAs removed) and the others keep going — the batch is *not*
retried per request, because re-adding an encrypt SA the worker has seen would be refused (the
worker retires a key when its SA is removed). What a failure means follows the single-request
rules: a worker FAILED_PRECONDITION ("key retired") is that request's own error
(:class:`RequestError`) and nothing else changes; anything else (the switch refused an update,
the worker or switch did not answer) is :class:`DataPlaneUnavailable` for that plan *and for
every later plan of the batch*, which are undone too — the stream stops there, exactly as it
did request by request. When the switch does not say which updates failed, each update of the
affected plans is inverted on its own (a missing one is fine). An undo that fails is logged and
handed to ``on_undo_failed`` (the data plane then reconciles the switch).

Plans of one batch touch different tunnels and never an index another plan of the batch frees
(the planner guarantees it), so their updates can share a WriteRequest in any order and each
plan can be undone on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.crypto_client import (
    BatchUnsupported,
    CryptoWorkerClient,
    WorkerError,
    WorkerRefused,
    WorkerSa,
)
from controller.dataplane import DataPlaneUnavailable
from controller.errors import ErrorCode, RequestError
from controller.key_guard import KEY_FIELD
from controller.p4rt.connection import SwitchConnection, SwitchUnavailable, SwitchWriteFailed
from controller.planner import Plan

log = logging.getLogger(__name__)

ADD_CHUNK = 4096  # SAs per AddSas call (~0.5 MB of request; gRPC refuses messages over 4 MiB)
REMOVE_CHUNK = 16384  # SA indices per RemoveSas call


def overlaps(plans: Sequence[Plan]) -> bool:
    """Whether the batch's AddSas and its ``make`` write may be sent at once (module doc):
    some plan adds SAs, and every plan that does creates a tunnel (no previous allocation) whose
    SAs all decrypt."""
    adding = [plan for plan in plans if plan.add_sas]
    return bool(adding) and all(
        plan.previous is None and not any(sa.encrypt for sa in plan.add_sas)
        for plan in adding)


def worker_failure(error: WorkerError) -> Exception:
    """A worker refusal of the request's own making (FAILED_PRECONDITION, e.g. "key
    retired") is a request error; anything else means the data plane is unavailable."""
    if isinstance(error, WorkerRefused) and error.code == "FAILED_PRECONDITION":
        return RequestError(ErrorCode.INVALID_KEY, KEY_FIELD,
                            f"not applied: {error}; send a new key")
    return DataPlaneUnavailable(str(error))


@dataclass
class _Done:
    """What of one plan has happened, to undo it."""

    sa_indexes: list[int] = field(default_factory=list)  # AddSa that may have landed
    make: list[Any] = field(default_factory=list)  # inverses of landed make updates
    brk: list[Any] = field(default_factory=list)  # inverses of landed brk updates
    unsure: list[Any] = field(default_factory=list)  # inverses of updates that may have landed


class Executor:
    """Applies batches of plans (module doc)."""

    def __init__(self, *, connection: SwitchConnection, worker: CryptoWorkerClient | None,
                 on_undo_failed: Callable[[], None]) -> None:
        self._connection = connection
        self._worker = worker
        self._on_undo_failed = on_undo_failed
        self.write_requests = 0  # WriteRequests sent (tests, logs)
        self.overlapped = 0  # batches whose AddSas and make write were sent at once (tests)

    async def execute(self, plans: Sequence[Plan]) -> list[Exception | None]:
        """Apply ``plans``; per plan None (applied) or the error it failed with (undone)."""
        outcome: list[Exception | None] = [None] * len(plans)
        done = [_Done() for _ in plans]
        stop = [len(plans)]  # the first plan the data plane could not apply

        def fail(index: int, error: Exception) -> None:
            if outcome[index] is None:
                outcome[index] = error
            if isinstance(error, DataPlaneUnavailable):
                stop[0] = min(stop[0], index)

        def live() -> list[int]:
            return [i for i in range(len(plans)) if outcome[i] is None and i < stop[0]]

        try:
            if self._worker is not None and overlaps(plans):
                self.overlapped += 1
                results = await asyncio.gather(
                    self._add_sas(plans, done, fail, live),
                    self._write(plans, live(), "make", done, fail), return_exceptions=True)
                for result in results:  # both have ended: what landed is in ``done``
                    if isinstance(result, BaseException):
                        raise result
            else:
                await self._add_sas(plans, done, fail, live)
                await self._write(plans, live(), "make", done, fail)
            await self._write(plans, live(), "brk", done, fail)
        except BaseException as error:  # cancelled or a bug: undo everything, then raise
            log.warning("batch of %d request(s) failed (%s); undoing it", len(plans),
                        error or type(error).__name__)
            await self._undo([done[i] for i in range(len(plans))])
            raise
        first = stop[0]
        for index in range(first + 1, len(plans)):
            if outcome[index] is None or not isinstance(outcome[index], RequestError):
                outcome[index] = outcome[first]
        failed = [i for i, error in enumerate(outcome) if error is not None]
        if failed:
            log.warning("%d of %d request(s) of the batch not applied (first: tunnel %d, %s); "
                        "undoing them", len(failed), len(plans), plans[failed[0]].tunnel_id,
                        outcome[failed[0]])
            await self._undo([done[i] for i in failed])
        return outcome

    async def _add_sas(self, plans: Sequence[Plan], done: list[_Done],
                       fail: Callable[[int, Exception], None],
                       live: Callable[[], list[int]]) -> None:
        adds = [(index, sa) for index, plan in enumerate(plans) for sa in plan.add_sas]
        if not adds:
            return
        if self._worker is None:
            raise DataPlaneUnavailable("no crypto worker is configured")
        if getattr(self._worker, "batched", False):
            try:
                await self._add_batched(adds, done, fail, live)
                return
            except BatchUnsupported:
                pass  # an older worker: one AddSa per SA
        worker = self._worker
        results = await asyncio.gather(*(worker.add(sa) for _, sa in adds),
                                       return_exceptions=True)
        for (index, sa), result in zip(adds, results, strict=True):
            # An AddSa the worker refused did not land (the index may hold someone else's SA:
            # keep it); one that timed out may have (the index is fresh: removing is right).
            if not isinstance(result, WorkerRefused):
                done[index].sa_indexes.append(sa.sa_index)
            if isinstance(result, WorkerError):
                fail(index, worker_failure(result))
            elif isinstance(result, BaseException):
                raise result

    async def _add_batched(self, adds: list[tuple[int, WorkerSa]], done: list[_Done],
                           fail: Callable[[int, Exception], None],
                           live: Callable[[], list[int]]) -> None:
        """The batch's SAs in AddSas calls of at most ADD_CHUNK SAs (a call stays far below
        gRPC's 4 MiB message limit; one is enough for up to 4,096 SAs). Each call is all or
        nothing, so a refusal that names its SA fails that SA's plan (by the single-request
        rules) and the call is repeated for the SAs of the plans still live — nothing of it
        had been added, so nothing is added twice (and no encrypt key is seen twice). SAs of
        calls that landed are recorded for the undo of their plan; a call that may have landed
        (no answer) is recorded whole and fails its plans (and, the device being faulty,
        every later one)."""
        assert self._worker is not None
        still = set(live())
        pending = adds
        first = True
        while pending:
            chunk, rest = pending[:ADD_CHUNK], pending[ADD_CHUNK:]
            try:
                await self._worker.add_many([sa for _, sa in chunk])
            except BatchUnsupported:
                if first:
                    raise  # nothing was added: the caller adds per SA
                for index, _ in pending:
                    fail(index, DataPlaneUnavailable("the crypto worker stopped serving AddSas"))
                return
            except WorkerRefused as error:
                if error.position is None or not 0 <= error.position < len(chunk):
                    for index, _ in pending:  # refused as a whole: nothing of it landed
                        fail(index, worker_failure(error))
                    return
                fail(chunk[error.position][0], worker_failure(error))
                still = set(live())
                pending = [(index, sa) for index, sa in pending if index in still]
                continue
            except WorkerError as error:  # no answer: any of the chunk may have landed
                for index, sa in chunk:
                    done[index].sa_indexes.append(sa.sa_index)
                for index, _ in pending:
                    fail(index, worker_failure(error))
                return
            except BaseException:
                for index, sa in chunk:
                    done[index].sa_indexes.append(sa.sa_index)
                raise
            first = False
            for index, sa in chunk:
                done[index].sa_indexes.append(sa.sa_index)
            still = set(live())
            pending = [(index, sa) for index, sa in rest if index in still]

    async def _write(self, plans: Sequence[Plan], indexes: list[int], phase: str,
                     done: list[_Done], fail: Callable[[int, Exception], None]) -> None:
        updates: list[Any] = []
        inverses: list[Any] = []
        owner: list[int] = []
        for index in indexes:
            plan = plans[index]
            forward, back = ((plan.make, plan.undo_make) if phase == "make"
                             else (plan.brk, plan.undo_brk))
            updates += forward
            inverses += back
            owner += [index] * len(forward)
        if not updates:
            return
        self.write_requests += 1
        try:
            await self._connection.write(updates)
        except SwitchUnavailable as error:  # nothing was written
            for index in indexes:
                fail(index, DataPlaneUnavailable(str(error)))
            return
        except SwitchWriteFailed as error:
            refused = error.failed
            if refused is None:  # unknown which landed: each may have
                for position, inverse in enumerate(inverses):
                    if inverse is not None:
                        done[owner[position]].unsure.append(inverse)
                for index in indexes:
                    fail(index, DataPlaneUnavailable(str(error)))
                return
            for position in sorted(refused):
                # a position past our updates (not ours to map) fails every plan of the write
                for index in ([owner[position]] if position < len(owner) else indexes):
                    fail(index, DataPlaneUnavailable(str(error)))
            for position, inverse in enumerate(inverses):
                if position not in refused and inverse is not None:
                    getattr(done[owner[position]], phase).append(inverse)
            return
        for position, inverse in enumerate(inverses):
            if inverse is not None:
                getattr(done[owner[position]], phase).append(inverse)

    async def _undo(self, undo: list[_Done]) -> None:
        """Invert what landed: breaks, then makes (each in reverse), then the worker's SAs."""
        for updates in ([u for d in undo for u in reversed(d.brk)],
                        [u for d in undo for u in reversed(d.make)]):
            if not updates:
                continue
            try:
                self.write_requests += 1
                await self._connection.write(updates)
            except (SwitchUnavailable, SwitchWriteFailed) as error:
                log.error("undo of %d switch update(s) failed (%s); reconciliation will repair "
                          "it", len(updates), error)
                self._on_undo_failed()
        for inverse in [u for d in undo for u in reversed(d.unsure)]:
            try:
                with contextlib.suppress(SwitchWriteFailed):  # it had not landed
                    await self._connection.write([inverse])
            except SwitchUnavailable as error:
                log.error("undo failed (%s); reconciliation will repair it", error)
                self._on_undo_failed()
                break
        sa_indexes = [index for d in undo for index in d.sa_indexes]
        if sa_indexes and self._worker is not None:
            await remove_sas(self._worker, sa_indexes, "undo")


async def remove_sas(worker: CryptoWorkerClient, sa_indexes: Sequence[int], why: str, *,
                     count_drops: bool = False) -> dict[int, int]:
    """Remove SAs from the worker (missing ones are fine): RemoveSas calls of at most
    REMOVE_CHUNK indices, or one RemoveSa per SA for an older worker. Cleanup: a failure is
    logged; reconciliation removes strays. Returns the drops each SA had counted when it went
    (what RemoveSas answers; with ``count_drops``, for an older worker or a call that failed,
    what GetCounters said just before / just after), so the tunnel's drops can keep them:
    best effort, an SA whose count could not be had is missing from the answer."""
    finals: dict[int, int] = {}
    if getattr(worker, "batched", False):
        try:
            for start in range(0, len(sa_indexes), REMOVE_CHUNK):
                chunk = sa_indexes[start:start + REMOVE_CHUNK]
                try:
                    finals.update(await worker.remove_many(chunk, missing_ok=True))
                except BatchUnsupported:
                    sa_indexes = sa_indexes[start:]  # the rest one by one (below)
                    raise
                except WorkerError as error:
                    log.error("%s: SA index(es) %s stay on the worker until the next "
                              "reconciliation: %s", why, ", ".join(map(str, chunk[:20])), error)
                    if count_drops:
                        finals.update(await _drops_now(worker, chunk))
            return finals
        except BatchUnsupported:
            pass
    if count_drops:  # RemoveSa answers no counters
        finals.update(await _drops_now(worker, sa_indexes))
    results = await asyncio.gather(
        *(worker.remove(index, missing_ok=True) for index in sa_indexes),
        return_exceptions=True)
    for index, result in zip(sa_indexes, results, strict=True):
        if isinstance(result, BaseException):
            log.error("%s: SA index %d stays on the worker until the next reconciliation: %s",
                      why, index, result)
    return finals


async def _drops_now(worker: CryptoWorkerClient, sa_indexes: Sequence[int]) -> dict[int, int]:
    """GetCounters' drops of ``sa_indexes`` (an empty answer if the worker does not say)."""
    try:
        return dict(await worker.drops(sa_indexes))
    except WorkerError as error:
        log.warning("drops of SA index(es) %s not read: %s",
                    ", ".join(map(str, list(sa_indexes)[:20])), error)
        return {}
