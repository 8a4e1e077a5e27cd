"""Header stacks whose elements are made on first access (p4sim.dataplane_lib.HeaderStack):
a stack no statement touched behaves exactly as one of invalid elements under assignment (both
ways), equality, push/pop, copy-in/out and `out` arguments, and the deparser emits nothing
for it.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_lazy_stacks.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
from semantics_helpers import out_bytes

from p4sim.dataplane_lib import HeaderStack, copy_of, copy_value, values_equal

PROGRAM = """
header r_t { bit<8> v; }
header i_t { bit<8> mode; }
header h_t { bit<8> x; }
struct headers_t { r_t r; i_t i; h_t[2] a; h_t[2] b; h_t[2] c; }
struct meta_t { }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.i); pkt.extract(hdr.a.next); pkt.extract(hdr.a.next);
                  transition accept; }
}
void set_second(inout h_t[2] s) { s[1].setValid(); s[1].x = 5; }
void clear(out h_t[2] s) { }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        sm.egress_spec = 2;
        hdr.r.setValid();
        hdr.r.v = 0xff;
        if (hdr.i.mode == 1) { hdr.a = hdr.b; }
        if (hdr.i.mode == 2) { hdr.b = hdr.a; }
        if (hdr.i.mode == 3) { hdr.r.v = hdr.a == hdr.b ? 8w1 : 8w0; }
        if (hdr.i.mode == 4) { hdr.r.v = hdr.b == hdr.c ? 8w1 : 8w0; }
        if (hdr.i.mode == 5) { hdr.b.push_front(1); hdr.b[0].setValid(); hdr.b[0].x = 0x77; }
        if (hdr.i.mode == 6) { set_second(hdr.b); }
        if (hdr.i.mode == 7) { hdr.b.pop_front(1); hdr.a.push_front(1); }
        if (hdr.i.mode == 8) { hdr.a.pop_front(2); hdr.r.v = hdr.a == hdr.b ? 8w1 : 8w0; }
        if (hdr.i.mode == 9) { clear(hdr.a); clear(hdr.b); }
        if (hdr.i.mode == 10) { hdr.r.v = hdr.b[1].isValid() ? 8w1 : 8w0; hdr.c = hdr.b; }
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers_t hdr) {
    apply { pkt.emit(hdr.r); pkt.emit(hdr.i); pkt.emit(hdr.a); pkt.emit(hdr.b); pkt.emit(hdr.c); }
}
"""

PARSED = bytes([0x10, 0x20])
REST = b"zz"


@pytest.mark.parametrize(("mode", "expected"), [
    (0, bytes([0xff, 0]) + PARSED),                      # b and c untouched: not emitted
    (1, bytes([0xff, 1])),                               # untouched into parsed: all invalid
    (2, bytes([0xff, 2]) + PARSED + PARSED),             # parsed into untouched
    (3, bytes([0x00, 3]) + PARSED),                      # valid vs untouched: not equal
    (4, bytes([0x01, 4]) + PARSED),                      # two untouched: equal
    (5, bytes([0xff, 5]) + PARSED + bytes([0x77])),      # push_front on an untouched stack
    (6, bytes([0xff, 6]) + PARSED + bytes([5])),         # inout argument (copy-in/out)
    (7, bytes([0xff, 7, 0x10])),                         # pop on untouched, push on parsed
    (8, bytes([0x01, 8])),                               # popped empty equals untouched
    (9, bytes([0xff, 9])),                               # out arguments: all invalid
    (10, bytes([0x00, 10]) + PARSED),                    # a read touches, still invalid
])
def test_untouched_stack_is_a_stack_of_invalid_headers(tmp_path: Path, mode: int,
                                                       expected: bytes) -> None:
    assert out_bytes(tmp_path, PROGRAM, bytes([mode]) + PARSED + REST) == expected + REST


class _H:  # the shape of a generated header class (p4sim/compiler/classes.py)
    _fields_ = ("_v", "f_x")
    _v = False
    f_x = 0


def test_elements_are_made_on_first_access_only() -> None:
    made = []

    def new() -> _H:
        made.append(1)
        return _H()

    stack = HeaderStack(new, 3)
    copy = copy_of(stack)
    assert not stack.live and not copy.live and values_equal(stack, copy)  # type: ignore[attr-defined]
    assert made == []
    first = stack.a[0]
    assert stack.live and len(made) == 3 and stack.a[0] is first  # made once
    first._v, first.f_x = True, 9
    assert not values_equal(stack, copy)
    copy_value(stack, copy)  # an untouched source resets the elements in place
    assert stack.a[0] is first and (first._v, first.f_x) == (False, 0)
