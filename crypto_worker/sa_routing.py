"""Which worker process answers each CryptoWorker rpc under `--workers N`, and how their
answers are joined into the one a single-process worker would give.

A call about one SA goes to its owner, `sa_index mod N` (crypto_worker/fanout.py `owner_of`:
the same rule the kernel applies to its frames), unchanged, and the owner's reply or error is
the answer; the owner validates, so errors are word for word a single worker's. Calls about
all SAs (ListSas, GetCounters) ask every process and merge: SAs by sa_index, in the order asked;
drops that belong to no SA summed per reason and per unknown sa_index.

An rpc without an entry here is refused (UNIMPLEMENTED) by the supervisor rather than sent to
an arbitrary process: a batched rpc (AddSas/RemoveSas) needs its own entry, split by owner and,
so that no process half-applies a batch, validated whole before any part is sent; until it has
one, a client that falls back to one call per SA on UNIMPLEMENTED (the controller does) gets
exactly a single worker's semantics.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import grpc
from google.protobuf.message import Message

from crypto_worker.fanout import owner_of
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


def _get_counters(request: Message, members: int, call: Call) -> Message:
    assert isinstance(request, pb.GetCountersRequest)
    wanted = list(request.sa_indexes)
    if not wanted:
        replies = [_counters(call(index, request)) for index in range(members)]
        sas = sorted((counters for reply in replies for counters in reply.sas),
                     key=lambda counters: counters.sa_index)
        return _response(sas, replies)
    # Each process is asked for its own SAs; one that owns none of them is still asked (for
    # all of its SAs, which are then left out) because its drops outside any SA count too.
    subsets: list[list[int]] = [[] for _ in range(members)]
    for sa_index in wanted:
        subsets[owner_of(sa_index, members)].append(sa_index)
    try:
        replies = [_counters(call(index, pb.GetCountersRequest(
            sa_indexes=subsets[index], dropped_only=request.dropped_only)))
                   for index in range(members)]
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
