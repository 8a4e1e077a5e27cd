"""Control flow across blocks: exit from a nested control ends the whole ingress (egress still
runs), return ends only the current control, actions called directly from apply.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_control_flow.py -q
"""

from __future__ import annotations

from pathlib import Path

from p4sim.program import load_program
from p4sim.switch import Switch

PROGRAM = """#include <core.p4>
#include <v1model.p4>
header h_t { bit<8> mode; bit<8> steps; bit<8> egress_ran; }
struct headers_t { h_t h; }
struct meta_t { }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.h); transition accept; }
}
control V(inout headers_t hdr, inout meta_t meta) { apply { } }
control Inner(inout headers_t hdr) {
    action step() { hdr.h.steps = hdr.h.steps + 1; }
    apply {
        step();
        if (hdr.h.mode == 1) { exit; }
        if (hdr.h.mode == 2) { return; }
        step();
    }
}
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    Inner() inner;
    apply {
        inner.apply(hdr);
        hdr.h.steps = hdr.h.steps + 0x10;
        sm.egress_spec = 4;
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply { hdr.h.egress_ran = 1; }
}
control C(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.h); } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""


def _switch(tmp_path: Path) -> Switch:
    path = tmp_path / "flow.p4"
    path.write_text(PROGRAM)
    return Switch(load_program(path))


def test_exit_in_nested_control_ends_ingress_but_not_egress(tmp_path: Path) -> None:
    # ingress stopped before setting egress_spec: BMv2 sends to port 0
    assert _switch(tmp_path).process(1, bytes([1, 0, 0])) == [(0, bytes([1, 1, 1]))]


def test_return_ends_only_the_nested_control(tmp_path: Path) -> None:
    assert _switch(tmp_path).process(1, bytes([2, 0, 0])) == [(4, bytes([2, 0x11, 1]))]


def test_straight_through(tmp_path: Path) -> None:
    assert _switch(tmp_path).process(1, bytes([0, 0, 0])) == [(4, bytes([0, 0x12, 1]))]


RUNTIME_FAULT = PROGRAM.replace(
    "header h_t { bit<8> mode; bit<8> steps; bit<8> egress_ran; }",
    "header h_t { bit<8> mode; bit<8> steps; bit<8> egress_ran; }\n"
    "header e_t { bit<8> v; }\n").replace(
    "struct headers_t { h_t h; }", "struct headers_t { h_t h; e_t[2] e; }").replace(
    "        hdr.h.steps = hdr.h.steps + 0x10;",
    "        hdr.e[hdr.h.mode].v = 1;\n        hdr.h.steps = hdr.h.steps + 0x10;")


def test_out_of_range_stack_write_is_ignored(tmp_path: Path) -> None:
    # BMv2 runs p4c's output, where a run-time index is a chain of `if (i == k)` over the
    # elements (p4c midend/hsIndexSimplify.cpp): index 9 of a 2-element stack writes nothing
    path = tmp_path / "oob.p4"
    path.write_text(RUNTIME_FAULT)
    sw = Switch(load_program(path))
    assert sw.process(1, bytes([9, 0, 0])) == [(4, bytes([9, 0x12, 1]))]
    assert sw.stats.dropped["runtime_error"] == 0


def test_run_time_fault_drops_and_counts_the_packet(tmp_path: Path) -> None:
    path = tmp_path / "fault.p4"
    path.write_text(PROGRAM)
    sw = Switch(load_program(path))
    real_ingress = sw._pipeline.ingress

    def faulty(P, hdr, meta, sm):  # type: ignore[no-untyped-def]  # noqa: N803
        if hdr.f_h.f_mode == 9:
            raise IndexError("a fault inside the generated code")
        return real_ingress(P, hdr, meta, sm)

    sw._pipeline.ingress = faulty
    assert sw.process(1, bytes([9, 0, 0])) == []
    assert sw.stats.dropped["runtime_error"] == 1
    assert sw.process(1, bytes([0, 0, 0])) == [(4, bytes([0, 0x12, 1]))]


GLOBAL_REGISTER = PROGRAM.replace(
    "control V(inout headers_t hdr, inout meta_t meta) { apply { } }",
    "register<bit<8>>(4) shared;\n"
    "control V(inout headers_t hdr, inout meta_t meta) { apply { } }").replace(
    "        sm.egress_spec = 4;",
    "        sm.egress_spec = 4;\n"
    "        bit<8> n;\n"
    "        shared.read(n, 1);\n"
    "        shared.write(1, n + 1);\n"
    "        hdr.h.mode = n;")


def test_program_level_register_is_shared_and_unqualified(tmp_path: Path) -> None:
    path = tmp_path / "global.p4"
    path.write_text(GLOBAL_REGISTER)
    program = load_program(path)
    assert [r.preamble.name for r in program.p4info.registers] == ["shared"]
    sw = Switch(program)
    sw.process(1, bytes([0, 0, 0]))
    assert sw.process(1, bytes([0, 0, 0])) == [(4, bytes([1, 0x12, 1]))]


SWITCH_ON_VALUES = PROGRAM.replace(
    "header h_t { bit<8> mode; bit<8> steps; bit<8> egress_ran; }",
    "header h_t { bit<8> mode; bit<8> steps; bit<8> egress_ran; }\n"
    "enum bit<8> Mode_t { ONE = 1, TWO = 2, THREE = 3 }").replace(
    "        inner.apply(hdr);\n",
    "        switch ((Mode_t)hdr.h.mode) {\n"
    "            Mode_t.ONE: { hdr.h.steps = 0x40; }\n"
    "            Mode_t.TWO:\n"
    "            Mode_t.THREE: { hdr.h.steps = 0x50; }\n"
    "            default: { hdr.h.steps = 0x60; }\n"
    "        }\n"
    "        switch (hdr.h.mode) {\n"
    "            7: { hdr.h.steps = 0x70; }\n"
    "        }\n")


def test_switch_on_values_with_fall_through_and_default(tmp_path: Path) -> None:
    path = tmp_path / "switch.p4"
    path.write_text(SWITCH_ON_VALUES)
    sw = Switch(load_program(path))
    results = {mode: sw.process(1, bytes([mode, 0, 0]))[0][1][1] for mode in (1, 2, 3, 4, 7)}
    assert results == {1: 0x50, 2: 0x60, 3: 0x60, 4: 0x70, 7: 0x80}


ASSERT_AND_TRUNCATE = PROGRAM.replace(
    "        inner.apply(hdr);\n",
    "        assert(hdr.h.mode != 0xEE);\n"
    "        if (hdr.h.mode == 5) { truncate(2); }\n"
    "        inner.apply(hdr);\n")


def test_assert_drops_and_truncate_shortens(tmp_path: Path) -> None:
    path = tmp_path / "assert.p4"
    path.write_text(ASSERT_AND_TRUNCATE)
    sw = Switch(load_program(path))
    assert sw.process(1, bytes([0xEE, 0, 0])) == []
    assert sw.stats.dropped["assertion_failed"] == 1
    assert sw.process(1, bytes([5, 0, 0, 9, 9])) == [(4, bytes([5, 0x12]))]
    assert sw.process(1, bytes([6, 0, 0])) == [(4, bytes([6, 0x12, 1]))]


DIGEST = PROGRAM.replace(
    "struct meta_t { }",
    "struct meta_t { }\nstruct learn_t { bit<8> mode; bool late; }").replace(
    "        inner.apply(hdr);\n",
    "        learn_t l;\n"
    "        l.mode = hdr.h.mode;\n"
    "        l.late = hdr.h.mode > 5;\n"
    "        digest<learn_t>(1, l);\n"
    "        inner.apply(hdr);\n")


def test_digest_reaches_the_sink_with_p4info_ids(tmp_path: Path) -> None:
    path = tmp_path / "digest.p4"
    path.write_text(DIGEST)
    program = load_program(path)
    (info,) = program.p4info.digests
    assert info.preamble.name == "learn_t" and info.preamble.id >> 24 == 0x17
    members = program.p4info.type_info.structs["learn_t"].members
    assert [(m.name, m.type_spec.bitstring.bit.bitwidth) for m in members] == [
        ("mode", 8), ("late", 1)]
    sw = Switch(program)
    got: list[tuple[int, tuple[int, ...]]] = []
    sw.process(1, bytes([9, 0, 0]))
    assert sw.stats.dropped["digest_no_receiver"] == 1
    sw.digest_sink = lambda digest_id, values: got.append((digest_id, values))
    sw.process(1, bytes([3, 0, 0]))
    assert got == [(info.preamble.id, (3, 0))]


HEADER_KINDS = """#include <core.p4>
#include <v1model.p4>
enum bit<8> Kind_t { A = 1, B = 2 }
header k_t { Kind_t kind; bool flag; bit<7> rest; bit<16> value; }
struct headers_t { k_t k; k_t copy; }
struct meta_t { }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.k); transition accept; }
}
control V(inout headers_t hdr, inout meta_t meta) { apply { } }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    table nothing { key = { hdr.k.value: exact; } }
    apply {
        nothing.apply();
        bit<8> raw = hdr.k.kind;
        if (hdr.k.flag && hdr.k.kind == Kind_t.B) {
            hdr.copy = { Kind_t.A, false, 7w5, hdr.k.value + 1 };
        }
        hdr.k.rest = (bit<7>)raw;
        sm.egress_spec = 3;
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control C(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr); } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""


def test_bool_and_enum_header_fields_list_assignment_and_keyless_actions(tmp_path: Path) -> None:
    path = tmp_path / "kinds.p4"
    path.write_text(HEADER_KINDS)
    program = load_program(path)
    (table,) = program.p4info.tables
    assert [a.preamble.name for a in program.p4info.actions] == ["NoAction"]
    assert len(table.action_refs) == 1
    sw = Switch(program)
    # kind B, flag set, rest 0, value 0x0102: the list expression fills and validates `copy`
    out = sw.process(0, bytes([2, 0x80, 0x01, 0x02]))
    assert out == [(3, bytes([2, 0x82, 0x01, 0x02]) + bytes([1, 0x05, 0x01, 0x03]))]
    out = sw.process(0, bytes([2, 0x00, 0x01, 0x02]))  # flag clear: copy stays invalid
    assert out == [(3, bytes([2, 0x02, 0x01, 0x02]))]


FUNCTIONS = PROGRAM.replace(
    "control V(inout headers_t hdr, inout meta_t meta) { apply { } }",
    "bit<8> max8(in bit<8> a, in bit<8> b) {\n"
    "    if (a > b) { return a; }\n"
    "    return b;\n"
    "}\n"
    "void bump(inout bit<8> x, in bit<8> by, out bool wrapped) {\n"
    "    bit<8> before = x;\n"
    "    x = x + by;\n"
    "    wrapped = x < before;\n"
    "}\n"
    "void mark(inout h_t h) { h.mode = 0x77; return; }\n"
    "control V(inout headers_t hdr, inout meta_t meta) { apply { } }").replace(
    "        inner.apply(hdr);\n",
    "        hdr.h.steps = max8(hdr.h.mode, 0x30);\n"
    "        bool wrapped;\n"
    "        bump(hdr.h.steps, 0x10, wrapped);\n"
    "        if (wrapped) { mark(hdr.h); }\n"
    "        inner.apply(hdr);\n")


def test_functions_return_values_and_copy_out_scalars(tmp_path: Path) -> None:
    path = tmp_path / "functions.p4"
    path.write_text(FUNCTIONS)
    sw = Switch(load_program(path))
    # mode 0x05: max8 -> 0x30, + 0x10 = 0x40 (no wrap); inner adds 2, then + 0x10
    assert sw.process(1, bytes([0x05, 0, 0])) == [(4, bytes([0x05, 0x52, 1]))]
    # mode 0xF5: max8 -> 0xF5, + 0x10 wraps to 0x05, so mark() rewrites mode through `inout h`
    assert sw.process(1, bytes([0xF5, 0, 0])) == [(4, bytes([0x77, 0x17, 1]))]


def test_function_with_inout_scalar_in_an_expression_copies_out(tmp_path: Path) -> None:
    path = tmp_path / "expr_function.p4"
    path.write_text(FUNCTIONS.replace("        bump(hdr.h.steps, 0x10, wrapped);\n",
                                      "        hdr.h.mode = (bit<8>)(bit<1>)wrapped;\n"
                                      "        bool w2 = bump2(hdr.h.steps);\n").replace(
        "void mark(", "bool bump2(inout bit<8> x) { x = x + 1; return true; }\nvoid mark("))
    # steps: max8 -> 0x30, bump2 -> 0x31, inner's two steps -> 0x33, + 0x10; mode: wrapped (false)
    assert Switch(load_program(path)).process(1, bytes([0x05, 0, 0])) == [(4, bytes([0, 0x43, 1]))]


DIRECTIONAL_ACTION = PROGRAM.replace(
    "    action step() { hdr.h.steps = hdr.h.steps + 1; }",
    "    action step() { hdr.h.steps = hdr.h.steps + 1; }\n"
    "    action add(inout bit<8> x, in bit<8> by, out bit<8> old) {\n"
    "        old = x;\n"
    "        if (by == 0) { return; }\n"
    "        x = x + by;\n"
    "    }").replace(
    "        step();\n        if (hdr.h.mode == 1) { exit; }",
    "        bit<8> before;\n"
    "        add(hdr.h.steps, hdr.h.mode, before);\n"
    "        hdr.h.steps = hdr.h.steps ^ (before << 4);\n"
    "        if (hdr.h.mode == 1) { exit; }")


def test_actions_with_directional_parameters_called_directly(tmp_path: Path) -> None:
    path = tmp_path / "directional.p4"
    path.write_text(DIRECTIONAL_ACTION)
    program = load_program(path)
    assert all(a.preamble.name != "Inner.add" for a in program.p4info.actions)  # not in a table
    sw = Switch(program)
    # steps 3 + mode 4 = 7 and old = 3: 7 ^ 0x30 = 0x37; step() +1; then +0x10
    assert sw.process(1, bytes([4, 3, 0])) == [(4, bytes([4, 0x48, 1]))]
    # mode 0: the action returns early, old = 3 copied out, steps unchanged: 3 ^ 0x30 ...
    assert sw.process(1, bytes([0, 3, 0])) == [(4, bytes([0, 0x44, 1]))]


HEADER_UNION = """#include <core.p4>
#include <v1model.p4>
header v4_t { bit<8> ttl; bit<8> proto; }
header v6_t { bit<8> hops; bit<8> next; bit<8> flow; }
header_union ip_t { v4_t v4; v6_t v6; }
header sel_t { bit<8> version; }
struct headers_t { sel_t sel; ip_t ip; }
struct meta_t { }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.sel);
        transition select(hdr.sel.version) { 4: v4; 6: v6; default: accept; }
    }
    state v4 { pkt.extract(hdr.ip.v4); transition accept; }
    state v6 { pkt.extract(hdr.ip.v6); transition accept; }
}
control V(inout headers_t hdr, inout meta_t meta) { apply { } }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        sm.egress_spec = hdr.ip.isValid() ? 9w1 : 9w2;
        if (hdr.ip.v4.isValid() && hdr.ip.v4.ttl == 0) {
            hdr.ip.v6.setValid();              // the union keeps one member: v4 goes invalid
            hdr.ip.v6.hops = 0xAA;
            hdr.ip.v6.next = hdr.ip.v4.proto;  // an invalid header still holds its fields
            hdr.ip.v6.flow = 0;
            hdr.sel.version = 6;
        }
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control C(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.sel); pkt.emit(hdr.ip); } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""


def test_header_union_keeps_one_member_valid(tmp_path: Path) -> None:
    path = tmp_path / "union.p4"
    path.write_text(HEADER_UNION)
    sw = Switch(load_program(path))
    assert sw.process(0, bytes([4, 5, 17, 0xEE])) == [(1, bytes([4, 5, 17, 0xEE]))]
    assert sw.process(0, bytes([6, 1, 2, 3])) == [(1, bytes([6, 1, 2, 3]))]
    assert sw.process(0, bytes([9, 1])) == [(2, bytes([9, 1]))]
    # v4 with ttl 0 becomes v6: only the valid member is emitted
    assert sw.process(0, bytes([4, 0, 17, 0xEE])) == [(1, bytes([6, 0xAA, 17, 0, 0xEE]))]
