"""Reading and fixing the IP and UDP headers around ESP: lengths and checksums.

After ESP grows (encrypt) or shrinks (decrypt) a frame, the outer IPv4 total length and header
checksum, the IPv6 payload length and the NAT-T UDP length must describe the new frame. The UDP
checksum is 0 over IPv4 (RFC 3948 §2.1) and computed over IPv6, where zero is not allowed.
"""

from __future__ import annotations

_IPV4_MIN_HEADER = 20
_IPV6_HEADER = 40
_UDP_HEADER = 8
IPPROTO_UDP = 17


def ones_complement_checksum(data: bytes | bytearray) -> int:
    """The Internet checksum (RFC 1071) of `data`, computed with one big-integer reduction.

    The one's-complement sum of 16-bit words equals the number modulo 0xFFFF (0xFFFF when that is
    0 and the data is not all zero), which is much faster in Python than a loop over words.
    """
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    value = int.from_bytes(data, "big")
    total = value % 0xFFFF
    if total == 0 and value:
        total = 0xFFFF
    return ~total & 0xFFFF


def ipv4_header_with_length(
    frame: bytes, l3_offset: int, header_end: int, total_length: int
) -> bytes:
    """The IPv4 header at `l3_offset` with `total_length` written and the checksum recomputed.

    A full recomputation, not an incremental update (RFC 1624) that would trust the received
    checksum: the one's-complement sum of the header's 16-bit words is the header read as one
    integer modulo 0xFFFF (2^16 ≡ 1), so the sum with the length word replaced and the checksum
    word zeroed is that integer minus the old words plus the new length. Same result as
    `ones_complement_checksum` over the rewritten header, without building it twice.
    """
    header = frame[l3_offset:header_end]
    old_length = (header[2] << 8) | header[3]
    old_checksum = (header[10] << 8) | header[11]
    total = (int.from_bytes(header, "big") - old_length - old_checksum + total_length) % 0xFFFF
    checksum = 0xFFFF - total if total else 0  # a header is never all zero (version 4)
    return (
        header[:2]
        + total_length.to_bytes(2, "big")
        + header[4:10]
        + checksum.to_bytes(2, "big")
        + header[12:]
    )


def header_pieces(
    frame: bytes, l3_offset: int, prefix_end: int, udp_offset: int | None, frame_length: int
) -> list[bytes] | None:
    """`frame[:prefix_end]` as pieces to join, with the IP (and NAT-T UDP) lengths and checksums
    rewritten for a frame of `frame_length` bytes; None when a checksum depends on the rest of
    the frame (the UDP checksum over IPv6): the caller then uses `fix_lengths` on the whole
    frame. Pieces, so that the caller builds the new frame with a single join."""
    if frame[l3_offset] >> 4 == 4:
        header_end = l3_offset + (frame[l3_offset] & 0x0F) * 4
        ip = ipv4_header_with_length(frame, l3_offset, header_end, frame_length - l3_offset)
    elif udp_offset is None:
        header_end = l3_offset + _IPV6_HEADER
        return [
            frame[: l3_offset + 4],
            (frame_length - header_end).to_bytes(2, "big"),
            frame[l3_offset + 6 : prefix_end],
        ]
    else:
        return None
    if udp_offset is None:
        return [frame[:l3_offset], ip, frame[header_end:prefix_end]]
    return [
        frame[:l3_offset],
        ip,
        frame[header_end : udp_offset + 4],
        (frame_length - udp_offset).to_bytes(2, "big"),
        b"\x00\x00",  # RFC 3948 §2.1: UDP checksum 0 over IPv4
        frame[udp_offset + 8 : prefix_end],
    ]


def ip_version(frame: bytes | bytearray, l3_offset: int) -> int:
    return frame[l3_offset] >> 4


def ip_packet_end(frame: bytes | bytearray, l3_offset: int) -> int:
    """Where the IP packet at `l3_offset` ends according to its own length field."""
    version = frame[l3_offset] >> 4
    if version == 4:
        return l3_offset + int.from_bytes(frame[l3_offset + 2 : l3_offset + 4], "big")
    if version == 6:
        return (
            l3_offset
            + _IPV6_HEADER
            + int.from_bytes(frame[l3_offset + 4 : l3_offset + 6], "big")
        )
    raise ValueError(f"IP version {version} at offset {l3_offset}")


def ip_header_bytes(frame: bytes | bytearray, l3_offset: int) -> int:
    """The fixed header size: IHL*4 for IPv4, 40 for IPv6 (extension headers not included)."""
    if frame[l3_offset] >> 4 == 4:
        return (frame[l3_offset] & 0x0F) * 4
    return _IPV6_HEADER


def fix_lengths(frame: bytearray, l3_offset: int, udp_offset: int | None) -> None:
    """Rewrites the IP (and NAT-T UDP) lengths and checksums to describe `frame` to its end."""
    version = frame[l3_offset] >> 4
    if version == 4:
        total = len(frame) - l3_offset
        frame[l3_offset + 2 : l3_offset + 4] = total.to_bytes(2, "big")
        header_end = l3_offset + (frame[l3_offset] & 0x0F) * 4
        frame[l3_offset + 10 : l3_offset + 12] = b"\x00\x00"
        checksum = ones_complement_checksum(frame[l3_offset:header_end])
        frame[l3_offset + 10 : l3_offset + 12] = checksum.to_bytes(2, "big")
    else:
        payload = len(frame) - l3_offset - _IPV6_HEADER
        frame[l3_offset + 4 : l3_offset + 6] = payload.to_bytes(2, "big")
    if udp_offset is None:
        return
    udp_length = len(frame) - udp_offset
    frame[udp_offset + 4 : udp_offset + 6] = udp_length.to_bytes(2, "big")
    frame[udp_offset + 6 : udp_offset + 8] = b"\x00\x00"
    if version == 6:
        pseudo = (
            frame[l3_offset + 8 : l3_offset + 40]
            + udp_length.to_bytes(4, "big")
            + bytes((0, 0, 0, IPPROTO_UDP))
        )
        checksum = ones_complement_checksum(pseudo + frame[udp_offset:]) or 0xFFFF
        frame[udp_offset + 6 : udp_offset + 8] = checksum.to_bytes(2, "big")


MIN_IPV4_HEADER = _IPV4_MIN_HEADER
IPV6_HEADER = _IPV6_HEADER
UDP_HEADER = _UDP_HEADER
