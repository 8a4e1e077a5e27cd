"""Packet replication (programs/replication.p4): multicast groups and clone sessions as
P4Runtime's packet replication engine entries set them.

Output per copy: cmd (op, tag), then seen (instance_type, egress_rid, tag ^ not_preserved, port).
Run just this file: .venv/bin/python -m pytest tests/p4sim/test_replication.py -q
"""

from __future__ import annotations

from p4sim_core_helpers import program

from p4sim.runtime import CloneSession, Replica
from p4sim.switch import Switch


def _seen(instance_type: int, rid: int, tag_seen: int, port: int) -> bytes:
    return bytes([instance_type]) + rid.to_bytes(2, "big") + bytes([tag_seen, port])


def test_multicast_copies_carry_their_rid_and_port() -> None:
    sw = Switch(program("replication.p4"))
    sw.state.multicast_groups[7] = (Replica(egress_port=3, instance=1),
                                    Replica(egress_port=4, instance=2))
    out = sw.process(0, bytes([1, 0x0F, 0xAA]))
    assert out == [
        (3, bytes([1, 0x0F]) + _seen(5, 1, 0x0F ^ 0xEE, 3) + b"\xaa"),
        (4, bytes([1, 0x0F]) + _seen(5, 2, 0x0F ^ 0xEE, 4) + b"\xaa"),
    ]
    assert sw.stats.replicated == 2


def test_unknown_multicast_group_drops_and_counts() -> None:
    sw = Switch(program("replication.p4"))
    assert sw.process(0, bytes([1, 0])) == []
    assert sw.stats.dropped["multicast_group_unknown"] == 1


def test_ingress_clone_keeps_only_the_field_list_and_truncates() -> None:
    sw = Switch(program("replication.p4"))
    sw.state.clone_sessions[5] = CloneSession(
        session_id=5, replicas=(Replica(egress_port=9, instance=0),), packet_length_bytes=6)
    out = sw.process(0, bytes([2, 0x33, 1, 2, 3, 4]))
    original = (1, bytes([2, 0x33]) + _seen(0, 0, 0x33 ^ 0xEE, 1) + bytes([1, 2, 3, 4]))
    # the clone is re-parsed from the original frame: meta.tag preserved (field list 1),
    # not_preserved back to 0; truncated to 6 bytes by the session
    clone = (9, (bytes([2, 0x33]) + _seen(1, 0, 0x33, 9))[:6])
    assert sorted(out) == sorted([original, clone])
    assert sw.stats.cloned == 1


def test_egress_clone_copies_headers_as_egress_left_them() -> None:
    sw = Switch(program("replication.p4"))
    sw.state.clone_sessions[6] = CloneSession(
        session_id=6, replicas=(Replica(egress_port=8, instance=4),))
    out = sw.process(0, bytes([3, 0x21]))
    original = (2, bytes([3, 0x21]) + _seen(0, 0, 0x21 ^ 0xEE, 2))
    # the E2E copy re-runs egress with metadata reset (tag and not_preserved are 0)
    clone = (8, bytes([3, 0x21]) + _seen(2, 4, 0, 8))
    assert out == [original, clone]


def test_unconfigured_clone_session_is_counted() -> None:
    sw = Switch(program("replication.p4"))
    out = sw.process(0, bytes([2, 0x01]))
    assert [p for p, _ in out] == [1]
    assert sw.stats.dropped["clone_session_unknown"] == 1
