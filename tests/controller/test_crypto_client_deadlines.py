"""The controller's crypto-worker client gives a call a deadline by its size
(controller/crypto_client.py): one SA CALL_TIMEOUT, a batch CALL_TIMEOUT plus PER_SA_TIMEOUT per
SA, a whole-table call (ListSas, GetCounters of every SA or of the dropped ones)
WHOLE_TABLE_TIMEOUT — so a worker that takes longer to list 60,000 SAs than to touch one is not
reported as unavailable. A slow worker double on a real gRPC unix socket, deadlines scaled down.

Run just this file: .venv/bin/python -m pytest tests/controller/test_crypto_client_deadlines.py -q
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from controller import crypto_client
from controller.crypto_client import CryptoWorkerClient, WorkerUnavailable
from tunneloffload.crypto.v1 import worker_pb2 as wpb
from tunneloffload.crypto.v1 import worker_pb2_grpc as wpb_grpc

DELAY = 0.4  # every call of the double takes this long


class _SlowWorker(wpb_grpc.CryptoWorkerServicer):
    async def ListSas(self, request, context):  # type: ignore[no-untyped-def]  # noqa: N802
        await asyncio.sleep(DELAY)
        return wpb.ListSasResponse(sas=[wpb.SaInfo(params=wpb.SaParams(sa_index=7))])

    async def GetCounters(self, request, context):  # type: ignore[no-untyped-def]  # noqa: N802
        await asyncio.sleep(DELAY)
        return wpb.GetCountersResponse(sas=[wpb.SaCounters(sa_index=i)
                                            for i in request.sa_indexes])

    async def RemoveSas(self, request, context):  # type: ignore[no-untyped-def]  # noqa: N802
        await asyncio.sleep(DELAY)
        return wpb.RemoveSasResponse()


@pytest.fixture
async def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                 ) -> AsyncIterator[CryptoWorkerClient]:
    monkeypatch.setattr(crypto_client, "CALL_TIMEOUT", DELAY / 4)
    monkeypatch.setattr(crypto_client, "PER_SA_TIMEOUT", DELAY / 100)
    monkeypatch.setattr(crypto_client, "WHOLE_TABLE_TIMEOUT", DELAY * 10)
    tmp_path.chmod(0o700)
    socket = tmp_path / "worker.sock"
    server = grpc.aio.server()
    wpb_grpc.add_CryptoWorkerServicer_to_server(_SlowWorker(), server)
    server.add_insecure_port(f"unix:{socket}")
    await server.start()
    worker = CryptoWorkerClient(str(socket))
    yield worker
    await worker.close()
    await server.stop(None)


async def test_whole_table_calls_outlast_the_per_call_deadline(
        client: CryptoWorkerClient) -> None:
    assert list(await client.list()) == [7]
    assert await client.all_drops() == {}


async def test_a_batch_gets_time_per_sa_and_a_small_call_still_times_out(
        client: CryptoWorkerClient) -> None:
    # 200 SAs: CALL_TIMEOUT + 200 x PER_SA_TIMEOUT = 0.1 + 0.8 s > DELAY
    await client.remove_many(list(range(1, 201)))
    assert await client.holds(list(range(1, 201)))
    # 2 SAs: 0.1 + 0.008 s < DELAY — a worker that slow on a small call is unavailable
    with pytest.raises(WorkerUnavailable, match="DEADLINE_EXCEEDED"):
        await client.holds([1, 2])
