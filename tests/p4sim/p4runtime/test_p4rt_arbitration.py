"""Arbitration, pipeline config and Capabilities over plain P4Runtime stubs.

Run: .venv/bin/python -m pytest tests/p4sim/p4runtime/test_p4rt_arbitration.py -q
Marked ``bmv2`` tests must also pass against simple_switch_grpc (see docs/p4sim.md).
"""

from __future__ import annotations

import grpc
import pytest

from p4sim.p4runtime.proto import p4i, p4r, rpc_code
from tests.p4sim.p4runtime.p4rt_support import SET, become_primary, eid, election, set_pipeline

GET = p4r.GetForwardingPipelineConfigRequest


@pytest.mark.bmv2
def test_first_controller_becomes_primary_and_a_lower_one_backup(open_stream, target):
    primary = open_stream()
    primary.arbitrate(10)
    update = primary.next_arbitration()
    assert (update.device_id, update.status.code, update.election_id.low) == (
        target.device_id, rpc_code.OK, eid(10))
    backup = open_stream()
    backup.arbitrate(5)
    update = backup.next_arbitration()
    assert update.status.code == rpc_code.ALREADY_EXISTS
    assert update.election_id.low == eid(10)  # the primary's id


@pytest.mark.bmv2
def test_handover_to_a_higher_election_id_is_announced_to_everyone(open_stream):
    old = become_primary(open_stream, 10)
    new = open_stream()
    new.arbitrate(20)
    assert new.next_arbitration().status.code == rpc_code.OK
    told = old.next_arbitration()
    assert (told.status.code, told.election_id.low) == (rpc_code.ALREADY_EXISTS, eid(20))


@pytest.mark.bmv2
def test_primary_leaving_leaves_backups_without_a_primary(open_stream):
    primary = become_primary(open_stream, 10)
    backup = open_stream()
    backup.arbitrate(5)
    assert backup.next_arbitration().status.code == rpc_code.ALREADY_EXISTS
    primary.close()
    told = backup.next_arbitration()
    assert (told.status.code, told.election_id.low) == (rpc_code.NOT_FOUND, eid(10))
    # the backup takes over by bidding the highest id seen, as finsy does
    backup.arbitrate(10)
    assert backup.next_arbitration().status.code == rpc_code.OK


@pytest.mark.bmv2
def test_duplicate_election_id_ends_the_stream_with_invalid_argument(open_stream):
    become_primary(open_stream, 10)
    twin = open_stream()
    twin.arbitrate(10)
    error = twin.next()
    assert isinstance(error, grpc.RpcError)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"election id {eid(10)} is already used" in error.details()


@pytest.mark.bmv2
def test_unknown_device_ends_the_stream_with_not_found(open_stream):
    stream = open_stream()
    stream.arbitrate(10, device_id=99)
    error = stream.next()
    assert isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.NOT_FOUND


def test_roles_elect_their_primaries_independently(open_stream):
    a = open_stream()
    a.arbitrate(10, role="tunnels")
    assert a.next_arbitration().status.code == rpc_code.OK
    b = open_stream()
    b.arbitrate(5, role="acl")
    update = b.next_arbitration()
    assert (update.status.code, update.role.name) == (rpc_code.OK, "acl")


def test_role_config_is_refused(open_stream):
    stream = open_stream()
    update = p4r.MasterArbitrationUpdate(device_id=stream.device_id, election_id=election(3))
    update.role.name = "x"
    update.role.config.type_url = "type.googleapis.com/some.Config"
    stream.send(p4r.StreamMessageRequest(arbitration=update))
    error = stream.next()
    assert isinstance(error, grpc.RpcError)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.bmv2
def test_only_the_primary_may_set_the_pipeline(stub, open_stream, target):
    become_primary(open_stream, 10)
    with pytest.raises(grpc.RpcError) as caught:
        set_pipeline(stub, target, 9)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    set_pipeline(stub, target, 10, cookie=7)
    got = stub.GetForwardingPipelineConfig(GET(device_id=target.device_id,
                                               response_type=GET.ALL))
    assert got.config.cookie.cookie == 7
    assert got.config.p4info == target.p4info


def test_get_answers_each_response_type(stub, open_stream, target):
    assert not stub.GetForwardingPipelineConfig(GET(device_id=target.device_id)).HasField("config")
    become_primary(open_stream)
    set_pipeline(stub, target, 10, cookie=99)
    cookie_only = stub.GetForwardingPipelineConfig(
        GET(device_id=target.device_id, response_type=GET.COOKIE_ONLY)).config
    assert cookie_only.cookie.cookie == 99 and not cookie_only.HasField("p4info")
    p4info_only = stub.GetForwardingPipelineConfig(
        GET(device_id=target.device_id, response_type=GET.P4INFO_AND_COOKIE)).config
    assert p4info_only.HasField("p4info") and p4info_only.p4_device_config == b""
    device_only = stub.GetForwardingPipelineConfig(
        GET(device_id=target.device_id, response_type=GET.DEVICE_CONFIG_AND_COOKIE)).config
    assert not device_only.HasField("p4info") and device_only.cookie.cookie == 99
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetForwardingPipelineConfig(GET(device_id=42))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_mismatching_p4info_is_refused_naming_the_first_difference(stub, open_stream, target):
    become_primary(open_stream)
    p4info = p4i.P4Info()
    p4info.CopyFrom(target.p4info)
    table = next(t for t in p4info.tables if t.preamble.name.endswith("ipv4_lpm"))
    table.match_fields[0].bitwidth = 16
    with pytest.raises(grpc.RpcError) as caught:
        set_pipeline(stub, target, 10, p4info=p4info)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ("tables[MyIngress.ipv4_lpm].match_fields[0].bitwidth: expected 32, got 16"
            in caught.value.details())
    assert target.device.running is None  # nothing changed


def test_verify_save_then_commit(stub, open_stream, target):
    become_primary(open_stream)
    set_pipeline(stub, target, 10, action=SET.VERIFY)
    assert target.device.running is None
    with pytest.raises(grpc.RpcError) as caught:
        stub.SetForwardingPipelineConfig(SET(device_id=target.device_id, election_id=election(10),
                                             action=SET.COMMIT))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    set_pipeline(stub, target, 10, action=SET.VERIFY_AND_SAVE, cookie=5)
    assert target.device.running is None
    stub.SetForwardingPipelineConfig(SET(device_id=target.device_id, election_id=election(10),
                                         action=SET.COMMIT))
    assert target.device.running is not None
    assert target.device.running.pipeline.cookie == 5


def test_reconcile_keeps_the_forwarding_state(stub, open_stream, target):
    become_primary(open_stream)
    set_pipeline(stub, target, 10)
    switch = target.device.running.switch
    set_pipeline(stub, target, 10, action=SET.RECONCILE_AND_COMMIT, cookie=8)
    assert target.device.running.switch is switch
    assert target.device.running.pipeline.cookie == 8


def test_a_device_config_that_is_not_p4sim_is_refused(stub, open_stream, target):
    become_primary(open_stream)
    with pytest.raises(grpc.RpcError) as caught:
        set_pipeline(stub, target, 10, device_config=b'{"header_types": []}')
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "format is None, expected 'p4sim/1'" in caught.value.details()


@pytest.mark.bmv2
def test_capabilities_answers_the_api_version(stub):
    version = stub.Capabilities(p4r.CapabilitiesRequest()).p4runtime_api_version
    assert version.startswith("1.")
