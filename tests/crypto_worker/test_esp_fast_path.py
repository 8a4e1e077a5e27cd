"""`encrypt_frame` / `decrypt_frame` write their checks out on the success path (for speed); this
test holds them to the helper-by-helper implementation they replaced, kept here as the oracle:
on valid frames and on thousands of randomly damaged ones (shim offsets, flags and next header,
IP version/IHL/length bytes, SPI, inner header, truncation) both give the same frame, or the same
drop reason with the same message, or the same exception type.

Run just this file:
    .venv/bin/python -m pytest tests/crypto_worker/test_esp_fast_path.py -q
"""

from __future__ import annotations

import random

import pytest
from cw_support import Keying, p4_decrypt_message, p4_encrypt_message, sa_config, worker_with
from scapy.layers.inet import IP, UDP, IPOption
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

from crypto_worker import esp
from crypto_worker.ciphers import ESP_IV_BYTES, SUITE_BY_ENC_TYPE_NAME
from crypto_worker.drops import PacketDropped
from crypto_worker.esp import (
    ESP_HEADER_BYTES,
    IPPROTO_IPV4,
    IPPROTO_IPV6,
    IPPROTO_NONE,
    MAX_FRAME,
    _aad,
    _check_offsets,
    _check_sa_matches_shim,
    _check_size,
    _check_spi,
    _malformed,
    _protected_end_for_encrypt,
    _with_lengths,
)
from crypto_worker.headers import ip_packet_end
from crypto_worker.sa import Direction, SecurityAssociation
from crypto_worker.shim import SHIM_BYTES, ShimError, parse_shim

_PAD_BYTES = bytes(range(1, 256))
SUITES = [SUITE_BY_ENC_TYPE_NAME["_aes128gcm128"], SUITE_BY_ENC_TYPE_NAME["_aes256ccm64"]]


def reference_encrypt(sa: SecurityAssociation, shim, frame: bytes, mtu: int) -> bytes:  # type: ignore[no-untyped-def]
    if (shim.op, shim.flags & esp._MODE_FLAGS) != sa.shim_signature:
        _check_sa_matches_shim(sa, shim)
    _check_offsets(shim, frame, 0)
    at = shim.esp_offset
    spi_bytes = _check_spi(sa, frame, at)
    end = _protected_end_for_encrypt(shim, frame)
    payload = frame[at + ESP_HEADER_BYTES : end]
    pad_length = -(len(payload) + 2) % 4
    plaintext = payload + esp._TRAILERS[pad_length * 256 + shim.next_header]
    length = at + ESP_HEADER_BYTES + ESP_IV_BYTES + len(plaintext) + sa.config.suite.icv_bytes
    if length - shim.l3_offset > mtu or length > MAX_FRAME:
        _check_size(shim, length, mtu)
    sequence = sa.take_sequence()
    iv = sequence.to_bytes(ESP_IV_BYTES, "big")
    low = iv[4:]
    sealed = sa.aead.seal(iv, plaintext, spi_bytes + (iv if sa.config.esn else low))
    return _with_lengths(shim, frame, (spi_bytes, low, iv, sealed), length)


def reference_decrypt(sa: SecurityAssociation, shim, frame: bytes, mtu: int) -> tuple[bytes, int]:  # type: ignore[no-untyped-def]
    if (shim.op, shim.flags & esp._MODE_FLAGS) != sa.shim_signature:
        _check_sa_matches_shim(sa, shim)
    icv_bytes = sa.config.suite.icv_bytes
    _check_offsets(shim, frame, ESP_IV_BYTES + 2 + icv_bytes)
    at = shim.esp_offset
    end = ip_packet_end(frame, shim.l3_offset)
    if end > len(frame):
        raise _malformed(f"IP length: {end - shim.l3_offset}, frame ends before")
    if end < at + ESP_HEADER_BYTES + ESP_IV_BYTES + 2 + icv_bytes:
        raise _malformed(f"IP length: {end - shim.l3_offset}, too short for ESP")
    spi_bytes = _check_spi(sa, frame, at)
    replay = sa.replay
    assert replay is not None
    low = int.from_bytes(frame[at + 4 : at + 8], "big")
    sequence = replay.full_sequence(low)
    if not replay.is_fresh(sequence):
        raise PacketDropped(esp.DropReason.REPLAY,
                            f"sequence: {low}, replayed or left of the window (top {replay.top})")
    iv_start = at + ESP_HEADER_BYTES
    iv = frame[iv_start : iv_start + ESP_IV_BYTES]
    try:
        plaintext = sa.aead.open(iv, frame[iv_start + ESP_IV_BYTES : end],
                                 _aad(spi_bytes, sequence, sa.config.esn))
    except esp.IcvMismatch:
        raise PacketDropped(esp.DropReason.ICV_FAILURE,
                            f"sa_index {sa.config.sa_index}: ICV check failed") from None
    reservation = sa.reservation
    if sequence > reservation.refill_at:
        reservation.reach(sequence)
    replay.accept(sequence)
    pad_length, next_header = plaintext[-2], plaintext[-1]
    payload_end = len(plaintext) - 2 - pad_length
    if payload_end < 0:
        raise _malformed(f"pad length: {pad_length}, longer than the payload")
    if pad_length and plaintext[payload_end : len(plaintext) - 2] != _PAD_BYTES[:pad_length]:
        raise _malformed("padding: bytes are not 1, 2, 3, ... (RFC 4303 §2.4)")
    if next_header == IPPROTO_NONE:
        raise PacketDropped(esp.DropReason.DUMMY_PACKET, "next header 59: dummy packet discarded")
    if shim.tunnel_mode and next_header not in (IPPROTO_IPV4, IPPROTO_IPV6):
        raise _malformed(f"next header: {next_header}, tunnel mode needs 4 or 41")
    length = at + ESP_HEADER_BYTES + payload_end
    if length - shim.l3_offset > mtu:
        _check_size(shim, length, mtu)
    return _with_lengths(shim, frame, (frame[at : at + ESP_HEADER_BYTES],
                                       plaintext[:payload_end]), length), next_header


def _outcome(call, *args):  # type: ignore[no-untyped-def]
    try:
        return ("ok", call(*args))
    except PacketDropped as drop:
        return ("drop", drop.reason, str(drop))
    except Exception as error:  # noqa: BLE001 - compared by type
        return ("error", type(error))


def _damaged(message: bytes, rng: random.Random) -> bytes:
    """One to three random changes where the checks look: shim fields, the first 80 header
    bytes of the frame (IP version/IHL/lengths, UDP, SPI, inner header), or the length."""
    data = bytearray(message)
    for _ in range(rng.randint(1, 3)):
        choice = rng.random()
        if choice < 0.3:
            at = rng.choice((2, 7, 9, 10, 11, 13))  # flags, next_header, l3/esp offsets
            step = rng.choice((-8, -1, 1, 4, 20))
            data[at] = rng.randrange(256) if rng.random() < 0.5 else (data[at] + step) & 0xFF
        elif choice < 0.85:
            at = SHIM_BYTES + rng.randrange(max(1, min(96, len(data) - SHIM_BYTES)))
            if at >= len(data):
                continue
            bit = 1 << rng.randrange(8)
            data[at] = rng.randrange(256) if rng.random() < 0.5 else data[at] ^ bit
        elif len(data) > SHIM_BYTES + 1:
            data = data[: rng.randrange(SHIM_BYTES + 1, len(data))]
    return bytes(data)


def _packet(v6: bool, size: int):  # type: ignore[no-untyped-def]
    ip = IPv6(src="2001:db8::1", dst="2001:db8::2") if v6 else IP(src="10.0.0.1", dst="10.0.0.2")
    return ip / UDP(sport=1000, dport=2000) / Raw(bytes(range(size % 256)) * (size // 256 + 1))


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.label)
@pytest.mark.parametrize("tunnel", [True, False], ids=["tunnel", "transport"])
@pytest.mark.parametrize("nat_t", [False, True], ids=["esp", "nat-t"])
@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_fast_path_matches_the_reference(suite, tunnel: bool, nat_t: bool, v6: bool) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(f"{suite.label}{tunnel}{nat_t}{v6}")
    keying = Keying.random(suite)
    outer = (IPv6(src="2001:db8:1::1", dst="2001:db8:1::2") if v6
             else IP(src="203.0.113.1", dst="203.0.113.2",
                     options=[IPOption(b"\x01\x01\x01\x00")] if rng.random() < 0.5 else []))
    tunnel_header = outer if tunnel else None
    mtu = rng.choice((1500, 9000))

    def encrypt_sa() -> SecurityAssociation:
        config = sa_config(sa_index=1, spi=0x1234, direction=Direction.ENCRYPT, suite=suite,
                           tunnel=tunnel, nat_t=nat_t)
        table, _ = worker_with((config, keying.keys()))
        sa = table.get(1)
        assert sa is not None
        return sa

    def decrypt_sa() -> SecurityAssociation:
        config = sa_config(sa_index=2, spi=0x1234, direction=Direction.DECRYPT, suite=suite,
                           tunnel=tunnel, nat_t=nat_t, replay_window=1024)
        table, _ = worker_with((config, keying.keys()))
        sa = table.get(2)
        assert sa is not None
        return sa

    fast, reference, sealer = encrypt_sa(), encrypt_sa(), encrypt_sa()
    fast_in, reference_in = decrypt_sa(), decrypt_sa()
    compared = {"ok": 0, "drop": 0, "error": 0}
    for number in range(300):
        clean, _ = p4_encrypt_message(_packet(v6, rng.choice((1, 40, 333, 1400))),
                                      sa_index=1, spi=0x1234, tunnel_header=tunnel_header,
                                      nat_t=nat_t)
        message = clean if number % 4 == 0 else _damaged(clean, rng)
        for candidate in (message, clean):
            try:
                shim = parse_shim(candidate)
            except ShimError:
                continue
            frame = candidate[SHIM_BYTES:]
            got = _outcome(esp.encrypt_frame, fast, shim, frame, mtu)
            assert got == _outcome(reference_encrypt, reference, shim, frame, mtu), candidate.hex()
            compared[got[0]] += 1
        # The clean frame's ciphertext, damaged or not, through both decrypts.
        sealed = esp.encrypt_frame(sealer, parse_shim(clean), clean[SHIM_BYTES:], 9000)
        ip_packet = IPv6(sealed[14:]) if v6 else IP(sealed[14:])
        incoming, _ = p4_decrypt_message(ip_packet, sa_index=2, tunnel=tunnel, nat_t=nat_t)
        for candidate in (incoming if number % 4 == 0 else _damaged(incoming, rng), incoming):
            try:
                shim = parse_shim(candidate)
            except ShimError:
                continue
            frame = candidate[SHIM_BYTES:]
            got = _outcome(esp.decrypt_frame, fast_in, shim, frame, mtu)
            expected = _outcome(reference_decrypt, reference_in, shim, frame, mtu)
            assert got == expected, candidate.hex()
            compared[got[0]] += 1
    assert fast.next_sequence == reference.next_sequence
    assert fast_in.replay is not None and reference_in.replay is not None
    assert fast_in.replay.top == reference_in.replay.top
    assert compared["ok"] >= 300 and compared["drop"] >= 50, compared
