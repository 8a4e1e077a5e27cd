"""Which worker process answers each CryptoWorker rpc under `--workers N`, and how their
answers are joined into the one a single-process worker would give.

A call about one SA goes to its owner, `sa_index mod N` (crypto_worker/fanout.py `owner_of`:
the same rule the kernel applies to its frames), unchanged, and the owner's reply or error is
the answer; the owner validates, so errors are word for word a single worker's. Calls about
all SAs (ListSas, GetCounters) ask every process and merge: SAs by sa_index, in the order asked;
drops that belong to no SA summed per reason and per unknown sa_index.

The batched rpcs (AddSas, RemoveSas) are split by owner and checked in every process before
any part is applied (crypto_worker/supervisor.py); a process's refusal of its part names its
position in that part, which `batch_abort` renumbers to the whole batch's. An rpc the supervisor
routes neither way is refused (UNIMPLEMENTED) rather than sent to an arbitrary process.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import grpc
from google.protobuf.message import Message

from crypto_worker.fanout import owner_of
from crypto_worker.servicer import FAILED_SA_METADATA
from tunneloffload.crypto.v1 import worker_pb2 as pb

Call = Callable[[int, Message], Message]
Route = Callable[[Message, int, Call], Message]


class ChildAbort(Exception):
    """A process's (or the supervisor's) error status for the rpc, passed on unchanged."""

    def __init__(self, code: grpc.StatusCode, details: str,
                 trailing_metadata: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


def _by_params(request: Message, members: int, call: Call) -> Message:
    assert isinstance(request, pb.AddSaRequest | pb.ReplaceSaRequest)
    return call(owner_of(request.params.sa_index, members), request)


def _by_index(request: Message, members: int, call: Call) -> Message:
    assert isinstance(request, pb.RemoveSaRequest)
    return call(owner_of(request.sa_index, members), request)


def _list_sas(request: Message, members: int, call: Call) -> Message:
    sas: list[pb.SaInfo] = []
    for index in range(members):
        reply = call(index, request)
        assert isinstance(reply, pb.ListSasResponse)
        sas.extend(reply.sas)
    sas.sort(key=lambda info: info.params.sa_index)
    return pb.ListSasResponse(sas=sas)


def _response(sas: list[pb.SaCounters],
              replies: list[pb.GetCountersResponse]) -> pb.GetCountersResponse:
    """The SAs' counters plus every process's drops outside any SA, summed."""
    unknown: Counter[int] = Counter()
    unattributed: Counter[int] = Counter()
    for reply in replies:
        for entry in reply.unknown_sa:
            unknown[entry.sa_index] += entry.packets
        for drop in reply.unattributed:
            unattributed[drop.reason] += drop.packets
    return pb.GetCountersResponse(
        sas=sas,
        unknown_sa=[pb.UnknownSaDrops(sa_index=i, packets=n) for i, n in sorted(unknown.items())],
        unattributed=[pb.DropCount(reason=r, packets=n)  # type: ignore[arg-type]
                      for r, n in sorted(unattributed.items())],
    )


def _counters(reply: Message) -> pb.GetCountersResponse:
    assert isinstance(reply, pb.GetCountersResponse)
    return reply


# GetCounters of a process that owns none of the SAs asked for: only its drops outside any SA.
# The supervisor sends this very object as the process's "drops" exchange (crypto_worker/
# child.py), which encodes no SA: with 60,000 SAs, asking for all of them and leaving them out
# cost 150-270 ms per call. Anything else that answers `call` may run it as a GetCounters of
# every SA: the SAs are left out either way.
DROPS_ONLY = pb.GetCountersRequest()


def _get_counters(request: Message, members: int, call: Call) -> Message:
    assert isinstance(request, pb.GetCountersRequest)
    wanted = list(request.sa_indexes)
    if not wanted:
        replies = [_counters(call(index, request)) for index in range(members)]
        sas = sorted((counters for reply in replies for counters in reply.sas),
                     key=lambda counters: counters.sa_index)
        return _response(sas, replies)
    # Each process is asked for its own SAs; one that owns none of them is still asked for its
    # drops outside any SA (DROPS_ONLY), which count too.
    subsets: list[list[int]] = [[] for _ in range(members)]
    for sa_index in wanted:
        subsets[owner_of(sa_index, members)].append(sa_index)
    try:
        replies = [_counters(call(index, pb.GetCountersRequest(
            sa_indexes=subsets[index], dropped_only=request.dropped_only)
            if subsets[index] else DROPS_ONLY)) for index in range(members)]
    except ChildAbort as abort:
        if abort.code != grpc.StatusCode.NOT_FOUND:
            raise
        # Some SA is not in use; name its position in the request, as one worker would.
        present = {counters.sa_index for index in range(members)
                   for counters in call(index, pb.GetCountersRequest()).sas}
        for position, sa_index in enumerate(wanted):
            if sa_index not in present:
                raise ChildAbort(grpc.StatusCode.NOT_FOUND,
                                 f"sa_indexes[{position}]: {sa_index} is not in use") from None
        raise
    answered = [iter(reply.sas) if subsets[index] else iter(()) for index, reply
                in enumerate(replies)]
    sas = [next(answered[owner_of(sa_index, members)]) for sa_index in wanted]
    return _response(sas, replies)


def batch_abort(abort: ChildAbort, part: list[int], what: str) -> tuple[int, ChildAbort]:
    """A process's refusal of SA ``k`` of its ``part`` of a batch (details "sas[k]…",
    metadata failed-sa k) as the whole batch's refusal of SA ``part[k]``; an error about no
    one SA (UNAVAILABLE, INTERNAL) unchanged, at position -1."""
    metadata = dict(abort.trailing_metadata)
    if FAILED_SA_METADATA not in metadata:
        return -1, abort
    sub = int(metadata[FAILED_SA_METADATA])
    position = part[sub]
    prefix = f"{what}[{sub}]"
    details = abort.details
    if details.startswith(prefix):
        details = f"{what}[{position}]" + details[len(prefix):]
    metadata[FAILED_SA_METADATA] = str(position)
    return position, ChildAbort(abort.code, details, tuple(metadata.items()))


def merge_final_counters(wanted: list[int], members: int,
                         final: dict[int, list[pb.SaCounters]]) -> list[pb.SaCounters]:
    """RemoveSas: each process's final counters (its part, in order, unused indexes skipped)
    back in the order of the whole batch."""
    answered = {index: iter(counters) for index, counters in final.items()}
    pending: dict[int, pb.SaCounters | None] = {index: next(it, None)
                                                for index, it in answered.items()}
    merged = []
    for sa_index in wanted:
        owner = owner_of(sa_index, members)
        head = pending.get(owner)
        if head is not None and head.sa_index == sa_index:
            merged.append(head)
            pending[owner] = next(answered[owner], None)
    return merged


# Calls that change the SAs: the supervisor runs one at a time (a batch is checked in every
# process, then applied, with nothing in between).
CHANGE_METHODS = frozenset({"AddSa", "ReplaceSa", "RemoveSa", "AddSas", "RemoveSas"})

# Calls that install a fresh SA under its key (AddSa unless resume): the supervisor first asks
# the other processes whether the key numbered packets there (a single worker refuses that key
# at any sa_index; crypto_worker/sa_state.py).
FRESH_SA_METHODS = frozenset({"AddSa", "ReplaceSa"})

ROUTES: dict[str, Route] = {
    "AddSa": _by_params,
    "ReplaceSa": _by_params,
    "RemoveSa": _by_index,
    "ListSas": _list_sas,
    "GetCounters": _get_counters,
}
