"""Parser constructs (programs/parser_constructs.p4): select masks/ranges/tuples/default,
header stacks, lookahead, advance, varbit with a computed length, verify.

Every case feeds a scapy-built frame and asserts the exact output bytes: a 4-byte report header
(path, error, VLAN count, last PCP) followed by the deparsed headers and the unparsed payload.
Run just this file: .venv/bin/python -m pytest tests/p4sim/test_parser_constructs.py -q
"""

from __future__ import annotations

import pytest
from p4sim_core_helpers import program
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import LLC, Dot1Q, Dot3, Ether
from scapy.packet import Raw

from p4sim.switch import Switch


def _run(frame: bytes) -> tuple[bytes, bytes]:
    out = Switch(program("parser_constructs.p4")).process(0, frame)
    assert len(out) == 1 and out[0][0] == 1
    return out[0][1][:4], out[0][1][4:]


def test_plain_ipv4_with_options_varbit_round_trips() -> None:
    pkt = Ether() / IP(dst="1.2.3.4", options=b"\x01\x01\x01\x00" * 2) / TCP() / Raw(b"x")
    report, rest = _run(bytes(pkt))
    assert report == bytes([2, 0, 0, 0])
    assert rest == bytes(pkt)  # the varbit options are emitted back unchanged


def test_udp_is_skipped_by_advance_and_disappears() -> None:
    pkt = Ether() / IP() / UDP(sport=1, dport=2) / Raw(b"payload")
    report, rest = _run(bytes(pkt))
    assert report == bytes([3, 0, 0, 0])
    # BMv2 semantics: advanced-over bytes are not part of the output
    assert rest == bytes(pkt)[:34] + b"payload"


def test_ttl_range_in_tuple_select() -> None:
    report, _ = _run(bytes(Ether() / IP(ttl=1, proto=6) / Raw(b"abc")))
    assert report[0] == 4
    report, _ = _run(bytes(Ether() / IP(ttl=2, proto=6) / Raw(b"abc")))
    assert report[0] == 2


def test_vlan_stack_with_mask_select_and_last() -> None:
    pkt = (Ether(type=0x9100) / Dot1Q(prio=3, vlan=10, type=0x8100) / Dot1Q(prio=5, vlan=20)
           / IP() / TCP())
    report, rest = _run(bytes(pkt))
    assert report == bytes([2, 0, 2, 5])
    assert rest == bytes(pkt)


def test_third_vlan_overflows_the_stack() -> None:
    pkt = (Ether(type=0x8100) / Dot1Q(vlan=1, type=0x8100) / Dot1Q(vlan=2, type=0x8100)
           / Dot1Q(vlan=3) / IP())
    report, _ = _run(bytes(pkt))
    assert report[1] == 2  # StackOutOfBounds
    assert report[2] == 2


def test_lookahead_leaves_non_ipv4_unparsed_without_error() -> None:
    frame = bytes(Ether(type=0x0800)) + bytes([0x60]) + b"\x00" * 39
    report, rest = _run(frame)
    assert report == bytes([1, 0, 0, 0])  # accepted after Ethernet: no parser_error
    assert rest == frame


def test_llc_range_and_advance() -> None:
    pkt = Dot3(len=10) / LLC(dsap=0x42, ssap=0x42, ctrl=3) / Raw(b"0123456")
    report, rest = _run(bytes(pkt))
    assert report[0] == 5
    assert rest == bytes(pkt)[:14] + b"0123456"


@pytest.mark.parametrize(("ihl", "err"), [(4, 3)])
def test_verify_raises_program_error(ihl: int, err: int) -> None:
    raw = bytearray(bytes(Ether() / IP() / TCP()))
    raw[14] = 0x40 | ihl
    report, _ = _run(bytes(raw))
    assert report[1] == err
    assert report[0] == 6  # the lookahead<ipv4_t>() select saw the short IHL first


def test_truncated_header_sets_packet_too_short() -> None:
    raw = bytes(Ether() / IP())[:30]
    report, rest = _run(raw)
    assert report == bytes([1, 1, 0, 0])
    assert rest == raw  # ethernet deparsed, the rest stays payload
