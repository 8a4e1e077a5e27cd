"""Parser errors of a computed-length extract and of advance, in BMv2's order
(behavioral-model src/bm_sim/parser.cpp: `extract_VL` checks a bit count that is not a multiple
of 8 (error.ParserInvalidArgument), then too few bytes left (PacketTooShort), then a length over
the varbit's maximum (HeaderTooShort); `ParserOpAdvance` checks the multiple of 8 before
PacketTooShort). v1model does not drop on a parser error: the ingress below reports
`parser_error` in the first byte of the frame it sends back.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_semantics_parser_errors.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
from semantics_helpers import out_bytes

PROGRAM = """
header len_t { bit<8> bits; bit<8> mode; }
header opt_t { bit<8> kind; varbit<32> data; }
header r_t { bit<8> code; }
struct headers_t { r_t r; len_t len; opt_t opt; }
struct meta_t { }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.len);
        transition select(hdr.len.mode) { 1: skip; default: options; }
    }
    state options {
        pkt.extract(hdr.opt, (bit<32>) hdr.len.bits);
        transition accept;
    }
    state skip {
        pkt.advance((bit<32>) hdr.len.bits);
        transition accept;
    }
}
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        sm.egress_spec = 2;
        hdr.r.setValid();
        if (sm.parser_error == error.NoError) { hdr.r.code = 0; }
        else if (sm.parser_error == error.PacketTooShort) { hdr.r.code = 1; }
        else if (sm.parser_error == error.HeaderTooShort) { hdr.r.code = 2; }
        else if (sm.parser_error == error.ParserInvalidArgument) { hdr.r.code = 3; }
        else { hdr.r.code = 0xff; }
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.r); } }
"""

OK, TOO_SHORT, HEADER_TOO_SHORT, INVALID_ARGUMENT = 0, 1, 2, 3


@pytest.mark.parametrize(("bits", "frame_tail", "code"), [
    (16, bytes(8), OK),
    (12, bytes(8), INVALID_ARGUMENT),  # not whole bytes, enough data
    (12, b"", INVALID_ARGUMENT),  # checked before PacketTooShort
    (36, bytes(8), INVALID_ARGUMENT),  # over the maximum too: the multiple of 8 comes first
    (40, bytes(8), HEADER_TOO_SHORT),  # whole bytes, over varbit<32>
    (40, bytes(2), TOO_SHORT),  # over the maximum, and too short: PacketTooShort first
    (24, bytes(2), TOO_SHORT),
])
def test_varbit_extract_errors(tmp_path: Path, bits: int, frame_tail: bytes, code: int) -> None:
    frame = bytes([bits, 0]) + frame_tail
    assert out_bytes(tmp_path, PROGRAM, frame)[0] == code


@pytest.mark.parametrize(("bits", "frame_tail", "code"), [
    (16, bytes(4), OK),
    (12, bytes(4), INVALID_ARGUMENT),
    (12, b"", INVALID_ARGUMENT),
    (48, bytes(4), TOO_SHORT),
])
def test_advance_errors(tmp_path: Path, bits: int, frame_tail: bytes, code: int) -> None:
    frame = bytes([bits, 1]) + frame_tail
    assert out_bytes(tmp_path, PROGRAM, frame)[0] == code
