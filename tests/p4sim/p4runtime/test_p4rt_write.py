"""Write: table entries, canonical byte strings, error codes, atomicity, over plain stubs.

Run: .venv/bin/python -m pytest tests/p4sim/p4runtime/test_p4rt_write.py -q
Marked ``bmv2`` tests must also pass against simple_switch_grpc (see docs/p4sim.md).
"""

from __future__ import annotations

import grpc
import pytest

from p4sim.p4runtime.proto import p4r
from tests.p4sim.p4runtime.p4rt_helpers import (
    CODE,
    DELETE,
    INSERT,
    MODIFY,
    acl,
    code_of,
    read,
    route,
    table_query,
    update,
    write,
    write_errors,
)
from tests.p4sim.p4runtime.p4rt_support import set_pipeline

OK = CODE[grpc.StatusCode.OK]
INVALID = CODE[grpc.StatusCode.INVALID_ARGUMENT]
DENIED = CODE[grpc.StatusCode.PERMISSION_DENIED]
NOT_FOUND = CODE[grpc.StatusCode.NOT_FOUND]
EXISTS = CODE[grpc.StatusCode.ALREADY_EXISTS]
ABORTED = CODE[grpc.StatusCode.ABORTED]
ROLLBACK = p4r.WriteRequest.ROLLBACK_ON_ERROR
ATOMIC = p4r.WriteRequest.DATAPLANE_ATOMIC


def routes(stub, target):
    return read(stub, target, table_query(target.ids, "ipv4_lpm"))


@pytest.mark.bmv2
def test_insert_then_read_back_the_same_entry(stub, target, programmed):
    entity = route(target.ids, b"\x0a\x01\x00\x00", 16)
    write(stub, target, update(INSERT, entity))
    assert routes(stub, target) == [entity]


@pytest.mark.bmv2
def test_leading_zero_bytes_are_accepted_and_read_back_canonical(stub, target, programmed):
    entity = route(target.ids, b"\x00\x00\x0a\x01\x00\x00", 16, port=b"\x00\x02",
                   dmac=b"\x00\x00\x00\x00\x00\x00\x07")
    write(stub, target, update(INSERT, entity))
    [got] = routes(stub, target)
    assert got.table_entry.match[0].lpm.value == b"\x0a\x01\x00\x00"
    assert [p.value for p in got.table_entry.action.action.params] == [b"\x02", b"\x07"]


@pytest.mark.bmv2
def test_insert_twice_is_already_exists_and_missing_entries_are_not_found(
        stub, target, programmed):
    entity = route(target.ids, b"\x0a\x01\x00\x00", 16)
    write(stub, target, update(INSERT, entity))
    assert code_of(stub, target, update(INSERT, entity)) == EXISTS
    other = route(target.ids, b"\x0b\x00\x00\x00", 8)
    assert code_of(stub, target, update(MODIFY, other)) == NOT_FOUND
    assert code_of(stub, target, update(DELETE, other)) == NOT_FOUND
    assert routes(stub, target) == [entity]


def test_a_full_table_is_resource_exhausted(stub, target, programmed):
    for i in range(4):  # ipv4_lpm has size 4
        write(stub, target, update(INSERT, route(target.ids, bytes([10, i, 0, 0]), 16)))
    assert code_of(stub, target, update(INSERT, route(target.ids, b"\x0b\x00\x00\x00", 8))) == \
        CODE[grpc.StatusCode.RESOURCE_EXHAUSTED]


@pytest.mark.bmv2
def test_modify_and_delete(stub, target, programmed):
    ids = target.ids
    write(stub, target, update(INSERT, route(ids, b"\x0a\x01\x00\x00", 16)))
    changed = route(ids, b"\x0a\x01\x00\x00", 16, port=b"\x03")
    write(stub, target, update(MODIFY, changed))
    assert routes(stub, target) == [changed]
    key_only = route(ids, b"\x0a\x01\x00\x00", 16, action="drop")
    write(stub, target, update(DELETE, key_only))
    assert routes(stub, target) == []


@pytest.mark.bmv2
def test_continue_on_error_reports_one_error_per_update_in_order(stub, target, programmed):
    ids = target.ids
    first = route(ids, b"\x0a\x01\x00\x00", 16)
    write(stub, target, update(INSERT, first))
    second = route(ids, b"\x0a\x02\x00\x00", 16)
    top, details = write_errors(stub, target, update(INSERT, second), update(INSERT, first),
                                update(DELETE, route(ids, b"\x0c\x00\x00\x00", 8)))
    assert top == grpc.StatusCode.UNKNOWN
    assert [code for code, _ in details] == [OK, EXISTS, NOT_FOUND]
    assert details[0][1] == ""
    assert sorted(e.SerializeToString() for e in routes(stub, target)) == sorted(
        e.SerializeToString() for e in (first, second))


@pytest.mark.bmv2
@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda ids: route(ids, b"\x01\x0a\x00\x00\x00", 8), "does not fit in 32 bits"),
        (lambda ids: route(ids, b"\x0a\x01\x00\x00", 8), "bits set beyond prefix length 8"),
        (lambda ids: route(ids, b"\x0a\x00\x00\x00", 0), "prefix length 0"),
        (lambda ids: route(ids, b"\x0a\x00\x00\x00", 33), "prefix length 33"),
        (lambda ids: route(ids, b"\x0a\x00\x00\x00", 8, port=b"\x02\x00"),
         "parameter 'port': value 0x0200 does not fit in 9 bits"),
        (lambda ids: acl(ids, dst=(b"\x0a\x01\x00\x00", b"\xff\x00\x00\x00")),
         "has bits outside mask"),
        (lambda ids: acl(ids, dst=(b"\x00", b"\x00")), "mask 0"),
        (lambda ids: acl(ids, ports=(b"\x05", b"\x01")), "range low 5 is above high 1"),
        (lambda ids: acl(ids, priority=0), "priority must be > 0"),
        (lambda ids: acl(ids, vrf=b"\x10\x00"), "does not fit in 12 bits"),
    ],
    ids=["too-wide", "lpm-unmasked", "lpm-zero", "lpm-too-long", "param-too-wide",
         "ternary-unmasked", "ternary-dont-care", "range-inverted", "no-priority",
         "exact-too-wide"],
)
def test_malformed_entries_are_invalid_argument_naming_the_field(
        stub, target, programmed, build, expected):
    top, [(code, message)] = write_errors(stub, target, update(INSERT, build(target.ids)))
    assert (top, code) == (grpc.StatusCode.UNKNOWN, INVALID)
    if target.device is not None:  # BMv2 words its messages differently
        assert expected in message
    assert routes(stub, target) == []


def test_an_empty_byte_string_is_refused(stub, target, programmed):
    assert code_of(stub, target, update(INSERT, route(target.ids, b"", 8))) == INVALID


@pytest.mark.bmv2
def test_priority_on_an_lpm_only_table_is_invalid(stub, target, programmed):
    entity = route(target.ids, b"\x0a\x00\x00\x00", 8)
    entity.table_entry.priority = 5
    assert code_of(stub, target, update(INSERT, entity)) == INVALID


@pytest.mark.bmv2
def test_action_checks(stub, target, programmed):
    ids = target.ids
    wrong_table = route(ids, b"\x0a\x00\x00\x00", 8, action="permit")
    assert code_of(stub, target, update(INSERT, wrong_table)) == INVALID
    default_only = route(ids, b"\x0a\x00\x00\x00", 8, action="miss")
    assert code_of(stub, target, update(INSERT, default_only)) == DENIED
    missing = route(ids, b"\x0a\x00\x00\x00", 8)
    del missing.table_entry.action.action.params[1]
    assert code_of(stub, target, update(INSERT, missing)) == INVALID
    extra = route(ids, b"\x0a\x00\x00\x00", 8)
    extra.table_entry.action.action.params.add(param_id=99, value=b"\x01")
    assert code_of(stub, target, update(INSERT, extra)) == INVALID
    unknown_table = route(ids, b"\x0a\x00\x00\x00", 8)
    unknown_table.table_entry.table_id = 0x02FFFFFF
    assert code_of(stub, target, update(INSERT, unknown_table)) == INVALID


@pytest.mark.bmv2
def test_every_match_kind_round_trips(stub, target, programmed):
    entity = acl(target.ids)
    without_optional = acl(target.ids, priority=20, proto=None, dst=None)
    write(stub, target, update(INSERT, entity), update(INSERT, without_optional))
    got = read(stub, target, table_query(target.ids, "acl"))
    assert sorted(e.SerializeToString() for e in got) == sorted(
        e.SerializeToString() for e in (entity, without_optional))


@pytest.mark.bmv2
def test_default_entry_modify_and_reset(stub, target, programmed):
    ids = target.ids
    default = p4r.TableEntry(table_id=ids.table("ipv4_lpm"), is_default_action=True)
    default.action.action.action_id = ids.action("drop")
    write(stub, target, update(MODIFY, p4r.Entity(table_entry=default)))
    [got] = read(stub, target, table_query(ids, "ipv4_lpm", is_default_action=True))
    assert got.table_entry.action.action.action_id == ids.action("drop")
    reset = p4r.TableEntry(table_id=ids.table("ipv4_lpm"), is_default_action=True)
    write(stub, target, update(MODIFY, p4r.Entity(table_entry=reset)))
    [got] = read(stub, target, table_query(ids, "ipv4_lpm", is_default_action=True))
    assert got.table_entry.action.action.action_id == ids.action("miss")
    assert code_of(stub, target, update(INSERT, p4r.Entity(table_entry=default))) == INVALID


@pytest.mark.bmv2
def test_const_default_and_table_only_default_are_permission_denied(stub, target, programmed):
    ids = target.ids
    const_default = p4r.TableEntry(table_id=ids.table("fixed"), is_default_action=True)
    const_default.action.action.action_id = ids.action("drop")
    assert code_of(stub, target, update(MODIFY, p4r.Entity(table_entry=const_default))) == DENIED
    table_only = p4r.TableEntry(table_id=ids.table("acl"), is_default_action=True)
    table_only.action.action.action_id = ids.action("permit")
    assert code_of(stub, target, update(MODIFY, p4r.Entity(table_entry=table_only))) == DENIED


def test_const_tables_refuse_entry_changes_and_read_their_entries(stub, target, programmed):
    ids = target.ids
    entry = p4r.TableEntry(table_id=ids.table("fixed"))
    entry.match.add(field_id=ids.field("fixed", "port")).exact.value = b"\x03"
    entry.action.action.action_id = ids.action("drop")
    assert code_of(stub, target, update(INSERT, p4r.Entity(table_entry=entry))) == DENIED
    [const] = read(stub, target, table_query(ids, "fixed"))
    assert const.table_entry.is_const
    assert const.table_entry.match[0].exact.value == b"\x07"
    assert code_of(stub, target, update(DELETE, const)) == DENIED


@pytest.mark.bmv2
def test_writes_need_the_primary_the_device_and_a_pipeline(stub, target, open_stream):
    entity = route(target.ids, b"\x0a\x00\x00\x00", 8)
    with pytest.raises(grpc.RpcError) as caught:  # nobody arbitrated yet
        write(stub, target, update(INSERT, entity))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    primary = open_stream()
    primary.arbitrate(10)
    primary.next_arbitration()
    if target.device is not None:  # BMv2 may already carry a pipeline from an earlier test
        with pytest.raises(grpc.RpcError) as caught:
            write(stub, target, update(INSERT, entity))
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "no forwarding pipeline config" in caught.value.details()
    set_pipeline(stub, target, 10)
    for kwargs, code in (({"election_id": 9}, grpc.StatusCode.PERMISSION_DENIED),
                         ({"election_id": None}, grpc.StatusCode.PERMISSION_DENIED),
                         ({"device_id": 77}, grpc.StatusCode.NOT_FOUND)):
        with pytest.raises(grpc.RpcError) as caught:
            write(stub, target, update(INSERT, entity), **kwargs)
        assert caught.value.code() == code, kwargs
    write(stub, target, update(INSERT, entity))


def test_unsupported_entities_are_unimplemented(stub, target, programmed):
    meter = p4r.Entity(meter_entry=p4r.MeterEntry(meter_id=1))
    assert code_of(stub, target, update(MODIFY, meter)) == CODE[grpc.StatusCode.UNIMPLEMENTED]


@pytest.mark.parametrize("atomicity", [ROLLBACK, ATOMIC], ids=["rollback", "dataplane-atomic"])
def test_a_failing_batch_is_rolled_back_completely(stub, target, programmed, atomicity):
    ids = target.ids
    kept = route(ids, b"\x0a\x01\x00\x00", 16)
    doomed = route(ids, b"\x0a\x02\x00\x00", 16)
    write(stub, target, update(INSERT, kept), update(INSERT, doomed))
    default = p4r.TableEntry(table_id=ids.table("ipv4_lpm"), is_default_action=True)
    default.action.action.action_id = ids.action("drop")
    register = p4r.Entity(register_entry=p4r.RegisterEntry(
        register_id=ids.register("blocked"), index=p4r.Index(index=2)))
    register.register_entry.data.bitstring = b"\x05"
    before_routes = routes(stub, target)
    top, details = write_errors(
        stub, target,
        update(INSERT, route(ids, b"\x0b\x00\x00\x00", 8)),
        update(MODIFY, route(ids, b"\x0a\x01\x00\x00", 16, port=b"\x09")),
        update(DELETE, doomed),
        update(MODIFY, p4r.Entity(table_entry=default)),
        update(MODIFY, register),
        update(INSERT, kept),  # ALREADY_EXISTS: everything above is undone
        update(INSERT, route(ids, b"\x0c\x00\x00\x00", 8)),
        atomicity=atomicity,
    )
    assert top == grpc.StatusCode.UNKNOWN
    assert [code for code, _ in details] == [ABORTED] * 5 + [EXISTS, ABORTED]
    assert sorted(e.SerializeToString() for e in routes(stub, target)) == sorted(
        e.SerializeToString() for e in before_routes)
    [default_now] = read(stub, target, table_query(ids, "ipv4_lpm", is_default_action=True))
    assert default_now.table_entry.action.action.action_id == ids.action("miss")
    [cell] = read(stub, target, p4r.Entity(register_entry=p4r.RegisterEntry(
        register_id=ids.register("blocked"), index=p4r.Index(index=2))))
    assert cell.register_entry.data.bitstring == b"\x00"


def test_a_successful_atomic_batch_applies_everything(stub, target, programmed):
    ids = target.ids
    write(stub, target, update(INSERT, route(ids, b"\x0a\x01\x00\x00", 16)),
          update(INSERT, route(ids, b"\x0a\x02\x00\x00", 16)), atomicity=ATOMIC)
    assert len(routes(stub, target)) == 2
