"""Faults: a worker or switch that fails mid-request, dies or restarts; controller restarts."""

from __future__ import annotations

import grpc
import pytest
from ctl_builders import (
    geneve_encap,
    hex_key,
    ipsec_dec,
    ipsec_enc,
    match_ipv4,
    update_enc_sa,
)
from ctl_client import all_tunnels, create
from dp_support import PacketPort, eventually, health, plant_sa, worker_sas
from grpc_health.v1 import health_pb2
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def channel_for(controller) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(f"127.0.0.1:{controller.port}")


async def test_worker_failing_mid_request_rolls_back_the_first_sa(start_dp_controller, reader,
                                                                  worker) -> None:
    controller = await start_dp_controller(worker_poll=3600)  # no repair during the test
    async with channel_for(controller) as channel:
        v1 = pb_grpc.ipTunnelServiceStub(channel)
        await create(v1, geneve_encap(1))
        before = reader.snapshot()
        plant_sa(worker.socket, 2, 9999)  # the index the second SA below will get
        request = ipsec_dec(2, spi=780)
        request.ipsecTunnel.ipsecDec.ipsecSAs.add(spi=781, encryptionKey=hex_key(),
                                                  operation=pb._CREATE)
        answer = await create(v1, request)
        assert answer.requestStatus == pb._TUNNEL_TABLE_UNAVAILABLE
        assert "ALREADY_EXISTS" in answer.responses[0].error.errorString
        # SA 1 was added, then removed again; the switch never saw the tunnel.
        assert {i: p.spi for i, p in worker_sas(worker.socket).items()} == {2: 9999}
        assert reader.snapshot() == before
        assert [t.tunnelId for t in await all_tunnels(v1)] == [1]


async def test_dead_worker_refuses_requests_then_gets_its_sas_back(controller, v1, reader,
                                                                   worker, switch) -> None:
    await create(v1, ipsec_dec(1, spi=780), ipsec_enc(3, spi=4587))
    before = reader.snapshot()
    worker.kill()
    await eventually(lambda: _is(health(controller.port), NOT_SERVING))
    answer = await create(v1, ipsec_enc(2, spi=4600))
    assert answer.requestStatus == pb._TUNNEL_TABLE_UNAVAILABLE
    assert reader.snapshot() == before
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await v1.getIpTunnelStats(pb.tunnelId(tunnelId=1), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

    worker.start()  # a restarted worker: no SAs until the controller re-installs them
    await eventually(lambda: _is(health(controller.port), SERVING))
    # Both SAs are back, re-installed with AddSa resume=true (the worker continues from its
    # durable sequence/replay state, worker.proto): the encrypt tunnel needs no rekey.
    await eventually(lambda: {i: p.spi for i, p in worker_sas(worker.socket).items()}
                     == {1: 780, 2: 4587})
    port = PacketPort(switch.packet_url)
    try:
        port.send(1, bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / b"x"))
        assert port.receive() is not None
    finally:
        port.close()
    answer = await create(v1, ipsec_enc(2, spi=4600))
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED


async def test_switch_restart_repushes_pipeline_and_state(controller, v1, reader,
                                                          switch) -> None:
    await create(v1, ipsec_dec(1, spi=780), geneve_encap(2))
    before = reader.snapshot()
    assert len(before["tunnel_rules"]) == 2
    switch.kill()
    await eventually(lambda: _is(health(controller.port), NOT_SERVING))
    answer = await create(v1, geneve_encap(3))
    assert answer.requestStatus == pb._TUNNEL_TABLE_UNAVAILABLE
    assert "not connected" in answer.responses[0].error.errorString
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await v1.getIpTunnel(pb.tunnelId(tunnelId=2), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

    switch.start()  # same P4Runtime port, empty tables
    await eventually(lambda: _is(health(controller.port), SERVING), timeout=30)
    assert reader.snapshot() == before
    assert [t.tunnelId for t in await all_tunnels(v1)] == [1, 2]


async def test_startup_reads_back_and_repairs(start_dp_controller, reader, tmp_path) -> None:
    first = await start_dp_controller()
    async with channel_for(first) as channel:
        answer = await create(pb_grpc.ipTunnelServiceStub(channel), geneve_encap(7),
                              ipsec_dec(8, spi=780))
        assert answer.requestStatus == pb._TUNNEL_ACCEPTED
    programmed = reader.snapshot()
    await first.stop(grace=None)

    # A controller with no tunnels finds them on the switch and removes them.
    empty = await start_dp_controller(state_dir=tmp_path / "other")
    assert reader.snapshot()["tunnel_rules"] == []
    assert reader.snapshot()["decrypt_sas"] == []
    await empty.stop(grace=None)

    # The first state dir again: the same entries (same tunnel and SA indices) come back.
    await start_dp_controller()
    assert reader.snapshot() == programmed


async def _is(status_coroutine, wanted: int) -> bool:
    try:
        return await status_coroutine == wanted
    except grpc.aio.AioRpcError:
        return False


async def test_switch_refusing_part_of_a_write_reverts_the_rest(controller, v1, reader,
                                                                worker, monkeypatch) -> None:
    """A rekey whose WriteRequest the real switch refuses in part: the applied updates and the
    new worker SA are undone. The fault is a DELETE of an entry that does not exist, appended to
    the request's first WriteRequest — the switch applies the rest and reports that one."""
    import finsy as fy
    from ctl_builders import update_enc_sa

    from controller.p4rt.connection import delete as delete_update

    await create(v1, ipsec_enc(1, spi=4587))
    before, sas_before = reader.snapshot(), worker_sas(worker.socket)
    connection = controller.dataplane.connection
    real_write = connection.write
    missing = fy.P4TableEntry("TunnelIngress.esp.decrypt_sas",
                              match=fy.P4TableMatch(tunnel_index=999, spi=999),
                              action=fy.P4TableAction("TunnelIngress.esp.set_decrypt_sa",
                                                      sa_index=1))
    calls = []

    async def write_with_a_bad_update(updates):
        calls.append(len(updates))
        if len(calls) == 1:
            updates = [*updates, delete_update(missing)]
        await real_write(updates)

    monkeypatch.setattr(connection, "write", write_with_a_bad_update)
    answer = await create(v1, update_enc_sa(1, spi=4590))
    assert answer.requestStatus == pb._TUNNEL_TABLE_UNAVAILABLE
    assert "update 1" in answer.responses[0].error.errorString  # the appended DELETE
    assert calls == [1, 1]  # the MODIFY (refused in part), then its undo
    assert reader.snapshot() == before
    assert {i: p.spi for i, p in worker_sas(worker.socket).items()} == {
        i: p.spi for i, p in sas_before.items()}
    tunnel = await v1.getIpTunnel(pb.tunnelId(tunnelId=1), timeout=5)
    assert tunnel.ipTunnel.ipsecTunnel.ipsecEnc.ipsecSA.spi == 4587


async def test_a_rival_primary_makes_the_data_plane_unavailable(controller, v1, reader,
                                                                switch, worker) -> None:
    """Another controller with a higher election id takes the switch: ours must stop writing
    (NOT_SERVING, requests refused with nothing applied anywhere)."""
    import finsy as fy
    from dp_support import P4INFO

    await create(v1, geneve_encap(1))
    before, sas_before = reader.snapshot(), worker_sas(worker.socket)
    options = fy.SwitchOptions(p4info=P4INFO, initial_election_id=1000)
    async with fy.Switch("rival", switch.address, options) as rival:
        assert rival.is_primary
        await eventually(lambda: _is(health(controller.port), NOT_SERVING))
        answer = await create(v1, ipsec_enc(2, spi=4587))
        assert answer.requestStatus == pb._TUNNEL_TABLE_UNAVAILABLE
        assert reader.snapshot() == before
        assert worker_sas(worker.socket).keys() == sas_before.keys()


async def test_a_failed_undo_is_repaired_by_reconciliation(controller, v1, reader, worker,
                                                           monkeypatch) -> None:
    """The rekey's write is refused in part and then the undo cannot be written either: the data
    plane goes unavailable, reads the switch back and repairs it to the stored state."""
    import finsy as fy

    from controller.p4rt.connection import SwitchUnavailable
    from controller.p4rt.connection import delete as delete_update

    await create(v1, ipsec_enc(1, spi=4587))
    before = reader.snapshot()
    connection = controller.dataplane.connection
    real_write = connection.write
    missing = fy.P4TableEntry("TunnelIngress.esp.decrypt_sas",
                              match=fy.P4TableMatch(tunnel_index=999, spi=999),
                              action=fy.P4TableAction("TunnelIngress.esp.set_decrypt_sa",
                                                      sa_index=1))
    calls = []

    async def faulty_write(updates):
        calls.append(len(updates))
        if len(calls) == 1:
            await real_write([*updates, delete_update(missing)])  # MODIFY lands, DELETE fails
        elif len(calls) == 2:
            raise SwitchUnavailable("injected: the undo cannot be written")
        else:
            await real_write(updates)

    monkeypatch.setattr(connection, "write", faulty_write)
    answer = await create(v1, update_enc_sa(1, spi=4590))
    assert answer.requestStatus == pb._TUNNEL_TABLE_UNAVAILABLE
    await eventually(lambda: reader.snapshot() == before)  # repaired by the read-back
    await eventually(lambda: _is(health(controller.port), SERVING))
    assert {p.spi for p in worker_sas(worker.socket).values()} == {4587}
    assert len(calls) >= 3  # the reconciliation's own writes came after the failed undo


async def test_a_retired_key_is_still_refused_after_a_controller_restart(
        start_dp_controller, reader, worker, tmp_path) -> None:
    """Retired-key fingerprints live in the store (keyed HMAC), not in process memory."""
    from ctl_builders import update_enc_sa

    key = b"9a" * 32
    first = await start_dp_controller()
    async with channel_for(first) as channel:
        v1 = pb_grpc.ipTunnelServiceStub(channel)
        assert (await create(v1, ipsec_enc(5, spi=4587, key=key))).requestStatus \
            == pb._TUNNEL_ACCEPTED
        assert (await create(v1, update_enc_sa(5, spi=4588))).requestStatus \
            == pb._TUNNEL_ACCEPTED  # the first key is retired now
    await first.stop(grace=None)
    database = (tmp_path / "state" / "tunnels.sqlite3").read_bytes()
    assert bytes.fromhex(key.decode()) not in database and key not in database

    second = await start_dp_controller()
    async with channel_for(second) as channel:
        v1 = pb_grpc.ipTunnelServiceStub(channel)
        before, sas_before = reader.snapshot(), worker_sas(worker.socket)
        for request in (update_enc_sa(5, spi=4600, key=key),
                        ipsec_enc(6, spi=4601, key=key, match=match_ipv4(source="10.0.0.8"))):
            answer = await create(v1, request)
            assert answer.requestStatus == pb._TUNNEL_REJECTED, answer
            assert "retired key" in answer.responses[0].error.errorString
            assert answer.responses[0].error.errorString.startswith(
                "ipsecTunnel.ipsecEnc.ipsecSA.encryptionKey: the key of spi ")
        assert reader.snapshot() == before
        assert worker_sas(worker.socket).keys() == sas_before.keys()


async def test_rekey_drain_does_not_warn_about_frames_lost_long_before(
        controller, v1, worker, switch, caplog) -> None:
    """A frame lost while the worker was down leaves tunnel_in one above what came back, for
    good; a later rekey must see that nothing is in flight now (no warning)."""
    await create(v1, ipsec_enc(3, spi=4587))
    worker.kill()
    await eventually(lambda: _is(health(controller.port), NOT_SERVING))
    port = PacketPort(switch.packet_url)
    try:
        port.send(1, bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / b"lost"))
        assert port.receive(timeout=0.5) is None
    finally:
        port.close()
    worker.start()
    await eventually(lambda: _is(health(controller.port), SERVING))
    await eventually(lambda: 1 in worker_sas(worker.socket))  # resumed
    stats = await v1.getIpTunnelStats(pb.tunnelId(tunnelId=3), timeout=5)
    assert stats.tunnelCounters.inPackets == 1 and stats.tunnelCounters.outPackets == 0
    answer = await create(v1, update_enc_sa(3, spi=4588))
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED
    assert not [r for r in caplog.records if "still at the crypto worker" in r.getMessage()]
