"""p4sim's direct-to-bytes counter encoding equals protobuf's own serialization.

Run just this file: .venv/bin/python -m pytest tests/p4sim/p4runtime/test_p4rt_counter_wire.py -q
"""

from __future__ import annotations

import pytest

from p4sim.p4runtime.counter_wire import counter_entities, responses, varint
from p4sim.p4runtime.proto import p4i, p4r
from p4sim.p4runtime.reader import counter_data
from p4sim.runtime import CounterState

INDICES = [0, 1, 127, 128, 300, 16383, 16384, 65535, 1048575]


@pytest.mark.parametrize("unit", [p4i.CounterSpec.PACKETS, p4i.CounterSpec.BYTES,
                                  p4i.CounterSpec.BOTH, p4i.CounterSpec.UNSPECIFIED])
def test_every_cell_encodes_as_protobuf_does(unit: int) -> None:
    counter = CounterState(counter_id=0x12345678, name="c", size=1 << 20, unit="BOTH")
    counter.write(1, 5, 700)
    counter.write(300, 1 << 40, 1 << 50)
    counter.write(65535, 0, 9)
    for index in range(0, 2000, 7):
        counter.count(index, index * 3)
    indices = sorted({*INDICES, *range(0, 2000, 7)})
    for index, element in zip(indices, counter_entities(counter, unit, iter(indices)),  # type: ignore[arg-type]
                              strict=True):
        packets, nbytes = counter.read(index)
        expected = p4r.ReadResponse(entities=[p4r.Entity(counter_entry=p4r.CounterEntry(
            counter_id=counter.counter_id, index=p4r.Index(index=index),
            data=counter_data(unit, packets, nbytes)))]).SerializeToString()
        assert element == expected, index


def test_responses_split_on_element_boundaries_and_never_come_back_empty_handed() -> None:
    counter = CounterState(counter_id=7, name="c", size=5000, unit="PACKETS")
    blobs = list(responses(counter_entities(counter, p4i.CounterSpec.PACKETS, range(5000),
                                            block_cells=50), 1000))
    assert len(blobs) > 5
    decoded = [e for blob in blobs for e in p4r.ReadResponse.FromString(blob).entities]
    assert [e.counter_entry.index.index for e in decoded] == list(range(5000))
    assert list(responses(iter([]), 1000)) == [b""]


@pytest.mark.parametrize("size", [1, 2, 127, 128, 129, 16385, 70000])
def test_a_range_cut_from_the_zero_cells_equals_protobuf_per_cell(size: int) -> None:
    """Whole arrays and sub-ranges, touched cells (non-zero, and written back to zero) among
    zero ones, blocks smaller than the range: the bytes protobuf writes for the same cells."""
    counter = CounterState(counter_id=0x1234567, name="c", size=size, unit="BOTH")
    for index in {0, 1, 126, 127, 128, 16383, 16384, size - 1} & set(range(size)):
        counter.count(index, 64 + index)
    counter.write(size // 2, 0, 0)
    ranges = [range(size), range(size - 1, size), range(size // 3, size)]
    for unit in (p4i.CounterSpec.PACKETS, p4i.CounterSpec.BOTH):
        for indices in ranges:
            got = b"".join(counter_entities(counter, unit, indices, block_cells=100))
            expected = p4r.ReadResponse(entities=[p4r.Entity(counter_entry=p4r.CounterEntry(
                counter_id=counter.counter_id, index=p4r.Index(index=index),
                data=counter_data(unit, *counter.read(index)))) for index in indices])
            assert got == expected.SerializeToString(), (size, indices)


def test_varint() -> None:
    for value in (0, 1, 127, 128, 16383, 16384, 1 << 35, (1 << 63) - 1):
        assert p4r.Index.FromString(b"\x08" + varint(value)).index == value
