"""`--workers 2`: the batched AddSas/RemoveSas split by owner and all or nothing across the
worker processes (crypto_worker/supervisor.py), through the real entry point and processes.

A batch whose last SA is refused by process 1 leaves process 0 without the batch's SAs (and the
refusal names the SA's position in the whole batch); an encrypt key repeated at SAs of two
processes, or used before in the other process, is refused as one worker refuses it; a valid
batch is added in both processes and RemoveSas returns the final counters in request order.

Needs root (a network namespace); skipped otherwise. Run just this file:
    .venv/bin/python -m pytest tests/crypto_worker/test_workers_batches.py -q
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cw_support import Keying
from test_workers import SUITE, _namespace, _Worker, needs_root

from tunneloffload.crypto.v1 import worker_pb2 as pb

pytestmark = needs_root


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[_Worker]:
    for namespace in _namespace():
        started = _Worker(namespace, tmp_path, workers=2)
        try:
            started.wait_ready()
            yield started
        finally:
            started.stop()


def _sa(sa_index: int, keying: Keying | None = None, *,
        direction: int = pb.DIRECTION_ENCRYPT) -> pb.AddSaRequest:
    keying = keying or Keying.random(SUITE)
    return pb.AddSaRequest(
        params=pb.SaParams(sa_index=sa_index, spi=0x2000 + sa_index, direction=direction,
                           cipher=pb.Cipher.Value(SUITE.proto_name), mode=pb.MODE_TUNNEL),
        key=pb.SaKey(key=keying.key, salt=keying.salt))


def _listed(worker: _Worker) -> list[int]:
    return [info.params.sa_index for info in worker.stub.ListSas(pb.ListSasRequest()).sas]


def _refusal(worker: _Worker, request: pb.AddSasRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as refused:
        worker.stub.AddSas(request)
    return refused.value


def _failed_sa(error: grpc.RpcError) -> str:
    return dict(error.trailing_metadata() or ())["failed-sa"]


def test_a_batch_refused_by_process_1_adds_nothing_in_process_0(worker: _Worker) -> None:
    worker.stub.AddSa(_sa(5))  # process 1 owns odd indexes
    batch = pb.AddSasRequest(sas=[_sa(2), _sa(4), _sa(3), _sa(5)])
    error = _refusal(worker, batch)
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error.details() == "sas[3]: sa_index: 5 is already in use"
    assert _failed_sa(error) == "3"
    assert _listed(worker) == [5]  # neither 2 nor 4 (process 0) nor 3 (process 1)
    # A validation error wins over an earlier table refusal, as in one worker.
    bad = _sa(6)
    bad.key.key = b"short"
    error = _refusal(worker, pb.AddSasRequest(sas=[_sa(5), _sa(8), bad]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("sas[2].key.key: ")
    assert _failed_sa(error) == "2"
    assert _listed(worker) == [5]


def test_an_encrypt_key_twice_across_processes_is_refused(worker: _Worker) -> None:
    shared = Keying.random(SUITE)
    error = _refusal(worker, pb.AddSasRequest(sas=[_sa(10), _sa(2, shared), _sa(7, shared)]))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details().startswith("sas[2]: key retired: sa_index 7 spi 8199: this encrypt "
                                      "key is already used by another SA of the batch")
    assert _failed_sa(error) == "2"
    assert _listed(worker) == []
    # A key used before in process 0 is refused for an SA of process 1.
    worker.stub.AddSa(_sa(4, shared))
    error = _refusal(worker, pb.AddSasRequest(sas=[_sa(6), _sa(9, shared)]))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details().startswith("sas[1]: key retired: sa_index 9 spi 8201:")
    assert _listed(worker) == [4]
    # The same key for decrypt SAs is no nonce risk: allowed.
    worker.stub.AddSas(pb.AddSasRequest(sas=[_sa(11, shared, direction=pb.DIRECTION_DECRYPT),
                                             _sa(12, shared, direction=pb.DIRECTION_DECRYPT)]))
    assert _listed(worker) == [4, 11, 12]


def test_a_batch_is_added_and_removed_in_both_processes(worker: _Worker) -> None:
    indexes = [9, 2, 7, 4, 1, 6, 3, 8]
    worker.stub.AddSas(pb.AddSasRequest(sas=[_sa(i) for i in indexes]))
    assert _listed(worker) == sorted(indexes)
    counters = worker.stub.GetCounters(pb.GetCountersRequest(sa_indexes=[3, 2, 9]))
    assert [c.sa_index for c in counters.sas] == [3, 2, 9]
    # Process 0 owns none of these: it is asked for its drops outside any SA only.
    counters = worker.stub.GetCounters(pb.GetCountersRequest(sa_indexes=[7, 3]))
    assert [c.sa_index for c in counters.sas] == [7, 3]
    # All or nothing: 5 is not in use, so none of 9, 2 and 4 is removed.
    with pytest.raises(grpc.RpcError) as refused:
        worker.stub.RemoveSas(pb.RemoveSasRequest(sa_indexes=[9, 2, 5, 4]))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert refused.value.details() == "sa_indexes[2]: sa_index: 5 is not in use"
    assert _failed_sa(refused.value) == "2"
    with pytest.raises(grpc.RpcError) as repeated:
        worker.stub.RemoveSas(pb.RemoveSasRequest(sa_indexes=[9, 2, 9]))
    assert repeated.value.details() == "sa_indexes[2]: sa_index: 9 is not in use"
    assert _listed(worker) == sorted(indexes)
    removed = worker.stub.RemoveSas(pb.RemoveSasRequest(sa_indexes=[9, 2, 5, 4, 9],
                                                        missing_ok=True))
    assert [c.sa_index for c in removed.final_counters] == [9, 2, 4]
    assert _listed(worker) == [1, 3, 6, 7, 8]
