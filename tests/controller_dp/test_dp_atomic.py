"""Requests are atomic against the client: storms of createIpTunnel streams cancelled at random
points or given short deadlines, with the real switch (p4sim), crypto worker and controller;
after each, the switch (P4Runtime read), the worker (ListSas) and the store (getAllIpTunnels and
the store's own rows) are read back and must agree exactly."""

from __future__ import annotations

import asyncio
import os
import random

import grpc
from ctl_builders import (
    delete,
    geneve_encap,
    hex_key,
    ipsec_dec,
    ipsec_enc,
    match_ipv4,
    update_dec_sas,
    update_enc_sa,
)
from ctl_client import all_tunnels, create
from dp_support import SwitchReader, worker_sas

from controller.p4runtime_dataplane import P4RuntimeDataPlane, _full
from controller.server import ControllerServer
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc

STORM_STREAMS = int(os.environ.get("DP_STORM_STREAMS", "300"))
TUNNEL_IDS = range(1, 13)


def _random_request(rng: random.Random) -> pb.ipTunnelRequest:
    """A CREATE, UPDATE or DELETE of a random tunnel of a random kind (many are refused: the
    tunnel exists already, or does not; that is part of the storm)."""
    tunnel_id = rng.choice(TUNNEL_IDS)
    kind = tunnel_id % 3  # one kind per id, so UPDATEs fit the tunnel they name
    match = match_ipv4(source=f"10.{kind}.{tunnel_id}.1")
    spi = rng.randrange(1000, 1 << 30)
    roll = rng.random()
    if roll < 0.25:
        return delete(tunnel_id)
    if roll < 0.5 and kind == 0:
        return update_enc_sa(tunnel_id, spi=spi)
    if roll < 0.5 and kind == 1:
        return update_dec_sas(tunnel_id, (spi, pb._CREATE, hex_key()))
    if kind == 0:
        return ipsec_enc(tunnel_id, spi=spi, match=match)
    if kind == 1:
        return ipsec_dec(tunnel_id, spi=spi, match=match)
    return geneve_encap(tunnel_id, match=match, vni=tunnel_id)


async def _stream(v1: pb_grpc.ipTunnelServiceStub, rng: random.Random) -> str:
    """One stream of 1-6 requests, fed with small pauses, then cancelled or timed out at a
    random point (or, sometimes, let finish). Returns how it ended."""
    requests = [_random_request(rng) for _ in range(rng.randint(1, 6))]

    async def feed():  # type: ignore[no-untyped-def]
        for request in requests:
            yield request
            await asyncio.sleep(rng.choice((0, 0, 0.001, 0.003)))

    ending = rng.choice(("cancel", "cancel", "deadline", "deadline", "finish"))
    timeout = rng.uniform(0.002, 0.03) if ending == "deadline" else 10
    call = v1.createIpTunnel(feed(), timeout=timeout)
    if ending == "cancel":
        await asyncio.sleep(rng.uniform(0, 0.03))
        call.cancel()
    try:
        await call
    except (grpc.aio.AioRpcError, asyncio.CancelledError):
        return ending
    return "answered"


async def _settle(controller: ControllerServer) -> None:
    """Wait until no stream is being applied: the server's handler of a cancelled call may
    still be about to submit (same event loop), so idle must hold twice in a row."""
    idle = 0
    while idle < 2:
        await controller.service.drain()  # streams whose client left finish (never stopped)
        await asyncio.sleep(0.02)
        idle = idle + 1 if not controller.service.busy else 0


async def _assert_equal(controller: ControllerServer, reader: SwitchReader,
                        v1: pb_grpc.ipTunnelServiceStub, socket: object) -> None:
    """Switch, worker and store agree: no stray entry, SA or index, nothing missing."""
    await _settle(controller)
    dataplane = controller.dataplane
    assert isinstance(dataplane, P4RuntimeDataPlane)
    pipeline = dataplane.pipeline
    store = controller.store
    stored = dict(store.tunnels)
    assert sorted(t.tunnelId for t in await all_tunnels(v1)) == sorted(stored)
    assert store.journal() == []
    # No stray index: allocations exist for exactly the stored tunnels, in memory and on disk.
    allocations = store.load_allocations()
    assert sorted(allocations) == sorted(stored)
    assert {tunnel_id: dataplane.allocation(tunnel_id) for tunnel_id in stored} == allocations
    tunnel_indexes = [allocation.tunnel_index for allocation in allocations.values()]
    assert len(set(tunnel_indexes)) == len(tunnel_indexes)
    # The switch holds exactly what the store describes.
    actual = sorted(_full(entry, pipeline) for table in pipeline.managed_tables()
                    for entry in reader.entries(table))
    desired = sorted(_full(entry, pipeline) for entry in dataplane.desired_entries())
    assert actual == desired
    # The worker holds exactly the stored SAs at their allocated indices.
    on_worker = {index: (params.spi, params.direction)
                 for index, params in worker_sas(socket).items()}  # type: ignore[arg-type]
    wanted = {index: (sa.sa.spi, sa.params.direction)
              for index, sa in dataplane.desired_sas().items()}
    assert on_worker == wanted
    stored_sas = sorted((tunnel_id, sa.spi) for tunnel_id, tunnel in stored.items()
                        for sa in tunnel.security_associations)
    assert sorted((sa.tunnel_id, sa.sa.spi) for sa in dataplane.desired_sas().values()) \
        == stored_sas


async def test_cancel_and_deadline_storm_leaves_switch_worker_and_store_equal(
        controller, v1, reader, worker, caplog) -> None:
    seed = int(os.environ.get("DP_STORM_SEED", str(random.randrange(1 << 32))))
    rng = random.Random(seed)
    endings: dict[str, int] = {}
    for number in range(STORM_STREAMS):
        ending = await _stream(v1, rng)
        endings[ending] = endings.get(ending, 0) + 1
        try:
            await _assert_equal(controller, reader, v1, worker.socket)
        except AssertionError as error:
            raise AssertionError(f"seed {seed}, stream {number} ({ending}): {error}") from None
    # The storm hit the window that matters: clients gone while their stream was applied.
    gone = sum("the client went away" in record.getMessage() for record in caplog.records)
    assert gone >= STORM_STREAMS // 10, (gone, endings)
    # Every surviving tunnel can be deleted; the data plane is empty afterwards.
    ids = sorted(controller.store.tunnels)
    if ids:
        answer = await create(v1, *[delete(tunnel_id) for tunnel_id in ids])
        assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    await _assert_equal(controller, reader, v1, worker.socket)
    assert worker_sas(worker.socket) == {}
    assert reader.entries("tunnel_rules") == []


async def test_parallel_cancelled_streams_leave_everything_equal(controller, v1, reader,
                                                                 worker) -> None:
    """Several clients at once, each cancelling at random: the lock orders them, the shield
    finishes each started stream."""
    rng = random.Random(int(os.environ.get("DP_STORM_SEED", "7")))
    for _ in range(STORM_STREAMS // 10):
        await asyncio.gather(*[_stream(v1, random.Random(rng.random())) for _ in range(6)])
        await _assert_equal(controller, reader, v1, worker.socket)
