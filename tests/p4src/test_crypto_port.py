"""The crypto port: frames to the worker carry the right shim; frames back continue correctly.

Run just these: .venv/bin/python -m pytest tests/p4src/test_crypto_port.py -q
"""

from __future__ import annotations

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw
from test_geneve import add_encap_rule
from tunnel_dataplane import C, TunnelDataplane
from tunnel_packets import GENEVE, CryptoShim
from tunnel_scenarios import (
    HOST_MAC,
    NEXT_HOP_MAC,
    ROUTER_MAC,
    SPI_IN,
    SPI_OUT,
    SWITCH_MAC,
    TUNNEL_DST,
    TUNNEL_SRC,
    encrypt_tunnel_params,
    esp_header,
    esp_in,
    expected_encrypt_tunnel,
    inner_tcp,
    routed,
    worker_decrypt_return_tunnel,
    worker_encrypt_return,
)


def add_encrypt_tunnel(dp: TunnelDataplane, *, nat_t: int = 0,
                       next_action: str = "NEXT_ACTION_FORWARD") -> None:
    dp.add_entry("tunnel_rules", "ipsec_encrypt_tunnel_v4", match={"ingress_port": 1}, priority=3,
                 params=encrypt_tunnel_params(nat_t=nat_t, next_action=next_action))


def test_encrypt_tunnel_mode_sends_built_headers_and_shim(dp: TunnelDataplane) -> None:
    add_encrypt_tunnel(dp)
    sent = inner_tcp()
    out = dp.send(1, sent)
    assert out == [(C("CRYPTO_PORT"), expected_encrypt_tunnel(sent))]
    assert dp.tunnel_counts("tunnel_in", 20) == (1, len(sent))
    assert dp.tunnel_counts("tunnel_out", 20) == (0, 0)   # counted when the worker returns it


def test_encrypt_tunnel_mode_nat_t_from_vlan_tagged_ipv6(dp: TunnelDataplane) -> None:
    add_encrypt_tunnel(dp, nat_t=1)
    ip6 = IPv6(src="2001:db8::5", dst="2001:db8::6", hlim=9) / UDP(sport=1, dport=2) / Raw(b"x" * 7)
    sent = Ether(dst=SWITCH_MAC, src=HOST_MAC) / Dot1Q(vlan=5) / ip6
    out = dp.send(1, sent)
    expected = (CryptoShim(op=1, flags=C("CRYPTO_FLAG_TUNNEL_MODE") | C("CRYPTO_FLAG_NAT_T"),
                           next_action=1, sa_index=33, tunnel_index=20, pass_=1, next_header=41,
                           l3_offset=14, esp_offset=42, ingress_port=1)
                / Ether(dst=SWITCH_MAC, src=HOST_MAC)
                / IP(src=TUNNEL_SRC, dst=TUNNEL_DST, ttl=64, id=0, flags="DF", proto=17)
                / UDP(sport=4500, dport=4500, chksum=0) / Raw(esp_header(SPI_OUT) + bytes(ip6)))
    assert out == [(C("CRYPTO_PORT"), bytes(expected))]


def test_encrypt_transport_mode_keeps_ip_header(dp: TunnelDataplane) -> None:
    dp.add_entry("tunnel_rules", "ipsec_encrypt_transport", match={"ingress_port": 1},
                 priority=3, params={"tunnel_index": 22, "next_action": 1, "sa_index": 35,
                                     "spi": SPI_OUT, "nat_t": 0})
    sent = inner_tcp()
    out = dp.send(1, sent)
    ip = sent[IP]
    expected = (CryptoShim(op=1, flags=0, next_action=1, sa_index=35, tunnel_index=22, pass_=1,
                           next_header=6, l3_offset=14, esp_offset=34, ingress_port=1)
                / Ether(dst=SWITCH_MAC, src=HOST_MAC)
                / IP(src=ip.src, dst=ip.dst, id=ip.id, ttl=ip.ttl, proto=50, len=ip.len + 8)
                / Raw(esp_header(SPI_OUT) + bytes(ip.payload)))
    assert out == [(C("CRYPTO_PORT"), bytes(expected))]


def test_encrypt_of_non_ip_frame_drops_in(dp: TunnelDataplane) -> None:
    dp.add_entry("tunnel_rules", "ipsec_encrypt_transport", match={"ingress_port": 1},
                 priority=3, params={"tunnel_index": 22, "next_action": 1, "sa_index": 35,
                                     "spi": SPI_OUT, "nat_t": 0})
    assert dp.send(1, Ether(dst=SWITCH_MAC, src=HOST_MAC, type=0x88B5) / Raw(b"z" * 46)) == []
    assert dp.counter("tunnel_drop_in", 22)[0] == 1
    assert dp.counter("drop_reasons", C("DROP_NOT_IP"))[0] == 1


def test_encrypt_return_is_counted_and_routed_on_outer_destination(dp: TunnelDataplane) -> None:
    add_encrypt_tunnel(dp)
    dp.add_route("203.0.113.0/24", port=6, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    ((port, to_worker),) = dp.send(1, inner_tcp())
    returned = worker_encrypt_return(to_worker)
    out = dp.send(C("CRYPTO_PORT"), returned)
    expected = Ether(returned[16:])
    expected.dst, expected.src = NEXT_HOP_MAC, ROUTER_MAC
    assert out == [(6, bytes(expected))]
    assert dp.tunnel_counts("tunnel_out", 20) == (1, len(out[0][1]))   # the shim is not counted


def test_encrypt_return_with_recirculate_chains_to_next_rule(dp: TunnelDataplane) -> None:
    add_encrypt_tunnel(dp, next_action="NEXT_ACTION_RECIRCULATE")
    # ingress_port still means where the packet entered the switch, not CRYPTO_PORT.
    add_encap_rule(dp, tunnel=23, options=[], vni=23, match={"prev_tunnel": 20, "ingress_port": 1})
    dp.add_route("192.0.2.0/24", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    ((_, to_worker),) = dp.send(1, inner_tcp())
    assert CryptoShim(to_worker[:16]).next_action == C("NEXT_ACTION_RECIRCULATE")
    returned = worker_encrypt_return(to_worker)
    out = dp.send(C("CRYPTO_PORT"), returned)
    assert len(out) == 1 and out[0][0] == 2
    geneve = GENEVE(out[0][1][42:])
    assert geneve.vni == 23
    assert IP(bytes(geneve.payload)[14:]).proto == 50   # the ESP packet went into Geneve
    assert dp.counter("tunnel_in", 23)[0] == 1


def add_decrypt(dp: TunnelDataplane, *, tunnel_mode: int = 1,
                next_action: str = "NEXT_ACTION_FORWARD") -> None:
    dp.add_entry("tunnel_rules", "ipsec_decrypt", priority=4,
                 match={"tunnel_header": C("TUNNEL_HEADER_ESP"), "esp_spi": SPI_IN},
                 params={"tunnel_index": 21, "next_action": C(next_action),
                         "tunnel_mode": tunnel_mode})
    dp.add_entry("decrypt_sas", "set_decrypt_sa", match={"tunnel_index": 21, "spi": SPI_IN},
                 params={"sa_index": 44})


def test_decrypt_sends_frame_unchanged_with_sa_from_table(dp: TunnelDataplane) -> None:
    add_decrypt(dp)
    for nat_t, esp_offset in ((False, 34), (True, 42)):
        sent = esp_in(nat_t=nat_t)
        expected = CryptoShim(op=C("CRYPTO_OP_DECRYPT"),
                              flags=C("CRYPTO_FLAG_TUNNEL_MODE") | (2 if nat_t else 0),
                              next_action=1, sa_index=44, tunnel_index=21, pass_=1,
                              next_header=0, l3_offset=14, esp_offset=esp_offset,
                              ingress_port=1) / sent
        assert dp.send(1, sent) == [(C("CRYPTO_PORT"), bytes(expected))]
    assert dp.counter("tunnel_in", 21)[0] == 2


def test_decrypt_unknown_spi_for_tunnel_is_dropped_and_counted(dp: TunnelDataplane) -> None:
    add_decrypt(dp)
    dp.add_entry("tunnel_rules", "ipsec_decrypt", priority=2,
                 match={"tunnel_header": C("TUNNEL_HEADER_ESP")},
                 params={"tunnel_index": 21, "next_action": 1, "tunnel_mode": 1})
    assert dp.send(1, esp_in(spi=0x9999)) == []
    assert dp.counter("tunnel_drop_in", 21)[0] == 1
    assert dp.counter("drop_reasons", C("DROP_SA_MISS"))[0] == 1


def test_ike_on_4500_is_not_esp(dp: TunnelDataplane) -> None:
    add_decrypt(dp)
    dp.add_entry("tunnel_rules", "ipsec_decrypt", priority=2,
                 match={"tunnel_header": C("TUNNEL_HEADER_ESP")},
                 params={"tunnel_index": 21, "next_action": 1, "tunnel_mode": 1})
    dp.add_route("0.0.0.0/0", port=7, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    sent = (Ether(dst=SWITCH_MAC, src=HOST_MAC) / IP(src=TUNNEL_DST, dst=TUNNEL_SRC)
            / UDP(sport=4500, dport=4500) / Raw(b"\0\0\0\0" + b"ike-message" * 3))
    assert dp.send(1, sent) == [(7, bytes(routed(sent)))]
    assert dp.counter("tunnel_in", 21) == (0, 0)


def test_decrypt_return_tunnel_mode_routes_inner_packet(dp: TunnelDataplane) -> None:
    add_decrypt(dp)
    dp.add_route("10.0.0.0/8", port=5, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    ((_, to_worker),) = dp.send(1, esp_in(nat_t=True))
    plain = IP(src="10.9.0.1", dst="10.0.0.1", id=77) / TCP(sport=443, dport=4000) / Raw(b"hi")
    returned = worker_decrypt_return_tunnel(to_worker, plain)
    out = dp.send(C("CRYPTO_PORT"), returned)
    assert out == [(5, bytes(Ether(dst=NEXT_HOP_MAC, src=ROUTER_MAC) / plain))]
    assert dp.counter("tunnel_out", 21)[0] == 1


def test_decrypt_return_transport_mode_restores_protocol_and_lengths(dp: TunnelDataplane) -> None:
    add_decrypt(dp, tunnel_mode=0)
    dp.add_route("203.0.113.0/24", port=5, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    ((_, to_worker),) = dp.send(1, esp_in(nat_t=True))
    tcp = TCP(sport=443, dport=4000, flags="A") / Raw(b"plaintext")
    shim = CryptoShim(to_worker[:16])
    assert shim.flags == C("CRYPTO_FLAG_NAT_T")
    shim.next_header = 6
    returned = (shim / Ether(dst=SWITCH_MAC, src=HOST_MAC)
                / IP(src=TUNNEL_DST, dst=TUNNEL_SRC, id=11) / UDP(sport=4500, dport=4500, chksum=0)
                / Raw(esp_header(SPI_IN, 7) + bytes(tcp)))
    out = dp.send(C("CRYPTO_PORT"), returned)
    expected = (Ether(dst=NEXT_HOP_MAC, src=ROUTER_MAC)
                / IP(src=TUNNEL_DST, dst=TUNNEL_SRC, id=11, proto=6) / Raw(bytes(tcp)))
    assert out == [(5, bytes(expected))]


def test_crypto_return_with_failure_status_is_dropped(dp: TunnelDataplane) -> None:
    add_encrypt_tunnel(dp)
    dp.add_route("0.0.0.0/0", port=6, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    ((_, to_worker),) = dp.send(1, inner_tcp())
    returned = bytearray(worker_encrypt_return(to_worker))
    returned[11] = 1   # status
    assert dp.send(C("CRYPTO_PORT"), bytes(returned)) == []
    assert dp.counter("drop_reasons", C("DROP_BAD_CRYPTO_RETURN"))[0] == 1
    assert dp.counter("tunnel_drop_out", 20)[0] == 1
    assert dp.counter("tunnel_out", 20) == (0, 0)


def test_crypto_return_naming_no_valid_tunnel_is_dropped_on_no_tunnel(
        dp: TunnelDataplane) -> None:
    """A shim tunnel index of 0 or past MAX_TUNNELS never indexes the per-tunnel counters
    (at MAX_TUNNELS = 2^16 every other 16-bit index names a tunnel, so only 0 is left)."""
    add_encrypt_tunnel(dp)
    dp.add_route("0.0.0.0/0", port=6, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    ((_, to_worker),) = dp.send(1, inner_tcp())
    good = worker_encrypt_return(to_worker)
    bad_indices = [0, *(i for i in (C("MAX_TUNNELS"), 0xFFFF) if C("MAX_TUNNELS") <= i < 1 << 16)]
    for bad_index in bad_indices:
        returned = bytearray(good)
        returned[6:8] = bad_index.to_bytes(2, "big")   # shim tunnel_index
        assert dp.send(C("CRYPTO_PORT"), bytes(returned)) == []
    assert dp.counter("drop_reasons", C("DROP_BAD_CRYPTO_RETURN"))[0] == len(bad_indices)
    assert dp.counter("tunnel_drop_out", 20) == (0, 0)
    assert dp.counter("tunnel_out", 20) == (0, 0)
    # The untouched frame still goes through: the guard refuses only bad indices.
    assert [port for port, _ in dp.send(C("CRYPTO_PORT"), good)] == [6]
