"""ESP with an unknown SPI, end to end through the controller: a decrypt tunnel's CREATE writes
its esp_endpoints entry; ESP from the tunnel's peer with an SPI that is none of its SAs (never
was, or retired by a rekey) is dropped by the switch and shows in getIpTunnelStats as an
in-packet and an in-drop of that tunnel; ESP no decrypt tunnel's match claims is routed.

Run just these: .venv/bin/python -m pytest tests/controller_dp/test_dp_unknown_spi.py -q
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ctl_builders import delete, ipsec_dec, match_ipv4, update_dec_sas
from ctl_client import create
from dp_support import PacketPort, eventually
from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import ESP
from scapy.layers.l2 import Ether

from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

HOST_MACS = {"src": "02:00:00:00:00:aa", "dst": "02:00:00:00:00:bb"}
PEER, GATEWAY = "11.0.0.2", "11.0.0.1"


@pytest.fixture
def port(switch) -> Iterator[PacketPort]:
    packet_port = PacketPort(switch.packet_url)
    yield packet_port
    packet_port.close()


def esp_from(source: str, spi: int) -> bytes:
    return bytes(Ether(**HOST_MACS) / IP(src=source, dst=GATEWAY)
                 / UDP(sport=4500, dport=4500) / ESP(spi=spi, seq=1, data=b"\x55" * 40))


async def stats(v1, tunnel_id: int) -> pb.tunnelCounters:
    response = await v1.getIpTunnelStats(pb.tunnelId(tunnelId=tunnel_id), timeout=5)
    return response.tunnelCounters


async def test_unknown_spi_is_dropped_and_shows_in_the_tunnel_stats(controller, v1, port,
                                                                    reader) -> None:
    answer = await create(v1, ipsec_dec(9, spi=780, match=match_ipv4(source=PEER)))
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    [endpoint] = reader.entries("esp_endpoints")
    assert endpoint.action.name == "drop_unknown_spi"
    assert endpoint.action.args == {"tunnel_index": 1}
    assert endpoint.match["ipv4_src"][0] == int.from_bytes(bytes(map(int, PEER.split("."))),
                                                           "big")
    assert "esp_spi" not in endpoint.match

    forged = esp_from(PEER, 999)
    port.send(1, forged)
    assert port.receive(timeout=1.0) is None  # before: routed, still encrypted, on port 3

    async def dropped() -> bool:
        return (await stats(v1, 9)).inPacketsDrops == 1

    await eventually(dropped, timeout=5)
    counters = await stats(v1, 9)
    assert (counters.inPackets, counters.inBytes) == (1, len(forged))
    assert (counters.inPacketsDrops, counters.inBytesDrops) == (1, len(forged))
    assert counters.outPackets == counters.outPacketsDrops == 0

    # ESP from a peer no decrypt tunnel matches is not this switch's: routed as it is.
    transit = esp_from("11.0.0.9", 999)
    port.send(1, transit)
    received = port.receive()
    assert received is not None
    egress, out = received
    assert egress == 3 and Ether(out)[ESP].spi == 999  # the default route (conftest ROUTES)
    assert (await stats(v1, 9)).inPackets == 1

    answer = await create(v1, delete(9))
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    assert reader.entries("esp_endpoints") == []


async def test_spi_retired_by_a_rekey_is_an_unknown_spi(controller, v1, port, reader) -> None:
    await create(v1, ipsec_dec(10, spi=780, match=match_ipv4(source=PEER)))
    [endpoint] = reader.entries("esp_endpoints")
    answer = await create(v1, update_dec_sas(10, (781, pb._CREATE, b"ab" * 32)))
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    answer = await create(v1, update_dec_sas(10, (780, pb._DELETE, b"")))
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    assert reader.entries("esp_endpoints") == [endpoint]  # the rekey leaves it as it was

    port.send(1, esp_from(PEER, 780))  # the peer still sending on the old SA
    assert port.receive(timeout=1.0) is None

    async def dropped() -> bool:
        return (await stats(v1, 10)).inPacketsDrops == 1

    await eventually(dropped, timeout=5)
    assert (await stats(v1, 10)).inPackets == 1
