"""`--workers N` routing without processes: N real SA tables behind the real servicer, called
the way a worker process runs calls (crypto_worker/child.py `run_call`), merged by
crypto_worker/sa_routing.py; the answers must be a single worker's.

Run just this file: .venv/bin/python -m pytest tests/crypto_worker/test_sa_routing.py -q
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from cw_support import Keying
from google.protobuf.message import Message

from crypto_worker.child import run_call
from crypto_worker.ciphers import SUITE_BY_ENC_TYPE_NAME
from crypto_worker.drops import DropReason
from crypto_worker.fanout import owner_of, owner_program
from crypto_worker.sa_routing import ROUTES, ChildAbort
from crypto_worker.sa_table import SaTable
from crypto_worker.servicer import CryptoWorkerServicer
from tunneloffload.crypto.v1 import worker_pb2 as pb

SUITE = SUITE_BY_ENC_TYPE_NAME["_aes128gcm128"]
MEMBERS = 3


class _Group:
    """MEMBERS tables and servicers; `call` runs one rpc on one of them like a process does."""

    def __init__(self) -> None:
        self.tables = [SaTable() for _ in range(MEMBERS)]
        self.servicers = [CryptoWorkerServicer(table) for table in self.tables]
        self.calls: list[tuple[int, str]] = []

    def rpc(self, method: str, request: Message) -> Message:
        def call(index: int, message: Message) -> Message:
            self.calls.append((index, method))
            reply = run_call(self.servicers[index], method, message.SerializeToString())
            if reply[0] == "ok":
                response = getattr(pb, method + "Response")()
                response.ParseFromString(reply[1])
                return response
            raise ChildAbort(grpc.StatusCode[reply[1]], reply[2])
        return ROUTES[method](request, MEMBERS, call)

    def close(self) -> None:
        for table in self.tables:
            table.close()


def _add(sa_index: int, *, cipher: int | None = None) -> pb.AddSaRequest:
    keys = Keying.random(SUITE)
    return pb.AddSaRequest(
        params=pb.SaParams(sa_index=sa_index, spi=0x1000 + sa_index,
                           direction=pb.DIRECTION_DECRYPT,
                           cipher=pb.Cipher.Value(SUITE.proto_name) if cipher is None else cipher,
                           mode=pb.MODE_TUNNEL),
        key=pb.SaKey(key=keys.key, salt=keys.salt))


@pytest.fixture
def group() -> Iterator[_Group]:
    made = _Group()
    yield made
    made.close()


def test_each_sa_call_reaches_its_owner_only(group: _Group) -> None:
    for sa_index in (1, 2, 3, 4, 5, 6, 300):
        group.rpc("AddSa", _add(sa_index))
        assert group.calls[-1] == (owner_of(sa_index, MEMBERS), "AddSa")
    for index, table in enumerate(group.tables):
        held = [sa.config.sa_index for sa in table.all()]
        assert held and all(i % MEMBERS == index for i in held)
    group.rpc("RemoveSa", pb.RemoveSaRequest(sa_index=300))
    assert group.calls[-1] == (0, "RemoveSa")
    with pytest.raises(ChildAbort) as missing:
        group.rpc("RemoveSa", pb.RemoveSaRequest(sa_index=300))
    assert (missing.value.code, missing.value.details) == (
        grpc.StatusCode.NOT_FOUND, "sa_index: 300 is not in use")
    with pytest.raises(ChildAbort) as invalid:
        group.rpc("AddSa", _add(8, cipher=99))
    assert (invalid.value.code, invalid.value.details) == (
        grpc.StatusCode.INVALID_ARGUMENT, "params.cipher: 99, not a Cipher value")
    assert [sa.config.sa_index for sa in group.tables[2].all()] == [2, 5]  # nothing added


def test_list_and_counters_are_merged_as_one_worker_answers(group: _Group) -> None:
    for sa_index in (5, 1, 3, 2):
        group.rpc("AddSa", _add(sa_index))
    group.tables[0].count_unknown(9)
    group.tables[0].count_unknown(9)
    group.tables[1].count_unknown(7)
    group.tables[1].count_unattributed(DropReason.MALFORMED)
    group.tables[2].count_unattributed(DropReason.MALFORMED)
    listed = group.rpc("ListSas", pb.ListSasRequest())
    assert isinstance(listed, pb.ListSasResponse)
    assert [info.params.sa_index for info in listed.sas] == [1, 2, 3, 5]
    counters = group.rpc("GetCounters", pb.GetCountersRequest(sa_indexes=[5, 1, 3, 5]))
    assert isinstance(counters, pb.GetCountersResponse)
    assert [c.sa_index for c in counters.sas] == [5, 1, 3, 5]
    assert [(u.sa_index, u.packets) for u in counters.unknown_sa] == [(7, 1), (9, 2)]
    assert [(d.reason, d.packets) for d in counters.unattributed] == [
        (pb.DropReason.Value(DropReason.MALFORMED.value), 2)]
    everything = group.rpc("GetCounters", pb.GetCountersRequest())
    assert isinstance(everything, pb.GetCountersResponse)
    assert [c.sa_index for c in everything.sas] == [1, 2, 3, 5]
    assert len(everything.unknown_sa) == 2
    with pytest.raises(ChildAbort) as missing:
        group.rpc("GetCounters", pb.GetCountersRequest(sa_indexes=[1, 2, 4, 6]))
    assert (missing.value.code, missing.value.details) == (
        grpc.StatusCode.NOT_FOUND, "sa_indexes[2]: 4 is not in use")


def test_a_process_survives_an_unforeseen_error(group: _Group,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(group.servicers[0], "ListSas", broken)
    reply = run_call(group.servicers[0], "ListSas", b"")
    assert reply[0] == "abort" and reply[1] == "INTERNAL"
    assert str(reply[2]).startswith("internal error, reference ")
    assert "boom" not in str(reply)
    assert run_call(group.servicers[0], "NoSuchRpc", b"")[1] == "UNIMPLEMENTED"


def test_the_fanout_program_is_sa_index_mod_n() -> None:
    # ldh [SKF_LL_OFF + 4]; A %= N; ret A — the rule owner_of spells in Python.
    assert [code for code, *_ in owner_program(5)] == [0x28, 0x94, 0x16]
    assert owner_program(5)[0][3] == (-0x200000 + 4) & 0xFFFFFFFF
    assert owner_program(5)[1][3] == 5
    with pytest.raises(ValueError, match="members: 0"):
        owner_program(0)
