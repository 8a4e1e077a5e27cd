"""P4Runtime byte strings <-> Python ints, with the checks of the spec's "Bytestrings" section.

Received strings may carry leading zero bytes (the spec allows it); the value must fit the
P4Info bit width and the string must not be empty. Sent strings are always canonical: the
shortest string holding the value, ``b"\\x00"`` for zero. Too-wide values are INVALID_ARGUMENT,
as BMv2's server answers (the spec says OUT_OF_RANGE).
"""

from __future__ import annotations

from p4sim.p4runtime.errors import P4RuntimeError, invalid


def decode_uint(raw: bytes, bitwidth: int, what: str) -> int:
    """The unsigned value of ``raw`` for a ``bit<bitwidth>`` named ``what`` (for the error)."""
    if not raw:
        raise invalid(f"{what}: empty byte string (zero is b'\\x00')")
    value = int.from_bytes(raw, "big")
    if value.bit_length() > bitwidth:
        raise invalid(
            f"{what}: value 0x{raw.hex()} does not fit in {bitwidth} bits"
        )
    return value


def encode_uint(value: int) -> bytes:
    """The canonical (shortest) byte string of a non-negative int."""
    if value < 0:
        raise ValueError(f"cannot encode negative value {value}")
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def full_mask(bitwidth: int) -> int:
    return (1 << bitwidth) - 1


def prefix_mask(bitwidth: int, prefix_len: int) -> int:
    return full_mask(bitwidth) ^ full_mask(bitwidth - prefix_len)


__all__ = ["P4RuntimeError", "decode_uint", "encode_uint", "full_mask", "prefix_mask"]
