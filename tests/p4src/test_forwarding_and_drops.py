"""Routing, and every drop path: route misses, malformed and unsupported packets, bad checksums.

Each drop must leave no frame, and move its drop-reason (and parser-error) counter by exactly one.
Run just these: .venv/bin/python -m pytest tests/p4src/test_forwarding_and_drops.py -q
"""

from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw
from tunnel_dataplane import C, TunnelDataplane
from tunnel_packets import GENEVE, CryptoShim, GeneveOptions
from tunnel_scenarios import (
    HOST_MAC,
    NEXT_HOP_MAC,
    ROUTER_MAC,
    SWITCH_MAC,
    geneve_packet,
    plain_udp,
    routed,
)


def test_longest_prefix_wins_and_default_route_catches_rest(dp: TunnelDataplane) -> None:
    dp.add_route("0.0.0.0/0", port=1, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    dp.add_route("10.0.0.0/8", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    dp.add_route("10.0.0.0/24", port=3, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    for dst, port in (("10.0.0.2", 3), ("10.7.0.2", 2), ("172.16.0.1", 1)):
        sent = plain_udp(dst)
        assert dp.send(0, sent) == [(port, bytes(routed(sent)))]


def test_ipv6_route_and_vlan_tag_removed(dp: TunnelDataplane) -> None:
    dp.add_route("2001:db8:5::/48", port=4, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    ip6 = IPv6(src="2001:db8::1", dst="2001:db8:5::9") / UDP(sport=7, dport=8) / Raw(b"six")
    sent = Ether(dst=SWITCH_MAC, src=HOST_MAC) / Dot1Q(vlan=30) / ip6
    assert dp.send(0, sent) == [(4, bytes(Ether(dst=NEXT_HOP_MAC, src=ROUTER_MAC) / ip6))]


def test_route_miss_is_dropped_and_counted(dp: TunnelDataplane) -> None:
    dp.add_route("10.0.0.0/24", port=3, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    sent = plain_udp("192.168.1.1")
    for _ in range(2):
        assert dp.send(0, sent) == []
    assert dp.counter("drop_reasons", C("DROP_ROUTE_MISS")) == (2, 2 * len(sent))


def test_route_to_crypto_port_is_refused(dp: TunnelDataplane) -> None:
    dp.add_route("0.0.0.0/0", port=C("CRYPTO_PORT"), src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    assert dp.send(0, plain_udp()) == []
    assert dp.counter("drop_reasons", C("DROP_ROUTE_TO_CRYPTO"))[0] == 1


def test_non_ip_frame_without_rule_is_dropped_as_not_ip(dp: TunnelDataplane) -> None:
    dp.add_route("0.0.0.0/0", port=1, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    assert dp.send(0, Ether(dst=SWITCH_MAC, src=HOST_MAC, type=0x0806) / Raw(b"\0" * 28)) == []
    assert dp.counter("drop_reasons", C("DROP_NOT_IP"))[0] == 1


def geneve_with_region(region: bytes, opt_len: int) -> bytes:
    """A Geneve packet whose option region and opt_len are set by hand (possibly inconsistent)."""
    good = geneve_packet(0x42)
    raw = bytearray(bytes(good))
    geneve_at = 14 + 20 + 8
    raw[geneve_at] = (raw[geneve_at] & 0xC0) | opt_len
    frame = bytes(raw[:geneve_at + 8]) + region + bytes(raw[geneve_at + 8:])
    # keep the outer lengths honest so only the Geneve fields are wrong
    ip = IP(frame[14:])
    ip.len = len(frame) - 14
    ip[UDP].len = len(frame) - 34
    del ip.chksum
    return frame[:14] + bytes(ip)


def option(length_words: int) -> bytes:
    return struct.pack("!HBB", 0x0102, 0x01, length_words & 0x1F) + b"\x33" * (4 * length_words)


GENEVE_BYTES = bytes(geneve_packet(1))
MALFORMED: dict[str, tuple[Packet | bytes, str]] = {
    "truncated-ipv4": (Ether(dst=SWITCH_MAC, src=HOST_MAC, type=0x0800) / Raw(b"\x45" + b"\0" * 9),
                       "PARSER_ERROR_PACKET_TOO_SHORT"),
    "ipv4-options": (Ether(dst=SWITCH_MAC, src=HOST_MAC)
                     / IP(dst="10.0.0.2", options=b"\x01\x01\x01\x01") / UDP() / Raw(b"o"),
                     "PARSER_ERROR_IPV4_OPTIONS"),
    "ipv4-ihl-below-5": (Ether(dst=SWITCH_MAC, src=HOST_MAC) / IP(dst="10.0.0.2", ihl=4)
                         / Raw(b"\0" * 30), "PARSER_ERROR_IPV4_HEADER_LENGTH"),
    "ip-version-mismatch": (Ether(dst=SWITCH_MAC, src=HOST_MAC, type=0x86DD)
                            / IP(dst="10.0.0.2") / Raw(b"\0" * 40), "PARSER_ERROR_IP_VERSION"),
    "truncated-udp": (Ether(dst=SWITCH_MAC, src=HOST_MAC)
                      / IP(dst="10.0.0.2", proto=17) / Raw(b"\0\x35"),
                      "PARSER_ERROR_PACKET_TOO_SHORT"),
    "geneve-version-1": (GENEVE_BYTES[:42] + b"\x40" + GENEVE_BYTES[43:],
                         "PARSER_ERROR_GENEVE_VERSION"),
    "geneve-options-over-bound": (geneve_with_region(option(4) * 4 + option(0), 21),
                                  "PARSER_ERROR_GENEVE_OPTIONS_TOO_LONG"),
    "geneve-option-data-over-bound": (geneve_with_region(option(5), 6),
                                      "PARSER_ERROR_GENEVE_OPTION_TOO_LONG"),
    "geneve-option-past-region": (geneve_with_region(option(3), 2),
                                  "PARSER_ERROR_GENEVE_OPTION_LENGTH"),
    "geneve-truncated-options": (GENEVE_BYTES[:42] + b"\x05" + GENEVE_BYTES[43:50],
                                 "PARSER_ERROR_PACKET_TOO_SHORT"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_packet_is_dropped_and_counted_by_reason(dp: TunnelDataplane, name: str) -> None:
    frame, reason = MALFORMED[name]
    dp.add_route("0.0.0.0/0", port=1, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    dp.add_entry("tunnel_rules", "decap_geneve", priority=1, match={},
                 params={"tunnel_index": 3, "next_action": 1})
    assert dp.send(0, frame) == []
    assert dp.counter("drop_reasons", C("DROP_PARSER_ERROR"))[0] == 1
    assert dp.counter("parser_errors", C(reason))[0] == 1
    assert dp.counter("tunnel_in", 3) == (0, 0)   # never matched half-parsed


def test_geneve_with_options_at_the_bound_parses(dp: TunnelDataplane) -> None:
    dp.add_route("0.0.0.0/0", port=1, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    opts = [GeneveOptions(classid=i, type=1, data=b"\x44" * 16)
            for i in range(C("MAX_GENEVE_OPTIONS"))]
    sent = geneve_packet(0x42, options=opts)
    assert Ether(bytes(sent))[GENEVE].optionlen == C("MAX_GENEVE_OPTION_WORDS")
    assert dp.send(0, sent) == [(1, bytes(routed(sent)))]


def test_bad_ipv4_checksum_is_dropped_and_counted(dp: TunnelDataplane) -> None:
    dp.add_route("0.0.0.0/0", port=1, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    assert dp.send(0, Ether(dst=SWITCH_MAC, src=HOST_MAC) / IP(dst="10.0.0.2", chksum=0x1234)
                   / UDP() / Raw(b"c")) == []
    inner_bad = geneve_packet(0x42)
    inner_bad[GENEVE].payload[IP].chksum = 0x4321
    assert dp.send(0, inner_bad) == []
    assert dp.counter("drop_reasons", C("DROP_BAD_IPV4_CHECKSUM"))[0] == 2


def test_crypto_port_frame_without_valid_shim_is_dropped(dp: TunnelDataplane) -> None:
    dp.add_route("0.0.0.0/0", port=1, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    assert dp.send(C("CRYPTO_PORT"), CryptoShim(version=2, op=1) / plain_udp()) == []
    assert dp.counter("parser_errors", C("PARSER_ERROR_CRYPTO_SHIM"))[0] == 1
