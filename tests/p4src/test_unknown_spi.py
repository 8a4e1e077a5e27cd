"""ESP with an unknown SPI: dropped and counted on the decrypt tunnel whose match it meets
(esp_endpoints); ESP that no decrypt tunnel's match claims is routed like any IP packet.

The tables are programmed as the controller programs a decrypt tunnel (controller/pipeline.py):
one tunnel_rules entry per SA SPI, one decrypt_sas entry per SA, and one esp_endpoints entry
with the rule's match without the SPI (docs/dataplane.md "ESP with an unknown SPI").

Run just these: .venv/bin/python -m pytest tests/p4src/test_unknown_spi.py -q
"""

from __future__ import annotations

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from tunnel_dataplane import C, Ternary, TunnelDataplane
from tunnel_packets import CryptoShim
from tunnel_scenarios import (
    HOST_MAC,
    NEXT_HOP_MAC,
    ROUTER_MAC,
    SPI_IN,
    SWITCH_MAC,
    TUNNEL_DST,
    TUNNEL_SRC,
    esp_header,
    esp_in,
    rebuilt,
    routed,
)

TUNNEL = 21
SA_INDEX = 44
UNKNOWN_SPI = 0x9999
DEFAULT_PORT = 7
# The decrypt tunnel's match: ESP from the peer (TUNNEL_DST) to this gateway (TUNNEL_SRC).
PEER_MATCH = {"ip_version": 4, "ipv4_src": TUNNEL_DST, "ipv4_dst": TUNNEL_SRC}


def add_decrypt_tunnel(dp: TunnelDataplane, *, tunnel: int = TUNNEL, spi: int = SPI_IN,
                       sa_index: int = SA_INDEX, match: dict | None = None,
                       priority: int = 40) -> None:
    """A decrypt tunnel with one SA, as the controller writes it."""
    outer = PEER_MATCH if match is None else match
    dp.add_entry("tunnel_rules", "ipsec_decrypt", priority=priority,
                 match={**outer, "tunnel_header": C("TUNNEL_HEADER_ESP"), "esp_spi": spi},
                 params={"tunnel_index": tunnel, "next_action": C("NEXT_ACTION_FORWARD"),
                         "tunnel_mode": 1})
    dp.add_entry("decrypt_sas", "set_decrypt_sa", match={"tunnel_index": tunnel, "spi": spi},
                 params={"sa_index": sa_index})
    dp.add_entry("esp_endpoints", "drop_unknown_spi", match=outer, priority=priority,
                 params={"tunnel_index": tunnel})


def add_default_route(dp: TunnelDataplane) -> None:
    dp.add_route("0.0.0.0/0", port=DEFAULT_PORT, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)


def test_unknown_spi_is_dropped_and_counted_on_the_tunnel(dp: TunnelDataplane) -> None:
    add_decrypt_tunnel(dp)
    add_default_route(dp)   # before the fix, this is where the still-encrypted ESP went
    sent = [esp_in(spi=UNKNOWN_SPI), esp_in(spi=UNKNOWN_SPI, nat_t=True)]
    for frame in sent:
        assert dp.send(1, frame) == []
    nbytes = sum(len(frame) for frame in sent)
    assert dp.tunnel_counts("tunnel_in", TUNNEL) == (2, nbytes)
    assert dp.tunnel_counts("tunnel_drop_in", TUNNEL) == (2, nbytes)
    assert dp.tunnel_counts("tunnel_out", TUNNEL) == (0, 0)
    assert dp.tunnel_counts("tunnel_drop_out", TUNNEL) == (0, 0)
    assert dp.counter("drop_reasons", C("DROP_SA_MISS"))[0] == 2
    assert dp.counter("drop_reasons", C("DROP_ROUTE_MISS"))[0] == 0


def test_known_spi_still_goes_to_the_worker(dp: TunnelDataplane) -> None:
    add_decrypt_tunnel(dp)
    add_default_route(dp)
    sent = esp_in()
    ((port, frame),) = dp.send(1, sent)
    assert port == C("CRYPTO_PORT")
    shim = CryptoShim(frame[:16])
    assert (shim.tunnel_index, shim.sa_index, frame[16:]) == (TUNNEL, SA_INDEX, bytes(sent))
    assert dp.tunnel_counts("tunnel_drop_in", TUNNEL) == (0, 0)
    assert dp.counter("drop_reasons", C("DROP_SA_MISS"))[0] == 0


def test_esp_no_decrypt_tunnel_claims_is_routed_as_it_is(dp: TunnelDataplane) -> None:
    # The rule for ESP matching no tunnel: the switch is not its end point, so it is transit
    # traffic, routed unchanged like any IP packet (a route miss would drop it as such).
    add_decrypt_tunnel(dp)
    add_default_route(dp)
    body = Raw(esp_header(UNKNOWN_SPI, 3) + b"\x5a" * 48)
    transit = [
        rebuilt(Ether(dst=SWITCH_MAC, src=HOST_MAC)
                / IP(src="198.51.100.7", dst=TUNNEL_SRC, proto=50) / body),   # another peer
        rebuilt(Ether(dst=SWITCH_MAC, src=HOST_MAC)
                / IP(src=TUNNEL_DST, dst="198.51.100.8", proto=50) / body),   # another gateway
        rebuilt(Ether(dst=SWITCH_MAC, src=HOST_MAC)
                / IP(src="198.51.100.7", dst="198.51.100.8") / UDP(sport=4500, dport=4500)
                / body),
    ]
    for frame in transit:
        assert dp.send(1, frame) == [(DEFAULT_PORT, bytes(routed(frame)))]
    assert dp.tunnel_counts("tunnel_in", TUNNEL) == (0, 0)
    assert dp.tunnel_counts("tunnel_drop_in", TUNNEL) == (0, 0)
    assert dp.counter("drop_reasons", C("DROP_SA_MISS"))[0] == 0
    # With no route at all it is a route miss, counted on no tunnel.
    bare = TunnelDataplane()
    add_decrypt_tunnel(bare)
    assert bare.send(1, transit[0]) == []
    assert bare.counter("drop_reasons", C("DROP_ROUTE_MISS"))[0] == 1
    assert bare.tunnel_counts("tunnel_drop_in", TUNNEL) == (0, 0)


def test_non_esp_to_the_tunnel_addresses_is_not_claimed(dp: TunnelDataplane) -> None:
    # IKE (UDP 500, and 4500 with the non-ESP marker) between the same peers is routed.
    add_decrypt_tunnel(dp)
    add_default_route(dp)
    for sport, marker in ((500, b""), (4500, b"\0\0\0\0")):
        ike = rebuilt(Ether(dst=SWITCH_MAC, src=HOST_MAC) / IP(src=TUNNEL_DST, dst=TUNNEL_SRC)
                      / UDP(sport=sport, dport=sport) / Raw(marker + b"ike-message" * 3))
        assert dp.send(1, ike) == [(DEFAULT_PORT, bytes(routed(ike)))]
    assert dp.tunnel_counts("tunnel_in", TUNNEL) == (0, 0)


def test_any_tunnel_rule_wins_over_an_end_point(dp: TunnelDataplane) -> None:
    # Tunnel 21 matches the peer exactly; tunnel 22 matches any ESP to this gateway (fewer
    # prefix bits, so a lower priority in tunnel_rules). 22's SPI reaches 22 even though 21's
    # end point is more specific: end points are looked up only when no rule matched.
    add_decrypt_tunnel(dp, priority=60)
    add_decrypt_tunnel(dp, tunnel=22, spi=0x3003, sa_index=45, priority=30,
                       match={"ip_version": 4, "ipv4_dst": TUNNEL_SRC})
    ((port, frame),) = dp.send(1, esp_in(spi=0x3003))
    assert port == C("CRYPTO_PORT")
    assert (CryptoShim(frame[:16]).tunnel_index, CryptoShim(frame[:16]).sa_index) == (22, 45)
    # An unknown SPI from the peer is 21's; from another peer, 22's.
    assert dp.send(1, esp_in(spi=UNKNOWN_SPI)) == []
    other_peer = rebuilt(Ether(dst=SWITCH_MAC, src=HOST_MAC)
                         / IP(src="198.51.100.7", dst=TUNNEL_SRC, proto=50)
                         / Raw(esp_header(UNKNOWN_SPI, 1) + b"\x5a" * 48))
    assert dp.send(1, other_peer) == []
    assert dp.counter("tunnel_drop_in", 21)[0] == 1
    assert dp.counter("tunnel_drop_in", 22)[0] == 1
    assert dp.counter("tunnel_in", 22)[0] == 2


def test_ipv6_and_ingress_port_end_points(dp: TunnelDataplane) -> None:
    add_decrypt_tunnel(dp, tunnel=23, spi=0x4004, sa_index=46,
                       match={"ingress_port": 2, "ip_version": 6,
                              "ipv6_dst": Ternary("2001:db8:1::", "ffff:ffff:ffff::")})
    dp.add_route("::/0", port=DEFAULT_PORT, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    esp6 = rebuilt(Ether(dst=SWITCH_MAC, src=HOST_MAC)
                   / IPv6(src="2001:db8::1", dst="2001:db8:1::10", nh=50)
                   / Raw(esp_header(UNKNOWN_SPI, 1) + b"\x5a" * 48))
    assert dp.send(2, esp6) == []
    assert dp.tunnel_counts("tunnel_drop_in", 23) == (1, len(esp6))
    # The same frame on another port is not the tunnel's: routed.
    assert dp.send(1, esp6) == [(DEFAULT_PORT, bytes(routed(esp6)))]
    assert dp.counter("tunnel_in", 23)[0] == 1


def test_chained_end_point_only_after_its_previous_tunnel(dp: TunnelDataplane) -> None:
    # A decrypt tunnel chained after tunnel 9 (e.g. ESP inside a Geneve decap): its end point
    # carries prev_tunnel, so first-pass ESP with an unknown SPI is not its.
    add_decrypt_tunnel(dp, tunnel=24, spi=0x5005, sa_index=47,
                       match={"prev_tunnel": 9, **PEER_MATCH})
    add_default_route(dp)
    sent = esp_in(spi=UNKNOWN_SPI)
    assert dp.send(1, sent) == [(DEFAULT_PORT, bytes(routed(sent)))]
    assert dp.counter("tunnel_in", 24)[0] == 0
