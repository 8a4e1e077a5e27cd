"""Domain operations: judge a createIpTunnel stream, check capacity, apply it, answer reads.

Stream semantics (docs/api.md): requests are validated in order, each against the state the
earlier valid requests of the stream leave behind; valid requests are applied even when others
fail; each request is atomic (store write and data-plane apply succeed together or not at all);
if the stream's valid requests need more tunnels or SAs than the device has at any point,
nothing is applied (TABLE_FULL); a data-plane fault stops the stream (TABLE_UNAVAILABLE).

A stream arrives as a :class:`~controller.spool.RequestSpool` (the servicer wrote it to disk
as it was read, without the lock) and is handled in two passes under the service lock, so its
length costs disk, not memory. Pass 1 reads the spool and validates every request, keeping per
request only its tunnel id (an array) and, if refused, its error (a dict by index), plus the
peak footprint — not the changes. If the peak does not fit, nothing is applied. Otherwise pass
2 reads the spool again, recomputes the accepted requests' changes batch by batch and applies
them. Both passes judge against the same overlay of the same committed state
(:class:`_StreamState`), so they agree request by request — server-allocated ids included.

A client that goes away before its stream ends gets nothing applied. gRPC shows the server a
cancelled stream as the stream's end followed by the cancellation, so the service checks for
the caller's cancellation (after yielding ``CANCEL_YIELDS`` event-loop turns for it to land)
once more just before the stream's first write, and applies nothing if it came.

Once a stream is being applied, the client no longer matters: :meth:`TunnelService.submit` runs
the work in its own task behind :func:`asyncio.shield`, so a cancelled call or an expired
deadline stops the handler but never a request half-way; every request is finished (store
committed to exactly what the data plane holds) or undone. Valid requests are applied in
batches of ``BATCH``, one in flight while the next is judged (:class:`_BatchRunner`): a
batch's requests are journalled in the store (one durable commit,
:meth:`TunnelStore.journal_begin_many`) before its data-plane writes, one store transaction
spans the data plane's batch and commits the requests it applied, and the stream's rows are
cleared once its answer is ready, so after a crash the next start logs every request that
was applied but never acknowledged, or was interrupted (and is then undone by reconciliation).
"""
from __future__ import annotations

import asyncio
import enum
import functools
import logging
import uuid
from array import array
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from controller.capabilities import Capabilities
from controller.dataplane import DataPlane, DataPlaneUnavailable, TunnelChange, TunnelCounters
from controller.errors import ErrorCode, InvalidArgument, NotFound, RequestError
from controller.key_guard import StreamKeys
from controller.model import Tunnel
from controller.spool import RequestSpool
from controller.store import TunnelStore
from controller.validation import validate_request
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

log = logging.getLogger(__name__)

MAX_ERROR_BITS = 64
# Requests per store transaction and data-plane batch (the data plane may split it further).
BATCH = 512
# Event-loop turns a caller's cancellation gets to land before a stream's first write.
CANCEL_YIELDS = 4
# Requests judged between two event-loop turns while a batch is being applied (_BatchRunner).
YIELD_EVERY = 32
LOGGED_IDS = 20  # tunnel ids named per "CREATE of n tunnel(s)" line (each request: DEBUG)


class StreamStatus(enum.IntEnum):
    """The stream's ``requestStatus`` (ADD_TUNNEL_STATUS numbers)."""

    ACCEPTED = 0
    REJECTED = 1
    TABLE_FULL = 2
    TABLE_UNAVAILABLE = 3
    ALREADY_EXISTS = 4


@dataclass(frozen=True, kw_only=True)
class RequestOutcome:
    """The result of one request of a stream: its tunnel id and, if it failed, why."""

    tunnel_id: int
    error: RequestError | None = None


@dataclass(frozen=True, kw_only=True)
class StreamResult:
    """The answer to one createIpTunnel stream, compact: a tunnel id per request (in request
    order) and the errors of the requests that failed, by index."""

    status: StreamStatus
    tunnel_ids: Sequence[int]
    errors: Mapping[int, RequestError]

    @property
    def error_bits(self) -> int:
        """``errorStatus``: bit i set when request i (of the first 64) failed."""
        bits = 0
        for index in self.errors:
            if index < MAX_ERROR_BITS:
                bits |= 1 << index
        return bits

    def outcomes(self) -> Iterator[RequestOutcome]:
        """One outcome per request, in request order."""
        for index, tunnel_id in enumerate(self.tunnel_ids):
            yield RequestOutcome(tunnel_id=tunnel_id, error=self.errors.get(index))


class _Verdicts:
    """What a stream's requests came to, one machine word per request: the tunnel id each names
    or is given, the errors of the refused ones by index, and the peak footprint pass 1
    measured. The changes themselves are not kept (the apply pass computes them)."""

    def __init__(self, tunnels: int, sas: int) -> None:
        self.tunnel_ids = array("Q")
        self.errors: dict[int, RequestError] = {}
        self.peak_tunnels, self.peak_sas = tunnels, sas

    def record(self, index: int, tunnel_id: int, error: RequestError | None = None) -> None:
        """Request ``index``'s tunnel id (and error): the next one, or one already recorded."""
        if index == len(self.tunnel_ids):
            self.tunnel_ids.append(tunnel_id)
        else:
            self.tunnel_ids[index] = tunnel_id
        if error is not None:
            self.errors[index] = error


class _StreamState:
    """The tunnels and live encrypt keys as a stream's accepted requests leave them: the
    store's committed state at the start of the stream with those requests laid over it.

    Both passes build one from the same store state (nothing is applied in between, the
    service lock is held), so they judge every request alike. In the apply pass the store
    commits, batch by batch, changes this overlay already holds, and only for tunnels the
    overlay holds — the overlay is consulted first — so those commits change no answer (the
    store's indexes and live keys move only for the tunnels this stream changed, and the keys
    the data plane retires are the ones this stream's changes retire)."""

    def __init__(self, store: TunnelStore, caps: Capabilities) -> None:
        self._caps = caps
        self.view = store.view()
        self._keys = StreamKeys(store)

    def judge(self, request: pb.ipTunnelRequest) -> TunnelChange:
        """Validate one request against the state so far and, if valid, lay it over the state;
        raise its :class:`RequestError` (state unchanged) if not."""
        change = validate_request(request, view=self.view, caps=self._caps)
        self._keys.check(change)
        self._keys.accept(change)
        self.view.set(change.tunnel_id, change.after)
        return change


def _parse(raw: bytes, index: int) -> pb.ipTunnelRequest:
    try:
        return pb.ipTunnelRequest.FromString(raw)
    except DecodeError:
        raise InvalidArgument(f"request {index} of the stream is not an ipTunnelRequest (the "
                              "message does not decode); nothing was applied") from None


def growth_bound(request: pb.ipTunnelRequest) -> tuple[int, int]:
    """At most how many tunnels and SAs one request can add, valid or not: only a CREATE adds a
    tunnel; a request adds at most the SAs it carries (decrypt SAs listed, the encrypt SA)."""
    ipsec = request.ipsecTunnel
    return (int(request.operation == pb._CREATE),
            len(ipsec.ipsecDec.ipsecSAs) + int(ipsec.ipsecEnc.HasField("ipsecSA")))


def _refused(index: int, request: pb.ipTunnelRequest, error: RequestError) -> None:
    log.info("request %d (%s tunnel %d) refused: %s", index,
             pb.OPERATION.Name(request.operation)
             if request.operation in pb.OPERATION.values() else "?",
             request.tunnelId, error)


class _BatchRunner:
    """Applies a stream's batches one at a time, each in its own task, so the next batch is
    judged while this one waits on the worker, the switch and the disk (issue 12: the
    controller sat idle 38 % of a stream's time in those waits). At most one batch is in flight
    and batches land in stream order; once one stops on a data-plane fault, none is started."""

    def __init__(self, apply: Callable[[list[tuple[int, TunnelChange]]], Coroutine[
            Any, Any, tuple[int, DataPlaneUnavailable] | None]]) -> None:
        self._apply = apply
        self._task: asyncio.Task[tuple[int, DataPlaneUnavailable] | None] | None = None
        self._stopped: tuple[int, DataPlaneUnavailable] | None = None

    @property
    def busy(self) -> bool:
        """True while a batch is in flight."""
        return self._task is not None

    async def start(self, batch: list[tuple[int, TunnelChange]]
                    ) -> tuple[int, DataPlaneUnavailable] | None:
        """Wait for the batch in flight, then start ``batch`` unless a fault stopped that one;
        the stop (request index, fault), if any, else None. A batch that raised raises here."""
        stopped = await self.wait()
        if stopped is None:
            self._task = asyncio.get_running_loop().create_task(self._apply(batch))
        return stopped

    async def wait(self) -> tuple[int, DataPlaneUnavailable] | None:
        """Wait for the batch in flight (if any); the stop so far."""
        if self._task is not None:
            task, self._task = self._task, None
            self._stopped = await task
        return self._stopped

    async def drain(self) -> None:
        """On the way out of an error: let the batch in flight finish (it is never abandoned
        half-way: the service lock must outlive it); its own failure is logged."""
        if self._task is None:
            return
        task, self._task = self._task, None
        try:
            await task
        except Exception:
            log.exception("a batch of the stream failed while the stream was ending on an error")


class TunnelService:
    """Owns the rules: validation against capabilities, the store and the data plane."""

    def __init__(self, *, store: TunnelStore, dataplane: DataPlane,
                 capabilities: Capabilities) -> None:
        self._store = store
        self._dataplane = dataplane
        self.capabilities = capabilities
        self._lock = asyncio.Lock()  # one stream at a time: plans see a stable state
        self._running: set[asyncio.Task[StreamResult]] = set()
        self._abandoned: set[str] = set()  # streams whose caller went away before any write

    async def submit(self, spool: RequestSpool) -> StreamResult:
        """Validate, capacity-check and apply one createIpTunnel stream, to the end even if the
        caller is cancelled (module doc). The service owns ``spool`` from here: it is closed
        when the stream is done."""
        stream = uuid.uuid4().hex[:12]
        try:
            task = asyncio.get_running_loop().create_task(self._submit(stream, spool),
                                                          name=f"stream-{stream}")
        except BaseException:
            spool.close()
            raise
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            self._abandoned.add(stream)
            if not task.done():
                log.warning("stream %s: the client went away (cancelled or deadline) while its "
                            "%d request(s) were being applied; finishing them", stream,
                            spool.count)
                task.add_done_callback(functools.partial(_report_unanswered, stream))
            raise

    @property
    def busy(self) -> bool:
        """True while a stream is being validated or applied."""
        return bool(self._running)

    async def drain(self) -> None:
        """Wait for every stream being applied (server stop: the store closes after this)."""
        while self._running:
            await asyncio.wait(set(self._running))

    async def _submit(self, stream: str, spool: RequestSpool) -> StreamResult:
        try:
            return await self._submit_locked(stream, spool)
        finally:
            self._abandoned.discard(stream)
            spool.close()
            self._store.journal_clear(stream)

    async def _check_caller(self, stream: str, spool: RequestSpool) -> None:
        """Before a stream's first write: if its caller has gone away (gRPC reports a client
        that cancels mid-stream as the stream's end, and the cancellation only after it),
        nothing of it is applied — the task ends cancelled. Yields to the event loop first so
        a cancellation already on its way lands."""
        for _ in range(CANCEL_YIELDS):
            await asyncio.sleep(0)
        if stream in self._abandoned:
            log.warning("stream %s: the client went away before any of its %d request(s) was "
                        "applied; nothing was applied", stream, spool.count)
            raise asyncio.CancelledError

    async def _submit_locked(self, stream: str, spool: RequestSpool) -> StreamResult:
        caps = self.capabilities
        async with self._lock:
            view = self._store.view()
            verdicts = _Verdicts(len(view), view.sa_count)
            bound_tunnels, bound_sas = verdicts.peak_tunnels, verdicts.peak_sas
            for index, raw in enumerate(spool):
                tunnels, sas = growth_bound(_parse(raw, index))
                bound_tunnels += tunnels
                bound_sas += sas
            judged = bound_tunnels > caps.max_tunnels or bound_sas > caps.max_sas
            if judged:  # the stream might not fit: find its exact peak before applying any
                self._judge(spool, verdicts)
                if verdicts.peak_tunnels > caps.max_tunnels or verdicts.peak_sas > caps.max_sas:
                    return self._table_full(verdicts)
            status = await self._apply(stream, spool, verdicts, judged=judged)
        if status is None:
            failures = verdicts.errors.values()
            if not failures:
                status = StreamStatus.ACCEPTED
            elif all(error.code is ErrorCode.DUPLICATE_TUNNEL for error in failures):
                status = StreamStatus.ALREADY_EXISTS
            else:
                status = StreamStatus.REJECTED
        return StreamResult(status=status, tunnel_ids=verdicts.tunnel_ids,
                            errors=verdicts.errors)

    def _judge(self, spool: RequestSpool, verdicts: _Verdicts) -> None:
        """Pass 1: every request validated in order against the state the earlier valid ones
        leave behind; its tunnel id or error recorded, and the peak footprint."""
        state = _StreamState(self._store, self.capabilities)
        view = state.view
        for index, raw in enumerate(spool):
            request = _parse(raw, index)
            try:
                change = state.judge(request)
            except RequestError as error:
                verdicts.record(index, request.tunnelId, error)
                _refused(index, request, error)
                continue
            verdicts.record(index, change.tunnel_id)
            verdicts.peak_tunnels = max(verdicts.peak_tunnels, len(view))
            verdicts.peak_sas = max(verdicts.peak_sas, view.sa_count)

    def _table_full(self, verdicts: _Verdicts) -> StreamResult:
        caps = self.capabilities
        error = RequestError(
            ErrorCode.TABLE_FULL, "",
            f"not applied: the stream needs {verdicts.peak_tunnels} tunnels and "
            f"{verdicts.peak_sas} SAs at its peak, this device holds {caps.max_tunnels} "
            f"tunnels and {caps.max_sas} SAs; nothing of the stream was applied")
        log.warning("stream refused: %s", error)
        errors = {index: verdicts.errors.get(index, error)
                  for index in range(len(verdicts.tunnel_ids))}
        return StreamResult(status=StreamStatus.TABLE_FULL, tunnel_ids=verdicts.tunnel_ids,
                            errors=errors)

    async def _apply(self, stream: str, spool: RequestSpool, verdicts: _Verdicts, *,
                     judged: bool) -> StreamStatus | None:
        """The apply pass: the requests validated in order (after pass 1, ``judged``: only the
        ones it accepted, recomputing the changes it computed, :class:`_StreamState`) and the
        valid ones applied in batches of ``BATCH``. A data-plane fault stops the applying:
        every valid request not applied gets TABLE_UNAVAILABLE (the ones after it are still
        validated when pass 1 did not run, so they get their own errors and ids as before)."""
        state = _StreamState(self._store, self.capabilities)
        batch: list[tuple[int, TunnelChange]] = []
        stopped_at: int | None = None  # the first request a data-plane fault left unapplied
        first_write = True
        fault: DataPlaneUnavailable | None = None
        runner = _BatchRunner(lambda items: self._apply_batch(stream, items, verdicts))
        try:
            for index, raw in enumerate(spool):
                if runner.busy and index % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # let the batch in flight take its next step
                if judged and index in verdicts.errors:
                    continue  # refused in pass 1, so it changed nothing there either
                request = _parse(raw, index)
                try:
                    change = state.judge(request)
                except RequestError as error:
                    if judged:  # a defect: pass 1 accepted it in the same state
                        log.error("request %d: pass 2 refuses what pass 1 accepted (a defect; "
                                  "it is not applied): %s", index, error)
                    else:
                        _refused(index, request, error)
                    verdicts.record(index, request.tunnelId, error)
                    continue
                if judged and change.tunnel_id != verdicts.tunnel_ids[index]:
                    log.error("request %d: pass 2 gives tunnel id %d, pass 1 gave %d (a defect; "
                              "the answer reports %d)", index, change.tunnel_id,
                              verdicts.tunnel_ids[index], change.tunnel_id)
                verdicts.record(index, change.tunnel_id)
                if stopped_at is not None:
                    continue  # only judged from here on, for its id and its own errors
                batch.append((index, change))
                if len(batch) == BATCH:
                    if first_write:
                        await self._check_caller(stream, spool)
                        first_write = False
                    stopped = await runner.start(batch)
                    batch = []
                    if stopped is not None:
                        stopped_at, fault = stopped
                        if judged:
                            break  # pass 1 recorded every later request already
            if batch and stopped_at is None:
                if first_write:
                    await self._check_caller(stream, spool)
                stopped = await runner.start(batch)
                if stopped is not None:
                    stopped_at, fault = stopped
            stopped = await runner.wait()
            if stopped is not None and stopped_at is None:
                stopped_at, fault = stopped
        except BaseException:
            await runner.drain()
            raise
        if stopped_at is None:
            return None
        unavailable = RequestError(ErrorCode.DATAPLANE_UNAVAILABLE, "",
                                   f"not applied: the data plane is unavailable ({fault}); the "
                                   "state is as before this request")
        for later in range(stopped_at, len(verdicts.tunnel_ids)):
            verdicts.errors.setdefault(later, unavailable)
        return StreamStatus.TABLE_UNAVAILABLE

    async def _apply_batch(self, stream: str, items: list[tuple[int, TunnelChange]],
                           verdicts: _Verdicts) -> tuple[int, DataPlaneUnavailable] | None:
        """Store writes + data-plane apply of a batch, each request as one unit: the journal
        rows (one durable commit), one store transaction around the data plane's batch, then
        the tunnels of the applied requests committed together. Returns (request index,
        fault) when a data-plane fault stopped the batch at that request."""
        journals = self._store.journal_begin_many(stream, items)
        staged = self._store.stage_batch()
        try:
            results = await self._dataplane.apply_batch([change for _, change in items])
        except BaseException:
            staged.rollback(journals)
            raise
        applied = [(change, seq) for (_, change), seq, result
                   in zip(items, journals, results, strict=True) if result is None]
        try:
            staged.commit(applied, [seq for seq, result in zip(journals, results, strict=True)
                                    if result is not None])
        except BaseException:
            log.exception("store commit failed for %d tunnel(s); undoing their data-plane "
                          "changes", len(applied))
            await self._dataplane.apply_batch([change.inverse()
                                               for change, _ in reversed(applied)])
            raise
        done: dict[str, list[int]] = {}  # operation -> tunnel ids applied (one log line)
        try:
            return self._outcomes(items, results, verdicts, done)
        finally:
            for operation, ids in done.items():
                shown = ", ".join(str(tunnel_id) for tunnel_id in ids[:LOGGED_IDS])
                more = f" and {len(ids) - LOGGED_IDS} more" if len(ids) > LOGGED_IDS else ""
                log.info("%s of %d tunnel(s): %s%s", operation, len(ids), shown, more)

    @staticmethod
    def _outcomes(items: list[tuple[int, TunnelChange]], results: list[Exception | None],
                  verdicts: _Verdicts, done: dict[str, list[int]]
                  ) -> tuple[int, DataPlaneUnavailable] | None:
        """Record the data plane's verdicts; (request index, fault) where a fault stopped it."""
        for (index, change), result in zip(items, results, strict=True):
            if isinstance(result, DataPlaneUnavailable):
                log.error("data plane unavailable at request %d (tunnel %d): %s", index,
                          change.tunnel_id, result)
                return index, result
            if isinstance(result, RequestError):  # the data plane refused it: its own fault
                verdicts.errors[index] = result
                log.info("request %d (%s tunnel %d) refused: %s", index, change.operation.name,
                         change.tunnel_id, result)
                continue
            if result is not None:
                raise result
            done.setdefault(change.operation.name, []).append(change.tunnel_id)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s tunnel %d (%s)", change.operation.name, change.tunnel_id,
                          (change.after or change.before).kind)  # type: ignore[union-attr]
        return None

    def get(self, tunnel_id: int) -> Tunnel:
        """One tunnel, or :class:`NotFound`."""
        tunnel = self._store.tunnels.get(tunnel_id)
        if tunnel is None:
            raise NotFound(f"tunnelId {tunnel_id} does not exist")
        return tunnel

    def list_tunnels(self) -> list[Tunnel]:
        """All tunnels, by ascending id (the paging order)."""
        return [tunnel for _, tunnel in sorted(self._store.tunnels.items())]

    def list_ids(self) -> list[int]:
        """Every tunnel id, ascending (the paging order of the stats pass)."""
        return sorted(self._store.tunnels)

    async def counters(self, tunnel_ids: Sequence[int]) -> Mapping[int, TunnelCounters]:
        """Data-plane counters for the given ids."""
        return await self._dataplane.read_counters(tunnel_ids)


def _report_unanswered(stream: str, task: asyncio.Task[StreamResult]) -> None:
    """Log what a stream whose client went away did (the client never learns it)."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("stream %s (client gone) failed: %s", stream, error)
        return
    result = task.result()
    applied = [tunnel_id for index, tunnel_id in enumerate(result.tunnel_ids)
               if index not in result.errors]
    log.warning("stream %s (client gone): %d request(s) applied but not acknowledged "
                "(tunnel ids %s), %d refused", stream, len(applied),
                ", ".join(str(tunnel_id) for tunnel_id in applied[:20]) or "-",
                len(result.errors))
