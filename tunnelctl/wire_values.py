"""Conversions between readable values (dotted IPv4, colon MACs, hex keys) and the API's wire form.

This is the one place that knows how the TunnelOffload API encodes addresses, so the CLI, the
examples and the tests cannot disagree. IPv4 ``fixed32`` fields carry the address bytes in network
order on the wire, which is the address's four bytes read as a *little-endian* integer
(/work/shared/api/README.md): ``11.0.0.2`` is ``0x0200000B`` = 33554443.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import string

__all__ = [
    "CodecError",
    "decode_hex",
    "decode_ipv4",
    "decode_ipv6",
    "decode_mac",
    "encode_hex",
    "encode_ipv4",
    "encode_ipv6",
    "encode_key",
    "encode_mac",
    "redact_key",
    "shown",
]

_MAC_SEPARATED = re.compile(r"^[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}$")
_HEX_DIGITS = frozenset(string.hexdigits)


class CodecError(ValueError):
    """A readable value that cannot be encoded; the message says what was expected."""


def encode_ipv4(text: str) -> int:
    """Dotted quad -> the fixed32 value whose wire bytes are the address in network order."""
    try:
        packed = socket.inet_pton(socket.AF_INET, text)
    except (OSError, TypeError):
        raise CodecError(
            f"expected a dotted IPv4 address such as 11.0.0.2, got {shown(text)}") from None
    return int.from_bytes(packed, "little")


def decode_ipv4(value: int) -> str:
    """The fixed32 value as the API carries it -> dotted quad (inverse of :func:`encode_ipv4`)."""
    if not 0 <= value <= 0xFFFFFFFF:
        raise CodecError(f"IPv4 value {value} does not fit in 32 bits")
    return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "little"))


def encode_mac(text: str) -> bytes:
    """``10:20:30:40:50:60``, ``10-20-...`` or ``102030405060`` -> the 6 raw bytes."""
    if isinstance(text, str) and (_MAC_SEPARATED.match(text) or _is_hex(text, 12)):
        return bytes.fromhex(text.replace(":", "").replace("-", ""))
    if not isinstance(text, str):
        raise CodecError("expected a MAC address in quotes such as \"10:20:30:40:50:60\" (YAML "
                         f"reads some unquoted MACs as numbers), got {shown(text)}")
    raise CodecError(f"expected a MAC address such as 10:20:30:40:50:60, got {shown(text)}")


def decode_mac(value: bytes) -> str:
    """6 raw bytes, or the 12 hex characters the reference client sends -> ``aa:bb:cc:dd:ee:ff``."""
    raw = _raw_or_hex_text(value, 6, "MAC address")
    return ":".join(f"{octet:02x}" for octet in raw)


def encode_ipv6(text: str) -> bytes:
    """IPv6 text (``2001:db8::1``) -> the 16 raw bytes."""
    try:
        return ipaddress.IPv6Address(text).packed
    except (ipaddress.AddressValueError, TypeError):
        raise CodecError(
            f"expected an IPv6 address such as 2001:db8::1, got {shown(text)}") from None


def decode_ipv6(value: bytes) -> str:
    """16 raw bytes, or 32 hex characters -> compressed IPv6 text."""
    return str(ipaddress.IPv6Address(_raw_or_hex_text(value, 16, "IPv6 address")))


def encode_key(text: str) -> bytes:
    """Hex text -> raw key bytes. The message never contains the key, only its length."""
    if not isinstance(text, str):
        raise CodecError(f"expected the key as quoted hex text, got a {type(text).__name__}")
    compact = text.strip()
    if not compact or len(compact) % 2 or not _is_hex(compact, len(compact)):
        raise CodecError(f"expected the key as an even number of hex digits ({len(compact)} chars)")
    return bytes.fromhex(compact)


def redact_key(value: bytes) -> str:
    """What a key looks like wherever it is shown: its length, never its bytes."""
    return f"<secret len={len(value)}>"


def encode_hex(text: str) -> bytes:
    """Hex text (``10203040``, spaces and a ``0x`` prefix allowed) -> bytes."""
    if not isinstance(text, str):
        raise CodecError(f"expected quoted hex text such as '10203040', got {shown(text)}")
    compact = text.replace(" ", "").removeprefix("0x")
    if len(compact) % 2 or not _is_hex(compact, len(compact)):
        raise CodecError(f"expected an even number of hex digits, got {shown(text)}")
    return bytes.fromhex(compact)


def decode_hex(value: bytes) -> str:
    """Bytes -> lower-case hex text."""
    return value.hex()


MAX_SHOWN = 16  # longer text is not echoed in errors: a misplaced key must never be printed


def shown(value: object) -> str:
    """``repr`` of a bad value for an error message — unless it is text long enough to be a key
    (hex keys are 32 characters and more), which is described by its length only."""
    if isinstance(value, str | bytes) and len(value) > MAX_SHOWN:
        return f"text of {len(value)} characters (not shown, it could be a key)"
    return repr(value)


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and all(char in _HEX_DIGITS for char in text)


def _raw_or_hex_text(value: bytes, size: int, what: str) -> bytes:
    if len(value) == size:
        return value
    if len(value) == 2 * size:
        text = value.decode("ascii", errors="replace")
        if _is_hex(text, 2 * size):
            return bytes.fromhex(text)
    raise CodecError(f"a {what} has {size} bytes (or {2 * size} hex characters), got {len(value)}")
