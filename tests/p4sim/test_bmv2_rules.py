"""What p4c-bm2-ss refuses, p4sim refuses too: run-time `/` and `%`, and the preserving-field-list
externs outside the stage BMv2 allows — with file:line:column and p4c's reason text.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_bmv2_rules.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest

from p4sim.bmv2_rules import TargetRefusal
from p4sim.program import load_program

SKELETON = """#include <core.p4>
#include <v1model.p4>
const bit<8> TEN = 10;
header h_t { bit<8> a; bit<8> b; }
struct headers_t { h_t h; }
struct meta_t { @field_list(1) bit<8> m; }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.h); transition accept; }
}
control V(inout headers_t hdr, inout meta_t meta) { apply { } }
control Inner(inout headers_t hdr, inout meta_t meta) {
    apply {
        INNER
    }
}
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    Inner() inner;
    apply {
        INGRESS
        inner.apply(hdr, meta);
        sm.egress_spec = 1;
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        EGRESS
    }
}
control C(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.h); } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""


def _load(tmp_path: Path, *, ingress: str = "", egress: str = "", inner: str = "") -> None:
    source = tmp_path / "prog.p4"
    source.write_text(SKELETON.replace("INGRESS", ingress).replace("EGRESS", egress)
                      .replace("INNER", inner))
    load_program(source)


def _line(marker: str) -> int:
    return SKELETON.splitlines().index(f"        {marker}") + 1


@pytest.mark.parametrize("op", ["/", "%"])
def test_run_time_division_is_refused_with_p4cs_reason(tmp_path: Path, op: str) -> None:
    with pytest.raises(TargetRefusal) as caught:
        _load(tmp_path, ingress=f"hdr.h.b = hdr.h.a {op} 8w10;")
    error = caught.value
    assert (error.line, error.column) == (_line("INGRESS"), 19)
    assert error.message == (f"[--Werror=invalid] hdr.h.a {op} 8w10: could not evaluate "
                             "expression at compilation time")
    assert str(error).startswith(f"{tmp_path / 'prog.p4'}:{_line('INGRESS')}:19: error: ")


def test_division_by_a_run_time_divisor_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TargetRefusal, match="8w100 / hdr.h.a: could not evaluate"):
        _load(tmp_path, egress="hdr.h.b = 8w100 / hdr.h.a;")


@pytest.mark.parametrize("expression", ["TEN / 2", "(bit<8>)(200 % TEN)", "hdr.h.a / 8w8",
                                        "hdr.h.a % 4"])
def test_constant_and_power_of_two_division_is_accepted(tmp_path: Path, expression: str) -> None:
    _load(tmp_path, ingress=f"hdr.h.b = {expression};")


def test_recirculate_in_ingress_is_refused_as_p4c_does(tmp_path: Path) -> None:
    with pytest.raises(TargetRefusal) as caught:
        _load(tmp_path, ingress="recirculate_preserving_field_list(1);")
    assert (caught.value.line, caught.value.column) == (_line("INGRESS"), 9)
    assert caught.value.message == ("[--Werror=target-error] 'resubmit' can only be invoked in "
                                    "egress recirculate_preserving_field_list(1)")


def test_recirculate_in_a_control_nested_in_ingress_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TargetRefusal) as caught:
        _load(tmp_path, inner="recirculate_preserving_field_list(1);")
    assert caught.value.line == _line("INNER")


def test_resubmit_in_egress_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TargetRefusal, match=r"'resubmit' can only be invoked in ingress "
                                            r"resubmit_preserving_field_list\(1\)"):
        _load(tmp_path, egress="resubmit_preserving_field_list(1);")


def test_each_extern_is_accepted_in_its_stage(tmp_path: Path) -> None:
    _load(tmp_path, ingress="resubmit_preserving_field_list(1);"
          " clone_preserving_field_list(CloneType.I2E, 5, 1);",
          egress="recirculate_preserving_field_list(1);"
          " clone_preserving_field_list(CloneType.E2E, 5, 1);")
