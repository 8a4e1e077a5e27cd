"""`p4sim stf`: p4c's STF packet tests run in process (p4sim/stf.py).

The format and its meaning follow p4c's runner (backends/bmv2/bmv2stf.py): `*` hex digits are
wildcards, a received frame may be longer than its expectation unless the line ends in `$`,
frames are compared per port in order after the whole file ran, the larger `add` priority wins,
ternary digits given are masked in (`makeMask`), `a$0.f` is `a[0].f`, names resolve by suffix.
The program is tests/p4sim/programs/stf.p4.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_stf.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
from p4sim_core_helpers import PROGRAMS, program

from p4sim.cli import main
from p4sim.stf import StfError, StfResult, run_stf

PROGRAM = PROGRAMS / "stf.p4"
#           f1       f2       h1   b1 b2 tags[0]
PKT = "packet 0 {f1} {f2} {h1} 55 66 0001"


def _run(tmp_path: Path, text: str) -> StfResult:
    stf = tmp_path / "t.stf"
    stf.write_text(text)
    return run_stf(program("stf.p4"), stf)


def _pkt(f1: str = "00000000", f2: str = "00000000", h1: str = "0000") -> str:
    return PKT.format(f1=f1, f2=f2, h1=h1)


def test_exact_entries_by_qualified_or_suffix_names_and_wildcards(tmp_path: Path) -> None:
    result = _run(tmp_path, "\n".join([
        "# a comment line",
        "add exact_t data.f1:0x00000101 Ingress.setb1(val:0x7f, port:2)  # trailing comment",
        "ADD Ingress.exact_t hdr.data.f1:514 setb1(port:3, val:7)",
        _pkt(f1="00000101"),
        "expect 2 00000101 ******** **** 7F 66 0001 $",
        _pkt(f1="00000202"),
        "expect 3 00000202 00000000 0000 07 66 0001",
        _pkt(f1="00000303"),  # miss: egress_spec stays 0
        "expect 0 00000303 00000000 0000 55 66 0001",
    ]))
    assert result.ok, result.report()
    assert (result.packets, result.expectations) == (3, 3)


def test_wrong_byte_is_reported_with_position_and_both_frames(tmp_path: Path) -> None:
    result = _run(tmp_path, _pkt() + "\nexpect 0 00000000 00000000 0000 55 67 0001\n")
    assert not result.ok
    (failure,) = result.failures
    assert "differs at byte 11 (hex digit 23): expected 7, got 6" in failure
    assert "got:      0000000000000000000055660001" in failure


def test_dollar_makes_the_length_exact_and_a_prefix_is_enough_without_it(tmp_path: Path) -> None:
    assert _run(tmp_path, _pkt() + "\nexpect 0 00000000 00000000\n").ok
    result = _run(tmp_path, _pkt() + "\nexpect 0 00000000 00000000 $\n")
    assert "frame too long: 14 bytes, expected 8 ($)" in result.failures[0]
    result = _run(tmp_path, _pkt() + "\nexpect 0 00000000 00000000 0000 55 66 0001 00\n")
    assert "frame too short: 14 bytes, expected 15" in result.failures[0]


def test_frame_counts_per_port_and_expect_without_data(tmp_path: Path) -> None:
    missing = _run(tmp_path, _pkt() + "\n" + _pkt() + "\nexpect 0 00\n")
    assert missing.failures[0].startswith("port 0: expected 1 frames, got 2")
    extra = _run(tmp_path, _pkt() + "\nexpect 0 00\nexpect 0 00\nexpect 5 00\n")
    assert [f.splitlines()[0] for f in extra.failures] == [
        "port 0: expected 2 frames, got 1", "port 5: expected 1 frames, got 0"]
    assert _run(tmp_path, _pkt() + "\n" + _pkt() + "\nexpect 0\n").ok  # any number


def test_packet_without_data_is_an_empty_frame(tmp_path: Path) -> None:
    # p4c's runner sends b"" (gauntlet_enum_assign-bmv2.stf); the parser rejects it, and
    # v1model still runs ingress: egress_spec 0, nothing emitted
    result = _run(tmp_path, "packet 0\nexpect 0 $\n")
    assert result.ok, result.report()


def test_an_odd_last_packet_digit_is_a_byte_of_its_own(tmp_path: Path) -> None:
    # p4c's runner (HexToByte) turns a trailing "5" into the byte 05 (gauntlet_index_3-bmv2.stf)
    result = _run(tmp_path, _pkt() + " 5\nexpect 0 00000000 00000000 0000 55 66 0001 05 $\n")
    assert result.ok, result.report()


def test_frames_to_a_port_the_stf_never_names_are_not_observed(tmp_path: Path) -> None:
    result = _run(tmp_path, "add exact_t f1:1 setb1(port:9, val:1)\n" + _pkt(f1="00000001"))
    assert result.ok
    assert "1 frames out of port 9, which the STF never names" in result.notes[0]


def test_ternary_digit_masks_and_the_larger_priority_wins(tmp_path: Path) -> None:
    result = _run(tmp_path, "\n".join([
        "add tern_t 10 data.f2:0x0202**** tags$0.h:0x0001 set_b2(val:0x26)",
        "add tern_t 20 data.f2:0x020202** tags$0.h:0x0001 set_b2(val:0x27)",
        "add tern_t 5 data.f2:0x00000000&&&0x000000FF tags$0.h:1 set_b2(val:0x28)",
        _pkt(f2="02020200"),  # matches 10, 20 and 5: 20 wins
        "expect 0 ******** 02020200 **** 55 27 0001 $",
        _pkt(f2="02020300"),  # matches 10 and 5: 10 wins
        "expect 0 ******** 02020300 **** 55 26 0001 $",
        _pkt(f2="13000000"),  # only 5
        "expect 0 ******** 13000000 **** 55 28 0001 $",
        _pkt(f2="13000001"),  # none
        "expect 0 ******** 13000001 **** 55 66 0001 $",
    ]))
    assert result.ok, result.report()


def test_lpm_by_length_and_by_star_digits_then_multicast(tmp_path: Path) -> None:
    result = _run(tmp_path, "\n".join([
        "mc_mgrp_create 7",
        "mc_node_create 0 1 2",
        "mc_node_associate 7 0",
        "mc_mgrp_create 8",
        "mc_node_create 1 4",
        "mc_node_associate 8 1",
        "add lpm_t prefix:0x0A000000/8 to_group(group:7)",
        "add lpm_t prefix:0x0A01**** to_group(group:8)",
        _pkt(f2="0A020304"),
        _pkt(f2="0A010304"),
        "expect 1 ******** 0A020304",
        "expect 2 ******** 0A020304",
        "expect 4 ******** 0A010304",
    ]))
    assert result.ok, result.report()


def test_setdefault_and_check_counter(tmp_path: Path) -> None:
    result = _run(tmp_path, "\n".join([
        "setdefault exact_t setb1(port:4, val:0xAA)",
        _pkt(h1="0003"),
        _pkt(h1="0003"),
        "expect 4 ******** ******** 0003 AA",
        "expect 4 ******** ******** 0003 AA",
        "check_counter seen(3) packets == 2",
        "check_counter seen(3) bytes == 28",
        "check_counter seen(2) packets == 1",
    ]))
    assert result.failures == ["line 8: counter seen(2) packets is 0, expected == 1"]


@pytest.mark.parametrize(("text", "message"), [
    ("add nosuch f1:1 noop()", "t.stf:1: no table 'nosuch'"),
    ("add exact_t f9:1 noop()", "t.stf:1: key field 'f9' not found (fields: hdr.data.f1)"),
    ("add exact_t f1:1 set_b2(val:1)", "no action of table Ingress.exact_t 'set_b2'"),
    ("add exact_t f1:1 setb1(val:1)", "action Ingress.setb1: no value for 'port'"),
    ("add exact_t f1:1 setb1(port:1, val:1, x:2)", "Ingress.setb1 has no parameter 'x'"),
    ("add exact_t f1:0x1FFFFFFFF noop()", "does not fit hdr.data.f1's 32 bits"),
    ("packet 0 abx", "packet data is not hex digits"),
    ("expect 0 0G", "expect data is not hex digits"),
    ("register_write r 0 1", "t.stf:1: unknown STF command 'register_write'"),
])
def test_what_cannot_be_run_is_an_error_naming_the_line(tmp_path: Path, text: str,
                                                         message: str) -> None:
    with pytest.raises(StfError, match=None) as raised:
        _run(tmp_path, text + "\n")
    assert message in str(raised.value)


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.stf"
    good.write_text(_pkt() + "\nexpect 0 00000000\n")
    bad = tmp_path / "bad.stf"
    bad.write_text(_pkt() + "\nexpect 0 FF\n")
    broken = tmp_path / "broken.stf"
    broken.write_text("frobnicate\n")
    assert main(["stf", str(PROGRAM), str(good)]) == 0
    assert "PASS: 1 packets, 1 expectations, 0 failures" in capsys.readouterr().out
    assert main(["stf", str(PROGRAM), str(bad)]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert main(["stf", str(PROGRAM), str(broken)]) == 2
    assert "unknown STF command 'frobnicate'" in capsys.readouterr().err
