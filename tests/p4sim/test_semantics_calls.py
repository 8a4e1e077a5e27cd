"""Calling convention: call by copy-in/copy-out (P4_16 specification, section "Calling
convention: call by copy in/copy out", and "Exit statement").

Arguments are evaluated and copied in at the call; `out` and `inout` arguments are copied back
when the callee returns, left to right; an `out` header starts invalid (uninitialized) and that
invalidity is copied back; an `exit` inside an action still copies its out/inout arguments back
(as p4c's front end lowers the action, frontends/p4/removeReturns.cpp and inlining). Each test
sends a frame through p4sim and checks the bytes that come out.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_semantics_calls.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
from semantics_helpers import PRELUDE, SKELETON, out_bytes, run

from p4sim.program import load_program

HEADERS = """
header h_t { bit<8> a; bit<8> b; }
struct headers_t { h_t h; h_t h2; }
struct meta_t { }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.h); pkt.extract(hdr.h2); transition accept; }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.h); pkt.emit(hdr.h2); } }
"""


def _ingress(declarations: str, apply: str) -> str:
    return HEADERS + ("control I(inout headers_t hdr, inout meta_t meta, "
                      "inout standard_metadata_t sm) {\n" + declarations
                      + "\n    apply { sm.egress_spec = 2; " + apply + " }\n}\n")


def test_inout_argument_copy_out_overwrites_a_direct_write(tmp_path: Path) -> None:
    # the action writes hdr directly, then the copy-out of `val` (taken at the call) wins
    program = _ingress("action do_action(inout headers_t val) { hdr.h.a = 0xaa; val.h.b = 0xbb; }",
                       "do_action(hdr);")
    assert out_bytes(tmp_path, program, bytes([1, 2, 3, 4])) == bytes([1, 0xbb, 3, 4])


def test_in_argument_is_a_copy(tmp_path: Path) -> None:
    program = _ingress("action take(in h_t val) { hdr.h.a = 0x55; hdr.h.b = val.a; }",
                       "take(hdr.h);")
    assert out_bytes(tmp_path, program, bytes([1, 2, 3, 4])) == bytes([0x55, 1, 3, 4])


def test_out_header_of_an_action_comes_back_invalid(tmp_path: Path) -> None:
    program = _ingress("action reset(out h_t x) { }", "reset(hdr.h2);")
    assert out_bytes(tmp_path, program, bytes([1, 2, 3, 4, 5])) == bytes([1, 2, 5])


def test_out_header_of_a_function_comes_back_invalid(tmp_path: Path) -> None:
    program = HEADERS.replace("control E(", "void reset(out h_t x) { }\ncontrol E(") + (
        "control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {\n"
        "    apply { sm.egress_spec = 2; reset(hdr.h); }\n}\n")
    assert out_bytes(tmp_path, program, bytes([1, 2, 3, 4])) == bytes([3, 4])


def test_out_header_of_a_control_comes_back_invalid_unless_set_valid(tmp_path: Path) -> None:
    program = HEADERS + """
control Reset(out h_t x, out h_t y) {
    apply { y.setValid(); y.a = 7; y.b = 8; }
}
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    Reset() r;
    apply { sm.egress_spec = 2; r.apply(hdr.h, hdr.h2); }
}
"""
    assert out_bytes(tmp_path, program, bytes([1, 2, 3, 4, 9])) == bytes([7, 8, 9])


def test_exit_in_an_action_still_copies_out(tmp_path: Path) -> None:
    program = _ingress(
        "action set_and_exit(inout bit<8> v, inout h_t x) { v = 0x77; x.b = 0x66; exit; }",
        "set_and_exit(hdr.h.a, hdr.h2); hdr.h.b = 0xee;")
    assert out_bytes(tmp_path, program, bytes([1, 2, 3, 4])) == bytes([0x77, 2, 3, 0x66])


def test_exit_in_a_nested_action_copies_out_through_both_calls(tmp_path: Path) -> None:
    program = _ingress(
        "action inner(out bit<8> v) { v = 0x44; exit; }\n"
        "action outer(inout h_t x) { x.a = 0x33; inner(x.b); x.a = 0xee; }",
        "outer(hdr.h); hdr.h2.a = 0xee;")
    assert out_bytes(tmp_path, program, bytes([1, 2, 3, 4])) == bytes([0x33, 0x44, 3, 4])


def test_copy_out_is_left_to_right(tmp_path: Path) -> None:
    decl = ("action first_scalar(inout bit<8> x, inout h_t h) { x = 1; h.a = 2; }\n"
            "action first_header(inout h_t h, inout bit<8> x) { x = 1; h.a = 2; }")
    # hdr.h.a is written by the scalar copy-out, then by the header copy-out: the header wins
    assert out_bytes(tmp_path, _ingress(decl, "first_scalar(hdr.h.a, hdr.h);"),
                     bytes([9, 9, 3, 4])) == bytes([2, 9, 3, 4])
    # the other order: the scalar copy-out comes last
    assert out_bytes(tmp_path, _ingress(decl, "first_header(hdr.h, hdr.h.a);"),
                     bytes([9, 9, 3, 4])) == bytes([1, 9, 3, 4])


def test_function_with_aliased_arguments_sees_copies(tmp_path: Path) -> None:
    program = HEADERS.replace("control E(", """
void mix(inout h_t x, in h_t y) { x.a = 9; x.b = y.a; }
control E(""") + """
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply { sm.egress_spec = 2; mix(hdr.h, hdr.h); }
}
"""
    assert out_bytes(tmp_path, program, bytes([1, 2, 3, 4])) == bytes([9, 1, 3, 4])


def test_control_with_aliased_arguments_sees_copies(tmp_path: Path) -> None:
    program = HEADERS + """
control Mix(inout h_t x, in h_t y) { apply { x.a = 9; x.b = y.a; } }
control Both(inout h_t x, inout headers_t all) { apply { x.a = 5; all.h2.a = 6; } }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    Mix() mix;
    Both() both;
    apply { sm.egress_spec = 2; mix.apply(hdr.h, hdr.h); both.apply(hdr.h2, hdr); }
}
"""
    # both: x (a copy of hdr.h2) is copied out first, then `all` (whose h2.a is 6) over it
    assert out_bytes(tmp_path, program, bytes([1, 2, 3, 4])) == bytes([9, 1, 6, 4])


def test_in_place_control_arguments_still_see_every_write(tmp_path: Path) -> None:
    # no overlap: the control gets the caller's storage and sees its own writes at once
    program = HEADERS + """
control Count(inout h_t x, inout h_t y) { apply { x.a = x.a + 1; y.a = x.a + y.a; } }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    Count() c;
    apply { sm.egress_spec = 2; c.apply(hdr.h, hdr.h2); c.apply(hdr.h, hdr.h2); }
}
"""
    # h.a: 1 -> 2 -> 3; h2.a: 3 + 2 = 5, then 5 + 3 = 8
    assert out_bytes(tmp_path, program, bytes([1, 2, 3, 4])) == bytes([3, 2, 8, 4])


def test_struct_argument_copy_keeps_nested_validity(tmp_path: Path) -> None:
    program = _ingress(
        "action drop_second(inout headers_t all) { all.h2.setInvalid(); hdr.h.a = 0xee; }",
        "drop_second(hdr);")
    result = run(tmp_path, program, bytes([1, 2, 3, 4, 5]))
    assert result == [(2, bytes([1, 2, 5]))]


def test_function_with_inout_scalar_inside_an_expression(tmp_path: Path) -> None:
    # evaluation is left to right and the copy-out happens when the call returns, so a read of
    # the argument after the call sees the new value and one before it the old value; the call
    # in an untaken ?: branch does not run
    program = HEADERS.replace("control E(", """
bit<8> bump(inout bit<8> x) { x = x + 1; return x; }
control E(""") + """
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        sm.egress_spec = 2;
        hdr.h.a = bump(hdr.h.b) + hdr.h.b;
        hdr.h2.a = hdr.h2.b + bump(hdr.h2.b);
        bit<8> local = 7;
        hdr.h2.b = (hdr.h.a == 6 ? bump(local) : 8w0) + local;
        hdr.h2.b = hdr.h2.b + (hdr.h.a == 0 ? bump(local) : 8w0);
    }
}
"""
    assert out_bytes(tmp_path, program, bytes([0, 2, 0, 4])) == bytes([6, 3, 9, 16])


TABLE_PROGRAM = HEADERS + """
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    action add_to(inout bit<8> x, bit<8> v) { x = x + v; }
    action mark(inout h_t h, bit<8> v) { h.b = v; hdr.h.a = 0xee; }
    table t {
        key = { hdr.h.a: exact; }
        actions = { add_to(hdr.h2.b); mark(hdr.h); }
        const entries = { 1 : add_to(5); 2 : mark(0x42); }
        default_action = add_to(hdr.h2.b, 9);
    }
    apply { sm.egress_spec = 2; t.apply(); }
}
"""


@pytest.mark.parametrize(("frame", "want"), [
    (bytes([1, 0, 3, 4]), bytes([1, 0, 3, 9])),  # add_to(hdr.h2.b) with action data 5
    (bytes([2, 0, 3, 4]), bytes([2, 0x42, 3, 4])),  # mark's copy-out of hdr.h wins over 0xee
    (bytes([7, 0, 3, 4]), bytes([7, 0, 3, 13])),  # the default: add_to(hdr.h2.b, 9)
])
def test_table_actions_with_directional_parameters_bound_in_the_actions_list(
        tmp_path: Path, frame: bytes, want: bytes) -> None:
    assert out_bytes(tmp_path, TABLE_PROGRAM, frame) == want


def test_directional_parameters_are_not_action_data_in_the_p4info(tmp_path: Path) -> None:
    path = tmp_path / "table.p4"
    path.write_text(PRELUDE + TABLE_PROGRAM + SKELETON)
    actions = {a.preamble.name: [p.name for p in a.params]
               for a in load_program(path).p4info.actions}
    assert actions["I.add_to"] == ["v"]
    assert actions["I.mark"] == ["v"]


SCALAR_CONTROL = HEADERS + """
control Sum(in bit<8> a, inout bit<8> acc, out bit<8> twice, inout h_t h) {
    action add() { acc = acc + a; }
    apply {
        add();
        twice = acc + acc;
        if (a == 9) { exit; }
        if (a == 8) { return; }
        h.b = 0x55;
    }
}
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    Sum() s;
    apply { sm.egress_spec = 2; s.apply(hdr.h.a, hdr.h2.a, hdr.h2.b, hdr.h); }
}
"""


@pytest.mark.parametrize(("frame", "want"), [
    (bytes([1, 2, 3, 4]), bytes([1, 0x55, 4, 8])),  # runs to the end
    (bytes([8, 2, 3, 4]), bytes([8, 2, 11, 22])),  # return: copy-out, the caller goes on
    (bytes([9, 2, 3, 4]), bytes([9, 2, 12, 24])),  # exit: copy-out, then the ingress ends
])
def test_control_with_out_and_inout_scalar_parameters(tmp_path: Path, frame: bytes,
                                                      want: bytes) -> None:
    # the action inside writes `acc` (the control's inout parameter), the copy-out brings it back
    assert out_bytes(tmp_path, SCALAR_CONTROL, frame) == want
