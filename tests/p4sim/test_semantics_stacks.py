"""Header stack elements at a run-time index out of range, as BMv2 runs p4c's output: p4c's
midend (midend/hsIndexSimplify.cpp) turns `a[i]` into a chain of `if (i == k)` over the
elements, so out of range a write (assignment, setValid, an action's inout argument) changes
nothing and a read gives an invalid header whose fields are unspecified (p4sim: 0). The P4_16
specification ("Header stacks") leaves such accesses undefined; no packet is dropped for them.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_semantics_stacks.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
from semantics_helpers import out_bytes

PROGRAM = """
header i_t { bit<8> index; bit<8> mode; }
header h_t { bit<8> a; bit<8> b; }
header r_t { bit<8> valid; bit<8> value; }
struct headers_t { r_t r; i_t i; h_t[2] a; }
struct meta_t { }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.i); pkt.extract(hdr.a.next); pkt.extract(hdr.a.next);
                  transition accept; }
}
void twice(inout h_t x) { x.b = x.b + x.b; }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    action bump(inout h_t x) { x.a = x.a + 1; }
    apply {
        sm.egress_spec = 2;
        hdr.r.setValid();
        bit<8> i = hdr.i.index;
        hdr.r.valid = hdr.a[i].isValid() ? 8w1 : 8w0;
        hdr.r.value = hdr.a[i].b;
        if (hdr.i.mode == 1) { hdr.a[i].a = 0xee; }
        if (hdr.i.mode == 2) { bump(hdr.a[i]); }
        if (hdr.i.mode == 3) { hdr.a[i] = { 8w0xee, 8w0xee }; }
        if (hdr.i.mode == 4) { hdr.a[i].setInvalid(); }
        if (hdr.i.mode == 5) { twice(hdr.a[i]); }
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.r); pkt.emit(hdr.a); } }
"""

STACK = bytes([0x10, 0x11, 0x20, 0x21])


@pytest.mark.parametrize("mode", [0, 1, 2, 3, 4, 5])
def test_out_of_range_index_reads_invalid_and_writes_nothing(tmp_path: Path, mode: int) -> None:
    # index 7 of a 2-element stack: the read sees an invalid header (its field: 0) and every
    # kind of write leaves the packet unchanged
    out = out_bytes(tmp_path, PROGRAM, bytes([7, mode]) + STACK)
    assert out == bytes([0, 0]) + STACK


@pytest.mark.parametrize(("mode", "stack"), [
    (0, STACK),
    (1, bytes([0x10, 0x11, 0xee, 0x21])),
    (2, bytes([0x10, 0x11, 0x21, 0x21])),
    (3, bytes([0x10, 0x11, 0xee, 0xee])),
    (4, bytes([0x10, 0x11])),
    (5, bytes([0x10, 0x11, 0x20, 0x42])),
])
def test_in_range_index_reads_and_writes_the_element(tmp_path: Path, mode: int,
                                                     stack: bytes) -> None:
    out = out_bytes(tmp_path, PROGRAM, bytes([1, mode]) + STACK)
    assert out == bytes([1, 0x21]) + stack
