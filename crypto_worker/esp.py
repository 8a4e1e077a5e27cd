"""The ESP transforms on one frame, exactly as docs/dataplane.md splits the work with P4.

Encrypt: P4 has built every header up to and including the ESP header (SPI set, sequence 0);
the worker assigns the sequence number, derives the IV from it, pads, appends the trailer,
seals everything after the ESP header, appends the ICV and fixes the outer lengths.
Decrypt: the worker checks the SPI and the replay window, opens and verifies the ICV, moves the
window, and returns the frame with IV, padding, trailer and ICV removed and the lengths fixed.
Every failure raises PacketDropped with its reason; nothing failed is ever returned.
"""

from __future__ import annotations

from crypto_worker.aead import IcvMismatch
from crypto_worker.ciphers import ESP_IV_BYTES
from crypto_worker.drops import DropReason, PacketDropped
from crypto_worker.headers import (
    IPV6_HEADER,
    MIN_IPV4_HEADER,
    UDP_HEADER,
    fix_lengths,
    header_pieces,
    ip_packet_end,
    ipv4_header_with_length,
)
from crypto_worker.sa import Direction, EspMode, SecurityAssociation
from crypto_worker.shim import FLAG_NAT_T, FLAG_TUNNEL_MODE, CryptoShim, ShimOp

ESP_HEADER_BYTES = 8
IPPROTO_IPV4 = 4
IPPROTO_IPV6 = 41
IPPROTO_NONE = 59  # RFC 4303 §2.6: a dummy (traffic flow confidentiality) packet
_LOW32 = 0xFFFFFFFF
_MODE_FLAGS = FLAG_TUNNEL_MODE | FLAG_NAT_T
# RFC 4303 §2.4: padding bytes are 1, 2, 3, ...; AEAD block size 1, 4-byte alignment needs <= 3.
_PADDING = tuple(bytes(range(1, n + 1)) for n in range(4))
# Padding ‖ pad length ‖ next header for every (pad length, next header): one lookup per packet.
_TRAILERS = tuple(_PADDING[pad] + bytes((pad, nh)) for pad in range(4) for nh in range(256))
_PAD_BYTES = bytes(range(1, 256))  # what any pad length's bytes must be
_TUNNEL_NEXT_HEADER = {4: IPPROTO_IPV4, 6: IPPROTO_IPV6}  # inner IP version -> next header
DEFAULT_MTU = 9000
"""The crypto port's MTU unless --mtu says otherwise: the largest IP packet (the outer IP header
and everything after it, Ethernet header not included, as Linux counts an interface MTU) that the
worker returns."""
MIN_MTU = 68  # RFC 791: every IPv4 link carries 68-byte packets
MAX_FRAME = 65535
"""The largest frame either port carries (nanomsg message, AF_PACKET buffer); also bounds every
IP length field, so a result is never built whose length would not fit its header."""


# Outer IPv4 headers of tunnel-mode encrypt results by (header as P4 wrote it, total length):
# header bytes only, no key material; emptied when full (a few tunnels × a few sizes is the
# working set; a flood of distinct headers costs one recomputation each, as without the table).
_OUTER_HEADERS: dict[tuple[bytes, int], bytes] = {}
_OUTER_HEADERS_MAX = 4096


def _check_size(shim: CryptoShim, frame_length: int, mtu: int) -> None:
    """Refuses a result the crypto port cannot carry, before any state (sequence number, replay
    window) is spent on it."""
    ip_length = frame_length - shim.l3_offset
    if ip_length > mtu or frame_length > MAX_FRAME:
        raise PacketDropped(
            DropReason.OVERSIZE,
            f"result: IP packet of {ip_length} bytes in a {frame_length}-byte frame, "
            f"the crypto port carries IP packets up to its MTU of {mtu} bytes",
        )


def _malformed(detail: str) -> PacketDropped:
    return PacketDropped(DropReason.MALFORMED, detail)


def _check_sa_matches_shim(sa: SecurityAssociation, shim: CryptoShim) -> None:
    if (shim.op, shim.flags & _MODE_FLAGS) == sa.shim_signature:
        return
    config = sa.config
    wanted = Direction.ENCRYPT if shim.op is ShimOp.ENCRYPT else Direction.DECRYPT
    if config.direction is not wanted:
        raise PacketDropped(
            DropReason.SA_MISMATCH,
            f"op: {shim.op.name}, but sa_index {config.sa_index} is {config.direction.value}",
        )
    if shim.tunnel_mode != (config.mode is EspMode.TUNNEL):
        raise PacketDropped(
            DropReason.SA_MISMATCH,
            f"flags.TUNNEL_MODE: {int(shim.tunnel_mode)}, but sa_index {config.sa_index} "
            f"is {config.mode.value} mode",
        )
    if shim.nat_t != config.nat_traversal:
        raise PacketDropped(
            DropReason.SA_MISMATCH,
            f"flags.NAT_T: {int(shim.nat_t)}, but sa_index {config.sa_index} has "
            f"nat_traversal={config.nat_traversal}",
        )


def _ip_extent(frame: bytes | bytearray | memoryview, l3: int) -> tuple[int, int]:
    """The IP header length and the end offset of the IP packet at `l3`, from its version,
    IHL and length fields ((0, 0) for neither IPv4 nor IPv6): what both directions check the
    shim's offsets against before any slice (the caller has checked that `l3` is in range)."""
    first = frame[l3]
    if first >> 4 == 4:
        return (first & 0x0F) * 4, l3 + ((frame[l3 + 2] << 8) | frame[l3 + 3])
    if first >> 4 == 6:
        return IPV6_HEADER, l3 + IPV6_HEADER + ((frame[l3 + 4] << 8) | frame[l3 + 5])
    return 0, 0


def _check_offsets(shim: CryptoShim, frame: bytes, minimum_after_esp: int) -> None:
    """The outer IP header and the ESP header must lie where the shim says, in this order."""
    l3, esp = shim.l3_offset, shim.esp_offset
    if l3 + MIN_IPV4_HEADER > len(frame):
        raise _malformed(f"l3_offset: {l3}, no IP header in a {len(frame)}-byte frame")
    version = frame[l3] >> 4
    if version == 4:
        header = (frame[l3] & 0x0F) * 4
        if header < MIN_IPV4_HEADER:
            raise _malformed(f"IPv4 IHL: {header // 4}, below 5")
    elif version == 6:
        header = IPV6_HEADER
    else:
        raise _malformed(f"IP version: {version} at l3_offset {l3}")
    udp = UDP_HEADER if shim.nat_t else 0
    if esp < l3 + header + udp:
        raise _malformed(f"esp_offset: {esp}, inside the IP/UDP headers starting at {l3}")
    if esp + ESP_HEADER_BYTES + minimum_after_esp > len(frame):
        raise _malformed(f"esp_offset: {esp}, frame of {len(frame)} bytes too short for ESP")


def _check_spi(sa: SecurityAssociation, frame: bytes, esp: int) -> bytes:
    spi_bytes = frame[esp : esp + 4]
    if spi_bytes != sa.spi_bytes:
        spi = int.from_bytes(spi_bytes, "big")
        raise PacketDropped(
            DropReason.SPI_MISMATCH,
            f"spi: 0x{spi:08x}, sa_index {sa.config.sa_index} has spi 0x{sa.config.spi:08x}",
        )
    return spi_bytes


def _aad(spi_bytes: bytes, sequence: int, esn: bool) -> bytes:
    """RFC 4106 §5 / RFC 4309 §5: SPI ‖ sequence (32 bits), or SPI ‖ high ‖ low with ESN."""
    if esn:
        return spi_bytes + sequence.to_bytes(8, "big")
    return spi_bytes + sequence.to_bytes(4, "big")


def _protected_end_for_encrypt(shim: CryptoShim, frame: bytes) -> int:
    """Where the payload to protect ends: at the end of the outer IP packet as P4 wrote it.

    P4 writes the outer IP (and UDP) lengths of the frame it sends, computed from the packet's
    own IP length (docs/dataplane.md, notes on the crypto contract), so Ethernet padding after a
    short packet lies beyond them and is never encrypted. In tunnel mode the inner packet must
    end exactly there too, and its IP version must agree with `next_header`.
    """
    esp_payload = shim.esp_offset + ESP_HEADER_BYTES
    end = ip_packet_end(frame, shim.l3_offset)
    if end > len(frame) or end < esp_payload:
        raise _malformed(
            f"IP length: {end - shim.l3_offset}, does not fit ESP at {shim.esp_offset} "
            f"in the {len(frame)}-byte frame"
        )
    if shim.tunnel_mode:
        if esp_payload + MIN_IPV4_HEADER > end:
            raise _malformed("tunnel mode: inner IP header truncated")
        version = frame[esp_payload] >> 4
        expected = _TUNNEL_NEXT_HEADER.get(version)
        if expected is None or expected != shim.next_header:
            raise _malformed(
                f"next_header: {shim.next_header}, inner packet is IP version {version}"
            )
        inner_end = ip_packet_end(frame, esp_payload)
        if inner_end != end:
            raise _malformed(
                f"inner IP length: {inner_end - esp_payload}, outer length leaves "
                f"{end - esp_payload} bytes for it"
            )
    return end


def encrypt_frame(
    sa: SecurityAssociation, shim: CryptoShim, frame: bytes, mtu: int = DEFAULT_MTU,
    *, prefix: bytes = b"",
) -> bytes:
    """Returns `prefix` ‖ the frame with the ESP payload sealed (the caller's shim goes in the
    same join as the frame, not copied again); raises PacketDropped (OVERSIZE when the sealed
    frame's IP packet would exceed `mtu`, before a sequence number is taken).

    The checks of `_check_offsets`, `_check_spi` and `_protected_end_for_encrypt`, in their
    order, written out on the success path: a Python call per check was half of the per-frame
    cost (docs/crypto-worker.md, Speed); each failure still goes through the helper that
    words its error, so what is dropped and why is unchanged.
    """
    flags = shim.flags
    if (shim.op, flags & _MODE_FLAGS) != sa.shim_signature:
        _check_sa_matches_shim(sa, shim)
    l3, esp = shim.l3_offset, shim.esp_offset
    size = len(frame)
    if l3 + MIN_IPV4_HEADER > size:
        _check_offsets(shim, frame, 0)
    header, end = _ip_extent(frame, l3)
    esp_payload = esp + ESP_HEADER_BYTES
    if (header < MIN_IPV4_HEADER or esp < l3 + header + (UDP_HEADER if flags & FLAG_NAT_T else 0)
            or esp_payload > size):
        _check_offsets(shim, frame, 0)
    spi_bytes = frame[esp:esp + 4]
    if spi_bytes != sa.spi_bytes:
        _check_spi(sa, frame, esp)
    if end > size or end < esp_payload:
        _protected_end_for_encrypt(shim, frame)
    if flags & FLAG_TUNNEL_MODE:  # the inner packet must end where the outer one does
        inner = frame[esp_payload] >> 4 if esp_payload + MIN_IPV4_HEADER <= end else 0
        if inner == 4:
            inner_end = esp_payload + ((frame[esp_payload + 2] << 8) | frame[esp_payload + 3])
        elif inner == 6:
            inner_end = (esp_payload + IPV6_HEADER
                         + ((frame[esp_payload + 4] << 8) | frame[esp_payload + 5]))
        else:
            inner_end = -1
        if inner_end != end or _TUNNEL_NEXT_HEADER[inner] != shim.next_header:
            _protected_end_for_encrypt(shim, frame)
    payload = frame[esp_payload:end]
    plaintext = payload + _TRAILERS[(-(len(payload) + 2) % 4) * 256 + shim.next_header]
    length = esp_payload + ESP_IV_BYTES + len(plaintext) + sa.config.suite.icv_bytes
    if length - l3 > mtu or length > MAX_FRAME:
        _check_size(shim, length, mtu)
    sequence = sa.take_sequence()
    iv = sequence.to_bytes(ESP_IV_BYTES, "big")
    # ESN: the AAD carries the high half too (_aad); the header carries the low 32 bits.
    low = iv[4:]
    sealed = sa.aead.seal(iv, plaintext, spi_bytes + (iv if sa.config.esn else low))
    if frame[l3] >> 4 == 4 and not flags & FLAG_NAT_T:  # the common case: only the IPv4 header
        header_end = l3 + header
        if flags & FLAG_TUNNEL_MODE:
            # P4 writes the same outer header for every packet of a tunnel (id 0): its
            # rewritten form for a given length is looked up, not recomputed per packet.
            key = (frame[l3:header_end], length - l3)
            outer = _OUTER_HEADERS.get(key)
            if outer is None:
                if len(_OUTER_HEADERS) >= _OUTER_HEADERS_MAX:
                    _OUTER_HEADERS.clear()
                outer = ipv4_header_with_length(frame, l3, header_end, length - l3)
                _OUTER_HEADERS[key] = outer
        else:
            outer = ipv4_header_with_length(frame, l3, header_end, length - l3)
        return b"".join((prefix, frame[:l3], outer, frame[header_end:esp], spi_bytes, low, iv,
                         sealed))
    return prefix + _with_lengths(shim, frame, (spi_bytes, low, iv, sealed), length)


def _with_lengths(
    shim: CryptoShim, frame: bytes, esp_pieces: tuple[bytes, ...], frame_length: int
) -> bytes:
    """frame[:esp_offset] ‖ `esp_pieces` with the IP (and NAT-T UDP) lengths and checksums set
    for the new `frame_length`: the headers are rebuilt once and the frame joined once, not
    patched in a bytearray and copied."""
    esp = shim.esp_offset
    udp = esp - UDP_HEADER if shim.flags & FLAG_NAT_T else None
    pieces = header_pieces(frame, shim.l3_offset, esp, udp, frame_length)
    if pieces is not None:
        pieces.extend(esp_pieces)
        return b"".join(pieces)
    out = bytearray(frame[:esp])  # IPv6 with NAT-T: the UDP checksum covers everything
    out += b"".join(esp_pieces)
    fix_lengths(out, shim.l3_offset, udp)
    return bytes(out)


def decrypt_frame(
    sa: SecurityAssociation, shim: CryptoShim, frame: bytes, mtu: int = DEFAULT_MTU
) -> tuple[bytes, int]:
    """Returns (frame with ESP opened, trailer next header); raises PacketDropped (OVERSIZE when
    even the opened frame's IP packet exceeds `mtu`: it arrived on a port without that limit)."""
    flags = shim.flags
    if (shim.op, flags & _MODE_FLAGS) != sa.shim_signature:
        _check_sa_matches_shim(sa, shim)
    icv_bytes = sa.config.suite.icv_bytes
    minimum_after_esp = ESP_IV_BYTES + 2 + icv_bytes
    # `_check_offsets` written out on the success path, as in encrypt_frame.
    l3, esp = shim.l3_offset, shim.esp_offset
    size = len(frame)
    if l3 + MIN_IPV4_HEADER > size:
        _check_offsets(shim, frame, minimum_after_esp)
    header, end = _ip_extent(frame, l3)
    if (header < MIN_IPV4_HEADER or esp < l3 + header + (UDP_HEADER if flags & FLAG_NAT_T else 0)
            or esp + ESP_HEADER_BYTES + minimum_after_esp > size):
        _check_offsets(shim, frame, minimum_after_esp)
    if end > size:
        raise _malformed(f"IP length: {end - l3}, frame ends before")
    if end < esp + ESP_HEADER_BYTES + minimum_after_esp:
        raise _malformed(f"IP length: {end - l3}, too short for ESP")
    spi_bytes = frame[esp:esp + 4]
    if spi_bytes != sa.spi_bytes:
        _check_spi(sa, frame, esp)
    replay = sa.replay
    assert replay is not None
    low = int.from_bytes(frame[esp + 4 : esp + 8], "big")
    sequence = replay.full_sequence(low)
    if not replay.is_fresh(sequence):
        raise PacketDropped(
            DropReason.REPLAY,
            f"sequence: {low}, replayed or left of the window (top {replay.top})",
        )
    iv_start = esp + ESP_HEADER_BYTES
    iv = frame[iv_start : iv_start + ESP_IV_BYTES]
    try:
        plaintext = sa.aead.open(
            iv, frame[iv_start + ESP_IV_BYTES : end], _aad(spi_bytes, sequence, sa.config.esn)
        )
    except IcvMismatch:
        raise PacketDropped(
            DropReason.ICV_FAILURE, f"sa_index {sa.config.sa_index}: ICV check failed"
        ) from None
    reservation = sa.reservation
    if sequence > reservation.refill_at:  # the mark is durable before the window passes it
        reservation.reach(sequence)
    replay.accept(sequence)
    pad_length, next_header = plaintext[-2], plaintext[-1]
    payload_end = len(plaintext) - 2 - pad_length
    if payload_end < 0:
        raise _malformed(f"pad length: {pad_length}, longer than the payload")
    if pad_length and plaintext[payload_end : len(plaintext) - 2] != _PAD_BYTES[:pad_length]:
        raise _malformed("padding: bytes are not 1, 2, 3, ... (RFC 4303 §2.4)")
    if next_header == IPPROTO_NONE:
        raise PacketDropped(DropReason.DUMMY_PACKET, "next header 59: dummy packet discarded")
    if flags & FLAG_TUNNEL_MODE and next_header not in (IPPROTO_IPV4, IPPROTO_IPV6):
        raise _malformed(f"next header: {next_header}, tunnel mode needs 4 or 41")
    length = esp + ESP_HEADER_BYTES + payload_end
    if length - l3 > mtu:
        _check_size(shim, length, mtu)
    if frame[l3] >> 4 == 4 and not flags & FLAG_NAT_T:
        header_end = l3 + header  # the common case: only the IPv4 header changes
        return b"".join((frame[:l3], ipv4_header_with_length(frame, l3, header_end, length - l3),
                         frame[header_end:esp + ESP_HEADER_BYTES],
                         plaintext[:payload_end])), next_header
    esp_pieces = (frame[esp : esp + ESP_HEADER_BYTES], plaintext[:payload_end])
    return _with_lengths(shim, frame, esp_pieces, length), next_header
