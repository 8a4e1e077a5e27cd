"""examples/esp_peer.py against an independent ESP implementation (scapy's SecurityAssociation)
for the suites scapy makes (GCM with 16-byte ICVs, CCM with 8/12/16), both ways, both modes,
ESP and ESP-in-UDP; and the 8-byte GCM ICV by round trip and tamper checks.

Run: .venv/bin/python -m pytest tests/examples/test_esp_peer.py -q
"""

from __future__ import annotations

import pytest
from examples_support import load_example_module
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.packet import Raw

esp_peer = load_example_module("esp_peer")

KEY = bytes(range(1, 33)) + b"\xa1\xa2\xa3\xa4"
SCAPY_SUITES = {"_aes256gcm128": ("AES-GCM", 16, 36), "_aes256ccm64": ("AES-CCM", 8, 35),
                "_aes128ccm96": ("AES-CCM", 12, 19)}
MODES = {"transport": None, "tunnel": ("14.0.0.2", "14.0.0.1")}


def plain() -> IP:
    return IP(bytes(IP(src="2.2.2.2", dst="3.3.3.3", id=7) / UDP(sport=1, dport=2)
                    / Raw(b"p" * 29)))


def scapy_sa(enc_type: str, tunnel: tuple[str, str] | None, nat_t: bool) -> SecurityAssociation:
    algo, icv, size = SCAPY_SUITES[enc_type]
    header = IP(src=tunnel[0], dst=tunnel[1]) if tunnel else None
    return SecurityAssociation(ESP, spi=780, crypt_algo=algo, crypt_key=KEY[:size],
                               crypt_icv_size=icv, tunnel_header=header,
                               nat_t_header=UDP(sport=4500, dport=4500) if nat_t else None)


@pytest.mark.parametrize("nat_t", [False, True])
@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("enc_type", sorted(SCAPY_SUITES))
def test_peer_and_scapy_agree(enc_type: str, mode: str, nat_t: bool) -> None:
    size = SCAPY_SUITES[enc_type][2]
    sa = esp_peer.PeerSa.make(spi=780, enc_type=enc_type, material=KEY[:size],
                              tunnel=MODES[mode], nat_t=nat_t)
    reference = scapy_sa(enc_type, MODES[mode], nat_t)
    ours = esp_peer.encrypt(sa, plain(), seq=5)
    # scapy opens what the peer sealed ...
    opened = reference.decrypt(ours.__class__(bytes(ours)))
    assert bytes(opened.__class__(bytes(opened))) == bytes(plain())
    # ... and the peer opens what scapy sealed (same IV: the sequence number).
    theirs = reference.encrypt(plain(), seq_num=9, iv=(9).to_bytes(8, "big"))
    back = esp_peer.decrypt(sa, IP(bytes(theirs)))
    assert (back.spi, back.seq, bytes(back.packet)) == (780, 9, bytes(plain()))


@pytest.mark.parametrize("enc_type", ["_aes256gcm64", "_aes128gcm96", "_aes256ccm128"])
def test_round_trip_and_tamper(enc_type: str) -> None:
    suite = esp_peer.suite_of(enc_type)
    material = KEY[:suite.key_bytes + suite.salt_bytes]
    sa = esp_peer.PeerSa.make(spi=9, enc_type=enc_type, material=material,
                              tunnel=("2001:db8::1", "2001:db8::2"))
    inner = IPv6(bytes(IPv6(src="2001:db8:1::1", dst="2001:db8:1::2") / UDP() / Raw(b"v6")))
    sealed = esp_peer.encrypt(sa, inner, seq=3)
    assert isinstance(sealed, IPv6) and sealed.nh == 50
    assert len(bytes(sealed.payload)) % 4 == 0
    assert bytes(esp_peer.decrypt(sa, sealed).packet) == bytes(inner)
    broken = bytearray(bytes(sealed))
    broken[-1] ^= 1
    with pytest.raises(esp_peer.EspError, match="ICV check failed"):
        esp_peer.decrypt(sa, IPv6(bytes(broken)))


def test_key_sizes_and_names() -> None:
    with pytest.raises(esp_peer.EspError, match="_aes256gcm64: it takes 32 bytes"):
        esp_peer.PeerSa.make(spi=1, enc_type="_aes256gcm64", material=bytes(20))
    with pytest.raises(esp_peer.EspError, match="not an ENC_TYPE"):
        esp_peer.suite_of("aes-gcm")
    salted = esp_peer.PeerSa.make(spi=1, enc_type="_aes128ccm64", material=bytes(range(19)))
    assert salted.salt == bytes([16, 17, 18])
    assert "secret len=19" in repr(salted) and "\\x" not in repr(salted)
