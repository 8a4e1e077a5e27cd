"""The server driven by finsy, the client library the controller uses.

Run: .venv/bin/python -m pytest tests/p4sim/p4runtime/test_p4rt_finsy.py -q
Marked ``bmv2`` tests must also pass against simple_switch_grpc (see docs/p4sim.md).
"""

from __future__ import annotations

import asyncio

import finsy as fy
import pytest
from finsy.grpcutil import GRPCStatusCode

from tests.p4sim.p4runtime.p4rt_support import eid

FRAME = b"\x0a\x01\x02\x03\x11" + b"finsy"
DMAC = 0x0A0000000001


def options(target, initial_election_id: int = 10, **extra) -> fy.SwitchOptions:
    # With both P4Info and a blob finsy is "authoritative" and sets the pipeline itself. An
    # empty blob makes p4sim use the program it was started with.
    return fy.SwitchOptions(p4info=target.p4info_path, p4blob=target.device_config,
                            device_id=target.device_id,
                            initial_election_id=eid(initial_election_id), **extra)


def route(prefix: str, port: int) -> fy.P4TableEntry:
    return fy.P4TableEntry("ipv4_lpm", match=fy.P4TableMatch(dst=prefix),
                           action=fy.P4TableAction("set_nhop", port=port, dmac=DMAC))


async def eventually(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


@pytest.mark.bmv2
async def test_finsy_loads_the_pipeline_writes_and_reads_back(target):
    async with fy.Switch("sw", target.address, options(target)) as sw:
        assert sw.is_primary
        await sw.delete_all()
        await sw.write([+route("10.1.0.0/16", 3), +route("10.2.0.0/16", 4)])
        entries = [e async for e in sw.read(fy.P4TableEntry("ipv4_lpm"))]
        assert sorted(e.action.args["port"] for e in entries) == [3, 4]
        assert {e.match["dst"] for e in entries} == {(0x0A010000, 16), (0x0A020000, 16)}
        await sw.write([-route("10.2.0.0/16", 4)])
        assert len([e async for e in sw.read(fy.P4TableEntry("ipv4_lpm"))]) == 1


@pytest.mark.bmv2
async def test_finsy_sees_one_error_per_update(target):
    async with fy.Switch("sw", target.address, options(target)) as sw:
        await sw.delete_all()
        await sw.write([+route("10.1.0.0/16", 3)])
        with pytest.raises(fy.P4ClientError) as caught:
            await sw.write([+route("10.3.0.0/16", 3), +route("10.1.0.0/16", 3),
                            -route("10.9.0.0/16", 3)])
        error = caught.value
        assert error.code == GRPCStatusCode.UNKNOWN
        codes = {index: detail.canonical_code for index, detail in error.details.items()}
        assert codes == {1: GRPCStatusCode.ALREADY_EXISTS, 2: GRPCStatusCode.NOT_FOUND}


@pytest.mark.bmv2
async def test_finsy_reads_counters_that_packets_moved(target):
    async with fy.Switch("sw", target.address, options(target)) as sw:
        await sw.delete_all()
        await sw.write([+route("10.1.0.0/16", 3)])
        before = [c async for c in sw.read(fy.P4CounterEntry("port_packets", index=2))][0]
        assert target.inject(2, FRAME) == [(3, FRAME)]
        after = [c async for c in sw.read(fy.P4CounterEntry("port_packets", index=2))][0]
        assert after.packet_count - before.packet_count == 1
        assert after.byte_count - before.byte_count == len(FRAME)
        direct = [d async for d in sw.read(fy.P4DirectCounterEntry("route_hits"))]
        assert [d.data.packet_count for d in direct] == [1]


async def test_finsy_register_write_changes_forwarding(target):
    async with fy.Switch("sw", target.address, options(target)) as sw:
        await sw.delete_all()
        await sw.write([+route("10.1.0.0/16", 3)])
        await sw.write([~fy.P4RegisterEntry("blocked", index=2, data=1)])
        assert target.inject(2, FRAME) == []
        [cell] = [r async for r in sw.read(fy.P4RegisterEntry("blocked", index=2))]
        assert cell.data == 1
        await sw.write([~fy.P4RegisterEntry("blocked", index=2, data=0)])
        assert target.inject(2, FRAME) == [(3, FRAME)]


@pytest.mark.bmv2
async def test_finsy_receives_packet_in_with_metadata(target):
    async with fy.Switch("sw", target.address, options(target)) as sw:
        await sw.delete_all()
        await sw.write([+route("10.1.0.0/16", 64)])  # 64 is the CPU port
        packets = sw.read_packets()
        first = asyncio.ensure_future(packets.__anext__())
        for _ in range(5):  # let read_packets register its queue before the packet comes
            await asyncio.sleep(0)
        target.inject(5, FRAME)
        packet = await asyncio.wait_for(first, 5)
        assert packet.payload == FRAME
        assert packet.metadata["ingress_port"] == 5
        await packets.aclose()


async def test_finsy_packet_out_leaves_on_the_named_port(target):
    sent: list[tuple[int, bytes]] = []
    target.device.transmit = sent.extend
    async with fy.Switch("sw", target.address, options(target)) as sw:
        await sw.write([fy.P4PacketOut(FRAME, egress_port=6, _pad=0)])
        await eventually(lambda: sent == [(6, FRAME)])


@pytest.mark.bmv2
async def test_finsy_handover_to_a_higher_election_id(target):
    async with fy.Switch("one", target.address, options(target, initial_election_id=10)) as one:
        assert one.is_primary
        async with fy.Switch("two", target.address,
                             options(target, initial_election_id=20)) as two:
            await eventually(lambda: two.is_primary and not one.is_primary)
            with pytest.raises(fy.P4ClientError) as caught:
                await one.write([+route("10.7.0.0/16", 1)])
            assert caught.value.code == GRPCStatusCode.PERMISSION_DENIED
        await eventually(lambda: one.is_primary)  # two left: one takes over again
        await one.write([+route("10.7.0.0/16", 1)])
