"""Reads: paging by tunnelsPerRequest, stats from the data plane, NOT_FOUND, canonical read-back,
UPDATE semantics as read back, and the v2 service on the same port with v2 stubs.

Run just this file: .venv/bin/python -m pytest tests/controller/test_controller_reads.py -q
"""

from __future__ import annotations

import grpc
import pytest
from ctl_builders import (
    geneve_encap,
    hex_key,
    ip4,
    ipsec_dec,
    ipsec_enc,
    match_ipv4,
    update_dec_sas,
    update_enc_sa,
)
from ctl_client import all_tunnels, create, tls_channel, wait_serving
from ctl_doubles import FailingDataPlane, RecordingDataPlane

from controller.dataplane import TunnelCounters
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc
from tunneloffload.v2 import tunneloffload_pb2 as pb2


async def _pages(call, size: int) -> list[list[int]]:
    return [[item.tunnelId for item in page.responses]
            async for page in call(pb.tunnelRequestArgs(tunnelsPerRequest=size))]


async def test_paging_by_tunnels_per_request(v1) -> None:
    assert await _pages(v1.getAllIpTunnels, 2) == [[]]
    await create(v1, *(geneve_encap(i, vni=i) for i in (5, 1, 4, 2, 3)))
    assert await _pages(v1.getAllIpTunnels, 2) == [[1, 2], [3, 4], [5]]
    assert await _pages(v1.getAllIpTunnels, 0) == [[1, 2, 3, 4, 5]]
    assert await _pages(v1.getAllIpTunnels, 10) == [[1, 2, 3, 4, 5]]
    assert await _pages(v1.getAllIpTunnelsStats, 3) == [[1, 2, 3], [4, 5]]
    assert await _pages(v1.getAllIpTunnelsStats, 0) == [[1, 2, 3, 4, 5]]


async def test_unknown_tunnel_is_not_found(v1) -> None:
    for call in (v1.getIpTunnel, v1.getIpTunnelStats):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call(pb.tunnelId(tunnelId=42))
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        assert "tunnelId 42 does not exist" in raised.value.details()


async def test_counters_are_zero_with_the_detached_data_plane(v1) -> None:
    await create(v1, geneve_encap(1))
    stats = await v1.getIpTunnelStats(pb.tunnelId(tunnelId=1))
    assert stats.tunnelId == 1
    assert stats.tunnelCounters == pb.counters()


async def test_counters_come_from_the_data_plane(start_controller) -> None:
    dataplane = RecordingDataPlane()
    dataplane.counters[1] = TunnelCounters(in_packets=3, out_packets=2, in_bytes=300,
                                           out_bytes=250, in_packets_drops=1, in_bytes_drops=90)
    controller = await start_controller(dataplane=dataplane)
    async with tls_channel(controller) as channel:
        await wait_serving(channel)
        stub = pb_grpc.ipTunnelServiceStub(channel)
        await create(stub, geneve_encap(1), geneve_encap(2, vni=2))
        stats = await stub.getIpTunnelStats(pb.tunnelId(tunnelId=1))
        assert (stats.tunnelCounters.inPackets, stats.tunnelCounters.outBytes,
                stats.tunnelCounters.inBytesDrops) == (3, 250, 90)
        full = await stub.getIpTunnel(pb.tunnelId(tunnelId=1))
        assert full.tunnelCounters.inPacketsDrops == 1
        [page] = [page async for page in stub.getAllIpTunnelsStats(pb.tunnelRequestArgs())]
        assert [item.tunnelCounters.inPackets for item in page.responses] == [3, 0]


async def test_counter_read_fault_is_unavailable(start_controller) -> None:
    controller = await start_controller(dataplane=FailingDataPlane(fail_reads=True))
    async with tls_channel(controller) as channel:
        await wait_serving(channel)
        stub = pb_grpc.ipTunnelServiceStub(channel)
        await create(stub, geneve_encap(1))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.getIpTunnelStats(pb.tunnelId(tunnelId=1))
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            [page async for page in stub.getAllIpTunnelsStats(pb.tunnelRequestArgs())]
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_read_back_is_canonical(v1) -> None:
    await create(v1, geneve_encap(1, match=match_ipv4(source="11.0.0.2")))
    tunnel = (await v1.getIpTunnel(pb.tunnelId(tunnelId=1))).ipTunnel
    assert tunnel.match_criteria.ipv4Match.sourceIp == 33554443  # 11.0.0.2, wire order
    encap = tunnel.geneve.geneveEncap
    assert encap.innerMacPair.sourceMac == bytes.fromhex("102030405060")
    assert encap.outerIpv4Pair.destinationIp == ip4("6.6.6.6")
    assert encap.optionLength == 2  # RFC 8926 words; the client sent 4 (fixed header counted)
    assert encap.protocolType == 0x6558
    assert [(o.optionClass, o.type, o.length, o.data) for o in encap.geneveOption] == [
        (0x0104, 0x11, 1, bytes.fromhex("10203040"))]


async def test_encrypt_update_swaps_sa_and_keeps_the_rest(v1) -> None:
    await create(v1, ipsec_enc(1, spi=4587, mode=pb.TUNNEL_NAT_TRAVERSAL,
                               cipher=pb._aes128gcm128, key=hex_key(16)))
    wrong = await create(v1, update_enc_sa(1, spi=4590))  # 64 hex chars: not an AES-128 key
    assert wrong.responses[0].error.errorMessage.ipsecError == pb.invalidKey
    assert (await create(v1, update_enc_sa(1, spi=4590, key=hex_key(20)))).errorStatus == 0
    enc = (await v1.getIpTunnel(pb.tunnelId(tunnelId=1))).ipTunnel.ipsecTunnel.ipsecEnc
    assert enc.ipsecSA.spi == 4590
    assert enc.tunnelType == pb.TUNNEL_NAT_TRAVERSAL
    assert enc.encryptionType == pb._aes128gcm128
    assert (enc.ipv4_tunnel.sourceIp, enc.ipv4_tunnel.destinationIp) == (ip4("11.0.0.2"),
                                                                         ip4("11.0.0.1"))


async def test_decrypt_update_adds_and_removes_sas(v1) -> None:
    await create(v1, ipsec_dec(1, spi=780))
    await create(v1, update_dec_sas(1, (1030, pb._CREATE, hex_key()),
                                    (1031, pb._CREATE, hex_key())))
    await create(v1, update_dec_sas(1, (780, pb._DELETE, b""), (1031, pb._DELETE, b"")))
    dec = (await v1.getIpTunnel(pb.tunnelId(tunnelId=1))).ipTunnel.ipsecTunnel.ipsecDec
    assert [sa.spi for sa in dec.ipsecSAs] == [1030]
    assert dec.tunnelType == pb.TRANSPORT_NAT_TRAVERSAL


async def test_v2_service_on_the_same_port(v1, v2) -> None:
    caps = await v2.Capabilities(pb2.CapabilityRequest())
    assert caps.geneve_capabilities.number_geneve_options_supported == 4
    assert set(caps.ipsec_capabilities.encryption_supported) == set(pb2.EncType.values())
    assert set(caps.ipsec_capabilities.tunnel_type_supported) == set(
        pb2.IPSecTunnelType.values())
    assert caps.match_capabilities.spi_matching and caps.match_capabilities.tunnel_matching

    request = pb2.IpTunnelRequest(tunnel_id=9, operation=pb2._CREATE, next_action=pb2.FORWARD)
    request.match_criteria.ipv4_match.source_ip = ip4("11.0.0.1")
    request.match_criteria.ipv4_match.source_ip_prefix = 32
    enc = request.ipsec_tunnel.ipsec_enc
    enc.tunnel_type = pb2.TUNNEL
    enc.encryption_type = pb2._AES256CCM128
    enc.ipsec_sa.spi = 7000
    enc.ipsec_sa.encryption_key = bytes(range(1, 36))  # raw AES-256 key + 3-byte CCM salt
    enc.ipv6_tunnel.source_ip = bytes.fromhex("20010db8000000000000000000000001")
    enc.ipv6_tunnel.destination_ip = b"20010db8000000000000000000000002"  # hex text form
    bad = pb2.IpTunnelRequest(tunnel_id=10, operation=pb2._CREATE, next_action=pb2.FORWARD)
    bad.nat.source_ip = 1
    response = await v2.CreateIpTunnel(iter([request, bad]))
    assert response.request_status == pb2._TUNNEL_REJECTED
    assert response.error_status == 0b10
    assert response.responses[1].error.error_message.tunnel_error == pb2.NOT_SUPPORTED_TUNNEL
    assert "nat" in response.responses[1].error.error_string

    got = await v2.GetIpTunnel(pb2.TunnelId(tunnel_id=9))
    assert got.ip_tunnel.ipsec_tunnel.ipsec_enc.encryption_type == pb2._AES256CCM128
    assert got.ip_tunnel.ipsec_tunnel.ipsec_enc.ipv6_tunnel.destination_ip == bytes.fromhex(
        "20010db8000000000000000000000002")
    assert got.ip_tunnel.ipsec_tunnel.ipsec_enc.ipsec_sa.encryption_key == b""
    pages = [page async for page in v2.GetAllIpTunnels(pb2.TunnelRequestArgs())]
    assert [item.tunnel_id for item in pages[0].responses] == [9]
    stats = [page async for page in v2.GetAllIpTunnelsStats(
        pb2.TunnelRequestArgs(tunnels_per_request=1))]
    assert [[item.tunnel_id for item in page.responses] for page in stats] == [[9]]
    assert (await v2.GetIpTunnelStats(pb2.TunnelId(tunnel_id=9))).tunnel_id == 9
    # One implementation: what v2 created, v1alpha1 reads.
    assert [item.tunnelId for item in await all_tunnels(v1)] == [9]
