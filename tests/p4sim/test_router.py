"""The benchmark's IPv4 router (bench/p4sim/ipv4_router.p4) is correct, checked with scapy and
against the hand-written baseline the benchmark compares with.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_router.py -q
"""

from __future__ import annotations

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from bench.p4sim.router_bench import HandWrittenRouter, make_packets, p4sim_switch


def test_routes_rewrite_and_checksum_match_scapy() -> None:
    sw = p4sim_switch()
    pkt = (Ether(src="02:00:00:00:00:99", dst="02:00:00:00:00:88")
           / IP(src="10.0.0.1", dst="10.1.2.9", ttl=9) / UDP() / Raw(b"data"))
    out = sw.process(0, bytes(pkt))
    expected = pkt.copy()
    expected[Ether].src = "02:00:00:00:00:88"
    expected[Ether].dst = "02:00:00:00:00:03"
    expected[IP].ttl = 8
    expected[IP].chksum = None
    assert out == [(3, bytes(Ether(bytes(expected))))]


def test_miss_bad_checksum_and_expiring_ttl_are_dropped() -> None:
    sw = p4sim_switch()
    miss = Ether() / IP(dst="172.16.0.1") / UDP()
    expiring = Ether() / IP(dst="10.1.2.9", ttl=1) / UDP()
    bad = bytearray(bytes(Ether() / IP(dst="10.1.2.9") / UDP()))
    bad[24] ^= 0x55
    for frame in (bytes(miss), bytes(expiring), bytes(bad)):
        assert sw.process(0, frame) == []
    assert sw.stats.dropped["ingress_drop"] == 3


def test_p4sim_and_hand_written_router_agree() -> None:
    sw = p4sim_switch()
    baseline = HandWrittenRouter()
    for frame in make_packets(200):
        assert sw.process(0, frame) == baseline.process(0, frame)
