"""Header stacks of header unions (P4_16 "Header union stacks"): `us.next.m` extracts into the next
union's member m (the other members become invalid) and pushes, `us.last` is the union extracted
last, `isValid()` of an element is its union's, `pop_front` shifts whole unions, `emit` writes each
union's valid member in order (BMv2: ParserOpExtractUnionStack in src/bm_sim/parser.cpp and its
HeaderUnionStackParserTest).

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_semantics_union_stacks.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
from semantics_helpers import out_bytes

PROGRAM = """
header a_t { bit<8> type; bit<8> bos; }
header b_t { bit<8> type; bit<8> bos; bit<8> f8; }
header_union opt_t { a_t a; b_t b; }
header r_t { bit<8> n; bit<8> which; }
struct headers_t { r_t r; opt_t[3] opts; }
struct meta_t { }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start {
        transition select(pkt.lookahead<bit<8>>()) { 0x0a: pa; 0x0b: pb; default: accept; }
    }
    state pa {
        pkt.extract(hdr.opts.next.a);
        transition select(hdr.opts.last.a.bos) { 0: start; default: accept; }
    }
    state pb {
        pkt.extract(hdr.opts.next.b);
        transition select(hdr.opts.last.b.bos) { 0: start; default: accept; }
    }
}
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        sm.egress_spec = 2;
        hdr.r.setValid();
        hdr.r.n = (hdr.opts[0].isValid() ? 8w1 : 8w0) + (hdr.opts[1].isValid() ? 8w1 : 8w0)
                  + (hdr.opts[2].isValid() ? 8w1 : 8w0);
        hdr.r.which = hdr.opts[0].b.isValid() ? 8w0x0b : 8w0x0a;
        if (hdr.opts[1].b.isValid()) { hdr.opts[1].b.f8 = 0x99; }
        if (hdr.r.n == 3) { hdr.opts.pop_front(1); }
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.r); pkt.emit(hdr.opts); } }
"""

A0, A1 = bytes([0x0A, 0]), bytes([0x0A, 1])


@pytest.mark.parametrize(("frame", "want"), [
    # B then A (bottom of stack): two unions, the first holding b
    (bytes([0x0B, 0, 0xAB]) + A1 + b"xy", bytes([2, 0x0B, 0x0B, 0, 0xAB]) + A1 + b"xy"),
    # A, B, A: three unions; b's f8 rewritten, then pop_front(1) drops the first union
    (A0 + bytes([0x0B, 0, 0xCD]) + A1, bytes([3, 0x0A, 0x0B, 0, 0x99]) + A1),
    # a fourth option: StackOutOfBounds ends parsing, the option stays payload
    (A0 + A0 + A0 + A1, bytes([3, 0x0A]) + A0 + A0 + A1),
])
def test_header_union_stack(tmp_path: Path, frame: bytes, want: bytes) -> None:
    assert out_bytes(tmp_path, PROGRAM, frame) == want
