"""Counters come from the switch (per-tunnel counters) and the worker (per-SA drops): inject
real frames on the switch's packet socket and read them back through the API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from ctl_builders import geneve_encap, ipsec_dec, ipsec_enc, match_ipv4
from ctl_client import create
from dp_support import P4INFO, PacketPort, eventually
from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import ESP
from scapy.layers.l2 import Ether

from controller.pipeline import Pipeline
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

HOST_MACS = {"src": "02:00:00:00:00:aa", "dst": "02:00:00:00:00:bb"}


@pytest.fixture
def port(switch) -> Iterator[PacketPort]:
    packet_port = PacketPort(switch.packet_url)
    yield packet_port
    packet_port.close()


async def stats(v1, tunnel_id: int) -> pb.tunnelCounters:
    response = await v1.getIpTunnelStats(pb.tunnelId(tunnelId=tunnel_id), timeout=5)
    return response.tunnelCounters


async def test_geneve_encap_counts_in_and_out(controller, v1, port) -> None:
    await create(v1, geneve_encap(1, match=match_ipv4(source="192.0.2.1")))
    assert (await stats(v1, 1)).inPackets == 0
    frame = bytes(Ether(**HOST_MACS) / IP(src="192.0.2.1", dst="10.9.9.9")
                  / UDP(sport=1234, dport=5678) / (b"x" * 40))
    port.send(1, frame)
    egress, out = port.receive()
    assert egress == 2  # the outer destination 6.6.6.6 routes to port 2 (routes file)
    outer = Ether(out)
    assert outer[IP].dst == "6.6.6.6" and outer[UDP].dport == 6081
    counters = await stats(v1, 1)
    # Bytes are the frames themselves: the one sent in, the encapsulated one that came out.
    assert (counters.inPackets, counters.inBytes) == (1, len(frame))
    assert (counters.outPackets, counters.outBytes) == (1, len(out))
    assert counters.inPacketsDrops == counters.outPacketsDrops == 0
    assert counters.inBytesDrops == counters.outBytesDrops == 0
    # A frame the rule does not match moves nothing.
    port.send(1, bytes(Ether(**HOST_MACS) / IP(src="192.0.2.9", dst="10.9.9.9") / UDP()))
    assert port.receive() is not None
    assert (await stats(v1, 1)).inPackets == 1


async def test_ipsec_encrypt_counts_the_round_trip_through_the_worker(controller, v1,
                                                                      port) -> None:
    await create(v1, ipsec_enc(5, spi=4587, match=match_ipv4(source="10.0.0.1")))
    frame = bytes(Ether(**HOST_MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / b"hi")
    port.send(1, frame)
    received = port.receive()
    assert received is not None
    egress, out = received
    assert egress == 3  # outer 11.0.0.1: the default route
    packet = Ether(out)
    assert packet[IP].dst == "11.0.0.1" and packet[UDP].dport == 4500
    counters = await stats(v1, 5)
    # The ESP frame that left, not the frame that entered its pass (which carried the shim).
    assert (counters.inPackets, counters.inBytes) == (1, len(frame))
    assert (counters.outPackets, counters.outBytes) == (1, len(out))


async def test_worker_drops_are_added_to_the_tunnel_in_drops(controller, v1, port) -> None:
    await create(v1, ipsec_dec(9, spi=780, match=match_ipv4(source="11.0.0.2")))
    forged = bytes(Ether(**HOST_MACS) / IP(src="11.0.0.2", dst="11.0.0.1")
                   / UDP(sport=4500, dport=4500) / ESP(spi=780, seq=1, data=b"\x55" * 40))
    port.send(1, forged)
    assert port.receive(timeout=1.0) is None  # the ICV fails in the worker: dropped

    async def dropped() -> bool:
        return (await stats(v1, 9)).inPacketsDrops == 1

    await eventually(dropped, timeout=5)
    counters = await stats(v1, 9)
    assert counters.inPackets == 1 and counters.outPackets == 0


async def test_worker_drops_reach_a_stats_pass_over_many_tunnels(controller, v1, port) -> None:
    """More tunnels than FEW_TUNNELS: the stats come from the poller's snapshot, whose worker
    drops are one GetCounters(dropped_only) of the SAs that dropped any; the other tunnels'
    in-drops stay 0."""
    from controller.p4runtime_dataplane import FEW_TUNNELS

    others = [geneve_encap(100 + n, match=match_ipv4(source=f"10.9.{n}.1"))
              for n in range(FEW_TUNNELS + 4)]
    await create(v1, ipsec_dec(9, spi=781, match=match_ipv4(source="11.0.0.2")), *others)
    forged = bytes(Ether(**HOST_MACS) / IP(src="11.0.0.2", dst="11.0.0.1")
                   / UDP(sport=4500, dport=4500) / ESP(spi=781, seq=1, data=b"\x55" * 40))
    port.send(1, forged)
    assert port.receive(timeout=1.0) is None  # the ICV fails in the worker: dropped

    async def drops() -> dict[int, int]:
        pages = [page async for page in v1.getAllIpTunnelsStats(pb.tunnelRequestArgs(),
                                                                timeout=10)]
        return {item.tunnelId: item.tunnelCounters.inPacketsDrops
                for page in pages for item in page.responses}

    async def dropped() -> bool:
        return (await drops()).get(9) == 1

    await eventually(dropped, timeout=5)
    figures = await drops()
    assert len(figures) == len(others) + 1
    assert {tunnel: n for tunnel, n in figures.items() if n} == {9: 1}


async def test_encrypt_rekey_under_traffic_loses_nothing(controller, v1, port) -> None:
    from ctl_builders import update_enc_sa

    await create(v1, ipsec_enc(6, spi=4587, match=match_ipv4(source="10.0.0.1")))
    frame = bytes(Ether(**HOST_MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / b"rk")
    sent, spis = 0, []
    stop = asyncio.Event()

    async def traffic() -> None:
        nonlocal sent
        while not stop.is_set():
            port.send(1, frame)
            sent += 1
            await asyncio.sleep(0.005)  # pacing, not waiting for readiness

    task = asyncio.create_task(traffic())
    await eventually(lambda: sent >= 20)
    answer = await create(v1, update_enc_sa(6, spi=4590))
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED
    await eventually(lambda: sent >= 60)
    stop.set()
    await task
    for _ in range(sent):
        received = port.receive()
        assert received is not None, f"lost a frame: {len(spis)} of {sent} came out"
        spis.append(Ether(received[1])[ESP].spi if Ether(received[1]).haslayer(ESP)
                    else int.from_bytes(bytes(Ether(received[1])[UDP].payload)[:4], "big"))
    assert spis[0] == 4587 and spis[-1] == 4590
    assert spis == sorted(spis)  # old SPI, then only the new one
    counters = await stats(v1, 6)
    assert counters.inPackets == counters.outPackets == sent
    assert counters.inPacketsDrops == 0


async def test_a_reused_tunnel_index_starts_from_zero(controller, v1, port, reader) -> None:
    from ctl_builders import delete

    await create(v1, geneve_encap(1, match=match_ipv4(source="192.0.2.1")))
    port.send(1, bytes(Ether(**HOST_MACS) / IP(src="192.0.2.1", dst="10.9.9.9") / UDP()))
    assert port.receive() is not None
    assert (await stats(v1, 1)).inPackets == 1
    # the 42-byte frame leaves 50 bytes longer: its delta + 256 = 306 has bit 8 set
    bits = Pipeline.load(P4INFO).delta_bits
    bit8 = ("tunnel_out_delta.bits", 1 * bits + 8)
    assert reader.counter("tunnel_in", 1)[0] == reader.counter(*bit8)[0] == 1
    await create(v1, delete(1))
    # The freed index's cells are zeroed as its tunnel leaves (so a CREATE there writes none).
    assert reader.counter("tunnel_in", 1) == (0, 0) and reader.counter(*bit8) == (0, 0)
    await create(v1, geneve_encap(2, match=match_ipv4(source="192.0.2.1")))
    [rule] = reader.entries("tunnel_rules")
    assert rule.action.args["tunnel_index"] == 1  # the same index, reused
    assert reader.counter("tunnel_in", 1) == (0, 0)
    assert reader.counter(*bit8) == (0, 0)
    counters = await stats(v1, 2)
    assert (counters.inPackets, counters.inBytes, counters.outBytes) == (0, 0, 0)


async def test_whole_counter_reads_give_the_same_bytes(controller, v1, port,
                                                       monkeypatch) -> None:
    """Past WHOLE_READ_SHARE of all cells the counters and their delta cells are read whole,
    not by index: the figures are the same frames' lengths."""
    from controller import counter_poller, p4runtime_dataplane

    await create(v1, geneve_encap(1, match=match_ipv4(source="192.0.2.1")))
    frame = bytes(Ether(**HOST_MACS) / IP(src="192.0.2.1", dst="10.9.9.9") / UDP() / (b"w" * 999))
    port.send(1, frame)
    received = port.receive()
    assert received is not None
    by_index = await stats(v1, 1)
    monkeypatch.setattr(p4runtime_dataplane, "FEW_TUNNELS", 0)   # the poller's read ...
    monkeypatch.setattr(counter_poller, "WHOLE_READ_SHARE", 0)   # ... of whole arrays
    reads = controller.dataplane.counter_poller.reads
    whole = await stats(v1, 1)
    assert controller.dataplane.counter_poller.reads == reads + 1
    assert whole == by_index
    assert (whole.inBytes, whole.outBytes) == (len(frame), len(received[1]))
    # That poll's second step read most cells: the next one reads every array in one step.
    assert controller.dataplane._whole_poll
    monkeypatch.setattr(controller.dataplane.counter_poller, "max_age", 0)
    assert await stats(v1, 1) == by_index
    assert controller.dataplane.counter_poller.reads == reads + 2


async def test_counters_only_grow_across_a_switch_restart(controller, v1, switch) -> None:
    """The restarted switch counts from 0 again; the API's figures carry on from before."""
    from dp_support import health, wait_serving

    await create(v1, geneve_encap(1, match=match_ipv4(source="192.0.2.1")))
    frame = bytes(Ether(**HOST_MACS) / IP(src="192.0.2.1", dst="10.9.9.9") / UDP() / (b"z" * 60))

    def send(count: int) -> int:
        port = PacketPort(switch.packet_url)
        try:
            out = 0
            for _ in range(count):
                port.send(1, frame)
                received = port.receive()
                assert received is not None
                out = len(received[1])
            return out
        finally:
            port.close()

    out_len = send(3)
    before = await stats(v1, 1)
    assert (before.inPackets, before.inBytes, before.outBytes) == (3, 3 * len(frame),
                                                                  3 * out_len)
    switch.restart()  # same addresses, empty tables and zero counters
    await eventually(lambda: _not_serving(health(controller.port)))
    await wait_serving(controller, timeout=30)
    after = await stats(v1, 1)
    assert (after.inPackets, after.inBytes, after.outPackets) == (3, 3 * len(frame), 3)
    send(2)
    later = await stats(v1, 1)
    assert (later.inPackets, later.inBytes, later.outBytes) == (5, 5 * len(frame), 5 * out_len)


async def _not_serving(status) -> bool:  # type: ignore[no-untyped-def]
    import grpc
    from grpc_health.v1 import health_pb2

    try:
        return await status != health_pb2.HealthCheckResponse.SERVING
    except grpc.aio.AioRpcError:
        return True


def _gate_poller(controller, monkeypatch):  # type: ignore[no-untyped-def]
    """Hold the next poll's snapshot between its read of the switch and its return: (read
    done, release). Later polls are not held."""
    from controller import p4runtime_dataplane

    monkeypatch.setattr(p4runtime_dataplane, "FEW_TUNNELS", 0)  # a single stats call polls
    poller = controller.dataplane.counter_poller
    real = poller._read
    read, release = asyncio.Event(), asyncio.Event()

    async def held():  # type: ignore[no-untyped-def]
        snapshot = await real()
        poller._read = real
        read.set()
        await release.wait()
        return snapshot

    monkeypatch.setattr(poller, "_read", held)
    return read, release


async def test_a_read_in_flight_across_a_delete_and_create_leaks_no_old_counts(
        controller, v1, port, reader, monkeypatch) -> None:
    """A poll that read the switch before tunnel 1 was deleted and created again (on the same
    index) returns after it: the new tunnel still starts from zero."""
    from ctl_builders import delete

    await create(v1, geneve_encap(1, match=match_ipv4(source="192.0.2.1")))
    port.send(1, bytes(Ether(**HOST_MACS) / IP(src="192.0.2.1", dst="10.9.9.9") / UDP()))
    assert port.receive() is not None
    read, release = _gate_poller(controller, monkeypatch)
    old = asyncio.ensure_future(stats(v1, 1))
    await asyncio.wait_for(read.wait(), 5)   # the switch said: tunnel 1 has 1 packet
    await create(v1, delete(1))
    await create(v1, geneve_encap(1, match=match_ipv4(source="192.0.2.1")))
    [rule] = reader.entries("tunnel_rules")
    assert rule.action.args["tunnel_index"] == 1  # the same index, reused
    release.set()
    assert (await old).inPackets in (0, 1)  # asked before the delete: either is true
    fresh = await stats(v1, 1)
    assert (fresh.inPackets, fresh.inBytes, fresh.outPackets) == (0, 0, 0)
    port.send(1, bytes(Ether(**HOST_MACS) / IP(src="192.0.2.1", dst="10.9.9.9") / UDP()))
    assert port.receive() is not None

    async def counted() -> bool:  # once the last snapshot is older than counter_max_age
        later = await stats(v1, 1)
        return (later.inPackets, later.outPackets) == (1, 1)

    await eventually(counted)


async def test_a_two_step_poll_reads_deltas_only_of_tunnels_that_emitted(controller, v1, port,
                                                                         monkeypatch) -> None:
    """Main arrays whole, then the 22 cells of the one tunnel that emitted by index: the same
    exact figures as reading that tunnel's cells alone, and the idle tunnels at zero."""
    from controller import counter_poller, p4runtime_dataplane

    await create(v1, *[geneve_encap(n, match=match_ipv4(source=f"192.0.2.{n}"))
                       for n in (1, 2, 3)])
    frame = bytes(Ether(**HOST_MACS) / IP(src="192.0.2.2", dst="10.9.9.9") / UDP() / (b"v" * 99))
    port.send(1, frame)
    received = port.receive()
    assert received is not None
    alone = await stats(v1, 2)  # its 22 cells by index (no snapshot yet)
    assert (alone.inBytes, alone.outBytes) == (len(frame), len(received[1]))
    dataplane = controller.dataplane
    total = sum(size for _, size in dataplane.pipeline.tunnel_counter_arrays().values())
    # 3 tunnels' 66 cells are "many", one tunnel's 22 are not: two steps, the second by index
    monkeypatch.setattr(counter_poller, "WHOLE_READ_SHARE", 50 / total)
    monkeypatch.setattr(p4runtime_dataplane, "FEW_TUNNELS", 0)
    reads = dataplane.counter_poller.reads
    pages = [page async for page in v1.getAllIpTunnelsStats(pb.tunnelRequestArgs(), timeout=10)]
    figures = {item.tunnelId: item.tunnelCounters for page in pages for item in page.responses}
    assert dataplane.counter_poller.reads == reads + 1 and not dataplane._whole_poll
    assert figures[2] == alone
    assert figures[1] == figures[3] == pb.counters()


async def test_a_read_in_flight_across_a_switch_restart_counts_nothing_twice(
        controller, v1, switch, monkeypatch) -> None:
    """A poll that read the switch before it restarted returns after the restart's fold of the
    baselines: that reading is not added on top of the fold (it is read again)."""
    from dp_support import health, wait_serving

    await create(v1, geneve_encap(1, match=match_ipv4(source="192.0.2.1")))
    port = PacketPort(switch.packet_url)
    try:
        for _ in range(2):
            port.send(1, bytes(Ether(**HOST_MACS) / IP(src="192.0.2.1", dst="10.9.9.9") / UDP()))
            assert port.receive() is not None
    finally:
        port.close()
    assert (await stats(v1, 1)).inPackets == 2  # read once: the fold keeps these 2
    read, release = _gate_poller(controller, monkeypatch)
    held = asyncio.ensure_future(stats(v1, 1))
    await asyncio.wait_for(read.wait(), 5)  # the switch said: 2 packets, again
    switch.restart()
    await eventually(lambda: _not_serving(health(controller.port)))
    await wait_serving(controller, timeout=30)
    release.set()
    assert (await held).inPackets == 2
    monkeypatch.setattr(controller.dataplane.counter_poller, "max_age", 0)
    assert (await stats(v1, 1)).inPackets == 2  # not 4


async def test_a_decrypt_rekey_keeps_the_old_sas_drops(start_dp_controller, port) -> None:
    """inPacketsDrops holds the worker's drops of the tunnel's SAs; a rekey removes the old SA
    from the worker (its drops with it), so the controller keeps them in the tunnel's
    baseline: the figure never goes down — not after the rekey, not after more drops on the
    new SA, not after a controller restart (main: 3 drops, then 0 after the rekey)."""
    import grpc
    from ctl_builders import hex_key, update_dec_sas

    from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc

    def forge(spi: int, seq: int) -> bytes:
        return bytes(Ether(**HOST_MACS) / IP(src="11.0.0.2", dst="11.0.0.1")
                     / UDP(sport=4500, dport=4500) / ESP(spi=spi, seq=seq, data=b"\x55" * 40))

    async def in_drops(v1, expected: int) -> None:
        async def reached() -> bool:
            return (await stats(v1, 9)).inPacketsDrops == expected

        await eventually(reached, timeout=5)

    controller = await start_dp_controller()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{controller.port}") as channel:
        v1 = pb_grpc.ipTunnelServiceStub(channel)
        await create(v1, ipsec_dec(9, spi=780, match=match_ipv4(source="11.0.0.2")))
        for seq in range(1, 4):
            port.send(1, forge(780, seq))  # the ICV fails in the worker: dropped
        assert port.receive(timeout=1.0) is None
        await in_drops(v1, 3)
        answer = await create(v1, update_dec_sas(9, (781, pb._CREATE, hex_key()),
                                                 (780, pb._DELETE, b"")))
        assert answer.requestStatus == pb._TUNNEL_ACCEPTED
        assert (await stats(v1, 9)).inPacketsDrops == 3
        for seq in range(1, 3):
            port.send(1, forge(781, seq))
        assert port.receive(timeout=1.0) is None
        await in_drops(v1, 5)
    await controller.stop(grace=None)
    restarted = await start_dp_controller()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{restarted.port}") as channel:
        v1 = pb_grpc.ipTunnelServiceStub(channel)
        counters = await stats(v1, 9)
        assert (counters.inPackets, counters.inPacketsDrops) == (5, 5)
