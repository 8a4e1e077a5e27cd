"""Property: for every tunnel type and any frame lengths from 60 to 9,000 bytes, the per-tunnel
bytes recombined from the packets_and_bytes counters and their length-delta cells
(p4src/include/counters.p4) are the sum of the true lengths — len() of every frame sent to the
tunnel and every frame it emitted (or would have emitted, for a drop-out).

Run just these: .venv/bin/python -m pytest tests/p4src/test_tunnel_bytes_property.py -q
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw
from test_geneve import add_encap_rule
from test_tunnel_bytes import OUT_PORT, TUNNEL, add_decrypt, add_encrypt, counts
from test_with_crypto_worker import round_trip, scapy_sa, worker
from tunnel_dataplane import C, TunnelDataplane, release_all
from tunnel_packets import GENEVE
from tunnel_scenarios import (
    HOST_MAC,
    NEXT_HOP_MAC,
    ROUTER_MAC,
    SWITCH_MAC,
    geneve_packet,
    options_of,
)

from crypto_worker.esp import DEFAULT_MTU
from crypto_worker.sa import Direction

LENGTHS = st.lists(st.integers(min_value=60, max_value=9000), min_size=1, max_size=4)
# An encrypt's output IP packet must fit the worker's MTU: its headers, IV, padding and ICV
# add at most 64 bytes to the frame's IP packet here.
ENCRYPT_LENGTHS = st.lists(st.integers(min_value=60, max_value=DEFAULT_MTU + 14 - 64),
                           min_size=1, max_size=4)
SETTINGS = settings(max_examples=12, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def plain(length: int, *, tagged: bool = False) -> bytes:
    """An IPv4/UDP frame of exactly `length` bytes (an 802.1Q tag included when `tagged`)."""
    head = Ether(dst=SWITCH_MAC, src=HOST_MAC)
    head = head / Dot1Q(vlan=5) if tagged else head
    frame = head / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2)
    return bytes(frame / Raw(b"z" * (length - len(frame))))


def fresh() -> TunnelDataplane:
    release_all()   # one pooled switch per example, pipeline and counters new
    return TunnelDataplane()


def check(dp: TunnelDataplane, tunnel: int, lengths: list[int],
          send: Callable[[int], tuple[int, int]], figure: str = "out") -> None:
    """`send(length)` sends one frame and returns (bytes in, bytes out) as len() measures."""
    total_in = total_out = 0
    for length in lengths:
        got_in, got_out = send(length)
        total_in += got_in
        total_out += got_out
    figures = counts(dp, tunnel)
    assert figures["in"] == (len(lengths), total_in)
    assert figures[figure] == (len(lengths), total_out)


@SETTINGS
@given(lengths=LENGTHS, option_count=st.integers(0, 4), data_len=st.sampled_from([4, 8, 16]),
       v6=st.booleans(), tagged=st.booleans())
def test_geneve_encap(lengths: list[int], option_count: int, data_len: int, v6: bool,
                      tagged: bool) -> None:
    dp = fresh()
    add_encap_rule(dp, tunnel=7, options=options_of(option_count, data_len), v6=v6)
    dp.add_route("192.0.2.0/24", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    dp.add_route("2001:db8:1::/48", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)

    def send(length: int) -> tuple[int, int]:
        sent = plain(length, tagged=tagged)
        ((_, emitted),) = dp.send(1, sent)
        return len(sent), len(emitted)

    check(dp, 7, lengths, send)


@SETTINGS
@given(lengths=LENGTHS, option_count=st.integers(0, 4))
def test_geneve_encap_without_a_route_counts_the_encapsulated_frame_as_dropped_out(
        lengths: list[int], option_count: int) -> None:
    routed = fresh()
    add_encap_rule(routed, tunnel=7, options=options_of(option_count, 8))
    routed.add_route("192.0.2.0/24", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    dp = TunnelDataplane()
    add_encap_rule(dp, tunnel=7, options=options_of(option_count, 8))

    def send(length: int) -> tuple[int, int]:
        sent = plain(length)
        assert dp.send(1, sent) == []
        ((_, emitted),) = routed.send(1, sent)   # the same frame where a route exists
        return len(sent), len(emitted)

    check(dp, 7, lengths, send, figure="drop_out")


@SETTINGS
@given(lengths=LENGTHS, option_count=st.integers(0, 4))
def test_geneve_decap(lengths: list[int], option_count: int) -> None:
    dp = fresh()
    dp.add_entry("tunnel_rules", "decap_geneve", priority=5,
                 match={"tunnel_header": C("TUNNEL_HEADER_GENEVE"), "geneve_vni": 0x42},
                 params={"tunnel_index": 5, "next_action": C("NEXT_ACTION_FORWARD")})
    dp.add_route("10.1.0.0/16", port=4, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)

    def send(length: int) -> tuple[int, int]:
        options = options_of(option_count, 4)
        pad = max(0, length - len(bytes(geneve_packet(0x42, options=options))))
        inner = (Ether(dst="02:00:00:00:0c:01", src="02:00:00:00:0c:02")
                 / IP(src="10.1.0.1", dst="10.1.0.5") / UDP(sport=5000, dport=53)
                 / Raw(b"q" * (12 + pad)))
        sent = bytes(Ether(dst=SWITCH_MAC, src=HOST_MAC)
                     / IP(src="192.0.2.10", dst="198.51.100.1")
                     / UDP(sport=49999, dport=6081, chksum=0)
                     / GENEVE(vni=0x42, proto=0x6558, options=options) / inner)
        ((_, emitted),) = dp.send(1, sent)
        return len(sent), len(emitted)

    check(dp, 5, lengths, send)


@SETTINGS
@given(lengths=ENCRYPT_LENGTHS, nat_t=st.booleans(), tunnel_mode=st.booleans())
def test_ipsec_encrypt_round_trip(lengths: list[int], nat_t: bool, tunnel_mode: bool) -> None:
    dp = fresh()
    processor, _ = worker(direction=Direction.ENCRYPT, tunnel=tunnel_mode, nat_t=nat_t)
    add_encrypt(dp, nat_t=nat_t, tunnel_mode=tunnel_mode)

    def send(length: int) -> tuple[int, int]:
        sent = plain(length)
        ((port, emitted),) = round_trip(dp, processor, 1, sent)
        assert port == OUT_PORT
        return len(sent), len(emitted)

    check(dp, TUNNEL, lengths, send)


@SETTINGS
@given(lengths=LENGTHS, tunnel_mode=st.booleans(), tagged=st.booleans())
def test_ipsec_decrypt_round_trip(lengths: list[int], tunnel_mode: bool, tagged: bool) -> None:
    dp = fresh()
    processor, key_salt = worker(direction=Direction.DECRYPT, tunnel=tunnel_mode, nat_t=True)
    add_decrypt(dp, tunnel_mode=tunnel_mode)
    sa = scapy_sa(key_salt, tunnel=tunnel_mode, nat_t=True)

    def send(length: int) -> tuple[int, int]:
        inner = IP(bytes(IP(src="10.9.0.1", dst="10.0.0.1") / UDP(sport=1, dport=2)
                         / Raw(b"d" * max(0, length - 100))))
        ether = Ether(dst=SWITCH_MAC, src=HOST_MAC)
        encrypted = sa.encrypt(inner)
        sent = bytes(ether / Dot1Q(vlan=7) / encrypted if tagged else ether / encrypted)
        ((port, emitted),) = round_trip(dp, processor, 1, sent)
        assert port == OUT_PORT
        return len(sent), len(emitted)

    check(dp, TUNNEL, lengths, send)


@SETTINGS
@given(lengths=LENGTHS, tagged=st.booleans())
def test_esp_without_a_decrypt_sa_counts_the_frame_as_dropped_in(lengths: list[int],
                                                                tagged: bool) -> None:
    dp = fresh()
    dp.add_entry("tunnel_rules", "ipsec_decrypt", priority=1,
                 match={"tunnel_header": C("TUNNEL_HEADER_ESP")},
                 params={"tunnel_index": TUNNEL, "next_action": 1, "tunnel_mode": 1})
    total = 0
    for length in lengths:
        head = Ether(dst=SWITCH_MAC, src=HOST_MAC)
        head = head / Dot1Q(vlan=9) if tagged else head
        frame = head / IP(src="192.0.2.1", dst="192.0.2.2", proto=50) / Raw(b"\0\0\x99\x99")
        sent = bytes(frame / Raw(b"s" * (length - len(frame))))
        assert dp.send(1, sent) == []
        total += len(sent)
    figures = counts(dp, TUNNEL)
    assert figures["in"] == figures["drop_in"] == (len(lengths), total)
