"""p4sim writes the P4Info details p4c-bm2-ss writes: parameters of directly called actions are
bound away, defaults and initial entries are described, annotations are kept.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_p4info_p4c.py -q
"""

from __future__ import annotations

from pathlib import Path

from p4sim.program import load_program

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """#include <core.p4>
#include <v1model.p4>
header h_t { bit<8> a; bit<8> b; }
struct headers_t { h_t h; }
struct meta_t { }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.h); transition accept; }
}
control V(inout headers_t hdr, inout meta_t meta) { apply { } }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    action mark(bit<8> v) { hdr.h.b = v; }
    action set(bit<8> v) { hdr.h.a = v; }
    @noWarn("unused") action other() { }
    table t {
        key = { hdr.h.a : exact @name("a"); }
        actions = { set; @defaultonly NoAction; }
        default_action = set(8w0x2a);
        const entries = { 1 : set(2); }
    }
    table plain {
        key = { hdr.h.b : exact @name("b"); }
        actions = { set; }
    }
    apply { mark(3); t.apply(); plain.apply(); }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control C(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.h); } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""


def _p4info(tmp_path: Path):  # noqa: ANN202 - a protobuf message
    source = tmp_path / "prog.p4"
    source.write_text(PROGRAM)
    return load_program(source).p4info


def test_directly_called_action_has_no_parameters(tmp_path: Path) -> None:
    actions = {a.preamble.name: a for a in _p4info(tmp_path).actions}
    assert list(actions["I.mark"].params) == []
    assert [p.name for p in actions["I.set"].params] == ["v"]


def test_router_drop_packet_has_no_parameters_as_in_p4cs_p4info() -> None:
    p4info = load_program(ROOT / "ptf_tests" / "smoke" / "router.p4").p4info
    (drop,) = [a for a in p4info.actions if a.preamble.name == "RouterIngress.drop_packet"]
    assert list(drop.params) == []


def test_default_action_and_initial_entries(tmp_path: Path) -> None:
    tables = {t.preamble.name: t for t in _p4info(tmp_path).tables}
    actions = {a.preamble.name: a.preamble.id for a in _p4info(tmp_path).actions}
    t = tables["I.t"]
    assert t.const_default_action_id == 0  # not const
    assert t.initial_default_action.action_id == actions["I.set"]
    assert [(a.param_id, a.value) for a in t.initial_default_action.arguments] == [(1, b"\x2a")]
    assert t.has_initial_entries and t.is_const_table
    # no default_action property: p4c writes no default at all
    assert not tables["I.plain"].HasField("initial_default_action")
    assert not tables["I.plain"].has_initial_entries


def test_annotations_are_kept_on_refs_and_actions(tmp_path: Path) -> None:
    p4info = _p4info(tmp_path)
    (t,) = [t for t in p4info.tables if t.preamble.name == "I.t"]
    noaction = [r for r in t.action_refs if r.scope == r.DEFAULT_ONLY]
    assert [list(r.annotations) for r in noaction] == [["@defaultonly"]]
    assert p4info.HasField("type_info")
    assert [a.preamble.name for a in p4info.actions][0] == "NoAction"  # top-level first
