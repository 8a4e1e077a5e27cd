"""createIpTunnel stream semantics: the errorStatus bitmask, partial application, id allocation,
all-or-nothing capacity (TABLE_FULL), and rollback when the data plane fails (TABLE_UNAVAILABLE).

Run just this file: .venv/bin/python -m pytest tests/controller/test_controller_streams.py -q
"""

from __future__ import annotations

from ctl_builders import (
    delete,
    geneve_decap,
    geneve_encap,
    hex_key,
    ipsec_dec,
    ipsec_enc,
    match_ipv4,
    update_dec_sas,
    update_enc_sa,
)
from ctl_client import all_tunnels, create, tls_channel, wait_serving
from ctl_doubles import FailingDataPlane, RecordingDataPlane

from controller.capabilities import Capabilities
from controller.model import IpsecEncrypt, Operation
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc


async def _ids(stub) -> list[int]:
    return [item.tunnelId for item in await all_tunnels(stub)]


async def test_bitmask_marks_failed_requests_and_valid_ones_apply(v1) -> None:
    response = await create(
        v1,
        geneve_encap(1),                                   # ok
        geneve_encap(2, vni=1 << 24),                      # bad: VNI
        ipsec_dec(3, spi=900),                             # ok
        geneve_encap(4, match=match_ipv4(tunnel_id=2)),    # bad: 2 was not created
        geneve_decap(5, match=match_ipv4(tunnel_id=3, geneve_vni=9)),  # ok: chains from 3
    )
    assert response.requestStatus == pb._TUNNEL_REJECTED
    assert response.errorStatus == 0b01010
    assert [item.tunnelId for item in response.responses] == [1, 2, 3, 4, 5]
    assert [item.HasField("error") for item in response.responses] == [False, True, False, True,
                                                                       False]
    assert await _ids(v1) == [1, 3, 5]


async def test_error_bits_cover_the_first_64_requests_only(v1) -> None:
    requests = [geneve_encap(100 + i, match=match_ipv4(source=f"10.0.{i}.0", prefix=24))
                for i in range(70)]
    requests[3] = geneve_encap(103, vni=1 << 25)
    requests[66] = geneve_encap(166, vni=1 << 25)
    response = await create(v1, *requests)
    assert response.errorStatus == 1 << 3
    assert len(response.responses) == 70
    assert response.responses[66].HasField("error")
    assert response.requestStatus == pb._TUNNEL_REJECTED
    assert len(await _ids(v1)) == 68


async def test_later_requests_see_earlier_ones_in_the_same_stream(v1) -> None:
    response = await create(v1, ipsec_enc(7, spi=5000), update_enc_sa(7, spi=5001),
                            geneve_encap(8), delete(8))
    assert response.requestStatus == pb._TUNNEL_ACCEPTED and response.errorStatus == 0
    [tunnel] = await all_tunnels(v1)
    assert tunnel.tunnelId == 7
    assert tunnel.ipTunnel.ipsecTunnel.ipsecEnc.ipsecSA.spi == 5001


async def test_zero_id_allocates_the_lowest_free_id(v1) -> None:
    response = await create(v1, geneve_encap(1), geneve_encap(0, vni=2), geneve_encap(3, vni=3),
                            geneve_encap(0, vni=4), geneve_encap(0, vni=5))
    assert [item.tunnelId for item in response.responses] == [1, 2, 3, 4, 5]
    assert await _ids(v1) == [1, 2, 3, 4, 5]
    await create(v1, delete(2))
    response = await create(v1, geneve_encap(0, vni=6))
    assert response.responses[0].tunnelId == 2


async def test_duplicates_only_give_already_exists_mixed_give_rejected(v1) -> None:
    await create(v1, geneve_encap(1), geneve_encap(2))
    only_duplicates = await create(v1, geneve_encap(1), geneve_encap(3), geneve_encap(2))
    assert only_duplicates.requestStatus == pb._TUNNEL_ALREADY_EXISTS
    assert only_duplicates.errorStatus == 0b101
    mixed = await create(v1, geneve_encap(1), geneve_encap(4, vni=1 << 24))
    assert mixed.requestStatus == pb._TUNNEL_REJECTED
    assert await _ids(v1) == [1, 2, 3]


async def test_capacity_is_all_or_nothing_for_the_stream(start_controller) -> None:
    controller = await start_controller(capabilities=Capabilities(max_tunnels=3, max_sas=3))
    async with tls_channel(controller) as channel:
        await wait_serving(channel)
        stub = pb_grpc.ipTunnelServiceStub(channel)
        assert (await create(stub, geneve_encap(1), ipsec_enc(2))).errorStatus == 0
        before = [item.SerializeToString() for item in await all_tunnels(stub)]

        full = await create(stub, geneve_encap(3, vni=3), geneve_encap(4, vni=4))
        assert full.requestStatus == pb._TUNNEL_TABLE_FULL
        assert full.errorStatus == 0b11
        assert "3 tunnels" in full.responses[0].error.errorString
        assert "needs 4 tunnels" in full.responses[0].error.errorString
        assert [item.SerializeToString() for item in await all_tunnels(stub)] == before

        # SAs count too: a decrypt tunnel with three SAs needs 1 + 3 > 3.
        sas = ipsec_dec(3, spi=900)
        sas.ipsecTunnel.ipsecDec.ipsecSAs.add(spi=901, encryptionKey=hex_key(),
                                              operation=pb._CREATE)
        sas.ipsecTunnel.ipsecDec.ipsecSAs.add(spi=902, encryptionKey=hex_key(),
                                              operation=pb._CREATE)
        assert (await create(stub, sas)).requestStatus == pb._TUNNEL_TABLE_FULL

        # The peak counts, not the sum of creates: delete-then-create fits at capacity.
        swap = await create(stub, geneve_encap(3, vni=3), delete(1), geneve_encap(4, vni=4))
        assert swap.requestStatus == pb._TUNNEL_ACCEPTED
        assert await _ids(stub) == [2, 3, 4]


async def test_dataplane_fault_rolls_back_the_request_and_stops_the_stream(
        start_controller, state_dir) -> None:
    dataplane = FailingDataPlane(fail_calls={1})
    controller = await start_controller(dataplane=dataplane)
    async with tls_channel(controller) as channel:
        await wait_serving(channel)
        stub = pb_grpc.ipTunnelServiceStub(channel)
        response = await create(stub, geneve_encap(1), geneve_encap(2, vni=2),
                                geneve_encap(3, vni=3), geneve_encap(4, vni=1 << 24))
        assert response.requestStatus == pb._TUNNEL_TABLE_UNAVAILABLE
        assert response.errorStatus == 0b1110
        assert "data plane is unavailable" in response.responses[1].error.errorString
        assert "not applied" in response.responses[2].error.errorString
        assert await _ids(stub) == [1]
        assert [change.tunnel_id for change in dataplane.changes] == [1]

        # A failed UPDATE leaves the old definition, in memory and on disk.
        await create(stub, ipsec_enc(5, spi=5000))
        dataplane.fail_all = True
        failed = await create(stub, update_enc_sa(5, spi=6000))
        assert failed.requestStatus == pb._TUNNEL_TABLE_UNAVAILABLE
        spi = (await stub.getIpTunnel(pb.tunnelId(tunnelId=5))).ipTunnel.ipsecTunnel
        assert spi.ipsecEnc.ipsecSA.spi == 5000
    await controller.stop(grace=None)
    restarted = await start_controller()
    assert sorted(restarted.store.tunnels) == [1, 5]
    body = restarted.store.tunnels[5].body
    assert isinstance(body, IpsecEncrypt) and body.sa.spi == 5000


async def test_dataplane_gets_full_before_and_after(start_controller) -> None:
    dataplane = RecordingDataPlane()
    controller = await start_controller(dataplane=dataplane)
    async with tls_channel(controller) as channel:
        await wait_serving(channel)
        stub = pb_grpc.ipTunnelServiceStub(channel)
        await create(stub, ipsec_dec(1, spi=780))
        await create(stub, update_dec_sas(1, (1030, pb._CREATE, hex_key())))
        await create(stub, update_dec_sas(1, (780, pb._DELETE, b"")))
        await create(stub, delete(1))
    create_change, add, remove, removal = dataplane.changes
    assert create_change.operation is Operation.CREATE and create_change.before is None
    assert add.operation is Operation.UPDATE
    assert [sa.spi for sa in add.before.security_associations] == [780]
    assert [sa.spi for sa in add.after.security_associations] == [780, 1030]
    assert [sa.spi for sa in remove.after.security_associations] == [1030]
    assert removal.operation is Operation.DELETE and removal.after is None
    assert removal.before == remove.after


async def test_detached_capacity_is_the_p4info_size(start_controller, tmp_path) -> None:
    """The detached controller reports, and enforces, the tunnel count of the P4Info it is
    given (no size typed in Python): a P4Info whose tunnel counters hold 1,024 cells admits
    exactly 1,023 tunnels; the checked-in P4Info gives 65,535 (the API does not report it)."""
    from controller.capabilities import capabilities_for_p4info
    from controller.settings import DEFAULT_P4INFO

    default = capabilities_for_p4info(DEFAULT_P4INFO)
    assert (default.max_tunnels, default.max_sas) == (65535, 65535)
    small = tmp_path / "small.p4info.txtpb"
    text = DEFAULT_P4INFO.read_text()
    small.write_text(text.replace("size: 65536\n", "size: 1024\n")
                     .replace("size: 589824\n", "size: 9216\n"))
    controller = await start_controller(p4info=small)
    async with tls_channel(controller) as channel:
        await wait_serving(channel)
        v1 = pb_grpc.ipTunnelServiceStub(channel)
        requests = [geneve_encap(0, vni=i + 1,
                                 match=match_ipv4(source=f"10.{i // 256}.{i % 256}.0", prefix=24))
                    for i in range(1024)]
        over = await create(v1, *requests)
        assert over.requestStatus == pb._TUNNEL_TABLE_FULL
        assert await _ids(v1) == []
        exact = await create(v1, *requests[:1023])
        assert (exact.requestStatus, exact.errorStatus) == (pb._TUNNEL_ACCEPTED, 0)
        assert (await create(v1, geneve_encap(5000))).requestStatus == pb._TUNNEL_TABLE_FULL
        assert len(await _ids(v1)) == 1023


class _BrokenDataPlane(RecordingDataPlane):
    async def apply(self, change) -> None:
        raise RuntimeError("driver detail that must not reach the client")


async def test_unexpected_fault_is_internal_with_a_reference(start_controller, caplog) -> None:
    import grpc
    import pytest

    controller = await start_controller(dataplane=_BrokenDataPlane())
    async with tls_channel(controller) as channel:
        await wait_serving(channel)
        stub = pb_grpc.ipTunnelServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await create(stub, geneve_encap(1))
        assert raised.value.code() == grpc.StatusCode.INTERNAL
        details = raised.value.details()
        assert "internal error (reference " in details and "driver detail" not in details
        reference = details.split("reference ")[1].split(",")[0]
        assert reference in caplog.text and "driver detail" in caplog.text  # traceback logged
        assert await _ids(stub) == []  # rolled back


async def test_oversized_stream_is_refused_whole(v1, monkeypatch) -> None:
    """The request-count bound (131,072 in production, lowered here to keep the test short)."""
    import grpc
    import pytest

    from controller import servicer

    assert servicer.MAX_STREAM_REQUESTS == 1 << 17
    monkeypatch.setattr(servicer, "MAX_STREAM_REQUESTS", 300)
    requests = [geneve_encap(i + 1) for i in range(301)]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await create(v1, *requests)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "at most 300 requests" in raised.value.details()
    assert await _ids(v1) == []
    answer = await create(v1, *requests[:300])  # exactly the bound is fine
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED
    assert len(await _ids(v1)) == 300
