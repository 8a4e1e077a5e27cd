"""p4sim's <core.p4> and <v1model.p4> define the include guards p4c's do (`_CORE_P4_` in
p4c's p4include/core.p4, `_V1_MODEL_P4_` in p4include/v1model.p4), so programs that test them
with `#ifdef` / `#ifndef` (to include the architecture once, or to adapt to it) work.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_semantics_includes.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
from semantics_helpers import SKELETON, out_bytes

from p4sim.errors import P4Error
from p4sim.program import load_program
from p4sim.switch import Switch

BODY = """
header h_t { bit<8> a; bit<8> b; }
struct headers_t { h_t h; }
struct meta_t { }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.h); transition accept; }
}
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        sm.egress_spec = 2;
#ifdef _V1_MODEL_P4_
        hdr.h.a = 0x11;
#else
        hdr.h.a = 0xee;
#endif
#if defined(_CORE_P4_) && defined(_V1_MODEL_P4_)
        hdr.h.b = 0x22;
#endif
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.h); } }
"""


def test_v1model_and_core_guards_are_defined(tmp_path: Path) -> None:
    assert out_bytes(tmp_path, BODY, bytes([0, 0, 9])) == bytes([0x11, 0x22, 9])


def test_guarded_second_include_is_a_no_op(tmp_path: Path) -> None:
    # a program (or an included library) that includes the architecture again, guarded the way
    # p4c's own files are: without the guard, every declaration would be a duplicate
    program = ("#ifndef _V1_MODEL_P4_\n#error v1model not included\n#endif\n"
               "#include <v1model.p4>\n#include <core.p4>\n" + BODY)
    assert out_bytes(tmp_path, program, bytes([0, 0])) == bytes([0x11, 0x22])


def test_quoted_include_of_the_architecture_falls_back_to_p4sims_own(tmp_path: Path) -> None:
    # p4c's samples write `#include "v1model.p4"` (e.g. ternary2-bmv2.p4): like cpp, a quoted
    # name not found next to the including file is searched on the system path
    source = tmp_path / "quoted.p4"
    source.write_text('#include "v1model.p4"\n' + BODY + SKELETON)
    assert Switch(load_program(source)).process(1, bytes([0, 0])) == [(2, bytes([0x11, 0x22]))]
    (tmp_path / "v1model.p4").write_text("#error a local v1model.p4 comes first\n")
    with pytest.raises(P4Error, match="a local v1model.p4 comes first"):
        load_program(source)
