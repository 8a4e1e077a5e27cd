"""PTF: routing misses and malformed packets are dropped, never forwarded half-parsed, and
counted by reason.

Run just these: ptf_tests/dataplane/run.sh dp_drops
"""

from __future__ import annotations

import struct

import ptf.testutils as tu
from p4_constants import C
from ptf.testutils import group
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from tunnel_base import TunnelOffloadTest
from tunnel_scenarios import (
    HOST_MAC,
    NEXT_HOP_MAC,
    ROUTER_MAC,
    SWITCH_MAC,
    geneve_packet,
    plain_udp,
    routed,
)


@group("dataplane")
@group("drops")
class RouteMissDropTest(TunnelOffloadTest):
    """A destination no route covers is dropped and DROP_ROUTE_MISS moves by the packets sent;
    a covered one is routed."""

    def runTest(self) -> None:  # noqa: N802
        self.add_route("10.0.0.0/24", port=3, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
        before = self.counter("drop_reasons", C("DROP_ROUTE_MISS"))
        missed = plain_udp("192.168.1.1")
        for _ in range(3):
            tu.send_packet(self, 0, missed)
        hit = plain_udp("10.0.0.2")
        tu.send_packet(self, 0, hit)
        tu.verify_packet(self, routed(hit), 3)
        tu.verify_no_other_packets(self)
        after = self.counter_after("drop_reasons", C("DROP_ROUTE_MISS"), packets=before[0] + 3)
        self.assertEqual((after[0] - before[0], after[1] - before[1]), (3, 3 * len(missed)))


def geneve_with_region(region: bytes, opt_len: int) -> bytes:
    """A Geneve packet with a hand-made option region and opt_len, outer lengths consistent."""
    good = bytes(geneve_packet(0x42))
    at = 14 + 20 + 8
    frame = good[:at] + bytes([opt_len]) + good[at + 1:at + 8] + region + good[at + 8:]
    ip = IP(frame[14:])
    ip.len = len(frame) - 14
    ip[UDP].len = len(frame) - 34
    del ip.chksum
    return frame[:14] + bytes(ip)


def option(words: int) -> bytes:
    return struct.pack("!HBB", 0x0102, 0x01, words) + b"\x33" * (4 * words)


@group("dataplane")
@group("drops")
class ParserMalformedDropTest(TunnelOffloadTest):
    """Truncated headers, bad Geneve lengths and IPv4 options are dropped even with a
    match-everything rule and a default route, each counted under its parser-error reason."""

    CASES = (
        (Ether(dst=SWITCH_MAC, src=HOST_MAC) / IP(dst="10.0.0.2", proto=17) / Raw(b"\0\x35"),
         "PARSER_ERROR_PACKET_TOO_SHORT"),
        (Ether(dst=SWITCH_MAC, src=HOST_MAC) / IP(dst="10.0.0.2", options=b"\x01\x01\x01\x01")
         / UDP() / Raw(b"o" * 30), "PARSER_ERROR_IPV4_OPTIONS"),
        (geneve_with_region(option(4) * 4 + option(0), 21), "PARSER_ERROR_GENEVE_OPTIONS_TOO_LONG"),
        (geneve_with_region(option(5), 6), "PARSER_ERROR_GENEVE_OPTION_TOO_LONG"),
        (geneve_with_region(option(3), 2), "PARSER_ERROR_GENEVE_OPTION_LENGTH"),
    )

    def runTest(self) -> None:  # noqa: N802
        self.add_route("0.0.0.0/0", port=1, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
        self.add_entry("tunnel_rules", "decap_geneve", priority=1, match={},
                       params={"tunnel_index": 3, "next_action": 1})
        in_before = self.counter("tunnel_in", 3)[0]
        for frame, reason in self.CASES:
            before = self.counter("parser_errors", C(reason))[0]
            tu.send_packet(self, 0, frame)
            after = self.counter_after("parser_errors", C(reason), packets=before + 1)[0]
            tu.verify_no_other_packets(self)
            self.assertEqual(after - before, 1, reason)
        self.assertEqual(self.counter("tunnel_in", 3)[0], in_before)


@group("dataplane")
@group("drops")
class ChecksumBadIpv4DropTest(TunnelOffloadTest):
    """An IPv4 header with a wrong checksum is dropped and counted, not routed."""

    def runTest(self) -> None:  # noqa: N802
        self.add_route("0.0.0.0/0", port=1, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
        before = self.counter("drop_reasons", C("DROP_BAD_IPV4_CHECKSUM"))[0]
        tu.send_packet(self, 0, Ether(dst=SWITCH_MAC, src=HOST_MAC)
                       / IP(dst="10.0.0.2", chksum=0x1234) / UDP() / Raw(b"c" * 20))
        after = self.counter_after("drop_reasons", C("DROP_BAD_IPV4_CHECKSUM"), packets=before + 1)
        tu.verify_no_other_packets(self)
        self.assertEqual(after[0] - before, 1)
