"""Each API call becomes P4Runtime writes and worker SAs: read both back after every call."""

from __future__ import annotations

from ipaddress import IPv4Address

from ctl_builders import (
    delete,
    geneve_decap,
    geneve_encap,
    ipsec_dec,
    ipsec_enc,
    match_ipv4,
    update_dec_sas,
    update_enc_sa,
)
from ctl_client import create
from dp_support import PacketPort, worker_sas
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from tunneloffload.crypto.v1 import worker_pb2 as wpb
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb


def rules_by_index(reader) -> dict[int, list]:
    """tunnel_rules entries grouped by the tunnel_index action parameter."""
    grouped: dict[int, list] = {}
    for entry in reader.entries("tunnel_rules"):
        grouped.setdefault(entry.action.args["tunnel_index"], []).append(entry)
    return grouped


async def test_routes_file_fills_the_forwarding_tables(controller, reader) -> None:
    v4 = {tuple((e.match or {}).get("ipv4_dst", (0, 0))): e.action.args
          for e in reader.entries("routes_v4")}
    assert v4 == {
        (0, 0): {"port": 3, "src_mac": 0x020000000001, "dst_mac": 0x020000000103},
        (int(IPv4Address("6.6.6.0")), 24): {"port": 2, "src_mac": 0x020000000001,
                                             "dst_mac": 0x020000000102},
    }
    [v6] = reader.entries("routes_v6")
    assert v6.match["ipv6_dst"][1] == 32 and v6.action.args["port"] == 2


async def test_geneve_encap_is_one_rule_with_the_option_region(controller, v1, reader,
                                                              worker) -> None:
    answer = await create(v1, geneve_encap(10, vni=0x1234,
                                           options=[(0x0104, 0x11, bytes.fromhex("10203040"))]))
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    [rule] = reader.entries("tunnel_rules")
    args = rule.action.args
    assert rule.action.name == "encap_geneve_v4"
    assert rule.match == {"ip_version": (4, 0xF),
                          "ipv4_src": (int(IPv4Address("192.0.2.1")), 0xFFFFFFFF)}
    assert args["tunnel_index"] == 1 and args["next_action"] == 1
    assert args["src_addr"] == int(IPv4Address("5.5.5.5"))
    assert args["dst_addr"] == int(IPv4Address("6.6.6.6"))
    assert args["vni"] == 0x1234 and args["oam"] == 0 and args["critical"] == 0
    assert args["inner_dst_mac"] == 0x605040302010 and args["inner_src_mac"] == 0x102030405060
    # One option: header word class 0x0104, type 0x11, length 1, then its data, left-aligned.
    assert args["option_words"] == 2
    assert args["options"] == int.from_bytes(
        bytes.fromhex("01041101" "10203040").ljust(80, b"\0"), "big")
    assert reader.entries("decrypt_sas") == [] and worker_sas(worker.socket) == {}


async def test_ipsec_tunnels_get_sa_indices_on_switch_and_worker(controller, v1, reader,
                                                                worker) -> None:
    answer = await create(v1, ipsec_dec(20, spi=780), ipsec_enc(21, spi=4587))
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    rules = rules_by_index(reader)
    [decrypt] = rules[1]
    assert decrypt.action.name == "ipsec_decrypt"
    assert decrypt.action.args == {"tunnel_index": 1, "next_action": 2, "tunnel_mode": 0}
    assert decrypt.match["tunnel_header"] == (1, 3) and decrypt.match["esp_spi"][0] == 780
    [encrypt] = rules[2]
    assert encrypt.action.name == "ipsec_encrypt_tunnel_v4"
    assert encrypt.action.args == {
        "tunnel_index": 2, "next_action": 1, "sa_index": 2, "spi": 4587, "nat_t": 1,
        "src_addr": int(IPv4Address("11.0.0.2")), "dst_addr": int(IPv4Address("11.0.0.1"))}
    [sa_entry] = reader.entries("decrypt_sas")
    assert sa_entry.match == {"tunnel_index": 1, "spi": 780}
    assert sa_entry.action.args == {"sa_index": 1}
    sas = worker_sas(worker.socket)
    assert {index: (p.spi, p.direction, p.mode, p.nat_traversal, p.cipher)
            for index, p in sas.items()} == {
        1: (780, wpb.DIRECTION_DECRYPT, wpb.MODE_TRANSPORT, True, wpb.CIPHER_AES256_GCM_ICV8),
        2: (4587, wpb.DIRECTION_ENCRYPT, wpb.MODE_TUNNEL, True, wpb.CIPHER_AES256_GCM_ICV8)}

    answer = await create(v1, delete(20), delete(21))
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    assert reader.entries("tunnel_rules") == [] and reader.entries("decrypt_sas") == []
    assert worker_sas(worker.socket) == {}


async def test_priorities_put_chained_rules_and_longer_prefixes_first(controller, v1,
                                                                     reader) -> None:
    answer = await create(
        v1,
        geneve_decap(30),                                                      # index 1
        geneve_encap(31, match=match_ipv4(source="10.0.0.0", prefix=8)),       # index 2
        geneve_encap(32, match=match_ipv4(source="10.1.0.0", prefix=16)),      # index 3
        geneve_encap(33, match=match_ipv4(source="10.0.0.0", prefix=8, tunnel_id=30)))
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    priority = {index: entries[0].priority for index, entries in rules_by_index(reader).items()}
    assert priority[4] > priority[3] > priority[2]
    [chained] = rules_by_index(reader)[4]
    assert chained.match["prev_tunnel"] == (1, 0xFFFF)


async def test_encrypt_rekey_repoints_the_rule_then_drops_the_old_sa(controller, v1, reader,
                                                                    worker) -> None:
    await create(v1, ipsec_enc(40, spi=4587))
    [before] = reader.entries("tunnel_rules")
    assert (before.action.args["sa_index"], before.action.args["spi"]) == (1, 4587)
    answer = await create(v1, update_enc_sa(40, spi=4590))
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    [after] = reader.entries("tunnel_rules")
    assert (after.action.args["sa_index"], after.action.args["spi"]) == (2, 4590)
    assert after.priority == before.priority and after.match == before.match
    assert {index: p.spi for index, p in worker_sas(worker.socket).items()} == {2: 4590}


async def test_decrypt_rekey_adds_beside_then_removes(controller, v1, reader, worker) -> None:
    await create(v1, ipsec_dec(50, spi=780))
    answer = await create(v1, update_dec_sas(50, (781, pb._CREATE, b"ab" * 32)))
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    assert sorted(e.match["esp_spi"][0] for e in reader.entries("tunnel_rules")) == [780, 781]
    assert sorted((e.match["spi"], e.action.args["sa_index"])
                  for e in reader.entries("decrypt_sas")) == [(780, 1), (781, 2)]
    assert {index: p.spi for index, p in worker_sas(worker.socket).items()} == {1: 780, 2: 781}
    answer = await create(v1, update_dec_sas(50, (780, pb._DELETE, b"")))
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    assert [e.match["esp_spi"][0] for e in reader.entries("tunnel_rules")] == [781]
    assert [(e.match["spi"], e.action.args["sa_index"])
            for e in reader.entries("decrypt_sas")] == [(781, 2)]
    assert {index: p.spi for index, p in worker_sas(worker.socket).items()} == {2: 781}


async def test_invalid_requests_leave_switch_and_worker_untouched(controller, v1, reader,
                                                                 worker) -> None:
    await create(v1, ipsec_dec(60, spi=780), geneve_encap(61))
    before, sas_before = reader.snapshot(), worker_sas(worker.socket)
    bad_vni = geneve_encap(62, vni=1 << 24)
    bad_key = ipsec_enc(63, key=b"short")
    taken_spi = ipsec_dec(64, spi=780)
    unknown_chain = geneve_encap(65, match=match_ipv4(source="10.0.0.1", tunnel_id=999))
    answer = await create(v1, bad_vni, bad_key, taken_spi, unknown_chain, delete(555))
    assert answer.requestStatus == pb._TUNNEL_REJECTED
    assert answer.errorStatus == 0b11111
    assert reader.snapshot() == before
    assert worker_sas(worker.socket).keys() == sas_before.keys()


async def test_update_of_the_match_replaces_the_rule(controller, v1, reader) -> None:
    await create(v1, geneve_encap(70))
    request = pb.ipTunnelRequest(tunnelId=70, operation=pb._UPDATE)
    request.match_criteria.CopyFrom(match_ipv4(source="198.51.100.7"))
    answer = await create(v1, request)
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    [rule] = reader.entries("tunnel_rules")
    assert rule.match["ipv4_src"] == (int(IPv4Address("198.51.100.7")), 0xFFFFFFFF)
    assert rule.action.args["tunnel_index"] == 1


async def test_many_tunnels_read_whole_counters_in_one_request(controller, v1, reader,
                                                               switch) -> None:
    requests = [geneve_encap(100 + i, match=match_ipv4(source=f"10.7.0.{i + 1}"))
                for i in range(20)]
    answer = await create(v1, *requests)
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED
    assert len(reader.entries("tunnel_rules")) == 20
    port = PacketPort(switch.packet_url)
    try:
        port.send(1, bytes(Ether() / IP(src="10.7.0.5", dst="10.9.9.9") / UDP()))
        assert port.receive() is not None
    finally:
        port.close()
    pages = [page async for page in v1.getAllIpTunnelsStats(
        pb.tunnelRequestArgs(tunnelsPerRequest=0), timeout=10)]
    [page] = pages
    assert [item.tunnelId for item in page.responses] == list(range(100, 120))
    assert [item.tunnelCounters.inPackets for item in page.responses] == [
        1 if item.tunnelId == 104 else 0 for item in page.responses]


async def test_a_used_encrypt_key_is_never_installed_again(controller, v1, reader,
                                                           worker) -> None:
    key = b"ab" * 32
    await create(v1, ipsec_enc(80, spi=4587, key=key))
    await create(v1, update_enc_sa(80, spi=4590))
    before, sas_before = reader.snapshot(), worker_sas(worker.socket)
    answer = await create(v1, update_enc_sa(80, spi=4587, key=key))  # back to the old SA
    _assert_key_refused(answer, "spi 4587", "retired key")
    assert reader.snapshot() == before
    assert worker_sas(worker.socket).keys() == sas_before.keys()
    # Another SPI does not help: the SPI is not part of the nonce.
    answer = await create(v1, update_enc_sa(80, spi=4600, key=key))
    _assert_key_refused(answer, "spi 4600", "retired key")
    # The same SPI with a fresh key is a new SA and fine.
    answer = await create(v1, update_enc_sa(80, spi=4587, key=b"cd" * 32))
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED


async def test_ipv6_vxlan_port_and_mac_matches_reach_the_switch(controller, v1, reader) -> None:
    from ipaddress import IPv6Address

    request = geneve_encap(90)
    match = request.match_criteria
    match.Clear()
    match.ingressInterface = "5"
    match.macMatch.destinationMac = bytes.fromhex("020000000001")
    match.ipv6Match.destinationIp = IPv6Address("2001:db8:1::").packed
    match.ipv6Match.destinationIpPrefix = 48
    match.vxlanMatch.vni = 77
    match.vxlanMatch.ipv4Match.sourceIp = int.from_bytes(
        IPv4Address("10.2.0.0").packed, "little")
    match.vxlanMatch.ipv4Match.sourceIpPrefix = 16
    encap = request.geneve.geneveEncap
    encap.outerIpv6Pair.sourceIp = IPv6Address("2001:db8::5").packed
    encap.outerIpv6Pair.destinationIp = IPv6Address("2001:db8::6").packed
    answer = await create(v1, request)
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    [rule] = reader.entries("tunnel_rules")
    assert rule.match == {
        "ingress_port": (5, 0x1FF),
        "dst_mac": (0x020000000001, (1 << 48) - 1),
        "ip_version": (6, 0xF),
        "ipv6_dst": (int(IPv6Address("2001:db8:1::")), ((1 << 48) - 1) << 80),
        "tunnel_header": (3, 3),
        "vxlan_vni": (77, (1 << 24) - 1),
        "inner_ip_version": (4, 0xF),
        "inner_ipv4_src": (int(IPv4Address("10.2.0.0")), 0xFFFF0000),
    }
    assert rule.action.name == "encap_geneve_v6"
    assert rule.action.args["src_addr"] == int(IPv6Address("2001:db8::5"))
    assert rule.action.args["dst_addr"] == int(IPv6Address("2001:db8::6"))


async def test_one_encrypt_key_never_numbers_packets_twice(controller, v1, reader,
                                                           worker) -> None:
    key = b"ef" * 32
    await create(v1, ipsec_enc(85, spi=4587, key=key))
    before, sas_before = reader.snapshot(), worker_sas(worker.socket)
    twin = ipsec_enc(86, spi=4999, key=key, match=match_ipv4(source="10.0.0.9"))
    change_mode = pb.ipTunnelRequest(tunnelId=85, operation=pb._UPDATE)
    change_mode.ipsecTunnel.ipsecEnc.tunnelType = pb.TUNNEL  # NAT-T off, same SA
    answer = await create(v1, twin)
    _assert_key_refused(answer, "spi 4999", "in use by the encrypt SA spi 4587 of tunnel 85")
    answer = await create(v1, change_mode)
    _assert_key_refused(answer, "spi 4587", "this tunnel's current encrypt SA spi 4587")
    assert reader.snapshot() == before
    assert worker_sas(worker.socket).keys() == sas_before.keys()


def _assert_key_refused(answer: pb.createIpTunnelResponses, *phrases: str) -> None:
    """A reused key is the client's mistake: REJECTED with ipsecError invalidKey and a string
    naming the key field and the SPI — never TABLE_UNAVAILABLE."""
    assert answer.requestStatus == pb._TUNNEL_REJECTED, answer
    error = answer.responses[0].error
    # (ipsecError invalidKey is 0, proto3's default: the string carries the distinction.)
    assert error.errorString.startswith("ipsecTunnel.ipsecEnc.ipsecSA.encryptionKey: ")
    for phrase in phrases:
        assert phrase in error.errorString, error.errorString
