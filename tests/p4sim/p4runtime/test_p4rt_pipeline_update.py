"""SetForwardingPipelineConfig's two-phase update: VERIFY_AND_SAVE, writes, then COMMIT.

The spec (v1.4, "SetForwardingPipelineConfig RPC"): after VERIFY_AND_SAVE "the forwarding state
in the target is not modified. However, any subsequent Read / Write requests must refer to
fields in the new config"; COMMIT "realizes the last saved, but not yet committed, config" with
the writes made since the save, NOT_FOUND without one, INVALID_ARGUMENT when a config is sent.
So: writes after VERIFY_AND_SAVE land in the saved pipeline, packets meanwhile use the old
tables and state, COMMIT switches both.

Run: .venv/bin/python -m pytest tests/p4sim/p4runtime/test_p4rt_pipeline_update.py -q
"""

from __future__ import annotations

import grpc
import pytest

from p4sim.p4runtime.device_config import make_device_config
from p4sim.p4runtime.proto import p4i, p4r
from tests.p4sim.p4runtime.fake_switch import CPU_PORT, FakeProgram
from tests.p4sim.p4runtime.p4rt_helpers import INSERT, read, route, table_query, update, write
from tests.p4sim.p4runtime.p4rt_support import (
    EXTERNAL,
    PROGRAM,
    SET,
    Ids,
    Target,
    become_primary,
    election,
    set_pipeline,
)

FRAME = b"\x0a\x01\x02\x03\x11" + b"payload"  # probe dst 10.1.2.3, proto 17
GET = p4r.GetForwardingPipelineConfigRequest
TEN_ONE = b"\x0a\x01\x00\x00"


def commit(stub, target: Target, *, config: p4r.ForwardingPipelineConfig | None = None,
           election_id: int = 10) -> None:
    request = SET(device_id=target.device_id, election_id=election(election_id),
                  action=SET.COMMIT)
    if config is not None:
        request.config.CopyFrom(config)
    stub.SetForwardingPipelineConfig(request)


def code_of_set(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code()


def cookie(stub, target: Target) -> int:
    return stub.GetForwardingPipelineConfig(
        GET(device_id=target.device_id, response_type=GET.COOKIE_ONLY)).config.cookie.cookie


def routes(stub, target: Target) -> list[p4r.Entity]:
    return read(stub, target, table_query(target.ids, "ipv4_lpm"))


def port_packets(stub, target: Target, port: int) -> int:
    [cell] = read(stub, target, p4r.Entity(counter_entry=p4r.CounterEntry(
        counter_id=target.ids.counter("port_packets"), index=p4r.Index(index=port))))
    return cell.counter_entry.data.packet_count


@pytest.fixture
def running_route(stub, target, programmed) -> p4r.Entity:
    """The committed pipeline (cookie 1) routes 10.1.0.0/16 to port 3."""
    set_pipeline(stub, target, 10, cookie=1)
    old = route(target.ids, TEN_ONE, 16, port=b"\x03")
    write(stub, target, update(INSERT, old))
    assert target.inject(2, FRAME) == [(3, FRAME)]
    return old


@pytest.mark.bmv2
def test_writes_after_save_land_in_the_saved_pipeline_until_commit(stub, target, running_route):
    set_pipeline(stub, target, 10, action=SET.VERIFY_AND_SAVE, cookie=2)
    assert routes(stub, target) == []  # the saved pipeline starts empty
    assert port_packets(stub, target, 2) == 0
    new = route(target.ids, TEN_ONE, 16, port=b"\x05")
    write(stub, target, update(INSERT, new))  # the same key: the old entry is not there
    assert routes(stub, target) == [new]
    assert target.inject(2, FRAME) == [(3, FRAME)]  # packets still see the old table
    assert port_packets(stub, target, 2) == 0  # ... and count in the old pipeline's state
    commit(stub, target)
    assert target.inject(2, FRAME) == [(5, FRAME)]
    assert routes(stub, target) == [new]
    assert port_packets(stub, target, 2) == 1


def test_get_answers_the_saved_config_between_save_and_commit(stub, target, running_route):
    assert cookie(stub, target) == 1
    set_pipeline(stub, target, 10, action=SET.VERIFY_AND_SAVE, cookie=2)
    assert cookie(stub, target) == 2
    config = stub.GetForwardingPipelineConfig(GET(device_id=target.device_id)).config
    assert config.p4info == target.p4info and config.cookie.cookie == 2
    commit(stub, target)
    assert cookie(stub, target) == 2


def test_a_new_p4info_is_what_writes_refer_to_after_save(stub, target, running_route):
    """The second version of the program has a table the first lacks: writable after
    VERIFY_AND_SAVE, effective on packets only after COMMIT."""
    if target.device is None or EXTERNAL:
        pytest.skip("needs p4sim's device config with defines")
    if isinstance(target.device.default_program, FakeProgram):
        pytest.skip("the fake target has one program")
    from p4sim.program import load_program

    defines = {"CONFORMANCE_V2": "1"}
    p4info_v2 = load_program(PROGRAM, defines=defines).p4info
    ids = Ids(p4info_v2)
    v2 = Target(address=target.address, device_id=target.device_id, p4info=p4info_v2,
                p4info_path=target.p4info_path, inject=target.inject, device=target.device,
                device_config=make_device_config(PROGRAM, defines=defines))
    ports_v2 = p4r.TableEntry(table_id=ids.table("ports_v2"))
    ports_v2.match.add(field_id=ids.field("ports_v2", "port")).exact.value = b"\x04"
    ports_v2.action.action.action_id = ids.action("drop")

    set_pipeline(stub, v2, 10, action=SET.VERIFY_AND_SAVE, cookie=3)
    got = stub.GetForwardingPipelineConfig(
        GET(device_id=target.device_id, response_type=GET.P4INFO_AND_COOKIE)).config
    assert got.p4info == p4info_v2 and got.cookie.cookie == 3
    write(stub, v2, update(INSERT, p4r.Entity(table_entry=ports_v2)),
          update(INSERT, route(ids, TEN_ONE, 16, port=b"\x06")))
    assert read(stub, v2, table_query(ids, "ports_v2")) == [p4r.Entity(table_entry=ports_v2)]
    assert target.inject(4, FRAME) == [(3, FRAME)]  # old pipeline: no ports_v2, old route
    commit(stub, v2)
    assert target.inject(2, FRAME) == [(6, FRAME)]
    assert target.inject(4, FRAME) == []  # ports_v2 drops port 4 now


def test_commit_without_a_saved_config_is_not_found(stub, target, running_route):
    assert code_of_set(lambda: commit(stub, target)) == grpc.StatusCode.NOT_FOUND
    assert target.inject(2, FRAME) == [(3, FRAME)]  # nothing changed
    set_pipeline(stub, target, 10, action=SET.VERIFY_AND_SAVE)
    commit(stub, target)
    assert code_of_set(lambda: commit(stub, target)) == grpc.StatusCode.NOT_FOUND  # used up
    assert routes(stub, target) == []


def test_commit_with_a_config_is_invalid_and_keeps_the_saved_one(stub, target, running_route):
    set_pipeline(stub, target, 10, action=SET.VERIFY_AND_SAVE, cookie=2)
    new = route(target.ids, TEN_ONE, 16, port=b"\x05")
    write(stub, target, update(INSERT, new))
    for config in (p4r.ForwardingPipelineConfig(p4info=target.p4info),
                   p4r.ForwardingPipelineConfig(cookie=p4r.ForwardingPipelineConfig.Cookie(
                       cookie=9))):
        assert code_of_set(lambda c=config: commit(stub, target, config=c)) == \
            grpc.StatusCode.INVALID_ARGUMENT
    assert target.inject(2, FRAME) == [(3, FRAME)]
    assert routes(stub, target) == [new] and cookie(stub, target) == 2
    commit(stub, target)
    assert target.inject(2, FRAME) == [(5, FRAME)]


def test_refused_saves_leave_the_saved_pipeline_as_it_was(stub, target, running_route,
                                                           open_stream):
    set_pipeline(stub, target, 10, action=SET.VERIFY_AND_SAVE, cookie=2)
    new = route(target.ids, TEN_ONE, 16, port=b"\x05")
    write(stub, target, update(INSERT, new))
    wrong = p4i.P4Info()
    wrong.CopyFrom(target.p4info)
    next(t for t in wrong.tables if t.preamble.name.endswith("ipv4_lpm")).size = 99
    assert code_of_set(lambda: set_pipeline(stub, target, 10, action=SET.VERIFY_AND_SAVE,
                                            p4info=wrong)) == grpc.StatusCode.INVALID_ARGUMENT
    no_config = SET(device_id=target.device_id, election_id=election(10),
                    action=SET.VERIFY_AND_SAVE)
    assert code_of_set(lambda: stub.SetForwardingPipelineConfig(no_config)) == \
        grpc.StatusCode.INVALID_ARGUMENT
    backup = open_stream()
    backup.arbitrate(5)
    backup.next_arbitration()
    assert code_of_set(lambda: set_pipeline(stub, target, 5, action=SET.VERIFY_AND_SAVE)) == \
        grpc.StatusCode.PERMISSION_DENIED
    assert code_of_set(lambda: commit(stub, target, election_id=5)) == \
        grpc.StatusCode.PERMISSION_DENIED
    set_pipeline(stub, target, 10, action=SET.VERIFY)  # verifies only
    assert routes(stub, target) == [new] and cookie(stub, target) == 2
    assert target.inject(2, FRAME) == [(3, FRAME)]
    commit(stub, target)
    assert target.inject(2, FRAME) == [(5, FRAME)]


def test_a_second_save_replaces_the_first_and_its_writes(stub, target, running_route):
    set_pipeline(stub, target, 10, action=SET.VERIFY_AND_SAVE, cookie=2)
    write(stub, target, update(INSERT, route(target.ids, TEN_ONE, 16, port=b"\x05")))
    set_pipeline(stub, target, 10, action=SET.VERIFY_AND_SAVE, cookie=4)
    assert routes(stub, target) == [] and cookie(stub, target) == 4
    commit(stub, target)
    assert target.inject(2, FRAME) == []  # the committed pipeline has no route


def test_verify_and_commit_drops_the_saved_config(stub, target, running_route):
    set_pipeline(stub, target, 10, action=SET.VERIFY_AND_SAVE, cookie=2)
    write(stub, target, update(INSERT, route(target.ids, TEN_ONE, 16, port=b"\x05")))
    set_pipeline(stub, target, 10, cookie=6)
    assert routes(stub, target) == [] and cookie(stub, target) == 6
    assert target.inject(2, FRAME) == []
    assert code_of_set(lambda: commit(stub, target)) == grpc.StatusCode.NOT_FOUND


def test_reconcile_keeps_the_running_state_and_drops_the_saved_config(stub, target,
                                                                     running_route):
    set_pipeline(stub, target, 10, action=SET.VERIFY_AND_SAVE, cookie=2)
    write(stub, target, update(INSERT, route(target.ids, TEN_ONE, 16, port=b"\x05")))
    set_pipeline(stub, target, 10, action=SET.RECONCILE_AND_COMMIT, cookie=7)
    assert routes(stub, target) == [running_route] and cookie(stub, target) == 7
    assert target.inject(2, FRAME) == [(3, FRAME)]
    assert code_of_set(lambda: commit(stub, target)) == grpc.StatusCode.NOT_FOUND


def test_a_first_pipeline_can_be_programmed_before_its_commit(stub, target, open_stream):
    become_primary(open_stream)
    set_pipeline(stub, target, 10, action=SET.VERIFY_AND_SAVE, cookie=2)
    entry = route(target.ids, TEN_ONE, 16, port=b"\x03")
    write(stub, target, update(INSERT, entry))
    assert routes(stub, target) == [entry]
    assert target.inject(2, FRAME) == []  # no running pipeline: the frame is dropped
    if target.device is not None:
        assert target.device.running is None and target.device.frames_without_pipeline == 1
    commit(stub, target)
    assert target.inject(2, FRAME) == [(3, FRAME)]


def test_packet_io_stays_with_the_running_pipeline_until_commit(stub, target, programmed):
    if target.device is None:
        pytest.skip("captures PacketOut transmissions on p4sim's device")
    ids = target.ids
    to_cpu = b"\x0a\x09\x00\x01\x06" + b"to-the-controller"
    write(stub, target, update(INSERT, route(ids, b"\x0a\x09\x00\x00", 16,
                                             port=CPU_PORT.to_bytes(1, "big"))))
    set_pipeline(stub, target, 10, action=SET.VERIFY_AND_SAVE)
    assert target.inject(3, to_cpu) == []
    assert programmed.next_of("packet").payload == to_cpu  # the running route still holds
    sent: list[tuple[int, bytes]] = []
    target.device.transmit = sent.extend
    packet = p4r.PacketOut(payload=FRAME)
    packet.metadata.add(metadata_id=ids.packet_meta("packet_out", "egress_port"), value=b"\x05")
    packet.metadata.add(metadata_id=ids.packet_meta("packet_out", "_pad"), value=b"\x00")
    programmed.send(p4r.StreamMessageRequest(packet=packet))
    programmed.arbitrate(10)  # answered after the packet: the stream is handled in order
    programmed.next_arbitration()
    assert sent == [(5, FRAME)]
    commit(stub, target)
    assert target.inject(3, to_cpu) == []  # the committed pipeline has no route to the CPU
    assert programmed.responses.empty()
