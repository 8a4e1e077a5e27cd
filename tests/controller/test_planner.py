"""The planner without any I/O: indices, key reuse, reservations, and the indexed stream view.

Run just these: .venv/bin/python -m pytest tests/controller/test_planner.py -q
"""

from __future__ import annotations

import random
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import finsy as fy
import pytest
from finsy.proto import p4r

from controller.allocation import Allocation, IndexExhausted
from controller.dataplane import TunnelChange
from controller.errors import ErrorCode, RequestError
from controller.keys import SaKey
from controller.model import (
    Cipher,
    IpMatch,
    IpsecDecrypt,
    IpsecEncrypt,
    Match,
    NextAction,
    Operation,
    Prefix,
    SecurityAssociation,
    Tunnel,
    TunnelMode,
)
from controller.pipeline import Pipeline
from controller.planner import FreeIndexes, Planner
from controller.tunnel_view import TunnelIndex, TunnelView

P4INFO = Path(__file__).resolve().parents[2] / "p4src" / "tunnel_offload.p4info.txtpb"
PIPELINE = Pipeline.load(P4INFO)


def _secret(seed: int) -> SaKey:
    return SaKey(key=seed.to_bytes(4, "big") * 8, salt=b"\0\0\0\1")


def _match(tunnel_id: int, previous: int | None = None) -> Match:
    source = Prefix(address=IPv4Address(0x0A000000 + tunnel_id), length=32)
    return Match(ip=IpMatch(version=4, source=source), previous_tunnel=previous)


def _decrypt(tunnel_id: int, *spis: int, previous: int | None = None) -> Tunnel:
    sas = tuple(SecurityAssociation(spi=spi, secret=_secret(spi)) for spi in spis)
    return Tunnel(tunnel_id=tunnel_id, match=_match(tunnel_id, previous),
                  next_action=NextAction.FORWARD,
                  body=IpsecDecrypt(mode=TunnelMode.TRANSPORT, cipher=Cipher.AES256_GCM64,
                                    sas=sas))


def _encrypt(tunnel_id: int, spi: int, key_seed: int) -> Tunnel:
    return Tunnel(tunnel_id=tunnel_id, match=_match(tunnel_id), next_action=NextAction.FORWARD,
                  body=IpsecEncrypt(mode=TunnelMode.TRANSPORT, cipher=Cipher.AES256_GCM64,
                                    sa=SecurityAssociation(spi=spi, secret=_secret(key_seed))))


def _create(tunnel: Tunnel) -> TunnelChange:
    return TunnelChange(operation=Operation.CREATE, before=None, after=tunnel)


def _update(before: Tunnel, after: Tunnel) -> TunnelChange:
    return TunnelChange(operation=Operation.UPDATE, before=before, after=after)


def _delete(tunnel: Tunnel) -> TunnelChange:
    return TunnelChange(operation=Operation.DELETE, before=tunnel, after=None)


def _planner(allocations: dict[int, Allocation] | None = None,
             tunnels: dict[int, Tunnel] | None = None,
             retired: frozenset[bytes] = frozenset()) -> Planner:
    return Planner(pipeline=PIPELINE, allocations=allocations or {}, tunnels=tunnels or {},
                   fingerprint=lambda secret: b"fp" + secret.reveal_key(),
                   is_retired=lambda fingerprint: fingerprint in retired)


def _kind(update: p4r.Update) -> str:
    """INSERT / MODIFY / DELETE of a planned switch update (a P4Runtime Update)."""
    return str(p4r.Update.Type.Name(update.type))


def _entry(update: p4r.Update) -> fy.P4TableEntry:
    """The table entry a planned update writes, decoded."""
    return fy.P4TableEntry.decode(update.entity, PIPELINE.schema)


def test_free_indexes_hand_out_the_lowest_free_and_take_back() -> None:
    free = FreeIndexes(5, [1, 3], "SA")
    assert free.free == 3
    assert [free.take(), free.take()] == [2, 4]
    free.give(3)
    assert [free.take(), free.take()] == [3, 5]
    with pytest.raises(IndexExhausted, match="no free SA index"):
        free.take()
    free.give(1)
    assert free.take() == 1


def test_a_create_plans_counter_resets_its_entries_and_its_sa() -> None:
    planner = _planner()
    plan = planner.plan(_create(_decrypt(7, 780)))
    assert plan.allocation == Allocation(tunnel_index=1, sa_pairs=((780, 1),))
    resets = len(PIPELINE.counter_resets(1))
    assert len(plan.make) == resets + 3  # the decrypt SA entry, the rule, its esp_endpoints entry
    assert plan.undo_make[:resets] == (None,) * resets
    assert plan.brk == () and plan.remove_sas == ()
    assert [(sa.sa_index, sa.sa.spi) for sa in plan.add_sas] == [(1, 780)]
    planner.commit(plan)
    second = planner.plan(_create(_decrypt(8, 781)))
    assert second.allocation == Allocation(tunnel_index=2, sa_pairs=((781, 2),))


def test_abort_gives_back_exactly_what_a_plan_took() -> None:
    planner = _planner()
    before = planner.free()
    plan = planner.plan(_create(_decrypt(7, 780, 781)))
    assert planner.free() == (before[0] - 1, before[1] - 2)
    planner.abort(plan)
    assert planner.free() == before and 7 not in planner.allocations
    again = planner.plan(_create(_decrypt(9, 790)))
    assert again.allocation == Allocation(tunnel_index=1, sa_pairs=((790, 1),))


def test_freed_indices_return_only_when_the_plan_commits() -> None:
    old = _decrypt(1, 700)
    planner = _planner({1: Allocation(tunnel_index=1, sa_pairs=((700, 1),))}, {1: old})
    gone = planner.plan(_delete(old))
    assert gone.brk and gone.remove_sas and gone.allocation is None
    # While the DELETE is in flight its indices are still on the switch and the worker.
    fresh = planner.plan(_create(_decrypt(2, 701)))
    assert fresh.allocation == Allocation(tunnel_index=2, sa_pairs=((701, 2),))
    planner.commit(gone)
    planner.commit(fresh)
    assert planner.plan(_create(_decrypt(3, 702))).allocation == Allocation(
        tunnel_index=1, sa_pairs=((702, 1),))


def test_a_decrypt_rekey_keeps_the_old_sa_and_adds_the_new_beside_it() -> None:
    old = _decrypt(1, 700)
    planner = _planner({1: Allocation(tunnel_index=1, sa_pairs=((700, 1),))}, {1: old})
    plan = planner.plan(_update(old, _decrypt(1, 700, 701)))
    assert plan.allocation == Allocation(tunnel_index=1, sa_pairs=((700, 1), (701, 2)))
    assert [sa.sa_index for sa in plan.add_sas] == [2] and plan.remove_sas == ()
    assert plan.brk == () and plan.retire == ()


def test_an_encrypt_rekey_retires_the_old_key_and_refuses_it_meanwhile() -> None:
    old = _encrypt(1, 4587, key_seed=1)
    planner = _planner({1: Allocation(tunnel_index=1, sa_pairs=((4587, 1),))}, {1: old})
    plan = planner.plan(_update(old, _encrypt(1, 4590, key_seed=2)))
    assert [sa.sa_index for sa in plan.add_sas] == [2]
    assert [sa.sa_index for sa in plan.remove_sas] == [1]
    assert plan.retire == (b"fp" + _secret(1).reveal_key(),)
    assert [_kind(update) for update in plan.make] == ["MODIFY"]  # the rule repointed
    with pytest.raises(RequestError) as refused:  # the leaving key, in another tunnel
        planner.plan(_create(_encrypt(2, 5000, key_seed=1)))
    assert refused.value.code is ErrorCode.INVALID_KEY
    assert "retired key" in str(refused.value)
    planner.abort(plan)  # the rekey did not happen: the old key is live again, in tunnel 1
    with pytest.raises(RequestError, match="in use by the encrypt SA spi 4587 of tunnel 1"):
        planner.plan(_create(_encrypt(2, 5000, key_seed=1)))


def test_key_reuse_and_retired_keys_are_request_errors_with_nothing_reserved() -> None:
    retired = frozenset({b"fp" + _secret(9).reveal_key()})
    planner = _planner(retired=retired)
    planner.plan(_create(_encrypt(1, 4587, key_seed=1)))
    before = planner.free()
    with pytest.raises(RequestError) as reused:
        planner.plan(_create(_encrypt(2, 4600, key_seed=1)))
    assert reused.value.code is ErrorCode.INVALID_KEY
    assert reused.value.field == "ipsecTunnel.ipsecEnc.ipsecSA.encryptionKey"
    assert "in use by the encrypt SA spi 4587 of tunnel 1" in str(reused.value)
    with pytest.raises(RequestError, match="retired key"):
        planner.plan(_create(_encrypt(3, 4601, key_seed=9)))
    assert planner.free() == before


def test_index_exhaustion_is_table_full_with_nothing_reserved() -> None:
    sizes = PIPELINE.sizes
    full = {tunnel_id: Allocation(tunnel_index=tunnel_id, sa_pairs=())
            for tunnel_id in range(1, sizes.max_tunnels + 1)}
    planner = _planner(full)
    assert planner.free() == (0, sizes.max_sas)
    with pytest.raises(RequestError) as refused:
        planner.plan(_create(_decrypt(sizes.max_tunnels + 1, 780)))
    assert refused.value.code is ErrorCode.TABLE_FULL
    assert "no free tunnel index" in str(refused.value)
    assert planner.free() == (0, sizes.max_sas)


def test_a_chained_rule_uses_its_previous_tunnels_index() -> None:
    parent = _decrypt(1, 700)
    planner = _planner({1: Allocation(tunnel_index=5, sa_pairs=((700, 1),))}, {1: parent})
    child = planner.plan(_create(_decrypt(2, 701, previous=1)))
    [rule] = [update for update in child.make if update.entity.HasField("table_entry")
              and _entry(update).table_id == "tunnel_rules"]
    assert _kind(rule) == "INSERT" and _entry(rule).match["prev_tunnel"][0] == 5  # (value, mask)


def test_the_stream_view_answers_spi_owners_and_dependents_without_copying() -> None:
    base = {1: _decrypt(1, 700, 701), 2: _decrypt(2, 800, previous=1),
            3: _encrypt(3, 900, key_seed=3)}
    index = TunnelIndex(base)
    assert index.sa_count == 4
    view = TunnelView(base, index)
    assert (view.spi_owner(700), view.spi_owner(800), view.spi_owner(900)) == (1, 2, None)
    assert view.dependents(1) == [2] and len(view) == 3
    view.set(1, _decrypt(1, 701, 702))  # a rekey: 700 leaves, 702 arrives
    view.set(4, _decrypt(4, 700, previous=1))  # 700 is free again in the view
    view.set(2, None)
    assert (view.spi_owner(700), view.spi_owner(701), view.spi_owner(702)) == (4, 1, 1)
    assert view.spi_owner(800) is None
    assert view.dependents(1) == [4]
    assert sorted(view) == [1, 3, 4] and len(view) == 3 and view.sa_count == 4
    assert 2 not in view and view[4].tunnel_id == 4
    assert sorted(base) == [1, 2, 3] and index.spi_owner[700] == 1  # the base is untouched


def test_a_create_at_a_known_clean_index_writes_no_counter_resets() -> None:
    planner = _planner()
    planner.mark_clean([1])
    clean = planner.plan(_create(_decrypt(7, 780)))
    assert clean.allocation is not None and clean.allocation.tunnel_index == 1
    assert len(clean.make) == 3  # decrypt SA entry, rule, esp_endpoints entry; no resets
    planner.commit(clean)
    planner.mark_clean([1])  # in use: not clean (its rule counts)
    gone = planner.plan(_delete(_decrypt(7, 780)))
    assert gone.freed_tunnel == 1
    other = planner.plan(_create(_decrypt(8, 781)))
    assert len(other.make) == len(PIPELINE.counter_resets(2)) + 3  # index 2 was never clean


def test_an_applied_delete_marked_clean_is_reused_without_resets() -> None:
    """The executor marks an applied DELETE's index clean (``free=True``: not yet given back,
    so no plan holds it) before :meth:`Planner.commit`; the next CREATE there resets nothing."""
    planner = _planner()
    first = planner.plan(_create(_decrypt(7, 780)))
    planner.commit(first)
    gone = planner.plan(_delete(_decrypt(7, 780)))
    assert gone.freed_tunnel == 1
    planner.mark_clean([gone.freed_tunnel], free=True)
    planner.commit(gone)
    again = planner.plan(_create(_decrypt(9, 790)))
    assert again.allocation is not None and again.allocation.tunnel_index == 1
    assert len(again.make) == 3  # no counter resets
    planner.commit(again)
    planner.plan(_delete(_decrypt(9, 790)))  # freed but neither reset nor marked clean
    other = planner.plan(_create(_decrypt(10, 791)))
    assert other.allocation is not None and other.allocation.tunnel_index == 2
    assert len(other.make) == len(PIPELINE.counter_resets(2)) + 3


def test_the_entry_encoder_writes_what_finsy_writes_for_every_tunnel_kind() -> None:
    """EntryEncoder skips finsy's per-entry lookups; its bytes must be finsy's, for every
    tunnel kind and match shape the builders make (IPv4 /32 and /24, SPI, previous tunnel,
    Geneve VNI, an IPv6 outer encrypt), and routes."""
    from ctl_builders import geneve_decap, geneve_encap, ipsec_dec, ipsec_enc, match_ipv4

    from controller.capabilities import Capabilities
    from controller.pipeline import Route
    from controller.planner import EntryEncoder, message_key
    from controller.validation import validate_request
    from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

    requests = [
        ipsec_dec(1), ipsec_enc(2), geneve_encap(3), geneve_decap(4),
        ipsec_dec(5, spi=0xFFFFFFF0, match=match_ipv4(source="10.1.2.0", prefix=24)),
        ipsec_enc(6, outer=None, mode=pb.TRANSPORT,
                  match=match_ipv4(source="10.9.9.9", tunnel_id=1)),
        geneve_encap(7, match=match_ipv4(source="192.0.2.7", geneve_vni=77), vni=0xFFFFFF,
                     options=[]),
    ]
    encoder = EntryEncoder(PIPELINE.schema)
    planner = _planner({1: Allocation(tunnel_index=9, sa_pairs=((780, 3),))})
    checked = 0
    view: dict[int, Tunnel] = {}
    for index, request in enumerate(requests, start=1):
        tunnel = validate_request(request, view=view, caps=Capabilities()).after
        assert tunnel is not None
        view[tunnel.tunnel_id] = tunnel
        sa_pairs = tuple((sa.spi, 10 + n) for n, sa in enumerate(tunnel.security_associations))
        for entry in planner.entries(tunnel, Allocation(tunnel_index=index, sa_pairs=sa_pairs)):
            finsy = entry.encode(PIPELINE.schema)
            fast = encoder.encode(entry).SerializeToString(deterministic=True)
            assert fast == finsy.SerializeToString(deterministic=True)
            wire = encoder.wire(entry)
            assert wire is not None  # every entry of the controller's tables: no fallback
            assert wire == (message_key(finsy), finsy.SerializeToString(deterministic=True))
            checked += 1
    route = PIPELINE.route_entry(Route(address=IPv4Address("10.0.0.0"), length=8, port=3,
                                       src_mac=bytes(6), dst_mac=bytes.fromhex("0a0b0c0d0e0f")))
    assert (encoder.encode(route).SerializeToString(deterministic=True)
            == route.encode(PIPELINE.schema).SerializeToString(deterministic=True))
    assert checked >= 10


def test_the_lowest_free_id_follows_every_change_of_the_view_and_the_base() -> None:
    """TunnelView.lowest_free_id against counting up from 1, over random creates (explicit and
    server-allocated ids) and deletes in the view and commits of views into the base."""
    rng = random.Random(12)
    base: dict[int, Any] = {}
    index = TunnelIndex(base)
    for _ in range(40):  # a stream each
        view = TunnelView(base, index)
        for _ in range(rng.randrange(1, 30)):
            used = set(view)
            assert view.lowest_free_id() == min(set(range(1, len(used) + 2)) - used)
            roll = rng.random()
            if roll < 0.3 and used:
                view.set(rng.choice(sorted(used)), None)
            elif roll < 0.5:
                tunnel_id = rng.randrange(1, 80)
                view.set(tunnel_id, _encrypt(tunnel_id, 0x100 + tunnel_id, key_seed=tunnel_id))
            else:
                tunnel_id = view.lowest_free_id()
                view.set(tunnel_id, _encrypt(tunnel_id, 0x100 + tunnel_id, key_seed=tunnel_id))
        if rng.random() < 0.7:  # the store commits the stream's changes
            for tunnel_id in sorted(set(view) | set(base)):
                after = view.get(tunnel_id)
                if after is not base.get(tunnel_id):
                    index.move(base.get(tunnel_id), after)
                    if after is None:
                        del base[tunnel_id]
                    else:
                        base[tunnel_id] = after
        assert all(tunnel_id in base for tunnel_id in range(1, index.free_from))
