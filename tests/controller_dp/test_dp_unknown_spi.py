"""ESP with an unknown SPI, end to end through the controller: a decrypt tunnel's CREATE writes
its esp_endpoints entry; ESP from the tunnel's peer with an SPI that is none of its SAs (never
was, or retired by a rekey) is dropped by the switch and shows in getIpTunnelStats as an
in-packet and an in-drop of that tunnel; ESP no decrypt tunnel's match claims is routed; a
restarted switch gets the entry back from reconciliation.

Run just these: .venv/bin/python -m pytest tests/controller_dp/test_dp_unknown_spi.py -q
"""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import grpc
import pytest
from ctl_builders import delete, ipsec_dec, match_ipv4, update_dec_sas
from ctl_client import create
from dp_support import P4INFO, PacketPort, eventually
from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import ESP
from scapy.layers.l2 import Ether

from controller.keys import parse_key
from controller.model import (
    Cipher,
    IpMatch,
    IpsecDecrypt,
    Match,
    NextAction,
    Prefix,
    SecurityAssociation,
    Tunnel,
    TunnelMode,
)
from controller.pipeline import (
    DECRYPT,
    DROP_UNKNOWN_SPI,
    ESP_ENDPOINTS,
    TUNNEL_RULES,
    Pipeline,
    PipelineMismatch,
)
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


def _decrypt(match: Match, *spis: int) -> Tunnel:
    # parse_key: the key wrapper whatever its class is called (main renamed SaKey to SaKey).
    sas = tuple(SecurityAssociation(spi=spi, secret=parse_key(
        bytes([spi % 250 + 1]) * 36, key_len=32, salt_len=4, cipher_name="aes256gcm64",
        field="test")) for spi in spis)
    return Tunnel(tunnel_id=9, match=match, next_action=NextAction.FORWARD,
                  body=IpsecDecrypt(mode=TunnelMode.TRANSPORT, cipher=Cipher.AES256_GCM64,
                                    sas=sas))


def test_a_decrypt_tunnel_has_one_end_point_with_its_match_less_the_spi() -> None:
    pipeline = Pipeline.load(P4INFO)
    peer = Match(ip=IpMatch(version=4, source=Prefix(address=IPv4Address(PEER), length=32)))
    for match in (peer, Match()):   # an empty decrypt match claims all ESP no rule takes
        entries = pipeline.rule_entries(_decrypt(match, 780, 781), tunnel_index=5,
                                        sa_indexes={780: 1, 781: 2}, tunnel_indexes={})
        *rules, endpoint = entries
        assert [rule.table_id for rule in rules] == [TUNNEL_RULES, TUNNEL_RULES]
        assert {rule.action.name for rule in rules} == {DECRYPT}
        assert endpoint.table_id == ESP_ENDPOINTS
        assert endpoint.action.name == DROP_UNKNOWN_SPI
        assert dict(endpoint.action.args) == {"tunnel_index": 5}
        outer = {name: value for name, value in dict(rules[0].match).items()
                 if name not in ("tunnel_header", "esp_spi")}
        assert dict(endpoint.match) == outer
        assert endpoint.priority == pipeline.priority(outer, 5) >= 1
    assert ESP_ENDPOINTS in pipeline.managed_tables()


def test_end_point_priorities_put_the_more_specific_match_first() -> None:
    pipeline = Pipeline.load(P4INFO)
    def endpoint(prefix: str, index: int):  # noqa: ANN202 - a finsy entry
        net = IPv4Network(prefix)
        match = Match(ip=IpMatch(version=4, destination=Prefix(
            address=net.network_address, length=net.prefixlen)))
        return pipeline.rule_entries(_decrypt(match, 780), tunnel_index=index,
                                     sa_indexes={780: 1}, tunnel_indexes={})[-1]
    assert endpoint("11.0.0.1/32", 9).priority > endpoint("11.0.0.0/24", 1).priority
    assert endpoint("11.0.0.0/24", 1).priority > endpoint("11.0.0.0/24", 2).priority


def test_a_p4info_without_room_for_every_end_point_is_refused(tmp_path: Path) -> None:
    text = P4INFO.read_text()
    start = text.index('name: "TunnelIngress.classifier.esp_endpoints"')
    end = text.index("  size: 65536\n", start)
    drifted = tmp_path / "drifted.p4info.txtpb"
    drifted.write_text(text[:end] + "  size: 1024\n" + text[end + len("  size: 65536\n"):])
    with pytest.raises(PipelineMismatch, match="'TunnelIngress.classifier.esp_endpoints' has "
                       "1024 entries; 65535 tunnels may all be decrypt tunnels"):
        Pipeline.load(drifted)


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


async def test_a_restarted_switch_gets_the_end_point_back(controller, v1, switch,
                                                          reader) -> None:
    from dp_support import wait_serving

    await create(v1, ipsec_dec(11, spi=780, match=match_ipv4(source=PEER)))
    [endpoint] = reader.entries("esp_endpoints")
    switch.restart()  # same addresses, empty tables and zero counters

    async def restored() -> bool:
        try:
            return reader.entries("esp_endpoints") == [endpoint]
        except grpc.RpcError:  # the switch is still starting
            return False

    await eventually(restored, timeout=30)
    await wait_serving(controller, timeout=30)
    port = PacketPort(switch.packet_url)
    try:
        port.send(1, esp_from(PEER, 999))
        assert port.receive(timeout=1.0) is None
    finally:
        port.close()

    async def dropped() -> bool:
        return (await stats(v1, 11)).inPacketsDrops == 1

    await eventually(dropped, timeout=5)
