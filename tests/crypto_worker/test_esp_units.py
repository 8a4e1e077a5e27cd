"""Unit tests of the worker's ESP rules: replay window, sequence numbers, padding, lengths,
malformed frames, SA/shim mismatches, secrets.

Run just this file: .venv/bin/python -m pytest tests/crypto_worker/test_esp_units.py -q
"""

from __future__ import annotations

import pickle
import random
import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cw_support import (
    Keying,
    ip_of,
    p4_decrypt_message,
    p4_encrypt_message,
    sa_config,
    scapy_sa,
    shim_bytes,
    worker_with,
)
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from crypto_worker.ciphers import SUITE_BY_ENC_TYPE_NAME, SUITES
from crypto_worker.drops import DropReason
from crypto_worker.headers import ipv4_header_with_length
from crypto_worker.replay import ReplayWindow
from crypto_worker.sa import Direction, SaKeys
from crypto_worker.secret import Secret
from crypto_worker.shim import SHIM_BYTES, ShimOp
from crypto_worker.validation import SaRequest, SaValidationError, validate_sa

GCM16 = SUITE_BY_ENC_TYPE_NAME["_aes128gcm128"]
SPI = 0xC0FFEE
OUTER = IP(src="203.0.113.1", dst="203.0.113.2")


def _inner(n: int = 20) -> IP:
    return IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=7, dport=9) / Raw(b"p" * n)


def _encryptor(keying: Keying, *, tunnel: bool = True, nat_t: bool = False, esn: bool = False):
    config = sa_config(sa_index=1, spi=SPI, direction=Direction.ENCRYPT, suite=GCM16,
                       tunnel=tunnel, nat_t=nat_t, esn=esn)
    return worker_with((config, keying.keys()))


def _decryptor(keying: Keying, *, window: int = 64, tunnel: bool = True):
    config = sa_config(sa_index=2, spi=SPI, direction=Direction.DECRYPT, suite=GCM16,
                       tunnel=tunnel, nat_t=False, replay_window=window)
    return worker_with((config, keying.keys()))


# --- secrets -------------------------------------------------------------------------------

def test_secret_never_shows_its_bytes() -> None:
    key = Secret(b"\x11" * 32)
    keys = SaKeys(key=key, salt=Secret(b"\x22" * 4))
    assert repr(key) == str(key) == f"{key}" == "<secret len=32>"
    assert "11" not in repr(keys) and "<secret len=4>" in repr(keys)
    with pytest.raises(TypeError):
        pickle.dumps(key)
    assert key.reveal() == b"\x11" * 32


# --- replay window (RFC 4303 §3.4.3) ----------------------------------------------------------

def test_replay_window_rules() -> None:
    window = ReplayWindow(size=64, esn=False)
    assert not window.is_fresh(0)  # sequence numbers start at 1
    window.accept(100)
    assert not window.is_fresh(100)
    assert window.is_fresh(37)  # 100 - 63: the left edge is inside
    assert not window.is_fresh(36)  # left of the window
    window.accept(37)
    assert not window.is_fresh(37)
    assert window.is_fresh(101)
    window.accept(300)  # a jump wider than the window clears the bitmap
    assert window.is_fresh(299) and not window.is_fresh(300) and not window.is_fresh(236)


def test_replay_window_of_1024() -> None:
    window = ReplayWindow(size=1024, esn=False)
    window.accept(5000)
    assert window.is_fresh(5000 - 1023) and not window.is_fresh(5000 - 1024)
    with pytest.raises(ValueError, match="replay_window: 5000"):
        ReplayWindow(size=5000, esn=False)


def test_esn_high_half_inference_cases_a_and_b() -> None:
    window = ReplayWindow(size=64, esn=True)
    window.accept((3 << 32) + 1000)  # Case A: window inside one subspace
    assert window.full_sequence(1001) == (3 << 32) + 1001
    assert window.full_sequence(10) == (4 << 32) + 10  # below the window: next subspace
    window.accept((4 << 32) + 5)  # Case B: window spans subspaces 3 and 4
    assert window.full_sequence(0xFFFFFFF0) == (3 << 32) + 0xFFFFFFF0
    assert window.full_sequence(6) == (4 << 32) + 6


def test_window_moves_only_for_authentic_packets() -> None:
    keying = Keying.random(GCM16)
    table, processor = _decryptor(keying, window=4)
    peer = scapy_sa(GCM16, keying, spi=SPI, tunnel_header=OUTER, nat_t=False)
    forged = bytearray(p4_decrypt_message(peer.encrypt(_inner(), seq_num=1000), sa_index=2,
                                          tunnel=True, nat_t=False)[0])
    forged[-1] ^= 1
    assert processor.process(bytes(forged)) is None
    assert table.get(2).replay.top == 0
    assert processor.process(p4_decrypt_message(peer.encrypt(_inner(), seq_num=1), sa_index=2,
                                                tunnel=True, nat_t=False)[0]) is not None


# --- sequence numbers and IVs -----------------------------------------------------------------

def test_sequence_stops_at_2_32_minus_1_without_esn() -> None:
    keying = Keying.random(GCM16)
    table, processor = _encryptor(keying)
    table.get(1).set_next_sequence_for_test(0xFFFFFFFF)
    message, _ = p4_encrypt_message(_inner(), sa_index=1, spi=SPI, tunnel_header=OUTER,
                                    nat_t=False)
    last = processor.process(message)
    assert last is not None and ip_of(last[SHIM_BYTES:])[ESP].seq == 0xFFFFFFFF
    assert processor.process(message) is None
    assert processor.process(message) is None
    counters = table.get(1).counters
    assert (counters.packets, counters.drops) == (1, {DropReason.SEQUENCE_EXHAUSTED: 2})


def test_esn_sequence_continues_past_2_32() -> None:
    keying = Keying.random(GCM16)
    table, processor = _encryptor(keying, esn=True)
    table.get(1).set_next_sequence_for_test(0xFFFFFFFF)
    message, _ = p4_encrypt_message(_inner(), sa_index=1, spi=SPI, tunnel_header=OUTER,
                                    nat_t=False)
    first, second = processor.process(message), processor.process(message)
    assert first is not None and second is not None
    esp = ip_of(second[SHIM_BYTES:])[ESP]
    assert esp.seq == 0 and bytes(esp)[8:16] == (1 << 32).to_bytes(8, "big")


# --- lengths, Ethernet padding ----------------------------------------------------------------

@pytest.mark.parametrize("tunnel", [True, False])
def test_ethernet_padding_is_not_encrypted(tunnel: bool) -> None:
    keying = Keying.random(GCM16)
    small = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2)  # a 28-byte packet
    outer = OUTER if tunnel else None
    plain, _ = p4_encrypt_message(small, sa_index=1, spi=SPI, tunnel_header=outer, nat_t=False)
    padded, _ = p4_encrypt_message(small, sa_index=1, spi=SPI, tunnel_header=outer, nat_t=False,
                                   eth_padding=b"\x00" * 18)
    assert _encryptor(keying, tunnel=tunnel)[1].process(plain) == _encryptor(
        keying, tunnel=tunnel)[1].process(padded)


@pytest.mark.parametrize("tunnel", [True, False])
def test_outer_length_must_describe_the_frame(tunnel: bool) -> None:
    """P4 writes the outer IP length; one past the frame, or (tunnel) one that disagrees with
    the inner packet, is malformed, and no sequence number is used up."""
    keying = Keying.random(GCM16)
    table, processor = _encryptor(keying, tunnel=tunnel)
    outer = OUTER if tunnel else None
    message, _ = p4_encrypt_message(_inner(), sa_index=1, spi=SPI, tunnel_header=outer,
                                    nat_t=False)
    ip_start = SHIM_BYTES + 14
    total = int.from_bytes(message[ip_start + 2 : ip_start + 4], "big")
    for wrong in (total + 8, total - 4 if tunnel else 20 + 4):
        bad = bytearray(message)
        bad[ip_start + 2 : ip_start + 4] = wrong.to_bytes(2, "big")
        assert processor.process(bytes(bad)) is None
    assert table.get(1).counters.drops == {DropReason.MALFORMED: 2}
    reply = processor.process(message)
    assert reply is not None and ip_of(reply[SHIM_BYTES:])[ESP].seq == 1


def test_decrypt_ignores_trailing_ethernet_padding() -> None:
    keying = Keying.random(GCM16)
    table, processor = _decryptor(keying)
    peer = scapy_sa(GCM16, keying, spi=SPI, tunnel_header=OUTER, nat_t=False)
    message, esp_offset = p4_decrypt_message(peer.encrypt(_inner(), seq_num=1), sa_index=2,
                                             tunnel=True, nat_t=False)
    reply = processor.process(message + b"\x00" * 12)
    assert reply is not None and reply[SHIM_BYTES + esp_offset + 8 :] == bytes(_inner())


def test_decrypt_of_a_vlan_tagged_frame_keeps_the_tag() -> None:
    """On DECRYPT P4 forwards the frame unchanged, tag included: l3_offset is 18."""
    keying = Keying.random(GCM16)
    table, processor = _decryptor(keying)
    peer = scapy_sa(GCM16, keying, spi=SPI, tunnel_header=OUTER, nat_t=False)
    tagged = bytes(Ether(src="00:00:00:00:00:03", dst="00:00:00:00:00:04") / Dot1Q(vlan=5)
                   / peer.encrypt(_inner(), seq_num=1))
    shim = shim_bytes(op=ShimOp.DECRYPT, sa_index=2, tunnel=True, nat_t=False, next_header=0,
                      esp_offset=18 + 20, l3_offset=18)
    reply = processor.process(shim + tagged)
    assert reply is not None
    assert reply[SHIM_BYTES : SHIM_BYTES + 18] == tagged[:18]
    assert reply[SHIM_BYTES + 18 + 20 + 8 :] == bytes(_inner())
    assert int.from_bytes(reply[SHIM_BYTES + 20 : SHIM_BYTES + 22], "big") == len(reply) - 16 - 18


# --- padding, next header ---------------------------------------------------------------------

def _hand_made_esp(keying: Keying, trailer: bytes, seq: int = 1) -> bytes:
    """An ESP packet sealed directly with AESGCM, with a chosen padding/trailer."""
    iv = seq.to_bytes(8, "big")
    aad = struct.pack("!II", SPI, seq)
    sealed = AESGCM(keying.key).encrypt(keying.salt + iv, bytes(_inner()) + trailer, aad)
    esp = struct.pack("!II", SPI, seq) + iv + sealed
    packet = IP(bytes(OUTER / Raw(esp)))
    packet.proto = 50
    return p4_decrypt_message(IP(bytes(packet)), sa_index=2, tunnel=True, nat_t=False)[0]


def test_bad_padding_bytes_and_dummy_packets_are_dropped() -> None:
    keying = Keying.random(GCM16)
    table, processor = _decryptor(keying)
    assert processor.process(_hand_made_esp(keying, b"\x01\x02\x02\x04", seq=1)) is not None
    assert processor.process(_hand_made_esp(keying, b"\x09\x09\x02\x04", seq=2)) is None
    assert processor.process(_hand_made_esp(keying, b"\x01\x02\x02\x3b", seq=3)) is None
    assert processor.process(_hand_made_esp(keying, b"\x01\x02\x02\x11", seq=4)) is None
    assert table.get(2).counters.drops == {
        DropReason.MALFORMED: 2,  # bad pad bytes; next header 17 in tunnel mode
        DropReason.DUMMY_PACKET: 1,
    }


# --- malformed frames, mismatches, unknown SA ------------------------------------------------

def test_malformed_and_mismatched_frames_are_counted_by_reason() -> None:
    keying = Keying.random(GCM16)
    table, processor = _encryptor(keying)
    good, esp_offset = p4_encrypt_message(_inner(), sa_index=1, spi=SPI, tunnel_header=OUTER,
                                          nat_t=False)
    frame = good[SHIM_BYTES:]

    def with_shim(**changes: object) -> bytes:
        fields: dict[str, object] = dict(op=ShimOp.ENCRYPT, sa_index=1, tunnel=True, nat_t=False,
                                         next_header=4, esp_offset=esp_offset)
        fields.update(changes)
        return shim_bytes(**fields) + frame  # type: ignore[arg-type]

    cases = {
        DropReason.MALFORMED: [
            with_shim(esp_offset=len(frame) + 4),  # ESP beyond the frame
            with_shim(esp_offset=20),  # inside the IP header
            with_shim(l3_offset=0),  # not an IP header there
            with_shim(next_header=41),  # says IPv6, inner is IPv4
            good[:SHIM_BYTES] + frame[:-10],  # inner packet truncated
        ],
        DropReason.SA_MISMATCH: [
            with_shim(op=ShimOp.DECRYPT),
            with_shim(tunnel=False),
            with_shim(nat_t=True),
        ],
        DropReason.SPI_MISMATCH: [
            good[: SHIM_BYTES + esp_offset] + b"\x00\x00\x00\x01" + good[SHIM_BYTES
                                                                           + esp_offset + 4 :]
        ],
    }
    for messages in cases.values():
        for message in messages:
            assert processor.process(message) is None
    assert processor.process(with_shim(sa_index=77)) is None
    assert processor.process(b"\x01\x01") is None
    assert processor.process(b"\x01\x09" + bytes(14) + frame) is None  # unknown op
    assert table.get(1).counters.drops == {reason: len(m) for reason, m in cases.items()}
    assert table.get(1).counters.packets == 0
    assert table.unknown_sa_drops == {77: 1}
    assert table.unattributed_drops == {DropReason.MALFORMED: 2}
    assert processor.process(good) is not None  # nothing consumed a sequence number
    assert table.get(1).next_sequence == 2


def test_ipv6_outer_with_nat_t_gets_a_udp_checksum() -> None:
    keying = Keying.random(GCM16)
    outer6 = IPv6(src="2001:db8::1", dst="2001:db8::2")
    _, processor = worker_with((sa_config(sa_index=1, spi=SPI, direction=Direction.ENCRYPT,
                                          suite=GCM16, tunnel=True, nat_t=True), keying.keys()))
    message, _ = p4_encrypt_message(_inner(), sa_index=1, spi=SPI, tunnel_header=outer6,
                                    nat_t=True)
    reply = processor.process(message)
    assert reply is not None
    received = ip_of(reply[SHIM_BYTES:])
    assert received[UDP].chksum != 0
    rebuilt = received.copy()
    del rebuilt[UDP].chksum
    assert IPv6(bytes(rebuilt))[UDP].chksum == received[UDP].chksum


# --- validation -------------------------------------------------------------------------------

def _request(**changes: object) -> SaRequest:
    suite = SUITES[0]
    fields: dict[str, object] = dict(
        sa_index=1, spi=0x1000, direction=Direction.ENCRYPT, suite=suite, mode=None,
        nat_traversal=False, esn=False, replay_window=0,
        key=Secret(b"k" * suite.key_bytes), salt=Secret(b"s" * suite.salt_bytes))
    fields.update(changes)
    return SaRequest(**fields)  # type: ignore[arg-type]


def test_validation_names_the_field_and_value() -> None:
    from crypto_worker.sa import EspMode

    config, keys = validate_sa(_request(mode=EspMode.TUNNEL, replay_window=1024))
    assert config.replay_window == 1024 and len(keys.key) == 32
    assert validate_sa(_request(mode=EspMode.TUNNEL))[0].replay_window == 64
    with pytest.raises(SaValidationError, match="^mode: unspecified"):
        validate_sa(_request())
    with pytest.raises(SaValidationError, match="^sa_index: 65536, must be 1 … 65535"):
        validate_sa(_request(sa_index=65536, mode=EspMode.TUNNEL))
    with pytest.raises(SaValidationError, match="^key: 31 bytes, AES-256-GCM/ICV8 needs 32"):
        validate_sa(_request(key=Secret(b"k" * 31), mode=EspMode.TUNNEL))


def test_ipv4_header_rewrite_equals_a_full_checksum_over_the_new_header() -> None:
    """The one-integer checksum shortcut against RFC 1071 word by word, for random headers with
    options, a received checksum that is wrong, and lengths whose checksum comes out 0 or 0xFFFF
    in the one's-complement sum."""
    def rfc1071(header: bytes) -> int:
        total = sum(struct.unpack(f"!{len(header) // 2}H", header))
        while total > 0xFFFF:
            total = (total & 0xFFFF) + (total >> 16)
        return ~total & 0xFFFF

    rng = random.Random(7)
    seen_checksums = set()
    for case in range(3000):
        ihl = 5 + case % 11
        header = bytearray(rng.randbytes(ihl * 4))
        header[0] = 0x40 | ihl
        if case % 3 == 0:  # words chosen so the sum with the new length is 0xFFFF (checksum 0)
            header[2:12] = bytes(10)
            header[12:] = bytes(len(header) - 12)
            header[4:6] = (0xFFFF - (0x4000 | ihl << 8) - 100).to_bytes(2, "big")
        frame = b"\x02" * 14 + bytes(header) + b"payload"
        new = ipv4_header_with_length(frame, 14, 14 + ihl * 4, 100)
        expected = bytearray(header)
        expected[2:4] = (100).to_bytes(2, "big")
        expected[10:12] = b"\x00\x00"
        expected[10:12] = rfc1071(bytes(expected)).to_bytes(2, "big")
        assert new == bytes(expected), case
        seen_checksums.add(int.from_bytes(new[10:12], "big"))
    assert 0 in seen_checksums
