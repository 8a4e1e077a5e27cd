"""AddSas / RemoveSas over the real SA socket: all or nothing, one durable commit per batch, the
refused SA named by position (details and ``failed-sa`` metadata), and the controller's client.

Run just this file: .venv/bin/python -m pytest tests/crypto_worker/test_sa_batch.py -q
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from controller.crypto_client import CryptoWorkerClient, WorkerRefused, WorkerSa
from controller.keys import SaKey
from controller.model import Cipher, SecurityAssociation
from crypto_worker.sa_state import SaStateStore
from crypto_worker.sa_table import SaTable
from crypto_worker.server import WorkerSettings, create_server
from tunneloffload.crypto.v1 import worker_pb2 as pb
from tunneloffload.crypto.v1 import worker_pb2_grpc as pb_grpc


class Worker:
    """A started SA service on a private socket, its table with a durable store, and a stub."""

    def __init__(self, tmp: Path) -> None:
        run = tmp / "run"
        run.mkdir(mode=0o700)
        self.socket = str(run / "sa.sock")
        self.store = SaStateStore.open(tmp / "state")
        self.commits = 0
        real_commit = self.store._commit

        def counting() -> None:
            self.commits += 1
            real_commit()

        self.store._commit = counting  # type: ignore[method-assign]
        self.table = SaTable(self.store)
        self.server = create_server(WorkerSettings(sa_socket=self.socket,
                                                   nanomsg_url="ipc:///nonexistent"), self.table)
        self.server.start()
        self.channel = grpc.insecure_channel(f"unix:{self.socket}")
        self.stub = pb_grpc.CryptoWorkerStub(self.channel)

    def indexes(self) -> list[int]:
        return [info.params.sa_index for info in self.stub.ListSas(pb.ListSasRequest()).sas]

    def close(self) -> None:
        self.channel.close()
        self.server.stop(None)
        self.table.close()


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    running = Worker(tmp_path)
    yield running
    running.close()


def _add(index: int, *, encrypt: bool = False, key: bytes | None = None, spi: int | None = None,
         resume: bool = False) -> pb.AddSaRequest:
    return pb.AddSaRequest(
        params=pb.SaParams(sa_index=index, spi=0x1000 + index if spi is None else spi,
                           direction=pb.DIRECTION_ENCRYPT if encrypt else pb.DIRECTION_DECRYPT,
                           cipher=pb.CIPHER_AES256_GCM_ICV16, mode=pb.MODE_TRANSPORT),
        key=pb.SaKey(key=key or os.urandom(32), salt=b"salt"), resume=resume)


def _refusal(worker: Worker, *sas: pb.AddSaRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as refused:
        worker.stub.AddSas(pb.AddSasRequest(sas=list(sas)))
    return refused.value


def _failed_sa(error: grpc.RpcError) -> str:
    return dict(error.trailing_metadata())["failed-sa"]  # type: ignore[attr-defined]


def test_a_batch_is_added_in_one_durable_commit(worker: Worker) -> None:
    before = worker.commits
    worker.stub.AddSas(pb.AddSasRequest(sas=[_add(1), _add(2, encrypt=True), _add(3)]))
    assert worker.indexes() == [1, 2, 3]
    assert worker.commits == before + 1


def test_an_index_in_use_refuses_the_whole_batch_naming_the_sa(worker: Worker) -> None:
    worker.stub.AddSa(_add(5))
    error = _refusal(worker, _add(1), _add(2), _add(5))
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS
    assert error.details().startswith("sas[2]: sa_index: 5 is already in use")
    assert _failed_sa(error) == "2"
    assert worker.indexes() == [5]  # nothing of the batch


def test_an_index_repeated_in_the_batch_is_refused(worker: Worker) -> None:
    error = _refusal(worker, _add(1), _add(1))
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS and _failed_sa(error) == "1"
    assert "repeated in the batch" in error.details()
    assert worker.indexes() == []


def test_an_encrypt_key_twice_in_a_batch_or_retired_is_refused(worker: Worker) -> None:
    key = os.urandom(32)
    error = _refusal(worker, _add(1, encrypt=True, key=key), _add(2, encrypt=True, key=key))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION and _failed_sa(error) == "1"
    assert worker.indexes() == []
    worker.stub.AddSas(pb.AddSasRequest(sas=[_add(1, encrypt=True, key=key)]))
    worker.stub.RemoveSas(pb.RemoveSasRequest(sa_indexes=[1]))
    error = _refusal(worker, _add(3), _add(1, encrypt=True, key=key))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION and _failed_sa(error) == "1"
    assert "key retired" in error.details() and key.hex() not in error.details()
    assert worker.indexes() == []


def test_bad_parameters_and_resume_are_refused_by_position(worker: Worker) -> None:
    error = _refusal(worker, _add(1), _add(2, spi=7))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("sas[1].params.spi: ") and _failed_sa(error) == "1"
    error = _refusal(worker, _add(1, resume=True))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("sas[0].resume: ")
    assert worker.indexes() == []


def test_remove_sas_is_all_or_nothing_unless_missing_ok(worker: Worker) -> None:
    worker.stub.AddSas(pb.AddSasRequest(sas=[_add(1), _add(2), _add(3)]))
    with pytest.raises(grpc.RpcError) as refused:
        worker.stub.RemoveSas(pb.RemoveSasRequest(sa_indexes=[1, 9]))
    assert refused.value.code() is grpc.StatusCode.NOT_FOUND
    assert refused.value.details().startswith("sa_indexes[1]: ")
    assert worker.indexes() == [1, 2, 3]
    before = worker.commits
    answer = worker.stub.RemoveSas(pb.RemoveSasRequest(sa_indexes=[1, 9, 3], missing_ok=True))
    assert [counters.sa_index for counters in answer.final_counters] == [1, 3]
    assert worker.indexes() == [2]
    assert worker.commits == before + 1


def _worker_sa(index: int, key: bytes) -> WorkerSa:
    return WorkerSa(sa_index=index, tunnel_id=index, encrypt=True, cipher=Cipher.AES256_GCM128,
                    tunnel_mode=False, nat_traversal=False,
                    sa=SecurityAssociation(spi=0x2000 + index,
                                           secret=SaKey(key=key, salt=b"salt")))


async def test_the_controller_client_maps_the_refused_position(worker: Worker) -> None:
    client = CryptoWorkerClient(worker.socket)
    try:
        key = os.urandom(32)
        with pytest.raises(WorkerRefused) as refused:
            await client.add_many([_worker_sa(1, os.urandom(32)), _worker_sa(2, key),
                                   _worker_sa(3, key)])
        assert refused.value.code == "FAILED_PRECONDITION" and refused.value.position == 2
        assert key.hex() not in str(refused.value)
        await client.add_many([_worker_sa(1, os.urandom(32)), _worker_sa(2, key)])
        assert sorted(await client.list()) == [1, 2]
        await client.remove_many([2, 7], missing_ok=True)
        assert sorted(await client.list()) == [1]
        assert client.batched
    finally:
        await client.close()
