"""Sub-parsers: a parser instantiated in a parser and run with `apply` from a state (P4_16
"Sub-parsers"): it continues on the same packet and cursor, its `accept` returns to the calling
state, an error or its `reject` ends the whole parse (p4c inlines sub-parsers, so on BMv2 the
caller's reject is reached); arguments follow the calling convention (an `out` header starts
invalid).

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_semantics_subparsers.py -q
"""

from __future__ import annotations

from pathlib import Path

from semantics_helpers import run

PROGRAM = """
header h_t { bit<8> kind; bit<8> v; }
header r_t { bit<8> error_code; bit<8> count; }
struct headers_t { r_t r; h_t first; h_t opt; h_t last; }
struct meta_t { bit<8> count; }
parser Options(packet_in pkt, out h_t opt, inout meta_t meta) {
    state start {
        transition select(pkt.lookahead<bit<8>>()) { 0: accept; 0xff: reject; default: take; }
    }
    state take { pkt.extract(opt); meta.count = meta.count + 1; transition accept; }
}
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    Options() options;
    Options() again;
    state start {
        pkt.extract(hdr.first);
        options.apply(pkt, hdr.opt, meta);
        transition select(hdr.first.kind) { 2: twice; default: finish; }
    }
    state twice { again.apply(pkt, hdr.opt, meta); transition finish; }
    state finish { pkt.extract(hdr.last); transition accept; }
}
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        sm.egress_spec = 2;
        hdr.r.setValid();
        hdr.r.count = meta.count;
        if (sm.parser_error == error.NoError) { hdr.r.error_code = 0; }
        else if (sm.parser_error == error.PacketTooShort) { hdr.r.error_code = 1; }
        else { hdr.r.error_code = 0xee; }
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers_t hdr) {
    apply { pkt.emit(hdr.r); pkt.emit(hdr.first); pkt.emit(hdr.opt); pkt.emit(hdr.last); }
}
"""


def _out(tmp_path: Path, frame: bytes) -> bytes:
    result = run(tmp_path, PROGRAM, frame)
    assert len(result) == 1 and result[0][0] == 2, result
    return result[0][1]


def test_sub_parser_extracts_and_returns_to_the_calling_state(tmp_path: Path) -> None:
    frame = bytes([1, 0x11, 5, 0x55, 9, 0x99]) + b"payload"
    assert _out(tmp_path, frame) == bytes([0, 1]) + frame


def test_sub_parser_accepting_without_extract_leaves_the_out_header_invalid(
        tmp_path: Path) -> None:
    frame = bytes([1, 0x11, 0, 0x99]) + b"xy"
    # Options accepts at once: hdr.opt stays invalid; `last` takes the next two bytes
    assert _out(tmp_path, frame) == bytes([0, 0]) + frame


def test_second_instance_runs_its_own_states_and_out_resets(tmp_path: Path) -> None:
    # kind 2: `again` runs after `options` with the same out argument: the second call starts
    # with hdr.opt invalid and extracts the next option over it
    frame = bytes([2, 0x11, 5, 0x55, 6, 0x66, 9, 0x99])
    assert _out(tmp_path, frame) == bytes([0, 2, 2, 0x11, 6, 0x66, 9, 0x99])
    # the second call accepts at once: its out argument comes back invalid
    frame = bytes([2, 0x11, 5, 0x55, 0, 0x99])
    assert _out(tmp_path, frame) == bytes([0, 1, 2, 0x11, 0, 0x99])


def test_error_in_a_sub_parser_ends_the_parse(tmp_path: Path) -> None:
    frame = bytes([1, 0x11, 5])  # the option needs two bytes
    # parser_error PacketTooShort, the packet goes on to ingress; the unparsed byte is payload
    assert _out(tmp_path, frame) == bytes([1, 0, 1, 0x11, 5])


def test_reject_in_a_sub_parser_ends_the_parse(tmp_path: Path) -> None:
    frame = bytes([1, 0x11, 0xff, 0x99, 7, 7])
    # `finish` never runs: `last` stays invalid and the rest is payload; parser_error unchanged
    assert _out(tmp_path, frame) == bytes([0, 0, 1, 0x11, 0xff, 0x99, 7, 7])


SCALAR_OUT = """
header h_t { bit<8> kind; bit<8> v; }
header r_t { bit<8> next; bit<8> seen; }
struct headers_t { r_t r; h_t[3] hs; }
struct meta_t { }
// `next` is written in one state and read in a later one; `seen` counts through an inout
parser Item(packet_in pkt, inout headers_t hdr, out bit<8> next, inout bit<8> seen) {
    state start { pkt.extract(hdr.hs.next); seen = seen + 1; transition record; }
    state record { next = hdr.hs.last.kind; transition check; }
    state check { transition select(next) { 0xEE: accept; default: done; } }
    state done { seen = seen + next; transition accept; }
}
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    Item() item;
    bit<8> kind;
    bit<8> seen = 0x10;
    state start {
        item.apply(pkt, hdr, kind, seen);
        transition select(kind) { 1: more; default: fin; }
    }
    state more { pkt.extract(hdr.hs.next); transition fin; }
    state fin { hdr.r.setValid(); hdr.r.next = kind; hdr.r.seen = seen; transition accept; }
}
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply { sm.egress_spec = 2; }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.r); pkt.emit(hdr.hs); } }
"""


def test_scalar_out_and_inout_parameters_of_a_sub_parser_are_copied_out(tmp_path: Path) -> None:
    """P4_16 "Calling convention" and "Sub-parsers": a sub-parser's out/inout scalar argument is
    copied back when it accepts, with the value its last state wrote (p4c's
    subparser-with-header-stack-bmv2 selects on such a value); the stack's nextIndex, part of
    the inout header stack, comes back too, so the caller's next extract fills element 1."""
    (out,) = run(tmp_path, SCALAR_OUT, bytes([1, 0xAA, 7, 0xBB, 0x99]))
    # kind 1: next = 1, seen = 0x10 + 1 + 1; then `more` extracts hs[1]
    assert out == (2, bytes([1, 0x12, 1, 0xAA, 7, 0xBB, 0x99]))
    (out,) = run(tmp_path, SCALAR_OUT, bytes([0xEE, 0xAA, 0x99]))
    assert out == (2, bytes([0xEE, 0x11, 0xEE, 0xAA, 0x99]))
