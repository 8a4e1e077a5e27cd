"""Whole counter arrays straight to P4Runtime wire bytes, without a message object per cell.

A wildcard read of an indexed counter answers one ``CounterEntry`` per cell; at 65,536 tunnels
the TunnelOffload program has 1.4 million of them. Building ``Entity`` / ``CounterEntry`` /
``Index`` / ``CounterData`` messages per cell (then copying them into ``ReadResponse`` chunks)
was 60 % of p4sim's time in a stats page (issue 12). Here each cell becomes the bytes of one
``ReadResponse.entities`` element, byte-for-byte what protobuf serializes for the same
message (tests/p4sim/p4runtime/test_p4rt_counter_wire.py checks that); field numbers are read
from the message descriptors, never typed. A range of cells is cut from the counter's
:class:`ZeroCells` (every cell's element at zero, built once per counter) with only the
touched, non-zero cells encoded one by one, so a read costs Python work per counted cell, not
per cell.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from p4rt_wire import ZeroCells, varint
from p4sim.p4runtime.proto import p4i, p4r
from p4sim.runtime import CounterState


def _tag(descriptor: object, name: str, wire_type: int) -> bytes:
    number = descriptor.fields_by_name[name].number  # type: ignore[attr-defined]
    return varint(number << 3 | wire_type)


_LEN, _VARINT = 2, 0
_RESPONSE_ENTITY = _tag(p4r.ReadResponse.DESCRIPTOR, "entities", _LEN)
_COUNTER_ENTRY = _tag(p4r.Entity.DESCRIPTOR, "counter_entry", _LEN)
_COUNTER_ID = _tag(p4r.CounterEntry.DESCRIPTOR, "counter_id", _VARINT)
_INDEX = _tag(p4r.CounterEntry.DESCRIPTOR, "index", _LEN)
_INDEX_VALUE = _tag(p4r.Index.DESCRIPTOR, "index", _VARINT)
_DATA = _tag(p4r.CounterEntry.DESCRIPTOR, "data", _LEN)
_BYTE_COUNT = _tag(p4r.CounterData.DESCRIPTOR, "byte_count", _VARINT)
_PACKET_COUNT = _tag(p4r.CounterData.DESCRIPTOR, "packet_count", _VARINT)
# field order as protobuf writes them (by field number)
_DATA_BYTES_FIRST = (p4r.CounterData.DESCRIPTOR.fields_by_name["byte_count"].number <
                     p4r.CounterData.DESCRIPTOR.fields_by_name["packet_count"].number)


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


def _data(unit: int, packets: int, nbytes: int) -> bytes:
    """The CounterData payload with only what the unit counts (both for BOTH/UNSPECIFIED)."""
    if unit == p4i.CounterSpec.PACKETS:
        nbytes = 0
    elif unit == p4i.CounterSpec.BYTES:
        packets = 0
    byte_part = _BYTE_COUNT + varint(nbytes) if nbytes else b""
    packet_part = _PACKET_COUNT + varint(packets) if packets else b""
    return byte_part + packet_part if _DATA_BYTES_FIRST else packet_part + byte_part


BLOCK_CELLS = 4096  # cells per block counter_entities yields for a range (about 70 KB)


def _element(head: bytes, index: int, data: bytes) -> bytes:
    index_part = _field(_INDEX, _INDEX_VALUE + varint(index) if index else b"")
    return _field(_RESPONSE_ENTITY, _field(_COUNTER_ENTRY, head + index_part + data))


_ZERO_CELLS: dict[tuple[int, int], ZeroCells] = {}


def zero_cells(counter_id: int, size: int) -> ZeroCells:
    """The counter's zero elements, built on first use and kept (a P4Info's ids and sizes
    are fixed; a new pipeline with other ones builds its own)."""
    found = _ZERO_CELLS.get((counter_id, size))
    if found is None:
        found = _ZERO_CELLS[(counter_id, size)] = ZeroCells(counter_id, size)
    return found


def counter_entities(counter: CounterState, unit: int, indices: range | Iterable[int],
                     block_cells: int = BLOCK_CELLS) -> Iterator[bytes]:
    """The encoded ``ReadResponse.entities`` elements of `indices`, in that order: for a
    range, blocks of up to `block_cells` whole elements; otherwise one element per index."""
    head = _COUNTER_ID + varint(counter.counter_id)
    cells = counter.cells
    if not isinstance(indices, range) or indices.step != 1:
        zero_data = _field(_DATA, b"")
        for index in indices:
            cell = cells.get(index)
            data = _field(_DATA, _data(unit, cell[0], cell[1])) if cell else zero_data
            yield _element(head, index, data)
        return
    if not indices:
        return
    zero = zero_cells(counter.counter_id, counter.size)
    start, stop = indices.start, indices.stop
    if stop - start == 1:
        cell = cells.get(start)
        if cell and (cell[0] or cell[1]):
            yield _element(head, start, _field(_DATA, _data(unit, cell[0], cell[1])))
        else:
            yield zero.blob[zero.offset(start):zero.offset(stop)]
        return
    counted = sorted(index for index, cell in cells.items()
                     if isinstance(index, int) and start <= index < stop
                     and (cell[0] or cell[1]))
    blob = zero.blob
    at = 0
    for first in range(start, stop, block_cells):
        last = min(stop, first + block_cells)
        pieces: list[bytes] = []
        position = zero.offset(first)
        while at < len(counted) and counted[at] < last:
            index = counted[at]
            cell = cells[index]
            pieces.append(blob[position:zero.offset(index)])
            pieces.append(_element(head, index, _field(_DATA, _data(unit, cell[0], cell[1]))))
            position = zero.offset(index + 1)
            at += 1
        pieces.append(blob[position:zero.offset(last)])
        yield b"".join(pieces)


def entity_element(entity: p4r.Entity) -> bytes:
    """Any entity as an encoded ``ReadResponse.entities`` element."""
    return _field(_RESPONSE_ENTITY, entity.SerializeToString())


def responses(elements: Iterator[bytes], chunk_bytes: int) -> Iterator[bytes]:
    """Serialized ReadResponses of about `chunk_bytes` each (at least one, maybe empty)."""
    pending: list[bytes] = []
    size = 0
    sent = False
    for element in elements:
        pending.append(element)
        size += len(element)
        if size >= chunk_bytes:
            yield b"".join(pending)
            pending, size, sent = [], 0, True
    if pending or not sent:
        yield b"".join(pending)
