"""`==` and `!=` on headers, header stacks, structs and header unions, and value semantics of
header/struct/stack variables (P4_16 specification: "Operations on headers" — two headers are
equal when both are invalid, or both are valid and all fields are equal; "Operations on header
stacks" — element by element; "Operations on structs" and "... on header unions" — field by
field; "Assignment statement" / variable initializers copy the value).

Each test writes the comparison results into a result header the deparser emits first.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_semantics_equality.py -q
"""

from __future__ import annotations

from pathlib import Path

from semantics_helpers import out_bytes

TYPES = """
header h_t { bit<8> a; bit<8> b; }
header r_t { bit<8> r0; bit<8> r1; bit<8> r2; bit<8> r3; bit<8> r4; bit<8> r5; }
header_union u_t { h_t x; r_t y; }
struct pair_t { h_t p; bit<8> n; }
struct headers_t { r_t r; h_t h; h_t[2] a; h_t i1; h_t i2; u_t u1; u_t u2; }
struct meta_t { pair_t m1; pair_t m2; }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.h); pkt.extract(hdr.a.next); pkt.extract(hdr.a.next);
                  transition accept; }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers_t hdr) {
    apply { pkt.emit(hdr.r); pkt.emit(hdr.h); pkt.emit(hdr.a); }
}
"""


def _run(tmp_path: Path, body: str, frame: bytes) -> bytes:
    program = TYPES + (
        "control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {\n"
        "    apply {\n        sm.egress_spec = 2;\n        hdr.r.setValid();\n"
        + body + "\n    }\n}\n")
    return out_bytes(tmp_path, program, frame)[:6]


def _b(cond: str) -> str:
    return f"({cond} ? 8w1 : 8w0)"


def test_headers_compare_fields_and_validity(tmp_path: Path) -> None:
    body = f"""
        hdr.r.r0 = {_b("hdr.h == hdr.a[0]")};
        hdr.r.r1 = {_b("hdr.h == hdr.a[1]")};
        hdr.r.r2 = {_b("hdr.h != hdr.a[1]")};
        hdr.i1.a = 5;
        hdr.r.r3 = {_b("hdr.i1 == hdr.i2")};
        hdr.i2.a = 5; hdr.i2.b = hdr.h.b;
        hdr.r.r4 = {_b("hdr.i2 == hdr.h")};
        hdr.i2.setValid();
        hdr.r.r5 = {_b("hdr.i2 == hdr.h")};
    """
    # h = (5, 6), a[0] = (5, 6), a[1] = (5, 7): the invalid i1/i2 are equal whatever their
    # fields hold; an invalid header differs from a valid one with the same fields
    frame = bytes([5, 6, 5, 6, 5, 7])
    assert _run(tmp_path, body, frame) == bytes([1, 0, 1, 1, 0, 1])


def test_header_stacks_compare_element_by_element(tmp_path: Path) -> None:
    body = f"""
        h_t[2] tmp = hdr.a;
        hdr.r.r0 = {_b("tmp == hdr.a")};
        tmp[1].b = 9;
        hdr.r.r1 = {_b("tmp == hdr.a")};
        hdr.r.r2 = {_b("tmp != hdr.a")};
        hdr.r.r3 = hdr.a[1].b;
        tmp = hdr.a;
        hdr.r.r4 = {_b("tmp == hdr.a")};
        tmp[0].setInvalid();
        hdr.r.r5 = {_b("tmp == hdr.a")};
    """
    frame = bytes([5, 6, 5, 6, 5, 7])
    # tmp is a copy: changing it leaves hdr.a[1].b at 7
    assert _run(tmp_path, body, frame) == bytes([1, 0, 1, 7, 1, 0])


def test_structs_compare_field_by_field(tmp_path: Path) -> None:
    body = f"""
        hdr.r.r0 = {_b("meta.m1 == meta.m2")};
        meta.m1.n = 3;
        hdr.r.r1 = {_b("meta.m1 == meta.m2")};
        meta.m2.n = 3;
        meta.m2.p = hdr.h;
        hdr.r.r2 = {_b("meta.m1 == meta.m2")};
        meta.m1.p = hdr.h;
        hdr.r.r3 = {_b("meta.m1 == meta.m2")};
        pair_t local = meta.m1;
        local.p.b = 0;
        hdr.r.r4 = {_b("local != meta.m1")};
        hdr.r.r5 = meta.m1.p.b;
    """
    frame = bytes([5, 6, 5, 6, 5, 7])
    assert _run(tmp_path, body, frame) == bytes([1, 0, 0, 1, 1, 6])


def test_header_unions_compare_the_valid_member(tmp_path: Path) -> None:
    body = f"""
        hdr.r.r0 = {_b("hdr.u1 == hdr.u2")};
        hdr.u1.x = hdr.h;
        hdr.r.r1 = {_b("hdr.u1 == hdr.u2")};
        hdr.u2.x = hdr.a[0];
        hdr.r.r2 = {_b("hdr.u1 == hdr.u2")};
        hdr.u2.x = hdr.a[1];
        hdr.r.r3 = {_b("hdr.u1 != hdr.u2")};
        hdr.u2.y.setValid();
        hdr.r.r4 = {_b("hdr.u1 == hdr.u2")};
        hdr.r.r5 = {_b("hdr.u2.x.isValid()")};
    """
    frame = bytes([5, 6, 5, 6, 5, 7])
    assert _run(tmp_path, body, frame) == bytes([1, 0, 1, 1, 0, 0])


def test_local_header_initialized_from_a_list_and_from_a_header(tmp_path: Path) -> None:
    body = """
        h_t fresh = { 8w1, 8w2 };
        h_t copy = hdr.h;
        copy.a = 0xee;
        hdr.r.r0 = fresh.a; hdr.r.r1 = fresh.b;
        hdr.r.r2 = (fresh.isValid() ? 8w1 : 8w0);
        hdr.r.r3 = hdr.h.a; hdr.r.r4 = copy.a; hdr.r.r5 = copy.b;
    """
    frame = bytes([5, 6, 5, 6, 5, 7])
    assert _run(tmp_path, body, frame) == bytes([1, 2, 1, 5, 0xee, 6])
