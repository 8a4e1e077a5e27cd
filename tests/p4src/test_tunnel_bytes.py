"""Per-tunnel byte counts are the exact lengths of the frames a tunnel received and emitted.

v1model counters add the length of the frame as it entered the pass, which is wrong for a
tunnel's output (the frame before an encap, the crypto shim on a return); counters.p4 computes
the lengths in P4 instead. Every expected figure here is len() of a frame the test sent or
received, never a formula.

Run just these: .venv/bin/python -m pytest tests/p4src/test_tunnel_bytes.py -q
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw
from test_geneve import add_encap_rule
from test_with_crypto_worker import SA_INDEX, SPI, round_trip, scapy_sa, worker
from tunnel_dataplane import C, TunnelDataplane
from tunnel_scenarios import (
    HOST_MAC,
    NEXT_HOP_MAC,
    ROUTER_MAC,
    SWITCH_MAC,
    TUNNEL_DST,
    TUNNEL_SRC,
    geneve_packet,
    options_of,
    plain_udp,
)

from crypto_worker.sa import Direction

TUNNEL = 30
OUT_PORT = 6


def counts(dp: TunnelDataplane, tunnel: int) -> dict[str, tuple[int, int]]:
    """(packets, bytes) of the four per-tunnel figures."""
    return {name: dp.tunnel_counts(f"tunnel_{name}", tunnel)
            for name in ("in", "out", "drop_in", "drop_out")}


def only(dp: TunnelDataplane, tunnel: int, **expected: tuple[int, int]) -> None:
    """The given figures have these values, the others are zero."""
    want = {name: expected.get(name, (0, 0)) for name in ("in", "out", "drop_in", "drop_out")}
    assert counts(dp, tunnel) == want


@pytest.mark.parametrize("count,data_len", [(0, 0), (4, 16)], ids=["no-options", "4-options"])
@pytest.mark.parametrize("v6", [False, True], ids=["ipv4-outer", "ipv6-outer"])
def test_geneve_encap_counts_the_frame_in_and_the_encapsulated_frame_out(
        dp: TunnelDataplane, count: int, data_len: int, v6: bool) -> None:
    add_encap_rule(dp, tunnel=7, options=options_of(count, data_len), v6=v6)
    dp.add_route("192.0.2.0/24", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    dp.add_route("2001:db8:1::/48", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    sent = bytes(plain_udp())
    ((port, emitted),) = dp.send(1, sent)
    assert port == 2 and len(emitted) > len(sent)
    only(dp, 7, **{"in": (1, len(sent)), "out": (1, len(emitted))})


def test_geneve_encap_of_a_tagged_frame_counts_the_tag_in_not_out(dp: TunnelDataplane) -> None:
    add_encap_rule(dp, tunnel=7, options=options_of(1, 8))
    dp.add_route("192.0.2.0/24", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    sent = bytes(Ether(dst=SWITCH_MAC, src=HOST_MAC) / Dot1Q(vlan=12) / plain_udp()[IP])
    ((_, emitted),) = dp.send(1, sent)
    only(dp, 7, **{"in": (1, len(sent)), "out": (1, len(emitted))})


def test_frames_of_many_sizes_add_up_exactly(dp: TunnelDataplane) -> None:
    """Every bit of the 16-bit length is exercised: sizes from 60 to 9018 bytes."""
    add_encap_rule(dp, tunnel=7, options=options_of(2, 4))
    dp.add_route("192.0.2.0/24", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    sent_total = emitted_total = 0
    for size in (18, 255, 256, 1023, 4000, 8976):
        sent = bytes(Ether(dst=SWITCH_MAC, src=HOST_MAC) / IP(src="10.0.0.1", dst="10.0.0.2")
                     / UDP(sport=1, dport=2) / Raw(b"z" * size))
        ((_, emitted),) = dp.send(1, sent)
        sent_total += len(sent)
        emitted_total += len(emitted)
    only(dp, 7, **{"in": (6, sent_total), "out": (6, emitted_total)})


@pytest.mark.parametrize("options", [0, 3])
def test_geneve_decap_counts_the_inner_frame_out(dp: TunnelDataplane, options: int) -> None:
    dp.add_entry("tunnel_rules", "decap_geneve", priority=5,
                 match={"tunnel_header": C("TUNNEL_HEADER_GENEVE"), "geneve_vni": 0x42},
                 params={"tunnel_index": 5, "next_action": C("NEXT_ACTION_FORWARD")})
    dp.add_route("10.1.0.0/16", port=4, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    sent = bytes(geneve_packet(0x42, options=options_of(options, 4)))
    ((port, emitted),) = dp.send(1, sent)
    assert port == 4 and len(emitted) < len(sent)
    only(dp, 5, **{"in": (1, len(sent)), "out": (1, len(emitted))})


def test_decap_then_encap_chain_counts_each_tunnel_at_its_boundary(dp: TunnelDataplane) -> None:
    dp.add_entry("tunnel_rules", "decap_geneve", priority=5,
                 match={"tunnel_header": C("TUNNEL_HEADER_GENEVE"), "geneve_vni": 0x42,
                        "prev_tunnel": 0},
                 params={"tunnel_index": 5, "next_action": C("NEXT_ACTION_RECIRCULATE")})
    add_encap_rule(dp, tunnel=6, options=options_of(4, 16), vni=0x77,
                   match={"prev_tunnel": 5, "ipv4_dst": "10.1.0.5"})
    dp.add_route("192.0.2.0/24", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    sent = geneve_packet(0x42, inner_dst="10.1.0.5", options=options_of(1, 4))
    ((_, emitted),) = dp.send(1, bytes(sent))
    between = len(sent[UDP].payload.payload)   # the inner frame: decap's output, encap's input
    only(dp, 5, **{"in": (1, len(sent)), "out": (1, between)})
    only(dp, 6, **{"in": (1, between), "out": (1, len(emitted))})


def add_encrypt(dp: TunnelDataplane, *, nat_t: bool, tunnel_mode: bool,
                next_action: str = "NEXT_ACTION_FORWARD") -> None:
    common = {"tunnel_index": TUNNEL, "next_action": C(next_action), "sa_index": SA_INDEX,
              "spi": SPI, "nat_t": int(nat_t)}
    if tunnel_mode:
        dp.add_entry("tunnel_rules", "ipsec_encrypt_tunnel_v4", match={"ingress_port": 1},
                     priority=1, params=common | {"src_addr": TUNNEL_SRC, "dst_addr": TUNNEL_DST})
    else:
        dp.add_entry("tunnel_rules", "ipsec_encrypt_transport", match={"ingress_port": 1},
                     priority=1, params=common)
    dp.add_route("0.0.0.0/0", port=OUT_PORT, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)


def add_decrypt(dp: TunnelDataplane, *, tunnel_mode: bool) -> None:
    """The decrypt tunnel as the controller programs it: its rule by SPI, its SA entry, and a
    default route for the plaintext."""
    dp.add_entry("tunnel_rules", "ipsec_decrypt", priority=1,
                 match={"tunnel_header": C("TUNNEL_HEADER_ESP"), "esp_spi": SPI},
                 params={"tunnel_index": TUNNEL, "next_action": 1,
                         "tunnel_mode": int(tunnel_mode)})
    dp.add_entry("decrypt_sas", "set_decrypt_sa", match={"tunnel_index": TUNNEL, "spi": SPI},
                 params={"sa_index": SA_INDEX})
    dp.add_route("0.0.0.0/0", port=OUT_PORT, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)


@pytest.mark.parametrize("tunnel_mode", [True, False], ids=["tunnel", "transport"])
@pytest.mark.parametrize("nat_t", [False, True], ids=["esp", "esp-in-udp"])
def test_encrypt_round_trip_counts_the_esp_frame_out_without_the_shim(
        dp: TunnelDataplane, nat_t: bool, tunnel_mode: bool) -> None:
    processor, _ = worker(direction=Direction.ENCRYPT, tunnel=tunnel_mode, nat_t=nat_t)
    add_encrypt(dp, nat_t=nat_t, tunnel_mode=tunnel_mode)
    sent = bytes(Ether(dst=SWITCH_MAC, src=HOST_MAC) / Dot1Q(vlan=3)
                 / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2) / Raw(b"e" * 33))
    ((port, emitted),) = round_trip(dp, processor, 1, sent)
    assert port == OUT_PORT
    only(dp, TUNNEL, **{"in": (1, len(sent)), "out": (1, len(emitted))})


@pytest.mark.parametrize("tagged", [False, True], ids=["untagged", "802.1q"])
@pytest.mark.parametrize("tunnel_mode", [True, False], ids=["tunnel", "transport"])
def test_decrypt_round_trip_counts_the_plaintext_frame_out(
        dp: TunnelDataplane, tunnel_mode: bool, tagged: bool) -> None:
    processor, key_salt = worker(direction=Direction.DECRYPT, tunnel=tunnel_mode, nat_t=True)
    add_decrypt(dp, tunnel_mode=tunnel_mode)
    inner = IP(bytes(IP(src="10.9.0.1", dst="10.0.0.1") / UDP(sport=1, dport=2) / Raw(b"d" * 21)))
    encrypted = scapy_sa(key_salt, tunnel=tunnel_mode, nat_t=True).encrypt(inner)
    ether = Ether(dst=SWITCH_MAC, src=HOST_MAC)
    sent = bytes(ether / Dot1Q(vlan=7) / encrypted if tagged else ether / encrypted)
    ((port, emitted),) = round_trip(dp, processor, 1, sent)
    assert port == OUT_PORT and IP(emitted[14:]).dst == "10.0.0.1"
    only(dp, TUNNEL, **{"in": (1, len(sent)), "out": (1, len(emitted))})


def test_encrypt_then_encap_chain_through_the_crypto_port(dp: TunnelDataplane) -> None:
    processor, _ = worker(direction=Direction.ENCRYPT, tunnel=True, nat_t=True)
    add_encrypt(dp, nat_t=True, tunnel_mode=True, next_action="NEXT_ACTION_RECIRCULATE")
    add_encap_rule(dp, tunnel=23, options=options_of(4, 16), vni=23,
                   match={"prev_tunnel": TUNNEL, "ingress_port": 1})
    dp.add_route("192.0.2.0/24", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    sent = bytes(Ether(dst=SWITCH_MAC, src=HOST_MAC) / IP(src="10.0.0.1", dst="10.0.0.2")
                 / UDP(sport=1, dport=2) / Raw(b"c" * 50))
    to_worker = dp.send(1, sent)
    returned = processor.process(to_worker[0][1])
    assert returned is not None
    ((port, emitted),) = dp.send(C("CRYPTO_PORT"), returned)
    assert port == 2
    esp_frame = len(returned) - C("CRYPTO_SHIM_LEN")   # what encrypt emitted, encap received
    assert esp_frame == len(emitted) - (14 + 20 + 8 + 8 + 4 * C("MAX_GENEVE_OPTION_WORDS"))
    only(dp, TUNNEL, **{"in": (1, len(sent)), "out": (1, esp_frame)})
    only(dp, 23, **{"in": (1, esp_frame), "out": (1, len(emitted))})


def test_drop_in_counts_the_frame_received(dp: TunnelDataplane) -> None:
    dp.add_entry("tunnel_rules", "ipsec_decrypt", priority=1,
                 match={"tunnel_header": C("TUNNEL_HEADER_ESP")},
                 params={"tunnel_index": TUNNEL, "next_action": 1, "tunnel_mode": 1})
    sent = bytes(Ether(dst=SWITCH_MAC, src=HOST_MAC) / Dot1Q(vlan=9)
                 / IP(src=TUNNEL_DST, dst=TUNNEL_SRC, proto=50) / Raw(b"\0\0\x99\x99" + b"s" * 40))
    assert dp.send(1, sent) == []   # no decrypt SA for this SPI
    only(dp, TUNNEL, **{"in": (1, len(sent)), "drop_in": (1, len(sent))})


def test_drop_out_counts_the_frame_the_tunnel_emitted(dp: TunnelDataplane) -> None:
    """A route miss after an encap drops the encapsulated frame: its length, as the same frame
    measures when a route exists."""
    add_encap_rule(dp, tunnel=7, options=options_of(4, 16))
    sent = bytes(plain_udp())
    assert dp.send(1, sent) == []   # no route to the outer destination
    routed_dp = TunnelDataplane()
    add_encap_rule(routed_dp, tunnel=7, options=options_of(4, 16))
    routed_dp.add_route("192.0.2.0/24", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    ((_, emitted),) = routed_dp.send(1, sent)
    only(dp, 7, **{"in": (1, len(sent)), "out": (1, len(emitted)),
                   "drop_out": (1, len(emitted))})


def test_bad_crypto_return_counts_the_returned_frame_without_the_shim(
        dp: TunnelDataplane) -> None:
    processor, _ = worker(direction=Direction.ENCRYPT, tunnel=True, nat_t=False)
    add_encrypt(dp, nat_t=False, tunnel_mode=True)
    sent = bytes(Ether(dst=SWITCH_MAC, src=HOST_MAC) / IP(src="10.0.0.1", dst="10.0.0.2")
                 / UDP(sport=1, dport=2) / Raw(b"b" * 10))
    to_worker = dp.send(1, sent)
    returned = bytearray(processor.process(to_worker[0][1]) or b"")
    returned[11] = 1   # status: the contract says the worker never returns a failure
    assert dp.send(C("CRYPTO_PORT"), bytes(returned)) == []
    only(dp, TUNNEL, **{"in": (1, len(sent)),
                        "drop_out": (1, len(returned) - C("CRYPTO_SHIM_LEN"))})
