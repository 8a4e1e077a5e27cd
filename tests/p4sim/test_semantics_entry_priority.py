"""Priorities of `const entries` as p4c's BMv2 back end gives them: entry i gets `@priority(n)`
when annotated (the annotation follows the action, as in P4_16's `entry` grammar) and i + 1
otherwise, and BMv2 lets the smaller number win (p4c backends/bmv2/common/control.cpp, the
entry's "priority"; p4c's testdata table-entries-priority-bmv2.p4 states "the matching entry
with the smallest numerical priority will win"). Without annotations, the first listed wins.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_semantics_entry_priority.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
from semantics_helpers import run

from p4sim.errors import P4TypeError

HEADERS = """
header h_t { bit<16> t; bit<8> port; }
struct headers_t { h_t h; }
struct meta_t { }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.h); transition accept; }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.h); } }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    action to(bit<9> x) { sm.egress_spec = x; }
    table t {
        key = { hdr.h.t : ternary; }
        actions = { to; }
        default_action = to(0);
        const entries = { ENTRIES }
    }
    apply { t.apply(); }
}
"""

ANNOTATED = """
            0x1111 &&& 0xF    : to(1) @priority(3);
            0x1181            : to(2);
            0x1181 &&& 0xF00F : to(3) @priority(1);
"""


def _port(tmp_path: Path, entries: str, t: int) -> int:
    (out,) = run(tmp_path, HEADERS.replace("ENTRIES", entries), t.to_bytes(2, "big") + b"\0")
    return out[0]


@pytest.mark.parametrize(("t", "port"), [
    (0x0001, 1),  # only the @priority(3) entry
    (0x1001, 3),  # @priority(3) and @priority(1): 1 wins
    (0x1181, 3),  # all three: the unannotated second entry has 2, @priority(1) still wins
])
def test_smaller_priority_annotation_wins(tmp_path: Path, t: int, port: int) -> None:
    assert _port(tmp_path, ANNOTATED, t) == port


def test_without_annotations_the_first_listed_entry_wins(tmp_path: Path) -> None:
    entries = "0x1181 &&& 0xF000 : to(1); 0x1181 : to(2); _ : to(3);"
    assert [_port(tmp_path, entries, t) for t in (0x1181, 0x2181, 0x1000)] == [1, 3, 1]


def test_priority_must_be_an_integer(tmp_path: Path) -> None:
    with pytest.raises(P4TypeError, match="@priority needs one non-negative integer"):
        _port(tmp_path, '0x1 : to(1) @priority("high");', 1)
