"""The compiler's checker pass (p4sim/compiler/checker.py): every expression is typed before
its code is generated, the result is recorded per node, and the code generator uses it.

P4_16 specification, "Integer literal types" / "Operations on fixed-width bit types": an
untyped literal takes the width of the other operand (its value reduced modulo 2^W); "Expressions
on booleans": conditions are `bool`.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_checker.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lark import Tree
from semantics_helpers import PRELUDE, SKELETON, out_bytes

from p4sim.compiler import Compiler
from p4sim.compiler.checker import Typed
from p4sim.errors import P4TypeError, UnsupportedConstructError
from p4sim.p4types import BitT, BoolT
from p4sim.preprocess import preprocess
from p4sim.syntax import parse_source

TYPES = """
header h_t { bit<8> a; bit<8> b; }
struct headers_t { h_t h; }
struct meta_t { bit<8> m; }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.h); transition accept; }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.h); } }
"""


def _program(body: str) -> str:
    return TYPES + (
        "control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {\n"
        "    apply {\n        sm.egress_spec = 2;\n" + body + "\n    }\n}\n")


def _compile(tmp_path: Path, body: str) -> Compiler:
    path = tmp_path / "checker.p4"
    path.write_text(PRELUDE + _program(body) + SKELETON)
    pre = preprocess(path)
    comp = Compiler(parse_source(pre), pre)
    comp.run()
    return comp


def _typed_nodes(comp: Compiler, rule: str) -> list[Typed]:
    return [t for node, t in comp.typed.values() if isinstance(node, Tree) and node.data == rule]


def test_literal_adapts_to_the_other_operand(tmp_path: Path) -> None:
    body = "        hdr.h.b = hdr.h.a + 300;"
    comp = _compile(tmp_path, body)
    (add,) = _typed_nodes(comp, "add")
    assert add.type == BitT(8)
    left, right = add.operands
    assert left.type == BitT(8) and left.const is None
    assert right.type == BitT(8) and right.const == 300 % 256  # the literal, masked to bit<8>
    assert "+ 44)" in comp.gen.text()  # the generator used the checker's adapted value
    assert out_bytes(tmp_path, _program(body), bytes([10, 0])) == bytes([10, 54])


def test_constants_fold_in_the_checker(tmp_path: Path) -> None:
    body = "        hdr.h.b = (8w200 + 8w100) |+| hdr.h.a;"
    comp = _compile(tmp_path, body)
    (add,) = _typed_nodes(comp, "add")
    assert (add.type, add.const) == (BitT(8), (200 + 100) % 256)
    (sat,) = _typed_nodes(comp, "sadd")
    assert sat.type == BitT(8) and sat.const is None
    assert out_bytes(tmp_path, _program(body), bytes([250, 0])) == bytes([250, 255])


def test_every_expression_of_a_condition_is_typed(tmp_path: Path) -> None:
    body = ("        if (hdr.h.isValid() && hdr.h.a[3:0] == 4w5) { hdr.h.b = 1; }")
    comp = _compile(tmp_path, body)
    assert [t.type for t in _typed_nodes(comp, "land")] == [BoolT()]
    assert [t.type for t in _typed_nodes(comp, "eq")] == [BoolT()]
    (sl,) = _typed_nodes(comp, "slice")
    assert (sl.type, sl.bounds) == (BitT(4), (3, 0))
    assert [t.type for t in _typed_nodes(comp, "call")] == [BoolT()]
    assert out_bytes(tmp_path, _program(body), bytes([0x25, 0])) == bytes([0x25, 1])
    assert out_bytes(tmp_path, _program(body), bytes([0x26, 0])) == bytes([0x26, 0])


@pytest.mark.parametrize(("body", "where", "message"), [
    ("        hdr.h.b = hdr.h.a + 16w1;", "15:19",
     "operator +: operands are bit<8> and bit<16> (different widths need a cast)"),
    ("        if (hdr.h.a) { }", "15:13", "if condition is bit<8>, not bool"),
    ("        hdr.h.b = (hdr.h.a == 1) ? 2 : 3;", "15:19",
     "?: with two untyped int literals needs a width"),
    ("        hdr.h.b = hdr.h.a[8:1];", "15:19", "slice [8:1] out of range for bit<8>"),
])
def test_type_errors_come_from_the_checker_with_their_place(tmp_path: Path, body: str,
                                                            where: str, message: str) -> None:
    with pytest.raises(P4TypeError) as err:
        _compile(tmp_path, body)
    assert f"checker.p4:{where}: error: {message}" in str(err.value)


# Headers whose fields do not total whole bytes. p4c's BMv2 back end
# (backends/bmv2/common/header.cpp, HeaderConverter::addHeaderType) refuses every header type it
# has to lay out for an instance: "Found header with fields totaling W bits. BMv2 target only
# supports headers with fields totaling a multiple of 8 bits."; BMv2 itself asserts whole bytes
# (src/bm_sim/headers.cpp, Header::Header: `assert(nbytes_packet % 8 == 0)`). A struct is padded
# (`_padding`), a header never is. A header type nobody instantiates never reaches the JSON.

ODD = "header odd_t { bit<32> a; bit<9> b; }  // 41 bits\n"


def test_a_declared_odd_header_that_is_never_instantiated_is_accepted(tmp_path: Path) -> None:
    program = ODD + _program("        hdr.h.b = hdr.h.a;")
    assert out_bytes(tmp_path, program, bytes([7, 0])) == bytes([7, 7])


@pytest.mark.parametrize(("types", "body", "line"), [
    ("struct headers_t { h_t h; odd_t o; }", "", 2),  # in the headers struct
    ("struct headers_t { h_t h; odd_t[2] o; }", "", 2),  # a stack of them
    ("struct headers_t { h_t h; }", "        odd_t tmp;", 2),  # a variable
])
def test_an_instantiated_odd_header_is_refused_like_p4c_bmv2(tmp_path: Path, types: str,
                                                           body: str, line: int) -> None:
    program = ODD + _program(body).replace("struct headers_t { h_t h; }", types)
    path = tmp_path / "odd.p4"
    path.write_text(PRELUDE + program + SKELETON)
    pre = preprocess(path)
    with pytest.raises(UnsupportedConstructError) as err:
        Compiler(parse_source(pre), pre).run()
    assert (f"odd.p4:{line + 1}:1: error: header 'odd_t': its fields total 41 bits; p4c's BMv2 "
            "back end only supports headers with fields totaling a multiple of 8 bits"
            ) in str(err.value)


def test_a_varbit_header_with_a_partial_byte_before_the_varbit_is_refused(tmp_path: Path) -> None:
    """{ bit<4> a; varbit<12> v; } totals 16 bits, which p4c accepts; p4sim extracts the part
    before the varbit as whole bytes, so it refuses the layout rather than run it wrongly."""
    program = ("header vb_t { bit<4> a; varbit<12> v; }\n"
               + _program("").replace("struct headers_t { h_t h; }",
                                      "struct headers_t { h_t h; vb_t vb; }"))
    path = tmp_path / "vb.p4"
    path.write_text(PRELUDE + program + SKELETON)
    pre = preprocess(path)
    with pytest.raises(UnsupportedConstructError) as err:
        Compiler(parse_source(pre), pre).run()
    assert ("vb.p4:3:1: error: header 'vb_t': p4sim needs the fields before the varbit to total "
            "whole bytes, they total 4 bits") in str(err.value)
