"""Recirculation: chaining tunnels by tunnel index, re-matching on inner IPs, the pass bound.

Run just these: .venv/bin/python -m pytest tests/p4src/test_chaining.py -q
"""

from __future__ import annotations

from scapy.layers.inet import IP
from test_geneve import add_encap_rule
from tunnel_dataplane import C, Ternary, TunnelDataplane
from tunnel_packets import GENEVE
from tunnel_scenarios import (
    INNER_DST_MAC,
    INNER_SRC_MAC,
    NEXT_HOP_MAC,
    OUTER_V4,
    ROUTER_MAC,
    geneve_packet,
    plain_udp,
    routed,
)


def add_decap_then_recirculate(dp: TunnelDataplane, *, tunnel: int = 5) -> None:
    dp.add_entry("tunnel_rules", "decap_geneve", priority=5,
                 match={"tunnel_header": C("TUNNEL_HEADER_GENEVE"), "geneve_vni": 0x42,
                        "prev_tunnel": 0},
                 params={"tunnel_index": tunnel, "next_action": C("NEXT_ACTION_RECIRCULATE")})


def test_decap_then_encap_chained_by_tunnel_index(dp: TunnelDataplane) -> None:
    add_decap_then_recirculate(dp)
    add_encap_rule(dp, tunnel=6, options=[], vni=0x77,
                   match={"prev_tunnel": 5, "ipv4_dst": "10.1.0.5"})
    dp.add_route("192.0.2.0/24", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    sent = geneve_packet(0x42, inner_dst="10.1.0.5")
    out = dp.send(1, sent)
    assert len(out) == 1
    port, frame = out[0]
    assert port == 2
    new = GENEVE(frame[42:])
    assert new.vni == 0x77
    inner = sent[GENEVE].payload.copy()
    inner.dst, inner.src = INNER_DST_MAC, INNER_SRC_MAC
    assert bytes(new.payload) == bytes(inner)
    for tunnel in (5, 6):
        assert dp.counter("tunnel_in", tunnel)[0] == 1
        assert dp.counter("tunnel_out", tunnel)[0] == 1


def test_second_pass_rematches_on_inner_ips(dp: TunnelDataplane) -> None:
    add_decap_then_recirculate(dp)
    add_encap_rule(dp, tunnel=6, options=[], vni=6,
                   match={"prev_tunnel": 5, "ipv4_dst": Ternary("10.1.0.5", "255.255.255.255")})
    add_encap_rule(dp, tunnel=8, options=[], vni=8,
                   match={"prev_tunnel": 5, "ipv4_dst": Ternary("10.1.0.6", "255.255.255.255")})
    dp.add_route("192.0.2.0/24", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    dp.add_route("10.1.0.0/16", port=5, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    assert GENEVE(dp.send(1, geneve_packet(0x42, inner_dst="10.1.0.5"))[0][1][42:]).vni == 6
    assert GENEVE(dp.send(1, geneve_packet(0x42, inner_dst="10.1.0.6"))[0][1][42:]).vni == 8
    # No second-pass rule for 10.1.0.7: the decapsulated frame is routed as it is.
    out = dp.send(1, geneve_packet(0x42, inner_dst="10.1.0.7"))
    assert [port for port, _ in out] == [5]
    assert IP(out[0][1][14:]).dst == "10.1.0.7"
    assert dp.counter("tunnel_in", 5)[0] == 3


def test_chained_rule_does_not_match_on_first_pass(dp: TunnelDataplane) -> None:
    add_encap_rule(dp, tunnel=6, options=[], match={"prev_tunnel": 5})
    dp.add_route("10.0.0.0/8", port=5, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    sent = plain_udp()
    assert dp.send(1, sent) == [(5, bytes(routed(sent)))]
    assert dp.counter("tunnel_in", 6) == (0, 0)


def test_recirculation_loop_is_cut_at_the_pass_bound(dp: TunnelDataplane) -> None:
    # Encapsulate towards an outer destination that matches the rule again, forever.
    add_encap_rule(dp, tunnel=9, options=[], next_action="NEXT_ACTION_RECIRCULATE",
                   match={"ipv4_dst": OUTER_V4[1]})
    dp.add_route("0.0.0.0/0", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    assert dp.send(1, plain_udp(dst=OUTER_V4[1])) == []
    passes = C("MAX_PASSES")
    assert dp.counter("tunnel_in", 9)[0] == passes
    assert dp.counter("tunnel_out", 9)[0] == passes
    assert dp.counter("tunnel_drop_out", 9)[0] == 1
    assert dp.counter("drop_reasons", C("DROP_PASS_LIMIT"))[0] == 1
