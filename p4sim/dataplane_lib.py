"""Helpers the generated code calls: hash algorithms, checksums, header stacks, logging.

They are plain functions so the generated code stays short; anything per-field is inlined by the
code generator instead.
"""

from __future__ import annotations

import binascii
import logging
import random as _random
import struct
from functools import lru_cache
from typing import Any

from p4sim.packet import ParserFailure

log = logging.getLogger("p4sim.dataplane")

_CRC16_TABLE: list[int] = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0xA001 if _c & 1 else _c >> 1
    _CRC16_TABLE.append(_c)


def crc16(data: bytes) -> int:
    """CRC-16 as BMv2's `crc16` computes it: reflected poly 0x8005, init 0, no final xor
    (CRC-16/ARC; check value for b"123456789" is 0xBB3D)."""
    crc = 0
    for b in data:
        crc = (crc >> 8) ^ _CRC16_TABLE[(crc ^ b) & 0xFF]
    return crc


def crc32(data: bytes) -> int:
    """CRC-32 (IEEE 802.3, as zlib), BMv2's `crc32`."""
    return binascii.crc32(data) & 0xFFFFFFFF


@lru_cache(maxsize=256)
def _words(count: int) -> struct.Struct:
    return struct.Struct(f"!{count}H")


def csum16(data: bytes) -> int:
    """The Internet checksum (RFC 1071): ones' complement of the ones' complement sum."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(_words(len(data) // 2).unpack(data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def csum16_value(value: int) -> int:
    """`csum16` of the bytes of `value` (big-endian, an even number of them), without making
    them: the ones' complement sum of 16-bit words is congruent to the number modulo 0xFFFF
    (2**16 is 1 modulo 0xFFFF), and RFC 1071's end-around carries leave it in 1..0xFFFF unless
    every word is 0, so the folded sum is (value - 1) % 0xFFFF + 1, or 0 for value 0. The
    generated checksum code calls this on the field list packed into one integer (equal to
    `csum16` on its bytes for every value: tests/p4sim/test_externs.py)."""
    return 0xFFFF - (value - 1) % 0xFFFF - 1 if value else 0xFFFF


def xor16(data: bytes) -> int:
    """XOR of all 16-bit words."""
    if len(data) % 2:
        data += b"\x00"
    out = 0
    for i in range(0, len(data), 2):
        out ^= int.from_bytes(data[i : i + 2], "big")
    return out


def pack_bits(parts: list[tuple[int, int]]) -> bytes:
    """Concatenate (value, width) pairs MSB first; pad with zero bits at the end to a byte."""
    value = 0
    width = 0
    for v, w in parts:
        value = (value << w) | (v & ((1 << w) - 1))
        width += w
    pad = (-width) % 8
    return (value << pad).to_bytes((width + pad) // 8, "big")


def compute_hash(algo: str, data: bytes, width: int) -> int:
    """The named v1model HashAlgorithm over `data`; `identity` keeps the low `width` bits."""
    if algo == "crc16":
        return crc16(data)
    if algo == "crc32":
        return crc32(data)
    if algo == "csum16":
        return csum16(data)
    if algo == "xor16":
        return xor16(data)
    if algo == "identity":
        return int.from_bytes(data, "big") & ((1 << width) - 1) if data else 0
    if algo == "random":
        return _random.getrandbits(32)
    raise ValueError(f"hash algorithm {algo} not supported")


def hash_result(algo: str, base: int, data: bytes, max_: int, width: int) -> int:
    """v1model `hash`: base + (hash mod max), truncated to the result width (max 0: no mod)."""
    h = compute_hash(algo, data, width)
    value = base + (h % max_ if max_ else h)
    return value & ((1 << width) - 1)


def random_between(lo: int, hi: int) -> int:
    """v1model `random(out, lo, hi)`, inclusive bounds (hi < lo returns lo)."""
    return _random.randint(lo, hi) if hi >= lo else lo


def log_message(fmt: str, values: tuple[int, ...] = ()) -> None:
    """v1model `log_msg`: `{}` placeholders are filled in order, as BMv2 does."""
    parts = fmt.split("{}")
    text = parts[0]
    for i, part in enumerate(parts[1:]):
        text += (str(values[i]) if i < len(values) else "{}") + part
    log.info("%s", text)


class HeaderStack:
    """A header stack: `a` holds the elements, `nxt` is P4's nextIndex.

    The elements are made on the first access to `a` (`new` makes one), so a pass that never
    touches a stack (most of them: a 20-word Geneve option stack is 20 header objects) does not
    pay for building it; `live` says whether they exist yet. An untouched stack is one whose
    elements are all invalid and zero, which is what the helpers below use to skip it."""

    __slots__ = ("a", "nxt", "size", "new", "live")
    _fields_ = ()  # a value the helpers below descend into, as they do headers and structs

    def __init__(self, new: Any, size: int) -> None:
        self.new = new
        self.size = size
        self.nxt = 0
        self.live = False

    def __getattr__(self, name: str) -> Any:
        # only reached while the `a` slot is unset: build the elements now
        if name != "a":
            raise AttributeError(name)
        new = self.new
        elems = [new() for _ in range(self.size)]
        self.a = elems
        self.live = True
        return elems


def stack_next(stack: HeaderStack, oob_error: int) -> object:
    """The element `.next` refers to; StackOutOfBounds when the stack is full."""
    if stack.nxt >= stack.size:
        raise ParserFailure(oob_error)
    return stack.a[stack.nxt]


def stack_last(stack: HeaderStack, oob_error: int) -> object:
    """The element `.last` refers to; StackOutOfBounds when nothing was extracted."""
    if stack.nxt == 0:
        raise ParserFailure(oob_error)
    return stack.a[stack.nxt - 1]


def copy_header(dst: object, src: object) -> None:
    """Header (or struct) assignment: every slot, validity included, deep for nested ones."""
    for name in type(dst)._fields_:  # type: ignore[attr-defined]
        value = getattr(src, name)
        if hasattr(value, "_fields_") and not isinstance(value, HeaderStack):
            copy_header(getattr(dst, name), value)
        elif isinstance(value, HeaderStack):
            copy_stack(getattr(dst, name), value)
        else:
            setattr(dst, name, value)


def copy_stack(dst: HeaderStack, src: HeaderStack) -> None:
    """Stack assignment: every element (in place, so references to them stay right) and
    nextIndex. An untouched `src` is all invalid: `dst` is reset, and left untouched if it is."""
    if src.live:
        for d, s in zip(dst.a, src.a, strict=True):
            copy_header(d, s)
    elif dst.live:
        for d in dst.a:
            reset_value(d)
    dst.nxt = src.nxt


def copy_value(dst: object, src: object) -> None:
    """Copy-out of a header, struct, header_union or header stack argument (P4_16 "Calling
    convention"): `dst` takes every field and validity bit of `src`."""
    if isinstance(src, HeaderStack):
        copy_stack(dst, src)  # type: ignore[arg-type]
    else:
        copy_header(dst, src)


def copy_of(src: object) -> object:
    """Copy-in of a header, struct, header_union or header stack argument: a new value equal to
    `src` that the callee may change without the caller seeing it before copy-out."""
    if isinstance(src, HeaderStack):
        stack = HeaderStack(src.new, src.size)
        if src.live:
            stack.a = [copy_of(h) for h in src.a]
            stack.live = True
        stack.nxt = src.nxt
        return stack
    dst = type(src)()
    copy_header(dst, src)
    return dst


def values_equal(a: object, b: object) -> bool:
    """`==` on headers, header stacks, structs and header unions (P4_16 "Operations on
    headers", "... on header stacks", "... on structs", "... on header unions"): two headers
    are equal when both are invalid, or both valid with equal fields; stacks, structs and unions
    compare element by element (a union's members are headers, so the same rule gives "same
    member valid and equal")."""
    if isinstance(a, HeaderStack):
        if not (a.live or b.live):  # type: ignore[attr-defined]
            return True  # both untouched: all invalid
        return all(values_equal(x, y) for x, y in zip(a.a, b.a, strict=True))  # type: ignore[attr-defined]
    slots = type(a)._fields_  # type: ignore[attr-defined]
    if slots and slots[0] == "_v":  # a header: validity, fields (and varbit widths)
        if not (a._v and b._v):  # type: ignore[attr-defined]
            return a._v == b._v  # type: ignore[attr-defined, no-any-return]
        return all(getattr(a, n) == getattr(b, n) for n in slots[1:])
    for n in slots:
        x, y = getattr(a, n), getattr(b, n)
        if hasattr(x, "_fields_"):
            if not values_equal(x, y):
                return False
        elif x != y:
            return False
    return True


def reset_value(v: object) -> None:
    """An `out` argument at the call: headers (nested ones too) invalid, fields zero (P4_16
    leaves them uninitialized; an invalid header is what p4c and BMv2 give)."""
    if isinstance(v, HeaderStack):
        if v.live:
            for h in v.a:
                reset_value(h)
        v.nxt = 0
        return
    for name in type(v)._fields_:  # type: ignore[attr-defined]
        value = getattr(v, name)
        if hasattr(value, "_fields_"):
            reset_value(value)
        else:
            setattr(v, name, False if name == "_v" else 0)


def out_arg(v: object) -> object:
    """`reset_value(v)` as an expression, for an `out` argument passed in place."""
    reset_value(v)
    return v


def stack_at(stack: HeaderStack, index: int) -> object:
    """`stack[index]` with a run-time index. Out of range, as BMv2 runs p4c's output (its
    midend/hsIndexSimplify.cpp turns the access into a chain of `if (index == k)` over the
    elements): a read gives an invalid header, a write goes to a throwaway header, i.e. is
    ignored."""
    if 0 <= index < stack.size:
        return stack.a[index]
    return stack.new()


def reset_header(h: object) -> None:
    """Invalid and zeroed (the state of a header shifted in by push_front)."""
    for name in type(h)._fields_:  # type: ignore[attr-defined]
        setattr(h, name, False if name == "_v" else 0)


def push_front(stack: HeaderStack, count: int) -> None:
    """Shift elements towards the end by `count`; the first `count` become invalid."""
    if not stack.live:  # all invalid: shifting changes none of them
        stack.nxt = min(stack.nxt + count, stack.size)
        return
    a = stack.a
    for i in range(stack.size - 1, -1, -1):
        if i >= count:
            copy_header(a[i], a[i - count])
        else:
            reset_value(a[i])  # a header, or a header union's members
    stack.nxt = min(stack.nxt + count, stack.size)


def pop_front(stack: HeaderStack, count: int) -> None:
    """Shift elements towards the front by `count`; the last `count` become invalid."""
    if not stack.live:  # all invalid: shifting changes none of them
        stack.nxt = max(stack.nxt - count, 0)
        return
    a = stack.a
    for i in range(stack.size):
        if i + count < stack.size:
            copy_header(a[i], a[i + count])
        else:
            reset_value(a[i])  # a header, or a header union's members
    stack.nxt = max(stack.nxt - count, 0)


def to_signed(value: int, width: int) -> int:
    """Two's complement reading of a `width`-bit pattern."""
    return value - (1 << width) if value >> (width - 1) & 1 else value
