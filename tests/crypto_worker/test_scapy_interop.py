"""Interop with scapy's SecurityAssociation, an independent ESP implementation.

For every ENC_TYPE scapy supports, IPv4 and IPv6,
transport and tunnel, with and without NAT-T: what the worker encrypts scapy decrypts to the
original packet, and what scapy encrypts the worker decrypts; tampered ICV, replay and wrong SPI
are dropped and counted.

scapy 2.8 supports 8 of the 12 ENC_TYPEs: AES-CCM with ICV 8/12/16 and AES-GCM with ICV 16 only
(its AES-GCM goes through `AESGCM`, which always makes and expects a 16-byte tag). AES-GCM with
8- and 12-byte ICVs is checked against Wireshark instead (test_tshark_interop.py).

Run just this file: .venv/bin/python -m pytest tests/crypto_worker/test_scapy_interop.py -q
"""

from __future__ import annotations

import itertools

import pytest
from cw_support import (
    ETH_BYTES,
    Keying,
    ip_of,
    p4_decrypt_message,
    p4_encrypt_message,
    sa_config,
    scapy_sa,
    worker_with,
)
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP, IPSecIntegrityError
from scapy.packet import Raw

from crypto_worker.ciphers import SUITES, AeadAlgorithm, CipherSuite
from crypto_worker.drops import DropReason
from crypto_worker.sa import Direction
from crypto_worker.shim import SHIM_BYTES

SPI = 0x1234ABCD
SA_INDEX = 5
SCAPY_SUITES = [s for s in SUITES if s.algorithm is AeadAlgorithm.CCM or s.icv_bytes == 16]
MODES = [(False, False), (False, True), (True, False), (True, True)]  # (tunnel, nat_t)


def _inner(version: int, size: int = 37) -> IP | IPv6:
    payload = Raw(bytes(range(size)))
    if version == 4:
        ip: IP | IPv6 = IP(src="192.0.2.10", dst="198.51.100.20", ttl=61)
        return ip / UDP(sport=1111, dport=2222) / payload
    ip = IPv6(src="2001:db8::10", dst="2001:db8:1::20", hlim=61)
    return ip / TCP(sport=3333, dport=80) / payload


def _outer(version: int) -> IP | IPv6:
    if version == 4:
        return IP(src="203.0.113.1", dst="203.0.113.2", ttl=64)
    return IPv6(src="2001:db8:ff::1", dst="2001:db8:ff::2", hlim=64)


CASES = [
    pytest.param(suite, version, tunnel, nat_t, id=f"{suite.enc_type_name}-v{version}-"
                 f"{'tunnel' if tunnel else 'transport'}{'-natt' if nat_t else ''}")
    for suite, version, (tunnel, nat_t) in itertools.product(SCAPY_SUITES, (4, 6), MODES)
]


@pytest.mark.parametrize(("suite", "version", "tunnel", "nat_t"), CASES)
def test_worker_encrypts_scapy_decrypts(
    suite: CipherSuite, version: int, tunnel: bool, nat_t: bool
) -> None:
    keying = Keying.random(suite)
    config = sa_config(sa_index=SA_INDEX, spi=SPI, direction=Direction.ENCRYPT, suite=suite,
                       tunnel=tunnel, nat_t=nat_t)
    table, processor = worker_with((config, keying.keys()))
    outer = _outer(version) if tunnel else None
    peer = scapy_sa(suite, keying, spi=SPI, tunnel_header=outer, nat_t=nat_t)
    for expected_seq in (1, 2, 3):
        original = _inner(version, size=30 + expected_seq)  # three pad lengths
        message, esp_offset = p4_encrypt_message(
            original, sa_index=SA_INDEX, spi=SPI, tunnel_header=outer, nat_t=nat_t
        )
        reply = processor.process(message)
        assert reply is not None
        assert reply[:SHIM_BYTES] == message[:SHIM_BYTES]
        received = ip_of(reply[SHIM_BYTES:])
        esp = received[ESP]
        assert esp.seq == expected_seq
        assert bytes(esp)[8:16] == expected_seq.to_bytes(8, "big")  # IV from the sequence number
        # The lengths and checksums the worker wrote are what scapy computes for this packet.
        rebuilt = received.copy()
        if version == 4:
            del rebuilt.len, rebuilt.chksum
        else:
            del rebuilt.plen
        if nat_t:
            assert received[UDP].sport == received[UDP].dport == 4500
            del rebuilt[UDP].len
            if version == 6:
                del rebuilt[UDP].chksum
        assert bytes(rebuilt.__class__(bytes(rebuilt))) == bytes(received)
        if version == 4 and nat_t:
            assert received[UDP].chksum == 0
        plain = peer.crypt_algo.decrypt(peer, esp, peer.crypt_key, suite.icv_bytes)
        assert plain.padding == bytes(range(1, plain.padlen + 1))
        assert (len(plain.data) + plain.padlen + 2) % 4 == 0
        decrypted = peer.decrypt(received.__class__(bytes(received)))
        if tunnel:
            assert plain.nh == (4 if version == 4 else 41)
            assert bytes(decrypted) == bytes(original)
        else:
            assert plain.nh == (17 if version == 4 else 6)
            assert bytes(decrypted) == bytes(original)
        assert len(reply) - SHIM_BYTES - esp_offset == (
            8 + 8 + len(plain.data) + plain.padlen + 2 + suite.icv_bytes
        )
    assert table.get(SA_INDEX).counters.packets == 3


@pytest.mark.parametrize(("suite", "version", "tunnel", "nat_t"), CASES)
def test_scapy_encrypts_worker_decrypts(
    suite: CipherSuite, version: int, tunnel: bool, nat_t: bool
) -> None:
    keying = Keying.random(suite)
    config = sa_config(sa_index=SA_INDEX, spi=SPI, direction=Direction.DECRYPT, suite=suite,
                       tunnel=tunnel, nat_t=nat_t)
    table, processor = worker_with((config, keying.keys()))
    outer = _outer(version) if tunnel else None
    peer = scapy_sa(suite, keying, spi=SPI, tunnel_header=outer, nat_t=nat_t)
    original = _inner(version)
    encrypted = peer.encrypt(original, seq_num=9)
    message, esp_offset = p4_decrypt_message(encrypted, sa_index=SA_INDEX, tunnel=tunnel,
                                             nat_t=nat_t)
    reply = processor.process(message)
    assert reply is not None
    frame = reply[SHIM_BYTES:]
    shim_next_header = reply[9]
    if tunnel:
        assert shim_next_header == (4 if version == 4 else 41)
        assert frame[esp_offset + 8:] == bytes(original)
    else:
        assert shim_next_header == (17 if version == 4 else 6)
        assert frame[esp_offset + 8:] == bytes(original[IP if version == 4 else IPv6].payload)
    # Everything before the ESP header is unchanged except the lengths; the ESP header is kept.
    assert frame[esp_offset:esp_offset + 8] == bytes(encrypted[ESP])[:8]
    assert reply[:9] == message[:9] and reply[10:SHIM_BYTES] == message[10:SHIM_BYTES]
    outer_ip = ip_of(frame)
    if version == 4:
        assert outer_ip.len == len(frame) - ETH_BYTES
        assert outer_ip.chksum == IP(bytes(_without_ip_checksum(outer_ip))).chksum
    else:
        assert outer_ip.plen == len(frame) - ETH_BYTES - 40
    if nat_t:
        assert outer_ip[UDP].len == len(frame) - esp_offset + 8
    counters = table.get(SA_INDEX).counters
    assert (counters.packets, counters.drops) == (1, {})


def _without_ip_checksum(ip: IP) -> IP:
    clone = ip.copy()
    del clone.chksum
    return clone


@pytest.mark.parametrize("suite", SCAPY_SUITES, ids=[s.enc_type_name for s in SCAPY_SUITES])
def test_tampered_icv_replay_and_wrong_spi_are_dropped_and_counted(suite: CipherSuite) -> None:
    keying = Keying.random(suite)
    config = sa_config(sa_index=SA_INDEX, spi=SPI, direction=Direction.DECRYPT, suite=suite,
                       tunnel=True, nat_t=False)
    table, processor = worker_with((config, keying.keys()))
    outer = _outer(4)
    peer = scapy_sa(suite, keying, spi=SPI, tunnel_header=outer, nat_t=False)
    wrong_spi_peer = scapy_sa(suite, keying, spi=SPI + 1, tunnel_header=outer, nat_t=False)

    def message_for(esp_packet: IP) -> bytes:
        return p4_decrypt_message(esp_packet, sa_index=SA_INDEX, tunnel=True, nat_t=False)[0]

    good = message_for(peer.encrypt(_inner(4), seq_num=20))
    tampered = bytearray(message_for(peer.encrypt(_inner(4), seq_num=21)))
    tampered[-1] ^= 0x01  # last ICV byte
    assert processor.process(bytes(tampered)) is None
    assert processor.process(good) is not None
    assert processor.process(good) is None  # replay
    assert processor.process(message_for(wrong_spi_peer.encrypt(_inner(4), seq_num=22))) is None
    # The tampered packet did not move the window: its genuine copy is still accepted.
    assert processor.process(message_for(peer.encrypt(_inner(4), seq_num=21))) is not None
    counters = table.get(SA_INDEX).counters
    assert counters.packets == 2
    assert counters.drops == {
        DropReason.ICV_FAILURE: 1,
        DropReason.REPLAY: 1,
        DropReason.SPI_MISMATCH: 1,
    }


@pytest.mark.parametrize("suite", [SUITES[2], SUITES[9]], ids=lambda s: s.enc_type_name)
def test_scapy_rejects_what_we_send_when_tampered_or_for_another_spi(suite: CipherSuite) -> None:
    keying = Keying.random(suite)
    config = sa_config(sa_index=SA_INDEX, spi=SPI, direction=Direction.ENCRYPT, suite=suite,
                       tunnel=False, nat_t=False)
    _, processor = worker_with((config, keying.keys()))
    message, _ = p4_encrypt_message(_inner(4), sa_index=SA_INDEX, spi=SPI, tunnel_header=None,
                                    nat_t=False)
    reply = processor.process(message)
    assert reply is not None
    received = bytearray(reply[SHIM_BYTES:])
    received[-3] ^= 0x80
    peer = scapy_sa(suite, keying, spi=SPI, tunnel_header=None, nat_t=False)
    with pytest.raises(IPSecIntegrityError):
        peer.decrypt(ip_of(bytes(received)))
    other = scapy_sa(suite, keying, spi=SPI + 1, tunnel_header=None, nat_t=False)
    with pytest.raises(TypeError, match="spi"):
        other.decrypt(ip_of(reply[SHIM_BYTES:]))


@pytest.mark.parametrize("suite", [SUITES[2], SUITES[11]], ids=lambda s: s.enc_type_name)
def test_esn_both_directions(suite: CipherSuite) -> None:
    """With ESN the AAD carries the high half; scapy and the worker agree across 2^32."""
    keying = Keying.random(suite)
    enc = sa_config(sa_index=1, spi=SPI, direction=Direction.ENCRYPT, suite=suite,
                    tunnel=True, nat_t=False, esn=True)
    dec = sa_config(sa_index=2, spi=SPI, direction=Direction.DECRYPT, suite=suite,
                    tunnel=True, nat_t=False, esn=True)
    table, processor = worker_with((enc, keying.keys()), (dec, keying.keys()))
    outer = _outer(4)
    table.get(1).set_next_sequence_for_test((1 << 32) + 5)
    message, _ = p4_encrypt_message(_inner(4), sa_index=1, spi=SPI, tunnel_header=outer,
                                    nat_t=False)
    reply = processor.process(message)
    assert reply is not None
    received = ip_of(reply[SHIM_BYTES:])
    assert received[ESP].seq == 5
    peer = scapy_sa(suite, keying, spi=SPI, tunnel_header=outer, nat_t=False, esn=True,
                    esn_high=1)
    assert bytes(peer.decrypt(received)) == bytes(_inner(4))
    wrong_high = scapy_sa(suite, keying, spi=SPI, tunnel_header=outer, nat_t=False, esn=True,
                          esn_high=0)
    with pytest.raises(IPSecIntegrityError):
        wrong_high.decrypt(ip_of(reply[SHIM_BYTES:]))

    # Receive: the window's top sits just below 2^32, then low half 3 means high half 1.
    sender_low = scapy_sa(suite, keying, spi=SPI, tunnel_header=outer, nat_t=False, esn=True,
                          esn_high=0)
    sender_high = scapy_sa(suite, keying, spi=SPI, tunnel_header=outer, nat_t=False, esn=True,
                           esn_high=1)
    first = p4_decrypt_message(sender_low.encrypt(_inner(4), seq_num=0xFFFFFFF0), sa_index=2,
                               tunnel=True, nat_t=False)[0]
    second = p4_decrypt_message(sender_high.encrypt(_inner(4), seq_num=3), sa_index=2,
                                tunnel=True, nat_t=False)[0]
    assert processor.process(first) is not None
    assert processor.process(second) is not None
    assert table.get(2).replay.top == (1 << 32) + 3
    assert processor.process(first) is None  # now left of / inside the window, already seen
    assert table.get(2).counters.drops == {DropReason.REPLAY: 1}
