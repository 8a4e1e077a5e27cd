"""The worker monitor's full check (controller.worker_audit): what it compares, what it finds,
and how often it runs on a large table."""

from __future__ import annotations

import asyncio
import os

from controller.crypto_client import WorkerSa
from controller.keys import SaKey
from controller.model import Cipher, SecurityAssociation
from controller.worker_audit import AUDIT_CHUNK, AuditSchedule, compare
from tunneloffload.crypto.v1 import worker_pb2 as wpb


def _sa(index: int, spi: int | None = None) -> WorkerSa:
    return WorkerSa(sa_index=index, tunnel_id=index, encrypt=False, cipher=Cipher.AES256_GCM128,
                    tunnel_mode=False, nat_traversal=False,
                    sa=SecurityAssociation(spi=spi or 0x1000 + index,
                                           secret=SaKey(key=os.urandom(32), salt=b"salt")))


def _listed(*sas: WorkerSa) -> list[wpb.SaInfo]:
    """The worker's ListSas elements for `sas` (the worker fills in the replay window)."""
    infos = []
    for sa in sas:
        params = sa.params
        params.replay_window = 64
        infos.append(wpb.SaInfo(params=params, key_length=32, salt_length=4))
    return infos


async def test_strays_missing_and_changed_sas_are_found() -> None:
    desired = {1: _sa(1), 2: _sa(2), 3: _sa(3)}
    verified: dict[int, WorkerSa] = {}
    stray, missing, held = await compare(_listed(desired[1], _sa(2, spi=0x9999), _sa(7)),
                                         desired, verified, full=False)
    assert sorted(stray) == [2, 7]  # other parameters at 2, nothing wanted at 7
    assert sorted(sa.sa_index for sa in missing) == [2, 3]  # 2 re-installed, 3 absent
    assert held == {1, 2, 7}
    assert verified == {1: desired[1]}


async def test_a_verified_sa_is_compared_again_only_by_a_full_check() -> None:
    desired = {1: _sa(1)}
    verified = {1: desired[1]}
    changed = _listed(_sa(1, spi=0x7777))  # as if the worker's SA had changed behind our back
    assert await compare(changed, desired, verified, full=False) == ([], [], {1})
    stray, missing, _ = await compare(changed, desired, verified, full=True)
    assert stray == [1] and missing == [desired[1]]
    assert verified == {}


async def test_a_new_wanted_sa_is_compared_although_the_others_were_verified() -> None:
    old = _sa(1)
    desired = {1: old}
    verified = {1: old}
    desired[1] = replacement = _sa(1, spi=0x4444)  # rekeyed: another SA object at index 1
    stray, missing, _ = await compare(_listed(old), desired, verified, full=False)
    assert stray == [1] and missing == [replacement]


async def test_verified_entries_of_sas_no_longer_wanted_are_dropped() -> None:
    sas = {index: _sa(index) for index in (1, 2, 3)}
    verified = dict(sas)
    desired = {1: sas[1]}
    stray, missing, _ = await compare(_listed(sas[1]), desired, verified, full=False)
    assert (stray, missing) == ([], [])
    assert verified == {1: sas[1]}


async def test_a_long_list_lets_other_tasks_run_while_it_is_compared() -> None:
    desired = {index: _sa(index) for index in range(1, 3 * AUDIT_CHUNK + 1)}
    listed = _listed(*desired.values())
    ticks = 0

    async def other_task() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    before = ticks
    stray, missing, _ = await compare(listed, desired, {}, full=True)
    task.cancel()
    assert (stray, missing) == ([], [])
    assert ticks - before >= 3  # it yielded at every chunk


def test_full_checks_are_spaced_by_their_cost() -> None:
    now = [100.0]
    schedule = AuditSchedule(min_interval=10.0, max_share=0.02, clock=lambda: now[0])
    assert not schedule.due()
    now[0] = 110.0
    assert schedule.due()
    started = schedule.now()
    now[0] = 110.1  # a cheap check: the minimum interval applies
    schedule.done(started)
    now[0] = 120.0
    assert not schedule.due()
    now[0] = 120.1
    assert schedule.due()
    started = schedule.now()
    now[0] = 121.1  # one second: at most 2 % of the time, so none for the next 50 s
    schedule.done(started)
    now[0] = 170.0
    assert not schedule.due()
    now[0] = 171.1
    assert schedule.due()


def test_a_discarded_check_is_spaced_like_a_completed_one_and_the_next_is_under_the_lock(
) -> None:
    now = [100.0]
    schedule = AuditSchedule(min_interval=10.0, max_share=0.02, clock=lambda: now[0])
    assert not schedule.under_lock
    now[0] = 110.0
    started = schedule.now()
    now[0] = 111.0  # the worker listed for 1 s, and something was programmed meanwhile
    schedule.discarded(started)
    assert schedule.under_lock
    now[0] = 112.0
    assert not schedule.due()  # not retried at the next poll
    now[0] = 161.1
    assert schedule.due() and schedule.under_lock
    started = schedule.now()
    now[0] = 161.2
    schedule.done(started)
    assert not schedule.under_lock
