"""v1model externs (programs/externs.p4): register, hash, random, log_msg, resubmit,
update_checksum_with_payload, packet-in/packet-out on the CPU port.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_externs.py -q
"""

from __future__ import annotations

import logging
import random
import zlib

import pytest
from p4sim_core_helpers import P4InfoNames, program
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from p4sim.dataplane_lib import crc16, csum16, csum16_value
from p4sim.switch import Switch

RESULT_LEN = 2 + 4 + 2 + 2 + 4 + 1 + 4 + 1


def _frame(ether_type: int = 0x0800) -> bytes:
    eth = Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01", type=ether_type)
    if ether_type != 0x0800:
        return bytes(eth / Raw(b"control plane bound"))
    return bytes(eth / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=7, dport=9, chksum=0)
                 / Raw(b"checksummed payload"))


def test_hashes_random_register_and_udp_checksum(caplog: pytest.LogCaptureFixture) -> None:
    sw = Switch(program("externs.p4"))
    frame = _frame()
    with caplog.at_level(logging.INFO, logger="p4sim.dataplane"):
        sw.process(3, frame)
        out = sw.process(3, frame)
    assert [p for p, _ in out] == [1]
    result, rest = out[0][1][:RESULT_LEN], out[0][1][RESULT_LEN:]
    macs = frame[:12]
    assert int.from_bytes(result[0:2], "big") == crc16(macs)
    assert crc16(b"123456789") == 0xBB3D  # CRC-16/ARC, as BMv2's crc16
    assert int.from_bytes(result[2:6], "big") == zlib.crc32(macs)
    assert int.from_bytes(result[6:8], "big") == csum16(macs)
    assert int.from_bytes(result[8:10], "big") == (100 + 0x0800) & 0xFFFF
    assert int.from_bytes(result[10:14], "big") == 2  # register read after two packets
    assert result[14] == 7
    assert int.from_bytes(result[15:19], "big") == 0 and result[19] == 0
    # the UDP checksum the program computed is the one scapy computes
    expected = Ether(frame)
    expected[UDP].chksum = None
    assert rest == bytes(Ether(bytes(expected)))
    assert "packet from port 3 seen 2 times" in caplog.text
    reg = sw.state.registers[P4InfoNames(program("externs.p4")).register("seen_per_port")]
    assert reg.read(3) == 2


@pytest.mark.parametrize("nbytes", [2, 4, 18, 20, 40])
def test_csum16_of_a_packed_value_is_csum16_of_its_bytes(nbytes: int) -> None:
    """The generated checksum code packs the fields into one integer and calls csum16_value
    on it: the same checksum as RFC 1071 over the bytes, the end-around carries and the all-zero
    and all-ones words included (0x0000 and 0xFFFF sums are not confused)."""
    rng = random.Random(nbytes)
    top = (1 << (8 * nbytes)) - 1
    edges = [0, 1, 0xFFFF, 0x10000, 0xFFFF << (8 * nbytes - 16), top, top - 1,
             int.from_bytes(b"\xff\xff" + b"\x00" * (nbytes - 2), "big")]
    randoms = [rng.getrandbits(8 * nbytes) for _ in range(3000)]
    for value in [e for e in edges if e <= top] + randoms:
        assert csum16_value(value) == csum16(value.to_bytes(nbytes, "big")), hex(value)


def test_resubmit_keeps_field_list_and_sets_instance_type() -> None:
    sw = Switch(program("externs.p4"))
    out = sw.process(2, _frame(0x88B6))
    assert sw.stats.resubmitted == 2
    result = out[0][1][:RESULT_LEN]
    assert int.from_bytes(result[15:19], "big") == 6  # RESUBMIT
    assert result[19] == 2  # meta.resubmits survived both resubmissions


def test_packet_in_goes_to_sink_with_metadata() -> None:
    prog = program("externs.p4")
    sw = Switch(prog, cpu_port=64)
    got: list[tuple[bytes, dict[int, int]]] = []
    sw.packet_in_sink = lambda payload, md: got.append((payload, md))
    frame = _frame(0x88B5)
    assert sw.process(5, frame) == []
    header = next(h for h in prog.p4info.controller_packet_metadata
                  if h.preamble.name == "packet_in")
    port_id = next(m.id for m in header.metadata if m.name == "ingress_port")
    assert got == [(frame, {port_id: 5, port_id + 1: 0})]
    assert header.preamble.id >> 24 == 0x04


def test_packet_out_leaves_on_requested_port() -> None:
    prog = program("externs.p4")
    sw = Switch(prog, cpu_port=64)
    header = next(h for h in prog.p4info.controller_packet_metadata
                  if h.preamble.name == "packet_out")
    port_id = next(m.id for m in header.metadata if m.name == "egress_port")
    frame = _frame(0x1234)
    assert sw.packet_out(frame, {port_id: 6}) == [(6, frame)]


def test_timestamps_count_microseconds_since_start() -> None:
    sw = Switch(program("externs.p4"))
    seen: list[tuple[int, int]] = []
    original = sw._pipeline.egress

    def spy(P, hdr, meta, sm):  # type: ignore[no-untyped-def]  # noqa: ANN001, N803
        seen.append((sm.f_ingress_global_timestamp, sm.f_egress_global_timestamp))
        return original(P, hdr, meta, sm)

    sw._pipeline.egress = spy
    sw.process(3, _frame())
    sw.process(3, _frame())
    (i1, e1), (i2, e2) = seen
    assert 0 <= i1 <= e1 <= i2 <= e2 < 60_000_000


def test_udp_checksum_with_payload_is_verified() -> None:
    sw = Switch(program("externs.p4"))
    good = Ether(_frame())
    good[UDP].chksum = None
    good_frame = bytes(Ether(bytes(good)))  # scapy's UDP checksum
    assert [p for p, _ in sw.process(3, good_frame)] == [1]
    bad = bytearray(good_frame)
    bad[-1] ^= 0x01  # payload byte changed: the checksum no longer matches
    assert sw.process(3, bytes(bad)) == []
    assert sw.stats.dropped["ingress_drop"] == 1
