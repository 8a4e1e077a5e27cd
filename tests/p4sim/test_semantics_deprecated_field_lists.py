"""The deprecated v1model calls with a field list, `resubmit(data)`, `recirculate(data)` and
`clone3(type, session, data)` (p4c's v1model.p4 marks them @deprecated), run when the list is
empty: nothing is preserved, as `resubmit_preserving_field_list` of a list without fields and
`clone(type, session)` (BMv2 simple_switch; p4c's v1model-special-ops-bmv2 uses `{}`). A
non-empty list is refused with the construct's name.

Run just this file:
.venv/bin/python -m pytest tests/p4sim/test_semantics_deprecated_field_lists.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
from semantics_helpers import PRELUDE, SKELETON

from p4sim.errors import UnsupportedConstructError
from p4sim.program import Program, load_program
from p4sim.runtime import CloneSession, Replica
from p4sim.switch import Switch

PROGRAM = """
header h_t { bit<8> op; bit<8> itype; bit<8> m; }
struct headers_t { h_t h; }
struct meta_t { bit<8> m; }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.h); transition accept; }
}
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        sm.egress_spec = 2;
        hdr.h.m = hdr.h.m + meta.m;  // meta.m is 0 again after a resubmit: nothing preserved
        meta.m = 0x40;
        if (sm.instance_type == 0 && hdr.h.op == 1) { resubmit({}); }
        if (hdr.h.op == 2) { clone3(CloneType.I2E, 32w7, {}); }
        hdr.h.itype = (bit<8>)sm.instance_type;
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply { if (sm.instance_type == 1) { hdr.h.m = 0xCC; } }
}
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.h); } }
"""


def _load(tmp_path: Path, source: str = PROGRAM) -> Program:
    path = tmp_path / "p.p4"
    path.write_text(PRELUDE + source + SKELETON)
    return load_program(path)


def _switch(tmp_path: Path) -> Switch:
    return Switch(_load(tmp_path))


def test_resubmit_with_an_empty_list_preserves_no_metadata(tmp_path: Path) -> None:
    out = _switch(tmp_path).process(1, bytes([1, 0, 5]))
    # second pass: instance type 6 (resubmit), meta.m back to 0, so m is still 5
    assert out == [(2, bytes([1, 6, 5]))]


def test_clone3_with_an_empty_list_is_clone(tmp_path: Path) -> None:
    switch = _switch(tmp_path)
    switch.state.clone_sessions[7] = CloneSession(session_id=7,
                                                  replicas=(Replica(egress_port=4),))
    out = sorted(switch.process(1, bytes([2, 0, 5])))
    assert out == [(2, bytes([2, 0, 5])), (4, bytes([2, 0, 0xCC]))]


@pytest.mark.parametrize("call", ["resubmit({ meta.m })", "recirculate({ meta })",
                                  "clone3(CloneType.I2E, 32w7, { meta.m })"])
def test_a_non_empty_field_list_is_refused(tmp_path: Path, call: str) -> None:
    with pytest.raises(UnsupportedConstructError, match="with a non-empty field list"):
        _load(tmp_path, PROGRAM.replace("resubmit({});", call + ";"))
