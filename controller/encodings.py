"""Wire encodings of addresses: IPv4 fixed32, MACs and IPv6 as raw bytes or ASCII hex text.

IPv4 (decided for the team, docs/api.md): the four bytes of a fixed32 on the wire are the address
in network order. fixed32 is little-endian on the wire, so the integer is the address bytes read
little-endian: 11.0.0.2 is 0x0200000B = 33554443, whatever the host's byte order.
"""

from __future__ import annotations

import string
from ipaddress import IPv4Address, IPv6Address

from controller.errors import ErrorCode, RequestError

_HEX_DIGITS = frozenset(string.hexdigits.encode())


def ipv4_from_fixed32(value: int) -> IPv4Address:
    """The address whose network-order bytes are the fixed32's wire bytes."""
    return IPv4Address(value.to_bytes(4, "little"))


def ipv4_to_fixed32(address: IPv4Address) -> int:
    """Inverse of :func:`ipv4_from_fixed32`."""
    return int.from_bytes(address.packed, "little")


def _raw_or_hex(value: bytes, size: int, *, field: str, what: str) -> bytes:
    if len(value) == size:
        return bytes(value)
    if len(value) == 2 * size and all(byte in _HEX_DIGITS for byte in value):
        return bytes.fromhex(value.decode("ascii"))
    shown = value.decode("ascii", "backslashreplace") if len(value) <= 64 else f"{len(value)} bytes"
    raise RequestError(
        ErrorCode.INVALID_FIELD,
        field,
        f"{shown!r} ({len(value)} bytes) is not {what}: give {size} raw bytes "
        f"or {2 * size} hex characters",
    )


def parse_mac(value: bytes, *, field: str, code: ErrorCode = ErrorCode.INVALID_FIELD) -> bytes:
    """A MAC from 6 raw bytes or 12 hex characters (``b"102030405060"``)."""
    try:
        return _raw_or_hex(value, 6, field=field, what="a MAC address")
    except RequestError as error:
        raise RequestError(code, error.field, error.message) from None


def parse_ipv6(
    value: bytes, *, field: str, code: ErrorCode = ErrorCode.INVALID_FIELD
) -> IPv6Address:
    """An IPv6 address from 16 raw bytes or 32 hex characters."""
    try:
        return IPv6Address(_raw_or_hex(value, 16, field=field, what="an IPv6 address"))
    except RequestError as error:
        raise RequestError(code, error.field, error.message) from None


def format_mac(mac: bytes) -> str:
    """``10:20:30:40:50:60`` for logs and messages."""
    return ":".join(f"{byte:02x}" for byte in mac)
