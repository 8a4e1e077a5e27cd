"""The 16-byte crypto shim header that precedes every frame on the crypto port.

The layout is the contract in docs/dataplane.md ("The crypto shim header"); this module is the
only place in the worker that spells it.
"""

from __future__ import annotations

import enum
import struct
from typing import NamedTuple

SHIM_VERSION = 1
SHIM_BYTES = 16
_SHIM = struct.Struct("!BBBBHHBBBBHH")
# The largest SA index the shim can name: sa_index is its 16-bit field after next_action.
MAX_SA_INDEX = (1 << 16) - 1
_NEXT_HEADER_OFFSET = 9


class ShimOp(enum.IntEnum):
    """What the switch asks of the worker."""

    ENCRYPT = 1
    DECRYPT = 2


FLAG_TUNNEL_MODE = 0x01
FLAG_NAT_T = 0x02


class ShimError(ValueError):
    """The shim header is absent, truncated or of an unknown version or op."""


class CryptoShim(NamedTuple):
    """The decoded shim header; field names follow docs/dataplane.md (`pass` is `pass_count`).

    A NamedTuple rather than the house-style frozen dataclass: it is built once per packet, and
    a frozen dataclass's __init__ (one object.__setattr__ per field) cost more than the AES-GCM
    call itself on small packets. It is just as immutable and typed, and built by keyword.
    """

    version: int
    op: ShimOp
    flags: int
    next_action: int
    sa_index: int
    tunnel_index: int
    pass_count: int
    next_header: int
    l3_offset: int
    status: int
    esp_offset: int
    ingress_port: int

    @property
    def tunnel_mode(self) -> bool:
        return bool(self.flags & FLAG_TUNNEL_MODE)

    @property
    def nat_t(self) -> bool:
        return bool(self.flags & FLAG_NAT_T)

    def pack(self) -> bytes:
        return _SHIM.pack(
            self.version,
            int(self.op),
            self.flags,
            self.next_action,
            self.sa_index,
            self.tunnel_index,
            self.pass_count,
            self.next_header,
            self.l3_offset,
            self.status,
            self.esp_offset,
            self.ingress_port,
        )


_OPS = {int(op): op for op in ShimOp}
_make_shim = CryptoShim._make


def parse_shim(message: bytes) -> CryptoShim:
    """Decodes the shim at the start of `message`; raises ShimError naming the bad field."""
    if len(message) < SHIM_BYTES:
        raise ShimError(f"frame: {len(message)} bytes, shorter than the {SHIM_BYTES}-byte shim")
    fields = _SHIM.unpack_from(message)
    if fields[0] != SHIM_VERSION:
        raise ShimError(f"version: {fields[0]}, expected {SHIM_VERSION}")
    op = _OPS.get(fields[1])
    if op is None:
        raise ShimError(f"op: {fields[1]}, expected 1 (ENCRYPT) or 2 (DECRYPT)")
    return _make_shim((fields[0], op, *fields[2:]))


def shim_with_next_header(raw_shim: bytes, next_header: int) -> bytes:
    """The same shim bytes with only `next_header` changed (what a decrypt returns)."""
    return (
        raw_shim[:_NEXT_HEADER_OFFSET]
        + bytes((next_header,))
        + raw_shim[_NEXT_HEADER_OFFSET + 1 : SHIM_BYTES]
    )
