"""Protobuf wire bytes of P4Runtime counter reads, built and compared without a message
object per cell.

A counter array of a million cells read whole is a million CounterEntry elements; building or
parsing each as a protobuf object is most of the cost of a stats poll (issue 12). The switch
side (p4sim's Read, ``p4sim/p4runtime/counter_wire.py``) cuts its answer from the zero encoding
of every cell and encodes only the cells that counted; the controller
(``controller/counter_poller.py``) compares an answer with the same zero encoding and parses
only the cells that differ. Both need exactly the same bytes, so they are built here, once,
from protobuf's own serialization of one sample element per index width.
"""

from __future__ import annotations

from finsy.proto import p4r


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def with_varints(sample: bytes, at: int, width: int, first: int, last: int) -> bytes:
    """`sample` repeated for indices first .. last-1 (each needing `width` varint bytes), the
    varint at `at` rewritten per copy: whole columns at a time (strided slices), so building
    a million elements costs milliseconds."""
    out = bytearray(sample * (last - first))
    count = last - first
    for byte in range(width):
        high = 0x80 if byte < width - 1 else 0
        step = 1 << (7 * byte)
        if step == 1:
            period = bytes(value | high for value in range(128))
            column = (period * (count // 128 + 2))[first % 128:first % 128 + count]
        else:
            pieces = []
            index = first
            while index < last:
                end = min(last, (index // step + 1) * step)
                pieces.append(bytes(((index // step) & 0x7F | high,)) * (end - index))
                index = end
            column = b"".join(pieces)
        out[at + byte::len(sample)] = column
    return bytes(out)


def read_varint(data: bytes, position: int) -> tuple[int, int]:
    """The varint at `position` of `data` and the position after it."""
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


class ZeroCells:
    """Every cell of one counter at zero as protobuf encodes it in a ReadResponse
    (``entities`` elements back to back in index order). An element's length depends only on
    its index's varint length, so offsets are arithmetic; built from protobuf's own
    serialization of one sample per length."""

    def __init__(self, counter_id: int, size: int) -> None:
        parts: list[bytes] = []
        self._runs: list[tuple[int, int, int]] = []  # (first index, offset, element length)
        offset = first = 0
        width = 0
        while first < size:
            last = min(size, 1 if width == 0 else 1 << (7 * width))
            sample = p4r.ReadResponse(entities=[p4r.Entity(counter_entry=p4r.CounterEntry(
                counter_id=counter_id, index=p4r.Index(index=first),
                data=p4r.CounterData()))]).SerializeToString()
            if width == 0:
                parts.append(sample)
            else:
                parts.append(with_varints(sample, sample.rindex(varint(first)), width,
                                           first, last))
            self._runs.append((first, offset, len(sample)))
            offset += len(sample) * (last - first)
            first = last
            width += 1
        self.blob = b"".join(parts)
        self.size = size

    def offset(self, index: int) -> int:
        """Where cell `index`'s element starts (index == size: the end)."""
        for first, start, length in reversed(self._runs):
            if index >= first:
                return start + (index - first) * length
        return 0
