"""Controls with control-typed constructor parameters (P4_16 "Constructor parameters" and
"Control instantiation"; p4c's issue1566-bmv2.p4): `C2(c1) c2;` passes the instance c1, which
C2 applies as `c.apply(...)`; every user of c1 shares its state, as p4c's inlining does. Other
constructor parameters are refused with the construct's name.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_semantics_control_ctor.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
from semantics_helpers import SKELETON, run

from p4sim.errors import UnsupportedConstructError
from p4sim.program import load_program
from p4sim.switch import Switch

COMMON = """
header h_t { bit<16> x; }
struct headers_t { h_t h; }
struct meta_t { }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.h); transition accept; }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.h); } }
"""

PROGRAM = COMMON + """
control step_t(inout bit<16> x);
control Inc(inout bit<16> x) {
    counter(4, CounterType.packets) seen;
    apply { x = x + 1; seen.count((bit<32>)x[1:0]); }
}
control Shl(inout bit<16> x)(step_t c) { apply { x = x << 1; c.apply(x); } }
control Shl3(inout bit<16> x)(step_t c) { apply { x = x << 3; c.apply(x); } }
control Both(inout bit<16> x) {
    Inc() inc;
    Shl(inc) first;
    Shl3(inc) second;
    apply { first.apply(x); second.apply(x); }
}
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    Both() both;
    apply { sm.egress_spec = 2; both.apply(hdr.h.x); }
}
"""


def test_control_instance_passed_to_constructors_is_applied_and_shared(tmp_path: Path) -> None:
    source = tmp_path / "ctor.p4"
    source.write_text("#include <core.p4>\n#include <v1model.p4>\n" + PROGRAM + SKELETON)
    program = load_program(source)
    switch = Switch(program)
    # 0xcafe << 1 = 0x95fc, + 1 = 0x95fd; << 3 = 0xafe8, + 1 = 0xafe9 (p4c's issue1566 walk)
    assert switch.process(1, bytes([0xCA, 0xFE])) == [(2, bytes([0xAF, 0xE9]))]
    (counter,) = switch.state.counters.values()
    # both calls counted in the one instance: x[1:0] was 1 each time
    assert [counter.read(i)[0] for i in range(4)] == [0, 2, 0, 0]


def test_other_constructor_parameters_are_refused(tmp_path: Path) -> None:
    program = COMMON + """
control Add(inout bit<16> x)(bit<16> k) { apply { x = x + k; } }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    Add(3) add;
    apply { add.apply(hdr.h.x); }
}
"""
    with pytest.raises(UnsupportedConstructError, match="constructor argument for 'k' must be "
                       "a control instance") as raised:
        run(tmp_path, program, bytes(2))
    assert raised.value.construct == "control constructor parameters"
