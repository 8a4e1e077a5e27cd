"""Request builders for the controller tests, written the way the reference client encodes
fields: IPv4 fixed32 = address bytes in network order, MACs as 12 hex characters, keys as 64
hex characters, Geneve optionLength counting the fixed header."""

from __future__ import annotations

import ipaddress
import os

from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb


def ip4(text: str) -> int:
    """fixed32 value for an IPv4 address: its network-order bytes read little-endian."""
    return int.from_bytes(ipaddress.IPv4Address(text).packed, "little")


def hex_key(size: int = 32) -> bytes:
    """A random key as ASCII hex text (the reference client's form for size 32)."""
    return os.urandom(size).hex().encode()


def match_ipv4(*, source: str | None = None, prefix: int = 32, tunnel_id: int = 0,
               spi: int = 0, geneve_vni: int = 0) -> pb.MatchCriteria:
    match = pb.MatchCriteria()
    if source is not None:
        match.ipv4Match.sourceIp = ip4(source)
        match.ipv4Match.sourceIpPrefix = prefix
    if tunnel_id:
        match.tunnelId = tunnel_id
    if spi:
        match.ipsecMatch.spi = spi
    if geneve_vni:
        match.geneveMatch.vni = geneve_vni
    return match


def ipsec_dec(tunnel_id: int, *, spi: int = 780, key: bytes | None = None,
              mode: int = pb.TRANSPORT_NAT_TRAVERSAL, cipher: int = pb._aes256gcm64,
              match: pb.MatchCriteria | None = None,
              next_action: int = pb.RECIRCULATE) -> pb.ipTunnelRequest:
    request = pb.ipTunnelRequest(tunnelId=tunnel_id, operation=pb._CREATE,
                                 nextAction=next_action)
    request.match_criteria.CopyFrom(match if match is not None
                                    else match_ipv4(source="11.0.0.2"))
    dec = request.ipsecTunnel.ipsecDec
    dec.tunnelType = mode
    dec.encryptionType = cipher
    dec.ipsecSAs.add(spi=spi, encryptionKey=key if key is not None else hex_key(),
                     operation=pb._CREATE)
    return request


def ipsec_enc(tunnel_id: int, *, spi: int = 4587, key: bytes | None = None,
              mode: int = pb.TUNNEL_NAT_TRAVERSAL, cipher: int = pb._aes256gcm64,
              outer: tuple[str, str] | None = ("11.0.0.2", "11.0.0.1"),
              match: pb.MatchCriteria | None = None,
              next_action: int = pb.FORWARD) -> pb.ipTunnelRequest:
    request = pb.ipTunnelRequest(tunnelId=tunnel_id, operation=pb._CREATE,
                                 nextAction=next_action)
    request.match_criteria.CopyFrom(match if match is not None
                                    else match_ipv4(source="10.0.0.1"))
    enc = request.ipsecTunnel.ipsecEnc
    enc.tunnelType = mode
    enc.encryptionType = cipher
    enc.ipsecSA.spi = spi
    enc.ipsecSA.encryptionKey = key if key is not None else hex_key()
    if outer is not None:
        enc.ipv4_tunnel.sourceIp = ip4(outer[0])
        enc.ipv4_tunnel.destinationIp = ip4(outer[1])
    return request


def geneve_encap(tunnel_id: int, *, match: pb.MatchCriteria | None = None, vni: int = 500,
                 outer: tuple[str, str] = ("5.5.5.5", "6.6.6.6"),
                 options: list[tuple[int, int, bytes]] | None = None,
                 option_length: int | None = None,
                 next_action: int = pb.FORWARD) -> pb.ipTunnelRequest:
    request = pb.ipTunnelRequest(tunnelId=tunnel_id, operation=pb._CREATE,
                                 nextAction=next_action)
    request.match_criteria.CopyFrom(match if match is not None
                                    else match_ipv4(source="192.0.2.1"))
    encap = request.geneve.geneveEncap
    encap.outerIpv4Pair.sourceIp = ip4(outer[0])
    encap.outerIpv4Pair.destinationIp = ip4(outer[1])
    encap.innerMacPair.sourceMac = b"102030405060"
    encap.innerMacPair.destinationMac = b"605040302010"
    encap.vni = vni
    if options is None:
        options = [(0x0104, 0x11, bytes.fromhex("10203040"))]
    words = 0
    for option_class, option_type, data in options:
        encap.geneveOption.add(optionClass=option_class, type=option_type,
                               length=len(data) // 4, data=data)
        words += 1 + len(data) // 4
    encap.optionLength = option_length if option_length is not None else words + 2
    return request


def geneve_decap(tunnel_id: int, *, match: pb.MatchCriteria | None = None,
                 next_action: int = pb.RECIRCULATE) -> pb.ipTunnelRequest:
    request = pb.ipTunnelRequest(tunnelId=tunnel_id, operation=pb._CREATE,
                                 nextAction=next_action)
    request.match_criteria.CopyFrom(match if match is not None
                                    else match_ipv4(source="11.0.0.2", geneve_vni=500))
    request.geneve.geneveDecap.SetInParent()
    return request


def delete(tunnel_id: int) -> pb.ipTunnelRequest:
    return pb.ipTunnelRequest(tunnelId=tunnel_id, operation=pb._DELETE)


def update_enc_sa(tunnel_id: int, *, spi: int, key: bytes | None = None) -> pb.ipTunnelRequest:
    request = pb.ipTunnelRequest(tunnelId=tunnel_id, operation=pb._UPDATE)
    request.ipsecTunnel.ipsecEnc.ipsecSA.spi = spi
    request.ipsecTunnel.ipsecEnc.ipsecSA.encryptionKey = key if key is not None else hex_key()
    return request


def update_dec_sas(tunnel_id: int, *sas: tuple[int, int, bytes]) -> pb.ipTunnelRequest:
    """sas: (spi, operation, key) — key may be b"" for _DELETE."""
    request = pb.ipTunnelRequest(tunnelId=tunnel_id, operation=pb._UPDATE)
    for spi, operation, key in sas:
        request.ipsecTunnel.ipsecDec.ipsecSAs.add(spi=spi, operation=operation,
                                                  encryptionKey=key)
    return request
