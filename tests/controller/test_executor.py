"""The executor against recording doubles of the switch connection and the worker: how refused
updates and AddSa calls map back to their plan, what is undone, and in how many round trips.

Run just these: .venv/bin/python -m pytest tests/controller/test_executor.py -q
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from test_planner import _create, _decrypt, _encrypt, _kind, _planner, _update

from controller.crypto_client import WorkerRefused, WorkerSa, WorkerUnavailable
from controller.dataplane import DataPlaneUnavailable
from controller.errors import RequestError
from controller.executor import Executor
from controller.p4rt.connection import SwitchWriteFailed


class Switch:
    """Records every WriteRequest; refuses the update positions listed for a call."""

    def __init__(self, refuse: dict[int, frozenset[int] | None] | None = None) -> None:
        self.writes: list[list[Any]] = []
        self.refuse = refuse or {}

    async def write(self, updates: list[Any]) -> None:
        call = len(self.writes)
        self.writes.append(list(updates))
        if call in self.refuse:
            raise SwitchWriteFailed("switch refused: update x: ALREADY_EXISTS",
                                    self.refuse[call])


class Worker:
    """Holds SAs by index; refuses AddSa of the listed SPIs with the given gRPC code."""

    def __init__(self, refuse: dict[int, str] | None = None) -> None:
        self.sas: dict[int, int] = {}
        self.refuse = refuse or {}
        self.added: list[int] = []

    async def add(self, sa: WorkerSa, *, resume: bool = False) -> None:
        self.added.append(sa.sa.spi)
        code = self.refuse.get(sa.sa.spi)
        if code is not None:
            raise WorkerRefused(f"crypto worker refused AddSa: {code}", code=code)
        self.sas[sa.sa_index] = sa.sa.spi

    async def remove(self, sa_index: int, *, missing_ok: bool = False) -> None:
        self.sas.pop(sa_index, None)


def _plans(count: int) -> list[Any]:
    planner = _planner()
    return [planner.plan(_create(_decrypt(tunnel_id, 1000 + tunnel_id)))
            for tunnel_id in range(1, count + 1)]


def _executor(switch: Switch, worker: Worker, failed: list[int]) -> Executor:
    return Executor(connection=switch, worker=worker,  # type: ignore[arg-type]
                    on_undo_failed=lambda: failed.append(1))


async def test_a_batch_of_creates_is_one_write_and_one_add_per_sa() -> None:
    switch, worker, failed = Switch(), Worker(), []
    plans = _plans(10)
    outcomes = await _executor(switch, worker, failed).execute(plans)
    assert outcomes == [None] * 10
    assert len(switch.writes) == 1
    assert len(switch.writes[0]) == sum(len(plan.make) for plan in plans)
    assert sorted(worker.sas.values()) == [1000 + i for i in range(1, 11)]
    assert failed == []


async def test_a_refused_update_fails_its_plan_and_every_later_one() -> None:
    plans = _plans(5)
    per_plan = len(plans[0].make)
    refused = frozenset({2 * per_plan + 1})  # an update of the third plan
    switch, worker, failed = Switch({0: refused}), Worker(), []
    outcomes = await _executor(switch, worker, failed).execute(plans)
    assert outcomes[:2] == [None, None]
    assert all(isinstance(error, DataPlaneUnavailable) for error in outcomes[2:])
    # One undo write: the inverses of what landed of plans 3-5 (plan 3's refused update did
    # not land), in reverse order; their SAs are gone from the worker again.
    undo = switch.writes[1]
    landed = [inverse for plan in plans[2:] for position, inverse in enumerate(plan.undo_make)
              if inverse is not None and (plan is not plans[2] or position != 1)]
    assert len(undo) == len(landed)
    assert {_kind(update) for update in undo} == {"DELETE"}
    assert sorted(worker.sas.values()) == [1001, 1002]
    assert failed == []


async def test_a_key_retired_at_the_worker_fails_only_its_own_request() -> None:
    planner = _planner()
    plans = [planner.plan(_create(_encrypt(tunnel_id, 4000 + tunnel_id, key_seed=tunnel_id)))
             for tunnel_id in range(1, 4)]
    switch, worker, failed = Switch(), Worker({4002: "FAILED_PRECONDITION"}), []
    outcomes = await _executor(switch, worker, failed).execute(plans)
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], RequestError) and "send a new key" in str(outcomes[1])
    assert len(switch.writes) == 1  # plan 2 never reached the switch
    assert len(switch.writes[0]) == len(plans[0].make) + len(plans[2].make)
    assert sorted(worker.sas.values()) == [4001, 4003]


async def test_when_the_switch_does_not_say_which_failed_each_update_is_undone_alone() -> None:
    plans = _plans(2)
    switch, worker, failed = Switch({0: None}), Worker(), []
    outcomes = await _executor(switch, worker, failed).execute(plans)
    assert all(isinstance(error, DataPlaneUnavailable) for error in outcomes)
    inverses = [inverse for plan in plans for inverse in plan.undo_make if inverse is not None]
    assert [len(write) for write in switch.writes[1:]] == [1] * len(inverses)
    assert worker.sas == {}


class BatchWorker(Worker):
    """A worker with AddSas/RemoveSas semantics: a batch is all or nothing and a refusal names
    the SA's position; ``unanswered`` makes the next AddSas time out after it landed."""

    batched = True

    def __init__(self, refuse: dict[int, str] | None = None) -> None:
        super().__init__(refuse)
        self.calls: list[list[int]] = []
        self.unanswered = False

    async def add_many(self, sas: list[WorkerSa]) -> None:
        self.calls.append([sa.sa.spi for sa in sas])
        for position, sa in enumerate(sas):
            code = self.refuse.get(sa.sa.spi)
            if code is not None:
                raise WorkerRefused(f"crypto worker refused AddSas: {code}", code=code,
                                    position=position)
        self.sas.update({sa.sa_index: sa.sa.spi for sa in sas})
        if self.unanswered:
            raise WorkerUnavailable("crypto worker unavailable (AddSas): DEADLINE_EXCEEDED")

    async def remove_many(self, sa_indexes: list[int], *, missing_ok: bool = False
                          ) -> dict[int, int]:
        for index in sa_indexes:
            self.sas.pop(index, None)
        return {}


async def test_a_batch_of_creates_is_one_add_sas_call() -> None:
    switch, worker, failed = Switch(), BatchWorker(), []
    outcomes = await _executor(switch, worker, failed).execute(_plans(10))
    assert outcomes == [None] * 10
    assert worker.calls == [[1000 + i for i in range(1, 11)]]
    assert worker.added == []  # no AddSa per SA
    assert sorted(worker.sas.values()) == [1000 + i for i in range(1, 11)]


async def test_a_refused_sa_of_the_batch_fails_its_request_and_the_rest_is_added_again() -> None:
    planner = _planner()
    plans = [planner.plan(_create(_encrypt(tunnel_id, 4000 + tunnel_id, key_seed=tunnel_id)))
             for tunnel_id in range(1, 4)]
    switch, worker, failed = Switch(), BatchWorker({4002: "FAILED_PRECONDITION"}), []
    outcomes = await _executor(switch, worker, failed).execute(plans)
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], RequestError) and "send a new key" in str(outcomes[1])
    assert worker.calls == [[4001, 4002, 4003], [4001, 4003]]
    assert len(switch.writes[0]) == len(plans[0].make) + len(plans[2].make)
    assert sorted(worker.sas.values()) == [4001, 4003]


async def test_another_refusal_stops_the_batch_at_its_request() -> None:
    switch, worker, failed = Switch(), BatchWorker({1003: "ALREADY_EXISTS"}), []
    outcomes = await _executor(switch, worker, failed).execute(_plans(5))
    assert outcomes[:2] == [None, None]
    assert all(isinstance(error, DataPlaneUnavailable) for error in outcomes[2:])
    assert worker.calls == [[1001, 1002, 1003, 1004, 1005], [1001, 1002]]
    assert sorted(worker.sas.values()) == [1001, 1002]


def _encrypt_plans(count: int) -> list[Any]:
    planner = _planner()
    return [planner.plan(_create(_encrypt(tunnel_id, 4000 + tunnel_id, key_seed=tunnel_id)))
            for tunnel_id in range(1, count + 1)]


async def test_an_unanswered_add_sas_is_undone_whole() -> None:
    switch, worker, failed = Switch(), BatchWorker(), []
    worker.unanswered = True
    outcomes = await _executor(switch, worker, failed).execute(_encrypt_plans(3))
    assert all(isinstance(error, DataPlaneUnavailable) for error in outcomes)
    assert switch.writes == [] and worker.sas == {}


class Timeline:
    """What happened when, shared by the yielding doubles below."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def round_trip(self, what: str, call: Coroutine[Any, Any, None]) -> None:
        """``call`` answered a few event-loop turns after it was sent, as over a socket."""
        self.events.append(f"{what} sent")
        for _ in range(3):
            await asyncio.sleep(0)
        try:
            await call
        finally:
            self.events.append(f"{what} answered")


class YieldingSwitch(Switch):
    """A switch whose write takes a few event-loop turns (as a real round trip does) and
    records which SAs the worker held when the write arrived."""

    def __init__(self, timeline: Timeline, worker: BatchWorker,
                 refuse: dict[int, frozenset[int] | None] | None = None) -> None:
        super().__init__(refuse)
        self.timeline = timeline
        self.worker = worker
        self.worker_held: list[set[int]] = []

    async def write(self, updates: list[Any]) -> None:
        self.worker_held.append(set(self.worker.sas.values()))
        await self.timeline.round_trip("write", super().write(updates))


class YieldingWorker(BatchWorker):
    """A worker whose AddSas takes a few event-loop turns (its fsync) before it lands."""

    def __init__(self, timeline: Timeline, refuse: dict[int, str] | None = None) -> None:
        super().__init__(refuse)
        self.timeline = timeline

    async def add_many(self, sas: list[WorkerSa]) -> None:
        await self.timeline.round_trip("add", super().add_many(sas))


def _yielding(refuse_sas: dict[int, str] | None = None,
              refuse_writes: dict[int, frozenset[int] | None] | None = None
              ) -> tuple[Timeline, YieldingSwitch, YieldingWorker]:
    timeline = Timeline()
    worker = YieldingWorker(timeline, refuse_sas)
    return timeline, YieldingSwitch(timeline, worker, refuse_writes), worker


async def test_new_decrypt_tunnels_send_add_sas_and_the_switch_write_at_once() -> None:
    timeline, switch, worker = _yielding()
    executor = _executor(switch, worker, [])
    plans = _plans(4)
    assert await executor.execute(plans) == [None] * 4
    # both requests are out before either is answered: one round trip's wait, not two
    assert timeline.events[:2] == ["add sent", "write sent"]
    assert executor.overlapped == 1
    assert sorted(worker.sas.values()) == [1001, 1002, 1003, 1004]
    assert len(switch.writes) == 1


async def test_encrypt_tunnels_and_rekeys_have_their_sas_before_the_switch_points_at_them(
        ) -> None:
    timeline, switch, worker = _yielding()
    executor = _executor(switch, worker, [])
    assert await executor.execute(_encrypt_plans(3)) == [None] * 3
    assert timeline.events == ["add sent", "add answered", "write sent", "write answered"]
    assert switch.worker_held == [{4001, 4002, 4003}]
    # a rekey of a decrypt tunnel (a previous allocation): the new SA first, too
    planner = _planner()
    old = _decrypt(1, 1001)
    created = planner.plan(_create(old))
    planner.commit(created)
    rekey = planner.plan(_update(old, _decrypt(1, 1001, 1002)))
    timeline, switch, worker = _yielding()
    executor = _executor(switch, worker, [])
    assert await executor.execute([rekey]) == [None]
    assert timeline.events[:3] == ["add sent", "add answered", "write sent"]
    assert 1002 in switch.worker_held[0] and executor.overlapped == 0
    # a batch mixing a new decrypt tunnel with an encrypt one is sequential as a whole
    planner = _planner()
    mixed = [planner.plan(_create(_decrypt(1, 1001))),
             planner.plan(_create(_encrypt(2, 4002, key_seed=2)))]
    timeline, switch, worker = _yielding()
    executor = _executor(switch, worker, [])
    assert await executor.execute(mixed) == [None, None]
    assert timeline.events[:3] == ["add sent", "add answered", "write sent"]
    assert executor.overlapped == 0


async def test_overlapped_an_sa_refused_undoes_its_plans_switch_updates_that_landed() -> None:
    plans = _plans(5)
    timeline, switch, worker = _yielding(refuse_sas={1003: "ALREADY_EXISTS"})
    outcomes = await _executor(switch, worker, []).execute(plans)
    assert outcomes[:2] == [None, None]
    assert all(isinstance(error, DataPlaneUnavailable) for error in outcomes[2:])
    assert timeline.events[:2] == ["add sent", "write sent"]
    assert worker.calls == [[1001, 1002, 1003, 1004, 1005], [1001, 1002]]
    assert sorted(worker.sas.values()) == [1001, 1002]
    # the make write carried all five; one undo write deletes what plans 3-5 inserted
    assert len(switch.writes) == 2
    landed = [inverse for plan in plans[2:] for inverse in plan.undo_make if inverse is not None]
    assert len(switch.writes[1]) == len(landed)
    assert {_kind(update) for update in switch.writes[1]} == {"DELETE"}


async def test_overlapped_an_unanswered_add_sas_is_undone_on_both_sides() -> None:
    plans = _plans(3)
    timeline, switch, worker = _yielding()
    worker.unanswered = True
    outcomes = await _executor(switch, worker, []).execute(plans)
    assert all(isinstance(error, DataPlaneUnavailable) for error in outcomes)
    assert worker.sas == {}
    landed = [inverse for plan in plans for inverse in plan.undo_make if inverse is not None]
    assert len(switch.writes) == 2 and len(switch.writes[1]) == len(landed)


async def test_overlapped_a_refused_switch_update_removes_the_sas_added_meanwhile() -> None:
    plans = _plans(4)
    per_plan = len(plans[0].make)
    timeline, switch, worker = _yielding(
        refuse_writes={0: frozenset({per_plan + 1})})  # an update of the second plan
    outcomes = await _executor(switch, worker, []).execute(plans)
    assert outcomes[0] is None
    assert all(isinstance(error, DataPlaneUnavailable) for error in outcomes[1:])
    assert sorted(worker.sas.values()) == [1001]


async def test_sas_go_in_chunks_and_a_refusal_in_a_later_chunk_fails_only_its_request(
        monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import controller.executor as executor_module
    monkeypatch.setattr(executor_module, "ADD_CHUNK", 3)
    planner = _planner()
    plans = [planner.plan(_create(_encrypt(tunnel_id, 4000 + tunnel_id, key_seed=tunnel_id)))
             for tunnel_id in range(1, 6)]
    switch, worker, failed = Switch(), BatchWorker({4004: "FAILED_PRECONDITION"}), []
    outcomes = await _executor(switch, worker, failed).execute(plans)
    assert [outcome is None for outcome in outcomes] == [True, True, True, False, True]
    assert isinstance(outcomes[3], RequestError)
    assert worker.calls == [[4001, 4002, 4003], [4004, 4005], [4005]]
    assert sorted(worker.sas.values()) == [4001, 4002, 4003, 4005]
