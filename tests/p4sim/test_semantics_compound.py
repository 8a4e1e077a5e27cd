"""Compound assignments (P4_16 1.2.4, "Assignment statement": `a op= b` is `a = a op b` with `a`
evaluated once; `+= -= *= /= %= <<= >>= &= |= ^= |+|= |-|=`) and `_` don't-care arguments for
out/inout parameters (P4_16 "Calling convention", as p4c's DontcareArgs pass lowers them to a
fresh temporary whose value is dropped).

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_semantics_compound.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
from semantics_helpers import out_bytes

from p4sim.errors import P4TypeError

PROGRAM = """
header h_t { bit<8> a; bit<8> b; bit<8> c; bit<8> d; bit<8> e; bit<8> f; bit<8> g; bit<8> h;
             bit<8> i; bit<8> j; bit<8> k; bit<8> l; bit<16> w; }
struct headers_t { h_t h; }
struct meta_t { }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.h); transition accept; }
}
void two_outs(out bit<8> x, inout bit<8> y) { x = 0x99; y = y + 1; }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    action keep(out bit<8> v, inout h_t whole) { v = 0x77; whole.a = 0xee; }
    apply {
        sm.egress_spec = 2;
        hdr.h.a += 5;
        hdr.h.b -= 3;
        hdr.h.c *= 3;
        hdr.h.d /= 4;
        hdr.h.e %= 7;
        hdr.h.f <<= 2;
        hdr.h.g >>= 1;
        hdr.h.h &= 0x0f;
        hdr.h.i |= 0x80;
        hdr.h.j ^= 0xff;
        hdr.h.k |+|= 0xf0;
        hdr.h.l |-|= 0xf0;
        hdr.h.w[15:8] += 1;
        two_outs(_, hdr.h.w[7:0]);
        keep(_, _);
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.h); } }
"""


def test_compound_assignments_and_dont_care_arguments(tmp_path: Path) -> None:
    frame = bytes([1, 10, 7, 33, 30, 0x41, 0x81, 0x3c, 1, 0x0f, 0x20, 0x20, 0x12, 0x34])
    want = bytes([6, 7, 21, 8, 2, 0x04, 0x40, 0x0c, 0x81, 0xf0, 0xff, 0x00, 0x13, 0x35])
    assert out_bytes(tmp_path, PROGRAM, frame) == want


def test_dont_care_for_an_in_parameter_is_refused(tmp_path: Path) -> None:
    program = PROGRAM.replace("keep(_, _);", "two_outs(_, _); mark_to_drop(sm);").replace(
        "void two_outs(out bit<8> x, inout bit<8> y)", "void two_outs(out bit<8> x, in bit<8> y)"
    ).replace("y = y + 1;", "")
    with pytest.raises(P4TypeError) as err:
        out_bytes(tmp_path, program, bytes(14))
    assert "`_` for parameter 'y'" in str(err.value)
    assert ":30:" in str(err.value)  # the line of the call (after the 2-line prelude)
