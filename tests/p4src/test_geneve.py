"""Geneve encap and decap on p4src/tunnel_offload.p4, byte for byte against scapy.

Run just these: .venv/bin/python -m pytest tests/p4src/test_geneve.py -q
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw
from tunnel_dataplane import C, Ternary, TunnelDataplane
from tunnel_packets import GENEVE, GeneveOptions
from tunnel_scenarios import (
    HOST_MAC,
    INNER_DST_MAC,
    INNER_SRC_MAC,
    NEXT_HOP_MAC,
    OUTER_V4,
    ROUTER_MAC,
    SWITCH_MAC,
    encap_params,
    expected_encap,
    geneve_packet,
    options_of,
    plain_udp,
    routed,
    vxlan_packet,
)


def add_encap_rule(dp: TunnelDataplane, *, tunnel: int, options: list[GeneveOptions],
                   v6: bool = False, next_action: str = "NEXT_ACTION_FORWARD",
                   match: dict | None = None, vni: int = 0x123456, critical: int = 0) -> None:
    dp.add_entry("tunnel_rules", "encap_geneve_v6" if v6 else "encap_geneve_v4",
                 match=match if match is not None else {"ingress_port": 1}, priority=10,
                 params=encap_params(tunnel=tunnel, options=options, v6=v6,
                                     next_action=next_action, vni=vni, critical=critical))


@pytest.mark.parametrize("count,data_len", [(0, 0), (1, 4), (4, 16)],
                         ids=["no-options", "one-option", "max-options"])
def test_encap_ipv4_outer_matches_scapy(dp: TunnelDataplane, count: int, data_len: int) -> None:
    options = options_of(count, data_len)
    add_encap_rule(dp, tunnel=7, options=options)
    dp.add_route("192.0.2.0/24", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    sent = plain_udp()
    out = dp.send(1, sent)
    assert out == [(2, bytes(expected_encap(sent, options)))]
    if count == C("MAX_GENEVE_OPTIONS"):
        assert GENEVE(out[0][1][42:]).optionlen == C("MAX_GENEVE_OPTION_WORDS")


@pytest.mark.parametrize("count,data_len", [(0, 0), (1, 8), (4, 16)])
def test_encap_ipv6_outer_matches_scapy(dp: TunnelDataplane, count: int, data_len: int) -> None:
    options = options_of(count, data_len)
    add_encap_rule(dp, tunnel=7, options=options, v6=True, critical=1)
    dp.add_route("2001:db8:1::/48", port=3, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    sent = plain_udp()
    assert dp.send(1, sent) == [(3, bytes(expected_encap(sent, options, v6=True, critical=1)))]


def test_encap_source_port_hashes_tcp_ports_too(dp: TunnelDataplane) -> None:
    add_encap_rule(dp, tunnel=7, options=[])
    dp.add_route("192.0.2.0/24", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    ports = set()
    for sport in (40000, 40001, 40002):
        sent = Ether(bytes(Ether(dst=SWITCH_MAC, src=HOST_MAC) / IP(src="10.0.0.1", dst="10.0.0.2")
                           / TCP(sport=sport, dport=443) / Raw(b"t")))
        ((_, frame),) = dp.send(1, sent)
        assert frame == bytes(expected_encap(sent, []))
        ports.add(Ether(frame)[UDP].sport)
    assert len(ports) == 3


def test_encap_removes_vlan_tag_from_inner_frame(dp: TunnelDataplane) -> None:
    add_encap_rule(dp, tunnel=7, options=[])
    dp.add_route("192.0.2.0/24", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    plain = plain_udp()
    sent = Ether(dst=SWITCH_MAC, src=HOST_MAC) / Dot1Q(vlan=12) / plain[IP]
    assert dp.send(1, sent) == [(2, bytes(expected_encap(sent, [])))]


def test_encap_with_zero_inner_macs_keeps_the_packets_macs(dp: TunnelDataplane) -> None:
    params = encap_params(tunnel=7, options=[])
    params.update(inner_dst_mac=0, inner_src_mac=0)
    dp.add_entry("tunnel_rules", "encap_geneve_v4", match={"ingress_port": 1}, priority=1,
                 params=params)
    dp.add_route("192.0.2.0/24", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    sent = plain_udp()
    ((_, frame),) = dp.send(1, sent)
    inner = Ether(frame)[GENEVE].payload
    assert (inner.dst, inner.src) == (sent.dst, sent.src)


def test_encap_counts_in_and_out_per_packet(dp: TunnelDataplane) -> None:
    add_encap_rule(dp, tunnel=7, options=options_of(1, 4))
    dp.add_route("192.0.2.0/24", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    sent = plain_udp()
    emitted = [dp.send(1, sent) for _ in range(3)]
    assert [len(out) for out in emitted] == [1, 1, 1]
    assert dp.tunnel_counts("tunnel_in", 7) == (3, 3 * len(sent))
    assert dp.tunnel_counts("tunnel_out", 7) == (3, sum(len(out[0][1]) for out in emitted))
    assert dp.tunnel_counts("tunnel_in", 8) == (0, 0)
    assert dp.tunnel_counts("tunnel_drop_in", 7) == (0, 0)
    assert dp.tunnel_counts("tunnel_drop_out", 7) == (0, 0)


def test_rule_hits_count_per_entry(dp: TunnelDataplane) -> None:
    dp.add_route("0.0.0.0/0", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    first = dp.add_entry("tunnel_rules", "encap_geneve_v4", match={"ipv4_dst": "10.0.0.2"},
                         priority=2, params=encap_params(tunnel=7, options=[]))
    second = dp.add_entry("tunnel_rules", "encap_geneve_v4", match={"ingress_port": 1},
                          priority=1, params=encap_params(tunnel=8, options=[]))
    for dst in ("10.0.0.2", "10.0.0.2", "10.0.0.3"):
        assert len(dp.send(1, plain_udp(dst))) == 1
    assert dp.rule_hits(first) == (2, 2 * len(plain_udp()))
    assert dp.rule_hits(second)[0] == 1


def test_encap_without_route_drops_and_counts_out_side(dp: TunnelDataplane) -> None:
    add_encap_rule(dp, tunnel=7, options=[])
    assert dp.send(1, plain_udp()) == []
    assert dp.counter("tunnel_out", 7)[0] == 1
    assert dp.counter("tunnel_drop_out", 7)[0] == 1
    assert dp.counter("drop_reasons", C("DROP_ROUTE_MISS"))[0] == 1


def test_encap_option_words_beyond_bound_is_dropped_as_bad_rule(dp: TunnelDataplane) -> None:
    dp.add_entry("tunnel_rules", "encap_geneve_v4", match={"ingress_port": 1}, priority=1,
                 params={"tunnel_index": 7, "next_action": C("NEXT_ACTION_FORWARD"),
                         "src_addr": OUTER_V4[0], "dst_addr": OUTER_V4[1],
                         "inner_dst_mac": INNER_DST_MAC, "inner_src_mac": INNER_SRC_MAC,
                         "vni": 1, "oam": 0, "critical": 0,
                         "option_words": C("MAX_GENEVE_OPTION_WORDS") + 1, "options": 0})
    dp.add_route("0.0.0.0/0", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    assert dp.send(1, plain_udp()) == []
    assert dp.counter("drop_reasons", C("DROP_BAD_RULE"))[0] == 1
    assert dp.counter("tunnel_drop_in", 7)[0] == 1


@pytest.mark.parametrize("options", [[], options_of(2, 8)], ids=["plain", "with-options"])
def test_decap_forwards_inner_frame(dp: TunnelDataplane, options: list) -> None:
    dp.add_entry("tunnel_rules", "decap_geneve", priority=5,
                 match={"tunnel_header": C("TUNNEL_HEADER_GENEVE"), "geneve_vni": 0x42},
                 params={"tunnel_index": 3, "next_action": C("NEXT_ACTION_FORWARD")})
    dp.add_route("10.1.0.0/16", port=4, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    sent = geneve_packet(0x42, options=options)
    expected = sent[GENEVE].payload.copy()
    expected.dst, expected.src = NEXT_HOP_MAC, ROUTER_MAC
    assert dp.send(1, sent) == [(4, bytes(expected))]
    assert dp.tunnel_counts("tunnel_in", 3) == (1, len(sent))
    assert dp.tunnel_counts("tunnel_out", 3) == (1, len(expected))


def test_decap_rule_on_packet_without_geneve_drops_in(dp: TunnelDataplane) -> None:
    dp.add_entry("tunnel_rules", "decap_geneve", priority=5, match={"ingress_port": 1},
                 params={"tunnel_index": 3, "next_action": C("NEXT_ACTION_FORWARD")})
    dp.add_route("0.0.0.0/0", port=4, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    assert dp.send(1, plain_udp()) == []
    assert dp.counter("tunnel_drop_in", 3)[0] == 1
    assert dp.counter("drop_reasons", C("DROP_NOT_GENEVE"))[0] == 1


def test_geneve_and_vxlan_vni_match_only_their_own_header(dp: TunnelDataplane) -> None:
    add_encap_rule(dp, tunnel=11, options=[], vni=1100,
                   match={"tunnel_header": C("TUNNEL_HEADER_GENEVE"), "geneve_vni": 100})
    add_encap_rule(dp, tunnel=12, options=[], vni=1200,
                   match={"tunnel_header": C("TUNNEL_HEADER_VXLAN"), "vxlan_vni": 100})
    dp.add_route("0.0.0.0/0", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)

    out = dp.send(1, geneve_packet(100))
    assert len(out) == 1 and GENEVE(out[0][1][42:]).vni == 1100
    out = dp.send(1, vxlan_packet(100))
    assert len(out) == 1 and GENEVE(out[0][1][42:]).vni == 1200
    # Same VNI value, other header: no rule, routed as it is (MACs rewritten only).
    sent = geneve_packet(101)
    expected = sent.copy()
    expected.dst, expected.src = NEXT_HOP_MAC, ROUTER_MAC
    assert dp.send(1, sent) == [(2, bytes(expected))]
    assert dp.counter("tunnel_in", 11)[0] == 1
    assert dp.counter("tunnel_in", 12)[0] == 1


def test_inner_mac_and_ip_keys_match_geneve_payload(dp: TunnelDataplane) -> None:
    add_encap_rule(dp, tunnel=13, options=[], vni=13,
                   match={"tunnel_header": C("TUNNEL_HEADER_GENEVE"),
                          "inner_dst_mac": "02:00:00:00:0c:01",
                          "inner_ipv4_dst": Ternary("10.1.0.0", "255.255.255.0")})
    dp.add_route("0.0.0.0/0", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    out = dp.send(1, geneve_packet(7, inner_dst="10.1.0.9"))
    assert len(out) == 1 and GENEVE(out[0][1][42:]).vni == 13
    out = dp.send(1, geneve_packet(7, inner_dst="10.2.0.9"))
    assert len(out) == 1 and GENEVE(out[0][1][42:]).vni == 7   # unmatched: routed unchanged


def test_decap_of_ipv6_inner_over_ipv6_outer(dp: TunnelDataplane) -> None:
    dp.add_entry("tunnel_rules", "decap_geneve", priority=5,
                 match={"tunnel_header": C("TUNNEL_HEADER_GENEVE"), "inner_ip_version": 6,
                        "inner_ipv6_dst": Ternary("2001:db8:9::", "ffff:ffff:ffff::")},
                 params={"tunnel_index": 4, "next_action": C("NEXT_ACTION_FORWARD")})
    dp.add_route("2001:db8:9::/48", port=4, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    inner = (Ether(dst="02:00:00:00:0c:01", src="02:00:00:00:0c:02")
             / IPv6(src="2001:db8:8::1", dst="2001:db8:9::1") / UDP(sport=1, dport=2)
             / Raw(b"inner six"))
    sent = (Ether(dst=SWITCH_MAC, src=HOST_MAC) / IPv6(src="2001:db8::a", dst="2001:db8::b")
            / UDP(sport=50000, dport=6081) / GENEVE(vni=9, proto=0x6558) / inner)
    assert dp.send(1, sent) == [(4, bytes(routed(Ether(bytes(inner)))))]
    assert dp.counter("tunnel_out", 4)[0] == 1
