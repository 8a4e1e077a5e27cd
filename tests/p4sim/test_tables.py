"""Table constructs (programs/tables.p4): match kinds, const entries, defaults, switch on
action_run, hit/miss, nested controls; and their P4Info.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_tables.py -q
"""

from __future__ import annotations

import pytest
from finsy.proto import p4i
from p4sim_core_helpers import P4InfoNames, program
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from p4sim.errors import InvalidEntryError
from p4sim.runtime import ActionCall
from p4sim.switch import Switch

ETH = Ether(dst="00:00:00:00:00:01")


def _switch() -> tuple[Switch, P4InfoNames]:
    prog = program("tables.p4")
    return Switch(prog), P4InfoNames(prog)


def _trace(out: list[tuple[int, bytes]]) -> tuple[int, bytes]:
    assert len(out) == 1
    return out[0][0], out[0][1][:4]


def test_const_entries_first_wins_and_default_route() -> None:
    sw, _ = _switch()
    port, trace = _trace(sw.process(0, bytes(ETH / IP(dst="10.1.2.3") / TCP(dport=80))))
    # class 1 (exact 0x0800 entry first), route miss -> no_route(0xEE), default branch,
    # acl miss, hidden helper table hit (+0x10)
    assert (port, trace) == (9, bytes([1, 0xEE, 0, 0x12]))
    port, trace = _trace(sw.process(0, bytes(Ether(type=0x86DD) / b"v6-ish")))
    assert (port, trace) == (8, bytes([3, 0, 0, 0x20]))
    port, trace = _trace(sw.process(0, bytes(Ether(type=0x08DD) / b"x")))
    assert trace[0] == 2


def test_lpm_longest_prefix_and_switch_branch() -> None:
    sw, ids = _switch()
    table = sw.state.tables[ids.table("routes_v4")]
    table.insert(ids.entry("routes_v4", "route", (1, 0x0A), dst=("lpm", 0x0A000000, 8)))
    table.insert(ids.entry("routes_v4", "route", (2, 0x0B), dst=("lpm", 0x0A010000, 16)))
    port, trace = _trace(sw.process(0, bytes(ETH / IP(dst="10.1.2.3") / TCP())))
    assert (port, trace[1], trace[3]) == (2, 0x0B, 0x11)
    port, trace = _trace(sw.process(0, bytes(ETH / IP(dst="10.9.2.3") / TCP())))
    assert (port, trace[1]) == (1, 0x0A)


def test_default_action_can_be_changed_unless_const() -> None:
    sw, ids = _switch()
    routes = sw.state.tables[ids.table("routes_v4")]
    routes.set_default(ActionCall(action_id=ids.action("no_route"), args=(0x42,)))
    _, trace = _trace(sw.process(0, bytes(ETH / IP() / TCP())))
    assert trace[1] == 0x42
    classes = sw.state.tables[ids.table("classes")]
    with pytest.raises(InvalidEntryError, match="const"):
        classes.set_default(ActionCall(action_id=ids.action("classify"), args=(5,)))
    with pytest.raises(InvalidEntryError, match="defaultonly"):
        routes.insert(ids.entry("routes_v4", "no_route", (1,), dst=("lpm", 0, 0)))


def test_range_and_optional_keys_in_nested_control() -> None:
    sw, ids = _switch()
    acl = sw.state.tables[ids.table("TIngress.acl_stage.acl")]
    acl.insert(ids.entry("TIngress.acl_stage.acl", "deny", (), priority=10,
                         dport=("range", 1000, 2000), proto=("optional", 17)))
    acl.insert(ids.entry("TIngress.acl_stage.acl", "permit", (), priority=5,
                         dport=("range", 0, 0xFFFF)))
    _, trace = _trace(sw.process(0, bytes(ETH / IP() / UDP(dport=1500))))
    assert trace[2] == 2
    _, trace = _trace(sw.process(0, bytes(ETH / IP() / TCP(dport=1500))))
    assert trace[2] == 1


def test_p4info_names_ids_and_scopes() -> None:
    prog = program("tables.p4")
    info = prog.p4info
    names = {t.preamble.name for t in info.tables}
    # @hidden tables are not in the P4Info; nested instances are qualified
    assert names == {"TIngress.classes", "TIngress.routes_v4", "TIngress.acl_stage.acl"}
    routes = next(t for t in info.tables if t.preamble.name == "TIngress.routes_v4")
    assert [(m.name, m.bitwidth, m.match_type) for m in routes.match_fields] == [
        ("dst", 32, p4i.MatchField.LPM)]
    assert routes.size == 16 and not routes.const_default_action_id
    route = next(a for a in info.actions if a.preamble.name == "TIngress.route")
    assert route.preamble.id == 0x01000777
    assert [(p.id, p.name, p.bitwidth) for p in route.params] == [(1, "port", 9), (2, "tag", 8)]
    scopes = {r.id: r.scope for r in routes.action_refs}
    no_route = next(a for a in info.actions if a.preamble.name == "TIngress.no_route")
    assert scopes[no_route.preamble.id] == p4i.ActionRef.DEFAULT_ONLY
    classes = next(t for t in info.tables if t.preamble.name == "TIngress.classes")
    assert classes.is_const_table and classes.const_default_action_id
    acl = next(t for t in info.tables if t.preamble.name == "TIngress.acl_stage.acl")
    assert [m.match_type for m in acl.match_fields] == [p4i.MatchField.RANGE,
                                                       p4i.MatchField.OPTIONAL]
    assert acl.preamble.alias == "acl"


def test_const_table_refuses_writes() -> None:
    sw, ids = _switch()
    classes = sw.state.tables[ids.table("classes")]
    with pytest.raises(InvalidEntryError, match="const entries"):
        classes.insert(ids.entry("classes", "classify", (9,), priority=1,
                                 ether_type=("ternary", 0x1234, 0xFFFF)))
    assert len(list(classes.entries())) == 3
