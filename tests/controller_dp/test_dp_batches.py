"""Batched apply with the real switch (p4sim), crypto worker and controller: a batch is one
WriteRequest, a refused update fails only its own request (and stops the stream there, the
later requests of the batch undone), and a stream longer than the old 4,096 limit is applied.

Run just these: .venv/bin/python -m pytest tests/controller_dp/test_dp_batches.py -q
"""

from __future__ import annotations

from ctl_builders import geneve_encap, ipsec_dec, ipsec_enc, match_ipv4
from ctl_client import create
from dp_support import worker_sas
from test_dp_atomic import _assert_equal

from controller.p4rt.connection import delete as delete_update
from controller.p4rt.connection import insert as insert_update
from controller.p4runtime_dataplane import P4RuntimeDataPlane, _full
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb


def _mixed(count: int) -> list[pb.ipTunnelRequest]:
    """Decrypt, encrypt and Geneve CREATEs with distinct matches, SPIs and keys."""
    requests = []
    for tunnel_id in range(1, count + 1):
        match = match_ipv4(source=f"10.{tunnel_id // 250}.{tunnel_id % 250}.1")
        kind = tunnel_id % 3
        if kind == 0:
            requests.append(ipsec_dec(tunnel_id, spi=1000 + tunnel_id, match=match))
        elif kind == 1:
            requests.append(ipsec_enc(tunnel_id, spi=5000 + tunnel_id, match=match))
        else:
            requests.append(geneve_encap(tunnel_id, match=match, vni=tunnel_id))
    return requests


async def test_a_stream_of_creates_is_one_write_request(controller, v1, reader, worker,
                                                        monkeypatch) -> None:
    dataplane = controller.dataplane
    assert isinstance(dataplane, P4RuntimeDataPlane)
    writes: list[int] = []
    real_write = dataplane.connection.write

    async def counting(updates):  # type: ignore[no-untyped-def]
        writes.append(len(updates))
        await real_write(updates)

    monkeypatch.setattr(dataplane.connection, "write", counting)
    answer = await create(v1, *_mixed(60))
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    # 60 CREATEs in one WriteRequest: 20 decrypt SA entries, 60 rules and the 20 decrypt
    # tunnels' esp_endpoints entries, and no counter reset (every index's cells were read back
    # as 0 when the switch connected).
    assert writes == [100]
    assert len(reader.entries("tunnel_rules")) == 60
    assert len(worker_sas(worker.socket)) == 40
    await _assert_equal(controller, reader, v1, worker.socket)


async def test_a_refused_update_fails_its_request_and_stops_the_stream_there(
        controller, v1, reader, worker) -> None:
    """Request 5 of 10 meets an entry planted behind the controller's back (the switch refuses
    that one INSERT): requests 0-4 are applied, 5 is refused with the switch's words, 6-9 are
    undone (their SAs removed, their entries deleted) and reported unavailable."""
    dataplane = controller.dataplane
    assert isinstance(dataplane, P4RuntimeDataPlane)
    requests = [ipsec_dec(tunnel_id, spi=2000 + tunnel_id,
                          match=match_ipv4(source=f"10.9.0.{tunnel_id}"))
                for tunnel_id in range(1, 11)]
    planted = dataplane.pipeline.decrypt_sa_entry(tunnel_index=6, spi=2006, sa_index=60000)
    await dataplane.connection.write([insert_update(planted)])
    answer = await create(v1, *requests)
    assert answer.requestStatus == pb._TUNNEL_TABLE_UNAVAILABLE
    errors = [item.error.errorString for item in answer.responses]
    assert errors[:5] == [""] * 5, errors
    assert "switch refused" in errors[5], errors[5]
    assert all("not applied: the data plane is unavailable" in text for text in errors[6:])
    assert sorted(controller.store.tunnels) == [1, 2, 3, 4, 5]
    assert sorted(params.spi for params in worker_sas(worker.socket).values()) == [
        2001, 2002, 2003, 2004, 2005]
    await dataplane.connection.write([delete_update(planted)])
    await _assert_equal(controller, reader, v1, worker.socket)
    # The refused requests apply once the obstacle is gone.
    answer = await create(v1, *requests[5:])
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    await _assert_equal(controller, reader, v1, worker.socket)


async def test_a_stream_past_the_old_limit_is_applied(controller, v1, reader, worker) -> None:
    """5,000 CREATEs in one stream (the servicer refused more than 4,096 before)."""
    requests = _mixed(5000)
    answer = await v1.createIpTunnel(iter(requests), timeout=300)
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED
    assert len(answer.responses) == 5000 and answer.errorStatus == 0
    assert len(reader.entries("tunnel_rules")) == 5000
    assert len(reader.entries("decrypt_sas")) == 1666
    assert len(worker_sas(worker.socket)) == 1666 + 1667
    # Switch, worker and store agree (read directly: a page-size-0 getAllIpTunnels of 5,000
    # tunnels reads 5,000 tunnels' counters, the stats path's business, not this test's).
    dataplane = controller.dataplane
    assert isinstance(dataplane, P4RuntimeDataPlane)
    pipeline = dataplane.pipeline
    assert sorted(controller.store.tunnels) == list(range(1, 5001))
    assert controller.store.load_allocations() == {
        tunnel_id: dataplane.allocation(tunnel_id) for tunnel_id in range(1, 5001)}
    actual = sorted(_full(entry, pipeline) for table in pipeline.managed_tables()
                    for entry in reader.entries(table))
    assert actual == sorted(_full(entry, pipeline) for entry in dataplane.desired_entries())
    assert {index: params.spi for index, params in worker_sas(worker.socket).items()} == {
        index: sa.sa.spi for index, sa in dataplane.desired_sas().items()}
    assert controller.store.journal() == []
