"""Meters (programs/meters.p4): unconfigured meters are GREEN, configured ones are two-rate
three-color markers (RFC 2698) in bytes or packets; direct meters follow their table entries.
The meter clock is replaced by a fake one so the tests do not depend on time.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_meters.py -q
"""

from __future__ import annotations

import pytest
from finsy.proto import p4i
from p4sim_core_helpers import P4InfoNames, program

from p4sim.errors import InvalidEntryError, NotFoundError
from p4sim.runtime import GREEN, RED, YELLOW, MeterConfig, MeterState
from p4sim.switch import Switch

FRAME_LEN = 2  # req header only; colors are added on the way out


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _colors(sw: Switch, index: int, key: int) -> tuple[int, int]:
    (port, frame), = sw.process(0, bytes([index, key]))
    assert port == 1
    return frame[2], frame[3]


def test_unconfigured_meters_are_green_and_miss_leaves_direct_alone() -> None:
    sw = Switch(program("meters.p4"))
    assert _colors(sw, 0, 9) == (GREEN, 0xFF)


def test_indexed_byte_meter_marks_yellow_then_red_and_refills() -> None:
    sw = Switch(program("meters.p4"))
    ids = P4InfoNames(program("meters.p4"))
    meter = sw.state.meters[_meter_id(ids, "byte_meter")]
    clock = FakeClock()
    meter.clock = clock
    # committed bucket holds 2 packets of 2 bytes, peak bucket 3; refills 2 bytes/s and 4 bytes/s
    meter.set_config(1, MeterConfig(cir=2, cburst=4, pir=4, pburst=6))
    colors = [_colors(sw, 1, 0)[0] for _ in range(4)]
    assert colors == [GREEN, GREEN, YELLOW, RED]
    clock.now += 1.0  # +2 committed, +4 peak
    assert _colors(sw, 1, 0)[0] == GREEN
    assert _colors(sw, 2, 0)[0] == GREEN  # another index is unconfigured
    meter.set_config(1, None)
    assert _colors(sw, 1, 0)[0] == GREEN


def test_direct_packet_meter_follows_the_entry() -> None:
    sw = Switch(program("meters.p4"))
    ids = P4InfoNames(program("meters.p4"))
    table = sw.state.tables[ids.table("keys")]
    entry = ids.entry("keys", "policed", (), key=("exact", 5))
    table.insert(entry)
    direct = table.direct_meter
    assert direct is not None
    direct.clock = FakeClock()
    direct.set_config(entry.key, MeterConfig(cir=0, cburst=1, pir=0, pburst=2))
    assert [_colors(sw, 0, 5)[1] for _ in range(3)] == [GREEN, YELLOW, RED]
    table.delete(entry.key)
    table.insert(entry)  # a new entry starts unconfigured
    assert _colors(sw, 0, 5)[1] == GREEN


def test_meter_config_validation_and_p4info() -> None:
    meter = MeterState(meter_id=1, name="m", size=2, unit="BYTES")
    with pytest.raises(InvalidEntryError, match="pir 1 must be >= cir 2"):
        meter.set_config(0, MeterConfig(cir=2, cburst=1, pir=1, pburst=1))
    with pytest.raises(NotFoundError):
        meter.set_config(2, MeterConfig(cir=1, cburst=1, pir=1, pburst=1))
    assert meter.config(0) is None
    info = program("meters.p4").p4info
    (indexed,) = info.meters
    assert (indexed.preamble.name, indexed.size, indexed.spec.unit) == (
        "MIngress.byte_meter", 4, p4i.MeterSpec.BYTES)
    assert indexed.preamble.id >> 24 == 0x14
    (direct,) = info.direct_meters
    (table,) = info.tables
    assert direct.direct_table_id == table.preamble.id
    assert list(table.direct_resource_ids) == [direct.preamble.id]
    assert direct.spec.unit == p4i.MeterSpec.PACKETS


def _meter_id(ids: P4InfoNames, name: str) -> int:
    for m in ids.p4info.meters:
        if m.preamble.alias == name:
            return int(m.preamble.id)
    raise KeyError(name)
