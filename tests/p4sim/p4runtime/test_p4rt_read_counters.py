"""Read: wildcards and filters, counters that move when packets flow, registers the program sees.

Run: .venv/bin/python -m pytest tests/p4sim/p4runtime/test_p4rt_read_counters.py -q
Marked ``bmv2`` tests must also pass against simple_switch_grpc (BMv2's server does not
implement register reads or writes, nor the wildcard direct-counter read of all tables).
"""

from __future__ import annotations

import threading

import grpc
import pytest

from p4sim.p4runtime.proto import p4d, p4r
from tests.p4sim.p4runtime.p4rt_helpers import (
    INSERT,
    MODIFY,
    acl,
    read,
    route,
    table_query,
    update,
    write,
)

FRAME = b"\x0a\x01\x02\x03\x11" + b"payload"  # probe dst 10.1.2.3, proto 17


def keys(entities):
    return sorted(e.SerializeToString() for e in entities)


@pytest.mark.bmv2
def test_wildcard_and_filtered_table_reads(stub, target, programmed):
    ids = target.ids
    r1 = route(ids, b"\x0a\x01\x00\x00", 16)
    r2 = route(ids, b"\x0a\x02\x00\x00", 16, action="drop")
    a1 = acl(ids, priority=10)
    a2 = acl(ids, priority=20, proto=None)
    write(stub, target, *(update(INSERT, e) for e in (r1, r2, a1, a2)))
    everything = read(stub, target, table_query(ids))
    assert keys(e for e in everything if e.table_entry.table_id != ids.table("fixed")) == \
        keys([r1, r2, a1, a2])
    assert keys(read(stub, target, table_query(ids, "acl", priority=20))) == keys([a2])
    by_action = table_query(ids, "ipv4_lpm")
    by_action.table_entry.action.action.action_id = ids.action("drop")
    assert keys(read(stub, target, by_action)) == keys([r2])
    one = table_query(ids, "ipv4_lpm")
    one.table_entry.match.extend(r1.table_entry.match)
    assert keys(read(stub, target, one)) == keys([r1])


def test_reading_all_tables_with_a_filter_is_invalid(stub, target, programmed):
    with pytest.raises(grpc.RpcError) as caught:
        read(stub, target, table_query(target.ids, priority=3))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_entry_metadata_is_kept_and_filters_reads(stub, target, programmed):
    ids = target.ids
    tagged = route(ids, b"\x0a\x01\x00\x00", 16)
    tagged.table_entry.metadata = b"tunnel-7"
    write(stub, target, update(INSERT, tagged), update(INSERT, route(ids, b"\x0b\x00\x00\x00", 8)))
    assert read(stub, target, table_query(ids, "ipv4_lpm", metadata=b"tunnel-7")) == [tagged]


@pytest.mark.bmv2
def test_counters_move_when_packets_flow(stub, target, programmed):
    ids = target.ids
    entity = route(ids, b"\x0a\x01\x00\x00", 16, port=b"\x03")
    write(stub, target, update(INSERT, entity))
    out = []
    for _ in range(3):
        out += target.inject(2, FRAME)
    assert out == [(3, FRAME)] * 3
    [cell] = read(stub, target, p4r.Entity(counter_entry=p4r.CounterEntry(
        counter_id=ids.counter("port_packets"), index=p4r.Index(index=2))))
    assert (cell.counter_entry.data.packet_count, cell.counter_entry.data.byte_count) == (
        3, 3 * len(FRAME))
    direct = p4r.DirectCounterEntry(table_entry=entity.table_entry)
    [hits] = read(stub, target, p4r.Entity(direct_counter_entry=direct))
    assert hits.direct_counter_entry.data.packet_count == 3
    with_data = table_query(ids, "ipv4_lpm")
    with_data.table_entry.counter_data.SetInParent()
    [row] = read(stub, target, with_data)
    assert row.table_entry.counter_data.packet_count == 3


@pytest.mark.bmv2
def test_counter_writes_set_and_reset(stub, target, programmed):
    ids = target.ids
    counter_id = ids.counter("port_packets")
    target.inject(1, FRAME)
    target.inject(4, FRAME)
    write(stub, target, update(MODIFY, p4r.Entity(counter_entry=p4r.CounterEntry(
        counter_id=counter_id, index=p4r.Index(index=1),
        data=p4r.CounterData(packet_count=100, byte_count=1000)))))
    cells = read(stub, target, p4r.Entity(counter_entry=p4r.CounterEntry(counter_id=counter_id)))
    counts = {c.counter_entry.index.index: c.counter_entry.data.packet_count for c in cells}
    assert (len(cells), counts[1], counts[4]) == (8, 100, 1)


def test_a_counter_write_without_index_resets_every_cell(stub, target, programmed):
    ids = target.ids
    counter_id = ids.counter("port_packets")
    target.inject(1, FRAME)
    target.inject(4, FRAME)
    write(stub, target, update(MODIFY, p4r.Entity(counter_entry=p4r.CounterEntry(
        counter_id=counter_id))))
    cells = read(stub, target, p4r.Entity(counter_entry=p4r.CounterEntry(counter_id=counter_id)))
    assert {c.counter_entry.data.packet_count for c in cells} == {0}


def test_direct_counter_write_and_counter_index_checks(stub, target, programmed):
    ids = target.ids
    entity = route(ids, b"\x0a\x01\x00\x00", 16)
    write(stub, target, update(INSERT, entity))
    direct = p4r.DirectCounterEntry(table_entry=entity.table_entry,
                                    data=p4r.CounterData(packet_count=7, byte_count=70))
    write(stub, target, update(MODIFY, p4r.Entity(direct_counter_entry=direct)))
    [got] = read(stub, target, p4r.Entity(direct_counter_entry=p4r.DirectCounterEntry(
        table_entry=p4r.TableEntry(table_id=ids.table("ipv4_lpm")))))
    assert got.direct_counter_entry.data.byte_count == 70
    with pytest.raises(grpc.RpcError) as caught:
        read(stub, target, p4r.Entity(counter_entry=p4r.CounterEntry(
            counter_id=ids.counter("port_packets"), index=p4r.Index(index=8))))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "index 8 outside 0..7" in caught.value.details()


def test_register_writes_are_visible_to_the_program(stub, target, programmed):
    ids = target.ids
    write(stub, target, update(INSERT, route(ids, b"\x0a\x01\x00\x00", 16, port=b"\x03")))
    assert target.inject(1, FRAME) == [(3, FRAME)]
    cell = p4r.RegisterEntry(register_id=ids.register("blocked"), index=p4r.Index(index=1),
                             data=p4d.P4Data(bitstring=b"\x01"))
    write(stub, target, update(MODIFY, p4r.Entity(register_entry=cell)))
    assert target.inject(1, FRAME) == []  # blocked[1] drops port 1
    assert target.inject(2, FRAME) == [(3, FRAME)]
    cells = read(stub, target, p4r.Entity(register_entry=p4r.RegisterEntry(
        register_id=ids.register("blocked"))))
    assert [c.register_entry.data.bitstring for c in cells] == [b"\x00", b"\x01", b"\x00",
                                                                b"\x00"]
    too_wide = p4r.RegisterEntry(register_id=ids.register("blocked"), index=p4r.Index(index=0),
                                 data=p4d.P4Data(bitstring=b"\x01\x00"))
    with pytest.raises(grpc.RpcError):
        write(stub, target, update(MODIFY, p4r.Entity(register_entry=too_wide)))


def test_reads_are_chunked(stub, target, programmed):
    """A large read comes as several ReadResponses (each well under gRPC's 4 MiB), every cell
    once and in order."""
    ids = target.ids
    counter_id = ids.counter("port_packets")
    request = p4r.ReadRequest(device_id=target.device_id, entities=[
        p4r.Entity(counter_entry=p4r.CounterEntry(counter_id=counter_id))] * 5000)
    responses = list(stub.Read(request))
    assert len(responses) > 1
    assert all(r.ByteSize() < 1 << 20 for r in responses)
    cells = [e.counter_entry.index.index for r in responses for e in r.entities]
    size = len(cells) // 5000
    assert size > 0 and cells == list(range(size)) * 5000


def test_writes_land_between_packets_while_traffic_flows(stub, target, programmed):
    ids = target.ids
    write(stub, target, update(INSERT, route(ids, b"\x0a\x01\x00\x00", 16, port=b"\x03")))
    stop = threading.Event()
    seen: list[list[tuple[int, bytes]]] = []

    def traffic() -> None:
        while not stop.is_set():
            seen.append(target.inject(2, FRAME))

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        for port in (b"\x04", b"\x05", b"\x03") * 5:
            write(stub, target,
                  update(MODIFY, route(ids, b"\x0a\x01\x00\x00", 16, port=port)))
    finally:
        stop.set()
        sender.join()
    assert seen and all(len(out) == 1 and out[0][0] in (3, 4, 5) for out in seen)
    assert target.inject(2, FRAME) == [(3, FRAME)]


def test_objects_p4sim_never_has_read_as_empty(stub, target, programmed):
    groups = p4r.Entity(packet_replication_engine_entry=p4r.PacketReplicationEngineEntry(
        multicast_group_entry=p4r.MulticastGroupEntry()))
    members = p4r.Entity(action_profile_member=p4r.ActionProfileMember())
    assert read(stub, target, groups, members) == []
    with pytest.raises(grpc.RpcError) as caught:
        read(stub, target, p4r.Entity(meter_entry=p4r.MeterEntry(meter_id=5)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
