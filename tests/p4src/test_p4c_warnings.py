"""p4src/ compiles without a warning p4c-bm2-ss would give, and the invalid-header rule flags an
unguarded access after setInvalid() (forwarding.p4's old code) but not a guarded one.
They call p4sim's front end (`load_program`) directly: they check compilation, not a switch.

Run just this file: .venv/bin/python -m pytest tests/p4src/test_p4c_warnings.py -q
"""

from __future__ import annotations

from pathlib import Path

from p4sim.program import load_program

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """#include <core.p4>
#include <v1model.p4>
const bit<8> UNUSED = 1;
header h_t { bit<8> a; }
struct headers_t { h_t h; }
struct meta_t { }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.h); transition reject; }
}
control V(inout headers_t hdr, inout meta_t meta) { apply { } }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        hdr.h.a = 1;
        if (sm.ingress_port == 1) { hdr.h.setInvalid(); }
        hdr.h.a = 2;
        if (hdr.h.isValid()) { hdr.h.a = 3; }
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control C(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.h); } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""


def test_p4src_has_no_warning() -> None:
    assert load_program(ROOT / "p4src" / "tunnel_offload.p4").warnings == ()


def test_each_warning_kind_with_its_place(tmp_path: Path) -> None:
    source = tmp_path / "prog.p4"
    source.write_text(PROGRAM)
    lines = [str(w) for w in load_program(source).warnings]
    assert lines == [
        f"{source}:3:14: [--Wwarn=unused] warning: 'UNUSED' is unused",
        f"{source}:8:50: [--Wwarn=unsupported] warning: Explicit transition to reject not "
        "supported on this target",
        f"{source}:15:9: [--Wwarn=invalid-header] warning: accessing a field of a potentially "
        "invalid header hdr.h",
    ]
