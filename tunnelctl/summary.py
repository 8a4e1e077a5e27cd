"""One-line descriptions of a tunnel rule (kind, match, details) for ``list`` and ``graph``."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from tunnelctl import wire_values
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

__all__ = ["OuterIps", "describe_details", "describe_kind", "describe_match", "emitted_ipv4",
           "ipv4_match_covers", "next_action_name"]


@dataclass(frozen=True, kw_only=True)
class OuterIps:
    """The outer IPv4 addresses a tunnel puts on the packets it emits (dotted)."""

    source: str
    destination: str


def describe_kind(rule: pb.ipTunnelRequest) -> str:
    """``ipsec-encrypt``/``-decrypt``, ``geneve-encap``/``-decap``, ``nat`` or ``-``."""
    kind = rule.WhichOneof("tunnel")
    if kind == "ipsecTunnel":
        return {"ipsecEnc": "ipsec-encrypt", "ipsecDec": "ipsec-decrypt"}.get(
            rule.ipsecTunnel.WhichOneof("ipsec") or "", "ipsec")
    if kind == "geneve":
        return {"geneveEncap": "geneve-encap", "geneveDecap": "geneve-decap"}.get(
            rule.geneve.WhichOneof("encap_decap") or "", "geneve")
    return kind or "-"


def next_action_name(rule: pb.ipTunnelRequest) -> str:
    return str(pb.ACTION.Name(rule.nextAction))


def describe_match(rule: pb.ipTunnelRequest) -> str:
    """The match criteria in a few words; ``any`` for an all-wildcard match."""
    match = rule.match_criteria
    parts: list[str] = []
    if match.tunnelId:
        parts.append(f"after {match.tunnelId}")
    if match.ingressInterface:
        parts.append(f"in {match.ingressInterface}")
    ip_kind = match.WhichOneof("ip_match")
    if ip_kind == "ipv4Match":
        parts.append(_ipv4_match_text(match.ipv4Match))
    elif ip_kind == "ipv6Match":
        parts.append(_ipv6_match_text(match.ipv6Match))
    kind = match.WhichOneof("match")
    if kind == "ipsecMatch":
        parts.append(f"esp spi {match.ipsecMatch.spi}")
    elif kind == "geneveMatch":
        vni = match.geneveMatch.vni
        parts.append(f"geneve vni {vni}" if vni else "geneve any vni")
    elif kind == "vxlanMatch":
        vni = match.vxlanMatch.vni
        parts.append(f"vxlan vni {vni}" if vni else "vxlan any vni")
    return ", ".join(parts) or "any"


def describe_details(rule: pb.ipTunnelRequest) -> str:
    """What the tunnel does: mode, cipher, SPIs and outer addresses, or the Geneve header."""
    kind = describe_kind(rule)
    if kind == "ipsec-encrypt":
        enc = rule.ipsecTunnel.ipsecEnc
        text = (f"{pb.IPSecTunnelType.Name(enc.tunnelType)} {pb.ENC_TYPE.Name(enc.encryptionType)}"
                f" spi {enc.ipsecSA.spi}")
        outer = emitted_ipv4(rule)
        return f"{text} {outer.source}->{outer.destination}" if outer else text
    if kind == "ipsec-decrypt":
        dec = rule.ipsecTunnel.ipsecDec
        spis = ",".join(str(sa.spi) for sa in dec.ipsecSAs) or "-"
        return (f"{pb.IPSecTunnelType.Name(dec.tunnelType)} "
                f"{pb.ENC_TYPE.Name(dec.encryptionType)} spi {spis}")
    if kind == "geneve-encap":
        encap = rule.geneve.geneveEncap
        text = f"vni {encap.vni}"
        outer = emitted_ipv4(rule)
        if outer:
            text += f" {outer.source}->{outer.destination}"
        if encap.geneveOption:
            text += f" options {len(encap.geneveOption)}"
        return text
    if kind == "nat":
        return f"source {wire_values.decode_ipv4(rule.nat.sourceIp)}"
    return ""


def emitted_ipv4(rule: pb.ipTunnelRequest) -> OuterIps | None:
    """The outer IPv4 pair the tunnel writes, when it writes one (tunnel-mode ESP, Geneve)."""
    kind = describe_kind(rule)
    pair = None
    if kind == "ipsec-encrypt" and rule.ipsecTunnel.ipsecEnc.WhichOneof("tunnelIps") == \
            "ipv4_tunnel":
        pair = rule.ipsecTunnel.ipsecEnc.ipv4_tunnel
    elif kind == "geneve-encap" and rule.geneve.geneveEncap.WhichOneof("ip") == "outerIpv4Pair":
        pair = rule.geneve.geneveEncap.outerIpv4Pair
    if pair is None:
        return None
    return OuterIps(source=wire_values.decode_ipv4(pair.sourceIp),
                    destination=wire_values.decode_ipv4(pair.destinationIp))


def ipv4_match_covers(rule: pb.ipTunnelRequest, outer: OuterIps) -> bool:
    """Whether the rule's IPv4 match (wildcards included) accepts a packet with ``outer``'s IPs."""
    match = rule.match_criteria
    if match.WhichOneof("ip_match") != "ipv4Match":
        return False
    ipv4 = match.ipv4Match
    return (_covers(ipv4.sourceIp, ipv4.sourceIpPrefix, outer.source)
            and _covers(ipv4.destinationIp, ipv4.destinationIpPrefix, outer.destination))


def _covers(value: int, prefix: int, address: str) -> bool:
    if not value and not prefix:
        return True
    network = ipaddress.IPv4Network(f"{wire_values.decode_ipv4(value)}/{prefix}", strict=False)
    return ipaddress.IPv4Address(address) in network


def _ipv4_match_text(match: pb.IPV4Match) -> str:
    source = _prefix_text(wire_values.decode_ipv4(match.sourceIp), match.sourceIpPrefix,
                          bool(match.sourceIp))
    destination = _prefix_text(wire_values.decode_ipv4(match.destinationIp),
                               match.destinationIpPrefix, bool(match.destinationIp))
    return f"{source}->{destination}"


def _ipv6_match_text(match: pb.IPV6Match) -> str:
    source = _prefix_text(wire_values.decode_ipv6(match.sourceIp), match.sourceIpPrefix,
                          bool(match.sourceIp)) if match.sourceIp else "*"
    destination = _prefix_text(wire_values.decode_ipv6(match.destinationIp),
                               match.destinationIpPrefix, bool(match.destinationIp)) \
        if match.destinationIp else "*"
    return f"{source}->{destination}"


def _prefix_text(address: str, prefix: int, present: bool) -> str:
    if not present and not prefix:
        return "*"
    return f"{address}/{prefix}"
