"""Constructs of newer P4_16 programs: `for` loops with `break`/`continue` (P4_16 1.2.4, "For
statement"), structure-valued expressions `{f = v, ...}` and list expressions as header/struct
values in initializers, returns and arguments (P4_16 "Structure-valued expressions"), named
arguments (P4_16 "Calling convention", `f(x = 1)`), `pkt.lookahead<T>();` as a statement, and the
refusals that stay (with file:line:column and the construct's name).

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_semantics_constructs.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
from semantics_helpers import PRELUDE, out_bytes, run

from p4sim.errors import P4Error, P4TypeError, UnsupportedConstructError
from p4sim.program import load_program
from p4sim.switch import Switch

TYPES = """
header h_t { bit<8> a; bit<8> b; }
struct pair_t { h_t h; bit<8> n; }
struct headers_t { h_t h; h_t h2; }
struct meta_t { }
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.h); pkt.emit(hdr.h2); } }
"""

PARSER = """
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.h); pkt.extract(hdr.h2); transition accept; }
}
"""


def _program(extra: str, apply: str, parser: str = PARSER) -> str:
    return TYPES + parser + extra + (
        "\ncontrol I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {\n"
        "    apply { sm.egress_spec = 2; " + apply + " }\n}\n")


def test_for_loop_with_break_and_continue(tmp_path: Path) -> None:
    apply = """
        bit<8> sum = 0;
        bit<8> i;
        for (i = 0; i < 10; i = i + 1) {
            if (i == hdr.h.a) { break; }
            if (i == 2) { continue; }
            sum = sum + i;
        }
        hdr.h2.a = sum;
        hdr.h2.b = i;
        for (bit<8> j = 0, bit<8> k = 10; j < 3; j = j + 1, k += 2) { hdr.h.b = k; }
    """
    # a = 5: i runs 0..4 and stops at 5 (break before the update); 2 is skipped: 0+1+3+4 = 8
    assert out_bytes(tmp_path, _program("", apply), bytes([5, 0, 0, 0])) == bytes([5, 14, 8, 5])
    # a = 50: the loop ends on its condition, i = 10; sum 0+1+3+...+9 = 43
    assert out_bytes(tmp_path, _program("", apply), bytes([50, 0, 0, 0])) == bytes(
        [50, 14, 43, 10])


def test_structure_expressions_in_initializers_returns_and_arguments(tmp_path: Path) -> None:
    extra = """
h_t make(in bit<8> v) { return { b = v, a = v + 1 }; }
pair_t pair(in bit<8> v) { return { { v, v }, 3 }; }
bit<8> first(in h_t h) { return h.a; }
"""
    apply = """
        pair_t p = { h = { a = 1, b = 2 }, n = 7 };
        hdr.h = make(hdr.h.a);
        hdr.h2.a = first({ 8w9, 8w8 }) + p.n;
        hdr.h2.b = pair(4).h.b + first({ a = p.h.b, b = 0 });
    """
    assert out_bytes(tmp_path, _program(extra, apply), bytes([5, 0, 0, 0])) == bytes(
        [6, 5, 16, 6])


def test_named_arguments_bind_by_name(tmp_path: Path) -> None:
    extra = "void put(out bit<8> low, in bit<8> high, inout h_t h) { low = high; h.b = high + 1; }"
    apply = "put(h = hdr.h2, high = 0x30, low = hdr.h.a);"
    assert out_bytes(tmp_path, _program(extra, apply), bytes([5, 6, 7, 8])) == bytes(
        [0x30, 6, 7, 0x31])


def test_lookahead_statement_checks_the_length_only(tmp_path: Path) -> None:
    parser = """
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.lookahead<bit<32>>(); pkt.extract(hdr.h); transition accept; }
}
"""
    apply = "hdr.h.a = (sm.parser_error == error.PacketTooShort ? 8w1 : 8w0);"
    program = _program("", apply, parser)
    # 4 bytes: lookahead succeeds, the cursor does not move
    assert run(tmp_path, program, bytes([0, 9, 3, 4])) == [(2, bytes([0, 9, 3, 4]))]
    # 3 bytes: PacketTooShort, nothing extracted (h stays invalid; h2 was never extracted)
    assert run(tmp_path, program, bytes([0, 9, 3])) == [(2, bytes([0, 9, 3]))]


@pytest.mark.parametrize(("extra", "apply", "error", "construct"), [
    ("void f() { exit; }", "f();", P4TypeError, "exit"),
    ("", "break;", P4TypeError, "break"),
    ("", "h_t[2] s; for (h_t x in s) { }", UnsupportedConstructError, "for-in loop"),
    ("", "hdr.h = { a = 1 };", P4TypeError, "structure expression"),
    ("void put(in bit<8> x, in bit<8> y) { }", "put(x = 1, 2);", P4TypeError, "named arguments"),
])
def test_refusals_name_the_place_and_construct(tmp_path: Path, extra: str, apply: str,
                                               error: type[P4Error], construct: str) -> None:
    with pytest.raises(error) as err:
        run(tmp_path, _program(extra, apply), bytes(4))
    assert err.value.construct == construct
    assert str(err.value).startswith(str(tmp_path / "semantics.p4") + ":")


def test_saturating_arithmetic_on_signed_integers(tmp_path: Path) -> None:
    # P4_16 "Operations on signed integers": |+| and |-| clamp to [-128, 127] for int<8>
    apply = """
        int<8> x = (int<8>) hdr.h.a;
        int<8> y = (int<8>) hdr.h.b;
        hdr.h2.a = (bit<8>) (x |+| y);
        hdr.h2.b = (bit<8>) (x |-| y);
    """
    program = _program("", apply)
    cases = [(100, 100, 127, 0), (0x9c, 100, 0, 0x80), (0x9c, 0x9c, 0x80, 0), (5, 3, 8, 2)]
    for a, b, plus, minus in cases:  # 0x9c is -100
        assert out_bytes(tmp_path, program, bytes([a, b, 0, 0])) == bytes([a, b, plus, minus])


VARBIT_CHECKSUM = """
header o_t { bit<8> len; bit<16> csum; varbit<64> data; }
struct headers_t { o_t o; }
struct meta_t { }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.o, (bit<32>) (pkt.lookahead<bit<8>>() * 8));
        transition accept;
    }
}
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply { sm.egress_spec = 2; }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control C(inout headers_t hdr, inout meta_t meta) {
    apply { update_checksum(true, { hdr.o.len, hdr.o.data }, hdr.o.csum, HashAlgorithm.csum16); }
}
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.o); } }
"""


def _internet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@pytest.mark.parametrize("data", [b"", b"\x12\x34\x56", bytes(range(1, 9))])
def test_checksum_over_a_varbit_uses_its_current_width(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "varbit_checksum.p4"
    path.write_text(PRELUDE + VARBIT_CHECKSUM + "control V(inout headers_t hdr, inout meta_t "
                    "meta) { apply { } }\nV1Switch(P(), V(), I(), E(), C(), D()) main;\n")
    frame = bytes([len(data), 0, 0]) + data + b"tail"
    out = Switch(load_program(path)).process(1, frame)
    csum = _internet_checksum(bytes([len(data)]) + data)
    assert out == [(2, bytes([len(data)]) + csum.to_bytes(2, "big") + data + b"tail")]


@pytest.mark.parametrize("expr", ["x / 2", "x % 3", "-8s6 / 2"])
def test_signed_division_of_run_time_or_negative_values_is_refused(tmp_path: Path,
                                                                    expr: str) -> None:
    # refused by p4sim's p4c-style target check (bmv2_rules) or by the type checker
    apply = f"int<8> x = (int<8>) hdr.h.a; hdr.h.b = (bit<8>) ({expr});"
    with pytest.raises(P4Error) as err:
        run(tmp_path, _program("", apply), bytes(4))
    assert "compile-time" in str(err.value) or "compilation time" in str(err.value)


def test_signed_division_of_positive_constants_folds(tmp_path: Path) -> None:
    apply = "hdr.h.b = (bit<8>) (8s7 / 2); hdr.h.a = (bit<8>) (8s7 % 4);"
    assert out_bytes(tmp_path, _program("", apply), bytes(4)) == bytes([3, 3, 0, 0])


def test_direct_control_invocation_gets_one_instance_per_call_site(tmp_path: Path) -> None:
    # P4_16 "Direct type invocation": `Bump.apply(...)` without an instance; p4c's
    # InstantiateDirectCalls names the instances Bump_inst, Bump_inst_0, ... (the P4Info shows them)
    extra = """
control Bump(inout h_t h) {
    action add(bit<8> v) { h.a = h.a + v; }
    table t { key = { h.b: exact; } actions = { add; } const entries = { 0 : add(1); }
              default_action = add(0x10); }
    apply { t.apply(); }
}
"""
    program = _program(extra, "Bump.apply(hdr.h); Bump.apply(hdr.h2);")
    assert out_bytes(tmp_path, program, bytes([5, 0, 7, 1])) == bytes([6, 0, 0x17, 1])
    path = tmp_path / "direct.p4"
    path.write_text(PRELUDE + program + "control V(inout headers_t hdr, inout meta_t meta) { "
                    "apply { } }\ncontrol C(inout headers_t hdr, inout meta_t meta) { apply { } }"
                    "\nV1Switch(P(), V(), I(), E(), C(), D()) main;\n")
    tables = sorted(t.preamble.name for t in load_program(path).p4info.tables)
    assert tables == ["I.Bump_inst.t", "I.Bump_inst_0.t"]


def test_nested_list_for_a_directionless_struct_parameter(tmp_path: Path) -> None:
    # a function's directionless parameter is an `in` one; `{ { a, b } }` builds pair_t.h
    extra = "bit<8> sum(pair_t p) { return p.h.a + p.h.b + p.n; }"
    apply = "hdr.h2.a = sum({ { 8w1, 8w2 }, 8w4 });"
    assert out_bytes(tmp_path, _program(extra, apply), bytes([5, 6, 0, 8])) == bytes(
        [5, 6, 7, 8])
