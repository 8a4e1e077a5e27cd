"""The crypto-port contract end to end: p4src on p4sim and the real crypto worker's frame
processor (crypto_worker.processor) exchange frames, and the result is checked against scapy's
independent ESP implementation (scapy.layers.ipsec.SecurityAssociation).

Run just these: .venv/bin/python -m pytest tests/p4src/test_with_crypto_worker.py -q
"""

from __future__ import annotations

import os

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP
from scapy.layers.ipsec import SecurityAssociation as ScapySA
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw
from tunnel_dataplane import C, TunnelDataplane
from tunnel_packets import CryptoShim
from tunnel_scenarios import (
    HOST_MAC,
    NEXT_HOP_MAC,
    ROUTER_MAC,
    SWITCH_MAC,
    TUNNEL_DST,
    TUNNEL_SRC,
    inner_tcp,
)

from crypto_worker.ciphers import SUITE_BY_ENC_TYPE_NAME
from crypto_worker.processor import FrameProcessor
from crypto_worker.sa import Direction, EspMode, SaConfig, SaKeys
from crypto_worker.sa_table import SaTable
from crypto_worker.secret import Secret

SUITE = SUITE_BY_ENC_TYPE_NAME["_aes256gcm128"]
SPI = 0x0A0B0C0D
SA_INDEX = 12
TUNNEL = 30
OUT_PORT = 6


def worker(*, direction: Direction, tunnel: bool, nat_t: bool) -> tuple[FrameProcessor, bytes]:
    """A frame processor holding one SA, and that SA's key ‖ salt for scapy."""
    key, salt = os.urandom(SUITE.key_bytes), os.urandom(SUITE.salt_bytes)
    table = SaTable()
    table.add(SaConfig(sa_index=SA_INDEX, spi=SPI, direction=direction, suite=SUITE,
                       mode=EspMode.TUNNEL if tunnel else EspMode.TRANSPORT,
                       nat_traversal=nat_t, esn=False, replay_window=64),
              SaKeys(key=Secret(key), salt=Secret(salt)))
    return FrameProcessor(table), key + salt


def scapy_sa(key_salt: bytes, *, tunnel: bool, nat_t: bool, v6: bool = False) -> ScapySA:
    header = None
    if tunnel:
        header = IPv6(src="2001:db8::a", dst="2001:db8::b") if v6 else IP(src=TUNNEL_SRC,
                                                                             dst=TUNNEL_DST)
    return ScapySA(proto=ESP, spi=SPI, crypt_algo="AES-GCM", crypt_key=key_salt,
                   crypt_icv_size=SUITE.icv_bytes, tunnel_header=header,
                   nat_t_header=UDP(sport=4500, dport=4500) if nat_t else None)


def round_trip(dp: TunnelDataplane, processor: FrameProcessor, port: int,
               frame: bytes) -> list[tuple[int, bytes]]:
    """Send `frame` in; what goes to the crypto port is run through the worker and sent back."""
    out = dp.send(port, frame)
    assert [p for p, _ in out] == [C("CRYPTO_PORT")], out
    returned = processor.process(out[0][1])
    assert returned is not None, "the worker dropped the frame"
    return dp.send(C("CRYPTO_PORT"), returned)


@pytest.mark.parametrize("nat_t", [False, True], ids=["esp", "esp-in-udp"])
def test_encrypt_tunnel_mode_output_decrypts_with_scapy(dp: TunnelDataplane, nat_t: bool) -> None:
    processor, key_salt = worker(direction=Direction.ENCRYPT, tunnel=True, nat_t=nat_t)
    dp.add_entry("tunnel_rules", "ipsec_encrypt_tunnel_v4", match={"ingress_port": 1},
                 priority=1, params={"tunnel_index": TUNNEL, "next_action": 1,
                                     "sa_index": SA_INDEX, "spi": SPI, "nat_t": int(nat_t),
                                     "src_addr": TUNNEL_SRC, "dst_addr": TUNNEL_DST})
    dp.add_route("203.0.113.0/24", port=OUT_PORT, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    sent = inner_tcp()
    for seq in (1, 2):
        ((port, frame),) = round_trip(dp, processor, 1, bytes(sent))
        assert port == OUT_PORT
        eth = Ether(frame)
        assert (eth.dst, eth.src) == (NEXT_HOP_MAC, ROUTER_MAC)
        outer = eth[IP]
        assert (outer.src, outer.dst, outer.ttl) == (TUNNEL_SRC, TUNNEL_DST, 64)
        assert outer.proto == (17 if nat_t else 50)
        esp = outer[ESP]
        assert (esp.spi, esp.seq) == (SPI, seq)
        decrypted = scapy_sa(key_salt, tunnel=True, nat_t=nat_t).decrypt(IP(bytes(outer)))
        assert bytes(decrypted) == bytes(sent[IP])
    assert dp.counter("tunnel_out", TUNNEL)[0] == 2


def test_encrypt_transport_mode_output_decrypts_with_scapy(dp: TunnelDataplane) -> None:
    processor, key_salt = worker(direction=Direction.ENCRYPT, tunnel=False, nat_t=False)
    dp.add_entry("tunnel_rules", "ipsec_encrypt_transport", match={"ingress_port": 1},
                 priority=1, params={"tunnel_index": TUNNEL, "next_action": 1,
                                     "sa_index": SA_INDEX, "spi": SPI, "nat_t": 0})
    dp.add_route("10.0.0.0/8", port=OUT_PORT, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    sent = inner_tcp()
    ((port, frame),) = round_trip(dp, processor, 1, bytes(sent))
    assert port == OUT_PORT
    outer = Ether(frame)[IP]
    assert outer.proto == 50 and (outer.src, outer.dst) == (sent[IP].src, sent[IP].dst)
    decrypted = scapy_sa(key_salt, tunnel=False, nat_t=False).decrypt(IP(bytes(outer)))
    assert bytes(decrypted[TCP]) == bytes(sent[TCP])


@pytest.mark.parametrize("nat_t", [False, True], ids=["esp", "esp-in-udp"])
def test_scapy_encrypted_packet_decrypts_and_inner_is_routed(dp: TunnelDataplane,
                                                             nat_t: bool) -> None:
    processor, key_salt = worker(direction=Direction.DECRYPT, tunnel=True, nat_t=nat_t)
    dp.add_entry("tunnel_rules", "ipsec_decrypt", priority=1,
                 match={"tunnel_header": C("TUNNEL_HEADER_ESP"), "esp_spi": SPI},
                 params={"tunnel_index": TUNNEL, "next_action": 1, "tunnel_mode": 1})
    dp.add_entry("decrypt_sas", "set_decrypt_sa", match={"tunnel_index": TUNNEL, "spi": SPI},
                 params={"sa_index": SA_INDEX})
    dp.add_route("10.0.0.0/8", port=OUT_PORT, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    inner = IP(bytes(IP(src="10.9.0.1", dst="10.0.0.1", id=99)
                     / TCP(sport=443, dport=4000, flags="PA") / Raw(b"from the peer" * 3)))
    sa = scapy_sa(key_salt, tunnel=True, nat_t=nat_t)
    for _ in range(2):
        encrypted = sa.encrypt(inner)
        frame = Ether(dst=SWITCH_MAC, src=HOST_MAC) / encrypted
        out = round_trip(dp, processor, 1, bytes(frame))
        assert out == [(OUT_PORT, bytes(Ether(dst=NEXT_HOP_MAC, src=ROUTER_MAC) / inner))]
    assert dp.counter("tunnel_in", TUNNEL)[0] == 2
    assert dp.counter("tunnel_out", TUNNEL)[0] == 2


def test_replayed_packet_is_dropped_by_the_worker_not_forwarded(dp: TunnelDataplane) -> None:
    processor, key_salt = worker(direction=Direction.DECRYPT, tunnel=True, nat_t=False)
    dp.add_entry("tunnel_rules", "ipsec_decrypt", priority=1,
                 match={"tunnel_header": C("TUNNEL_HEADER_ESP"), "esp_spi": SPI},
                 params={"tunnel_index": TUNNEL, "next_action": 1, "tunnel_mode": 1})
    dp.add_entry("decrypt_sas", "set_decrypt_sa", match={"tunnel_index": TUNNEL, "spi": SPI},
                 params={"sa_index": SA_INDEX})
    dp.add_route("10.0.0.0/8", port=OUT_PORT, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    frame = bytes(Ether(dst=SWITCH_MAC, src=HOST_MAC) / scapy_sa(key_salt, tunnel=True,
                  nat_t=False).encrypt(IP(dst="10.0.0.1") / UDP() / Raw(b"once")))
    assert len(round_trip(dp, processor, 1, frame)) == 1
    ((_, to_worker),) = dp.send(1, frame)
    assert processor.process(to_worker) is None


def test_encrypt_ipv6_tunnel_of_ipv6_packet_decrypts_with_scapy(dp: TunnelDataplane) -> None:
    processor, key_salt = worker(direction=Direction.ENCRYPT, tunnel=True, nat_t=True)
    dp.add_entry("tunnel_rules", "ipsec_encrypt_tunnel_v6", match={"ingress_port": 1},
                 priority=1, params={"tunnel_index": TUNNEL, "next_action": 1,
                                     "sa_index": SA_INDEX, "spi": SPI, "nat_t": 1,
                                     "src_addr": "2001:db8::a", "dst_addr": "2001:db8::b"})
    dp.add_route("2001:db8::/64", port=OUT_PORT, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    inner = IPv6(bytes(IPv6(src="2001:db8:7::1", dst="2001:db8:7::2") / UDP(sport=9, dport=10)
                       / Raw(b"six in six")))
    ((port, frame),) = round_trip(dp, processor, 1,
                                  bytes(Ether(dst=SWITCH_MAC, src=HOST_MAC) / inner))
    assert port == OUT_PORT
    outer = Ether(frame)[IPv6]
    assert (outer.src, outer.dst, outer.nh, outer.hlim) == ("2001:db8::a", "2001:db8::b", 17, 64)
    recomputed = IPv6(bytes(outer))
    recomputed[UDP].chksum = None
    assert outer[UDP].chksum == IPv6(bytes(recomputed))[UDP].chksum != 0
    decrypted = scapy_sa(key_salt, tunnel=True, nat_t=True, v6=True).decrypt(IPv6(bytes(outer)))
    assert bytes(decrypted) == bytes(inner)


def test_ipv6_transport_mode_round_trip_both_ways(dp: TunnelDataplane) -> None:
    enc, key_salt = worker(direction=Direction.ENCRYPT, tunnel=False, nat_t=False)
    dp.add_entry("tunnel_rules", "ipsec_encrypt_transport", priority=1,
                 match={"ingress_port": 1, "ip_version": 6},
                 params={"tunnel_index": TUNNEL, "next_action": 1, "sa_index": SA_INDEX,
                         "spi": SPI, "nat_t": 0})
    dp.add_route("2001:db8:7::/48", port=OUT_PORT, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    packet = IPv6(bytes(IPv6(src="2001:db8:7::1", dst="2001:db8:7::2", hlim=33)
                        / UDP(sport=9, dport=10) / Raw(b"transport six")))
    ((_, frame),) = round_trip(dp, enc, 1, bytes(Ether(dst=SWITCH_MAC, src=HOST_MAC) / packet))
    outer = Ether(frame)[IPv6]
    assert (outer.nh, outer.hlim, outer.src) == (50, 33, packet.src)
    decrypted = scapy_sa(key_salt, tunnel=False, nat_t=False).decrypt(IPv6(bytes(outer)))
    assert bytes(decrypted) == bytes(packet)

    # The other direction: scapy encrypts, the switch and the worker give the packet back.
    dec = TunnelDataplane()
    processor, key_salt = worker(direction=Direction.DECRYPT, tunnel=False, nat_t=False)
    dec.add_entry("tunnel_rules", "ipsec_decrypt", priority=1,
                  match={"tunnel_header": C("TUNNEL_HEADER_ESP"), "esp_spi": SPI},
                  params={"tunnel_index": TUNNEL, "next_action": 1, "tunnel_mode": 0})
    dec.add_entry("decrypt_sas", "set_decrypt_sa", match={"tunnel_index": TUNNEL, "spi": SPI},
                  params={"sa_index": SA_INDEX})
    dec.add_route("2001:db8:7::/48", port=OUT_PORT, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    encrypted = scapy_sa(key_salt, tunnel=False, nat_t=False).encrypt(packet)
    out = round_trip(dec, processor, 1, bytes(Ether(dst=SWITCH_MAC, src=HOST_MAC) / encrypted))
    assert out == [(OUT_PORT, bytes(Ether(dst=NEXT_HOP_MAC, src=ROUTER_MAC) / packet))]


def test_vlan_tagged_esp_decrypts_and_leaves_untagged(dp: TunnelDataplane) -> None:
    processor, key_salt = worker(direction=Direction.DECRYPT, tunnel=True, nat_t=True)
    dp.add_entry("tunnel_rules", "ipsec_decrypt", priority=1,
                 match={"tunnel_header": C("TUNNEL_HEADER_ESP"), "esp_spi": SPI},
                 params={"tunnel_index": TUNNEL, "next_action": 1, "tunnel_mode": 1})
    dp.add_entry("decrypt_sas", "set_decrypt_sa", match={"tunnel_index": TUNNEL, "spi": SPI},
                 params={"sa_index": SA_INDEX})
    dp.add_route("10.0.0.0/8", port=OUT_PORT, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    inner = IP(bytes(IP(src="10.9.0.1", dst="10.0.0.1") / UDP(sport=1, dport=2) / Raw(b"tag")))
    encrypted = scapy_sa(key_salt, tunnel=True, nat_t=True).encrypt(inner)
    frame = Ether(dst=SWITCH_MAC, src=HOST_MAC) / Dot1Q(vlan=7) / encrypted
    out = dp.send(1, bytes(frame))
    assert CryptoShim(out[0][1][:16]).l3_offset == 18
    returned = processor.process(out[0][1])
    assert returned is not None
    assert dp.send(C("CRYPTO_PORT"), returned) == [
        (OUT_PORT, bytes(Ether(dst=NEXT_HOP_MAC, src=ROUTER_MAC) / inner))]
