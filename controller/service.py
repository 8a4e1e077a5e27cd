"""Domain operations: plan a createIpTunnel stream, check capacity, apply it, answer reads.

Stream semantics (docs/api.md): requests are validated in order, each against the state the
earlier valid requests of the stream leave behind; valid requests are applied even when others
fail; each request is atomic (store write and data-plane apply succeed together or not at all);
if the stream's valid requests need more tunnels or SAs than the device has at any point,
nothing is applied (TABLE_FULL); a data-plane fault stops the stream (TABLE_UNAVAILABLE).

Once a stream is being applied, the client no longer matters: :meth:`TunnelService.submit` runs
the work in its own task behind :func:`asyncio.shield`, so a cancelled call or an expired
deadline stops the handler but never a request half-way; every request is finished (store
committed to exactly what the data plane holds) or undone. Valid requests are applied in
batches of ``BATCH``: the batch's requests are journalled in the store (one durable commit,
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.capabilities import Capabilities
from controller.dataplane import DataPlane, DataPlaneUnavailable, TunnelChange, TunnelCounters
from controller.errors import ErrorCode, NotFound, RequestError
from controller.key_guard import StreamKeys
from controller.model import Tunnel
from controller.store import TunnelStore
from controller.validation import validate_request
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

log = logging.getLogger(__name__)

MAX_ERROR_BITS = 64
# Requests per store transaction and data-plane batch (the data plane may split it further).
BATCH = 512
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
    """The answer to one createIpTunnel stream."""

    status: StreamStatus
    outcomes: tuple[RequestOutcome, ...]

    @property
    def error_bits(self) -> int:
        """``errorStatus``: bit i set when request i (of the first 64) failed."""
        bits = 0
        for index, outcome in enumerate(self.outcomes[:MAX_ERROR_BITS]):
            if outcome.error is not None:
                bits |= 1 << index
        return bits


def _footprint(tunnel: Tunnel | None) -> tuple[int, int]:
    """(tunnels, SAs) one tunnel occupies; (0, 0) for none."""
    return (0, 0) if tunnel is None else (1, len(tunnel.security_associations))


class TunnelService:
    """Owns the rules: validation against capabilities, the store and the data plane."""

    def __init__(self, *, store: TunnelStore, dataplane: DataPlane,
                 capabilities: Capabilities) -> None:
        self._store = store
        self._dataplane = dataplane
        self.capabilities = capabilities
        self._lock = asyncio.Lock()  # one stream at a time: plans see a stable state
        self._running: set[asyncio.Task[StreamResult]] = set()

    async def submit(self, requests: Sequence[pb.ipTunnelRequest]) -> StreamResult:
        """Validate, capacity-check and apply one createIpTunnel stream, to the end even if the
        caller is cancelled (module doc)."""
        stream = uuid.uuid4().hex[:12]
        task = asyncio.get_running_loop().create_task(self._submit(stream, requests),
                                                      name=f"stream-{stream}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                log.warning("stream %s: the client went away (cancelled or deadline) while its "
                            "%d request(s) were being applied; finishing them", stream,
                            len(requests))
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

    async def _submit(self, stream: str, requests: Sequence[pb.ipTunnelRequest]
                      ) -> StreamResult:
        try:
            return await self._submit_locked(stream, requests)
        finally:
            self._store.journal_clear(stream)

    async def _submit_locked(self, stream: str, requests: Sequence[pb.ipTunnelRequest]
                             ) -> StreamResult:
        async with self._lock:
            view = self._store.view()
            outcomes: list[RequestOutcome | None] = [None] * len(requests)
            plan: list[tuple[int, TunnelChange]] = []
            peak_tunnels, peak_sas = len(view), view.sa_count
            tunnels, sas = peak_tunnels, peak_sas
            keys = StreamKeys(self._store)
            for index, request in enumerate(requests):
                try:
                    change = validate_request(request, view=view, caps=self.capabilities)
                    keys.check(change)
                except RequestError as error:
                    outcomes[index] = RequestOutcome(tunnel_id=request.tunnelId, error=error)
                    log.info("request %d (%s tunnel %d) refused: %s", index,
                             pb.OPERATION.Name(request.operation)
                             if request.operation in pb.OPERATION.values() else "?",
                             request.tunnelId, error)
                    continue
                (tunnels_before, sas_before), (tunnels_after, sas_after) = (
                    _footprint(change.before), _footprint(change.after))
                tunnels += tunnels_after - tunnels_before
                sas += sas_after - sas_before
                peak_tunnels, peak_sas = max(peak_tunnels, tunnels), max(peak_sas, sas)
                keys.accept(change)
                view.set(change.tunnel_id, change.after)
                plan.append((index, change))
            caps = self.capabilities
            if peak_tunnels > caps.max_tunnels or peak_sas > caps.max_sas:
                return self._table_full(requests, outcomes, plan, peak_tunnels, peak_sas)
            status = await self._apply_plan(stream, plan, outcomes)
        final = tuple(outcome or RequestOutcome(tunnel_id=0) for outcome in outcomes)
        if status is None:
            failures = [outcome.error for outcome in final if outcome.error is not None]
            if not failures:
                status = StreamStatus.ACCEPTED
            elif all(error.code is ErrorCode.DUPLICATE_TUNNEL for error in failures):
                status = StreamStatus.ALREADY_EXISTS
            else:
                status = StreamStatus.REJECTED
        return StreamResult(status=status, outcomes=final)

    def _table_full(self, requests: Sequence[pb.ipTunnelRequest],
                    outcomes: list[RequestOutcome | None],
                    plan: list[tuple[int, TunnelChange]], tunnels: int,
                    sas: int) -> StreamResult:
        caps = self.capabilities
        error = RequestError(
            ErrorCode.TABLE_FULL, "",
            f"not applied: the stream needs {tunnels} tunnels and {sas} SAs at its peak, this "
            f"device holds {caps.max_tunnels} tunnels and {caps.max_sas} SAs; nothing of the "
            "stream was applied")
        log.warning("stream refused: %s", error)
        for index, change in plan:
            outcomes[index] = RequestOutcome(tunnel_id=change.tunnel_id, error=error)
        final = tuple(outcome or RequestOutcome(tunnel_id=requests[i].tunnelId, error=error)
                      for i, outcome in enumerate(outcomes))
        return StreamResult(status=StreamStatus.TABLE_FULL, outcomes=final)

    async def _apply_plan(self, stream: str, plan: list[tuple[int, TunnelChange]],
                          outcomes: list[RequestOutcome | None]) -> StreamStatus | None:
        for start in range(0, len(plan), BATCH):
            fault = await self._apply_batch(stream, plan[start:start + BATCH], outcomes)
            if fault is not None:
                for later_index, later in plan[start:]:
                    if outcomes[later_index] is None:
                        outcomes[later_index] = RequestOutcome(
                            tunnel_id=later.tunnel_id,
                            error=RequestError(ErrorCode.DATAPLANE_UNAVAILABLE, "",
                                               f"not applied: the data plane is unavailable "
                                               f"({fault}); the state is as before this "
                                               "request"))
                return StreamStatus.TABLE_UNAVAILABLE
        return None

    async def _apply_batch(self, stream: str, items: list[tuple[int, TunnelChange]],
                           outcomes: list[RequestOutcome | None]
                           ) -> DataPlaneUnavailable | None:
        """Store writes + data-plane apply of a batch, each request as one unit: the journal
        rows (one durable commit), one store transaction around the data plane's batch, then
        the tunnels of the applied requests committed together. Returns the fault that
        stopped the batch, if any (the outcomes of the requests from there on stay unset)."""
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
            return self._outcomes(items, results, outcomes, done)
        finally:
            for operation, ids in done.items():
                shown = ", ".join(str(tunnel_id) for tunnel_id in ids[:LOGGED_IDS])
                more = f" and {len(ids) - LOGGED_IDS} more" if len(ids) > LOGGED_IDS else ""
                log.info("%s of %d tunnel(s): %s%s", operation, len(ids), shown, more)

    @staticmethod
    def _outcomes(items: list[tuple[int, TunnelChange]], results: list[Exception | None],
                  outcomes: list[RequestOutcome | None], done: dict[str, list[int]]
                  ) -> DataPlaneUnavailable | None:
        for (index, change), result in zip(items, results, strict=True):
            if isinstance(result, DataPlaneUnavailable):
                log.error("data plane unavailable at request %d (tunnel %d): %s", index,
                          change.tunnel_id, result)
                return result
            if isinstance(result, RequestError):  # the data plane refused it: its own fault
                outcomes[index] = RequestOutcome(tunnel_id=change.tunnel_id, error=result)
                log.info("request %d (%s tunnel %d) refused: %s", index, change.operation.name,
                         change.tunnel_id, result)
                continue
            if result is not None:
                raise result
            outcomes[index] = RequestOutcome(tunnel_id=change.tunnel_id)
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
    applied = [outcome.tunnel_id for outcome in result.outcomes if outcome.error is None]
    log.warning("stream %s (client gone): %d request(s) applied but not acknowledged "
                "(tunnel ids %s), %d refused", stream, len(applied),
                ", ".join(str(tunnel_id) for tunnel_id in applied[:20]) or "-",
                len(result.outcomes) - len(applied))
