"""Every validation rule over the real server (v1alpha1 over TLS): the API enum, an errorString
naming the field and the bad value, and a state that reads back exactly as before.

Run just this file: .venv/bin/python -m pytest tests/controller/test_controller_validation.py -q
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ctl_builders import (
    delete,
    geneve_decap,
    geneve_encap,
    hex_key,
    ip4,
    ipsec_dec,
    ipsec_enc,
    match_ipv4,
    update_dec_sas,
    update_enc_sa,
)
from ctl_client import all_tunnels, create

from controller.capabilities import Capabilities
from controller.model import Cipher, TunnelMode
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

# The base state every case starts from: decrypt 100 (spi 780) → Geneve encap 101 chained from
# it, Geneve decap 102, encrypt 103.
BASE = [
    ipsec_dec(100, spi=780),
    geneve_encap(101, match=match_ipv4(tunnel_id=100)),
    geneve_decap(102),
    ipsec_enc(103, spi=4587),
]

Builder = Callable[[], pb.ipTunnelRequest]


def _with(request: pb.ipTunnelRequest, mutate: Callable[[pb.ipTunnelRequest], object]
          ) -> pb.ipTunnelRequest:
    mutate(request)
    return request


def _options(count: int) -> pb.ipTunnelRequest:
    return geneve_encap(200, options=[(0x0104, 0x10 + i, b"\x00\x00\x00\x01")
                                      for i in range(count)])


def _v6_match(request: pb.ipTunnelRequest, address: bytes, prefix: int) -> None:
    request.match_criteria.ipv6Match.sourceIp = address
    request.match_criteria.ipv6Match.sourceIpPrefix = prefix


# (case id, request, tunnelAdditionError field, enum value, substrings of errorString)
CASES: list[tuple[str, Builder, str, int, tuple[str, ...]]] = [
    # MatchError.missingFields = 0
    ("operation-none", lambda: _with(geneve_encap(200), lambda r: setattr(r, "operation", 0)),
     "matchError", pb.missingFields, ("operation", "_NONE")),
    ("next-action-none", lambda: geneve_encap(200, next_action=pb.NONE),
     "matchError", pb.missingFields, ("nextAction", "NONE")),
    ("no-tunnel", lambda: _with(geneve_decap(200), lambda r: r.ClearField("geneve")),
     "matchError", pb.missingFields, ("tunnel", "ipsecTunnel, geneve, nat")),
    ("empty-match", lambda: _with(geneve_encap(200), lambda r: r.ClearField("match_criteria")),
     "matchError", pb.missingFields, ("match_criteria", "empty")),
    ("decap-without-geneve-match", lambda: geneve_decap(200, match=match_ipv4(tunnel_id=100)),
     "matchError", pb.missingFields, ("match_criteria.geneveMatch", "decap")),
    ("update-id-zero", lambda: update_enc_sa(0, spi=5000),
     "matchError", pb.missingFields, ("tunnelId", "0")),
    ("update-carries-nothing", lambda: pb.ipTunnelRequest(tunnelId=103, operation=pb._UPDATE),
     "matchError", pb.missingFields, ("103", "nothing to change")),
    # MatchError.invalidTunnelId = 1
    ("match-unknown-tunnel", lambda: geneve_encap(200, match=match_ipv4(tunnel_id=999)),
     "matchError", pb.invalidTunnelId, ("match_criteria.tunnelId", "999", "does not exist")),
    ("duplicate-id", lambda: geneve_encap(101),
     "matchError", pb.invalidTunnelId, ("tunnelId", "101", "already exists")),
    ("update-unknown", lambda: update_enc_sa(555, spi=5000),
     "matchError", pb.invalidTunnelId, ("tunnelId", "555", "does not exist")),
    ("delete-unknown", lambda: delete(556),
     "matchError", pb.invalidTunnelId, ("tunnelId", "556", "does not exist")),
    ("delete-chained-from", lambda: delete(100),
     "matchError", pb.invalidTunnelId, ("tunnelId", "100", "101")),
    ("chain-from-itself", lambda: geneve_encap(200, match=match_ipv4(tunnel_id=200)),
     "matchError", pb.invalidTunnelId, ("match_criteria.tunnelId", "200", "itself")),
    ("chain-loop", lambda: _with(pb.ipTunnelRequest(tunnelId=100, operation=pb._UPDATE),
                                 lambda r: r.match_criteria.CopyFrom(match_ipv4(tunnel_id=101))),
     "matchError", pb.invalidTunnelId, ("match_criteria.tunnelId", "loop", "100 → 101 → 100")),
    # MatchError.invalidCapabilities = 2
    ("esp-sequence-number", lambda: _with(ipsec_enc(200, spi=6000),
                                          lambda r: setattr(r.match_criteria.ipsecMatch, "sn", 7)),
     "matchError", pb.invalidCapabilities, ("match_criteria.ipsecMatch.sn", "7")),
    # MatchError.invalidField = 3
    ("mac-size", lambda: _with(geneve_encap(200), lambda r: setattr(
        r.match_criteria.macMatch, "sourceMac", b"1020304050")),
     "matchError", pb.invalidField, ("match_criteria.macMatch.sourceMac", "1020304050",
                                     "10 bytes")),
    ("ipv4-prefix-over-32", lambda: geneve_encap(200, match=match_ipv4(source="10.0.0.0",
                                                                       prefix=33)),
     "matchError", pb.invalidField, ("match_criteria.ipv4Match.sourceIpPrefix", "33")),
    ("ipv4-host-bits", lambda: geneve_encap(200, match=match_ipv4(source="10.1.2.3", prefix=8)),
     "matchError", pb.invalidField, ("sourceIp", "10.1.2.3/8", "10.0.0.0/8")),
    ("ipv6-size", lambda: _with(geneve_encap(200), lambda r: _v6_match(r, b"\x20\x01" * 4, 64)),
     "matchError", pb.invalidField, ("match_criteria.ipv6Match.sourceIp", "8 bytes")),
    ("ipv6-prefix-over-128", lambda: _with(geneve_encap(200), lambda r: _v6_match(
        r, b"20010db8000000000000000000000000", 129)),
     "matchError", pb.invalidField, ("match_criteria.ipv6Match.sourceIpPrefix", "129")),
    ("ingress-interface-name", lambda: _with(geneve_encap(200), lambda r: setattr(
        r.match_criteria, "ingressInterface", "eth0")),
     "matchError", pb.invalidField, ("match_criteria.ingressInterface", "eth0")),
    ("vxlan-vni-24-bits", lambda: _with(geneve_encap(200), lambda r: setattr(
        r.match_criteria.vxlanMatch, "vni", 1 << 24)),
     "matchError", pb.invalidField, ("match_criteria.vxlanMatch.vni", "16777216")),
    ("decrypt-spi-match-not-its-sa", lambda: ipsec_dec(200, spi=900, match=match_ipv4(spi=901)),
     "matchError", pb.invalidField, ("match_criteria.ipsecMatch.spi", "901", "900")),
    # TunnelError.notSupportedTunnel = 0
    ("nat", lambda: _with(pb.ipTunnelRequest(tunnelId=200, operation=pb._CREATE,
                                             nextAction=pb.FORWARD,
                                             match_criteria=match_ipv4(source="10.0.0.1")),
                          lambda r: setattr(r.nat, "sourceIp", ip4("1.2.3.4"))),
     "tunnelError", pb.notSupportedTunnel, ("nat", "not supported")),
    # IPSecError.invalidKey = 0
    ("key-wrong-size", lambda: ipsec_enc(200, spi=6000, key=b"\x01" * 30),
     "ipsecError", pb.invalidKey, ("ipsecTunnel.ipsecEnc.ipsecSA.encryptionKey", "30 bytes",
                                   "_aes256gcm64")),
    ("key-not-hex", lambda: ipsec_enc(200, spi=6000, key=b"zz" * 32),
     "ipsecError", pb.invalidKey, ("encryptionKey", "not all hex")),
    ("key-aes128-salted-for-aes256", lambda: ipsec_dec(200, spi=901, key=hex_key(20)),
     "ipsecError", pb.invalidKey, ("ipsecTunnel.ipsecDec.ipsecSAs[0].encryptionKey", "40 bytes")),
    ("key-all-zero", lambda: ipsec_enc(200, spi=6000, key=bytes(32)),
     "ipsecError", pb.invalidKey, ("encryptionKey", "all-zero")),
    # IPSecError.nonSupportedEncryption = 1
    ("cipher-unknown", lambda: ipsec_enc(200, spi=6000, cipher=99),
     "ipsecError", pb.nonSupportedEncryption, ("ipsecTunnel.ipsecEnc.encryptionType", "99")),
    # IPSecError.nonSupportedTunnelType = 2
    ("tunnel-type-unknown", lambda: ipsec_enc(200, spi=6000, mode=7),
     "ipsecError", pb.nonSupportedTunnelType, ("ipsecTunnel.ipsecEnc.tunnelType", "7")),
    # IPSecError.IPSecmissingFields = 3
    ("tunnel-mode-without-ips", lambda: ipsec_enc(200, spi=6000, mode=pb.TUNNEL, outer=None),
     "ipsecError", pb.IPSecmissingFields, ("ipsecTunnel.ipsecEnc", "TUNNEL", "ipv4_tunnel")),
    ("transport-with-ips", lambda: ipsec_enc(200, spi=6000, mode=pb.TRANSPORT),
     "ipsecError", pb.IPSecmissingFields, ("ipsecTunnel.ipsecEnc", "TRANSPORT")),
    ("encrypt-without-sa", lambda: _with(ipsec_enc(200),
                                         lambda r: r.ipsecTunnel.ipsecEnc.ClearField("ipsecSA")),
     "ipsecError", pb.IPSecmissingFields, ("ipsecTunnel.ipsecEnc.ipsecSA", "missing")),
    ("decrypt-without-sas", lambda: _with(ipsec_dec(200, spi=901),
                                          lambda r: r.ipsecTunnel.ipsecDec.ClearField("ipsecSAs")),
     "ipsecError", pb.IPSecmissingFields, ("ipsecTunnel.ipsecDec.ipsecSAs", "empty")),
    ("spi-reserved", lambda: ipsec_enc(200, spi=255),
     "ipsecError", pb.IPSecmissingFields, ("ipsecTunnel.ipsecEnc.ipsecSA.spi", "255")),
    ("decrypt-spi-taken", lambda: ipsec_dec(200, spi=780),
     "ipsecError", pb.IPSecmissingFields, ("ipsecSAs", "780", "100")),
    ("remove-last-sa", lambda: update_dec_sas(100, (780, pb._DELETE, b"")),
     "ipsecError", pb.IPSecmissingFields, ("ipsecSAs[0].spi", "780", "without an SA")),
    ("remove-unknown-sa", lambda: update_dec_sas(100, (781, pb._DELETE, b"")),
     "ipsecError", pb.IPSecmissingFields, ("ipsecSAs[0].spi", "781", "780")),
    ("add-existing-sa", lambda: update_dec_sas(100, (780, pb._CREATE, hex_key())),
     "ipsecError", pb.IPSecmissingFields, ("ipsecSAs[0].spi", "780", "already")),
    ("decrypt-sa-operation-none", lambda: update_dec_sas(100, (790, pb._NONE, hex_key())),
     "ipsecError", pb.IPSecmissingFields, ("ipsecSAs[0].operation", "_NONE")),
    # GeneveError.invalidOption = 0
    ("option-data-vs-length", lambda: _with(geneve_encap(200), lambda r: setattr(
        r.geneve.geneveEncap.geneveOption[0], "data", b"\x01\x02\x03")),
     "geneveError", pb.invalidOption, ("geneveOption[0].data", "3 bytes", "length 1")),
    ("option-too-long", lambda: geneve_encap(200, options=[(1, 2, bytes(20))]),
     "geneveError", pb.invalidOption, ("geneveOption[0].length", "5 words", "16 bytes")),
    ("option-class-16-bits", lambda: geneve_encap(200, options=[(0x10000, 2, bytes(4))]),
     "geneveError", pb.invalidOption, ("geneveOption[0].optionClass", "0x10000")),
    # GeneveError.tooManyOptions = 1
    ("five-options", lambda: _options(5),
     "geneveError", pb.tooManyOptions, ("geneve.geneveEncap.geneveOption", "5 options", "4")),
    # GeneveError.invalidGeneveField = 2
    ("encap-vni-24-bits", lambda: geneve_encap(200, vni=1 << 24),
     "geneveError", pb.invalidGeneveField, ("geneve.geneveEncap.vni", "16777216")),
    ("encap-protocol-not-ethernet", lambda: _with(geneve_encap(200), lambda r: setattr(
        r.geneve.geneveEncap, "protocolType", 0x0800)),
     "geneveError", pb.invalidGeneveField, ("geneve.geneveEncap.protocolType", "0x800",
                                             "0x6558")),
    ("match-vni-24-bits", lambda: geneve_decap(200, match=match_ipv4(geneve_vni=(1 << 24) + 5)),
     "geneveError", pb.invalidGeneveField, ("match_criteria.geneveMatch.vni", "16777221")),
    ("option-length-mismatch", lambda: geneve_encap(200, option_length=7),
     "geneveError", pb.invalidGeneveField, ("geneve.geneveEncap.optionLength", "7", "2")),
    ("critical-flag-mismatch", lambda: geneve_encap(200, options=[(1, 0x81, bytes(4))]),
     "geneveError", pb.invalidGeneveField, ("criticalOptionPresent", "false", "critical")),
    ("encap-without-outer", lambda: _with(geneve_encap(200), lambda r: r.geneve.geneveEncap
                                          .ClearField("outerIpv4Pair")),
     "geneveError", pb.invalidGeneveField, ("geneve.geneveEncap", "outerIpv4Pair")),
    ("inner-mac-size", lambda: _with(geneve_encap(200), lambda r: setattr(
        r.geneve.geneveEncap.innerMacPair, "sourceMac", b"12345")),
     "geneveError", pb.invalidGeneveField, ("geneve.geneveEncap.innerMacPair.sourceMac", "5")),
]


@pytest.mark.parametrize(("case", "build", "category", "value", "needles"), CASES,
                         ids=[case[0] for case in CASES])
async def test_invalid_request_is_refused_and_state_unchanged(
        v1, case: str, build: Builder, category: str, value: int,
        needles: tuple[str, ...]) -> None:
    assert (await create(v1, *BASE)).requestStatus == pb._TUNNEL_ACCEPTED
    before = [item.SerializeToString() for item in await all_tunnels(v1)]

    response = await create(v1, build())

    # A stream whose only failures are duplicate ids reports _TUNNEL_ALREADY_EXISTS.
    expected_status = (pb._TUNNEL_ALREADY_EXISTS if case == "duplicate-id"
                       else pb._TUNNEL_REJECTED)
    assert response.requestStatus == expected_status
    assert response.errorStatus == 1
    error = response.responses[0].error
    assert getattr(error.errorMessage, category) == value
    for needle in needles:
        assert needle in error.errorString, (needle, error.errorString)
    assert [item.SerializeToString() for item in await all_tunnels(v1)] == before


def test_every_error_enum_value_is_covered() -> None:
    covered = {(category, value) for _, _, category, value, _ in CASES}
    expected = {("matchError", v) for v in pb.MatchError.values()}
    expected |= {("tunnelError", v) for v in pb.TunnelError.values()}
    expected |= {("ipsecError", v) for v in pb.IPSecError.values()}
    expected |= {("geneveError", v) for v in pb.GeneveError.values()}
    assert expected <= covered


async def test_capabilities_restrict_matches_and_ciphers(start_controller) -> None:
    from ctl_client import tls_channel, wait_serving

    from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc

    caps = Capabilities(vxlan_matching=False,
                        ciphers=frozenset(c for c in Cipher if c.aead == "gcm"),
                        tunnel_modes=frozenset({TunnelMode.TUNNEL, TunnelMode.TRANSPORT}))
    controller = await start_controller(capabilities=caps)
    async with tls_channel(controller) as channel:
        await wait_serving(channel)
        stub = pb_grpc.ipTunnelServiceStub(channel)
        reported = await stub.Capabilities(pb.CapabilityRequest())
        assert not reported.matchCapabilities.vxlanMatching
        assert pb._aes256ccm64 not in reported.ipsecCapabilities.encryptionSupported

        vxlan = geneve_encap(200)
        vxlan.match_criteria.vxlanMatch.vni = 7
        ccm = ipsec_enc(201, spi=6000, cipher=pb._aes256ccm64, mode=pb.TUNNEL)
        response = await create(stub, vxlan, ccm)
        assert response.errorStatus == 0b11
        first, second = (item.error for item in response.responses)
        assert first.errorMessage.matchError == pb.invalidCapabilities
        assert "match_criteria.vxlanMatch" in first.errorString
        assert second.errorMessage.ipsecError == pb.nonSupportedEncryption
        assert "_aes256ccm64" in second.errorString
        nat_t = await create(stub, ipsec_enc(202, spi=6001, mode=pb.TUNNEL_NAT_TRAVERSAL))
        assert nat_t.responses[0].error.errorMessage.ipsecError == pb.nonSupportedTunnelType
        assert "TUNNEL_NAT_TRAVERSAL is not supported" in nat_t.responses[0].error.errorString
        assert list(reported.ipsecCapabilities.tunnelTypeSupported) == [pb.TRANSPORT, pb.TUNNEL]
        assert await all_tunnels(stub) == []
