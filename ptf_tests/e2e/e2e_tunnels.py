"""Tunnels of the end-to-end tests in the readable form of examples/*.yaml (tunnelctl's format:
dotted IPv4, colon MACs, hex keys and option data, enum names), so a test reads like the API
documents it. Keys are key ‖ salt hex text (docs/api.md "Keys"): TEST KEYS, published here.
"""

from __future__ import annotations

from typing import Any

from e2e_packets import Encap, EspSuite

Tunnel = dict[str, Any]

# Key ‖ salt for every suite the tests use; each SA gets its own (distinct keys per SPI).
KEYS = {
    "a": "7802f0c4bfa70e38ad4f2952c40a70623f1fe5f2efc5248616681301562bc60edba49859",
    "b": "b6cb9e6591e1445af3a4e39c624303842ad7fb994f9989c4b9bf3844d8a4d4633bc0fe64",
    "c": "a542e919ba27859b42dfc1a81b51ae1fc7a17aaa6bb129798b8905eeded38f9c62bcda72",
    "d": "8ac38b4e761b4771d49243fee00a290d0f94c7ecfe24fee82d749f92ae8acecaeb9b0e39",
    "e": "33158175d77dc89396c08c123478fc0f0f6da7b2921f0fcd86a14eceee25aabfca950bf3",
    "f": "ffe870e794927f62344f35cbe0309c07979a1646153d209093786613e872306ee1871bde",
}


def key_for(suite: EspSuite, name: str) -> str:
    """Key ‖ salt hex text of the right length for `suite`, taken from KEYS[name]."""
    return KEYS[name][: 2 * (suite.key_bytes + suite.salt_bytes)]


def ipv4_match(src: str | None = None, dst: str | None = None) -> dict[str, str]:
    match = {}
    if src:
        match["sourceIp"] = src if "/" in src else f"{src}/32"
    if dst:
        match["destinationIp"] = dst if "/" in dst else f"{dst}/32"
    return match


def ipv6_match(src: str | None = None, dst: str | None = None) -> dict[str, str]:
    match = {}
    if src:
        match["sourceIp"] = src if "/" in src else f"{src}/128"
    if dst:
        match["destinationIp"] = dst if "/" in dst else f"{dst}/128"
    return match


def decrypt(tunnel_id: int, *, match: dict[str, Any], suite: EspSuite, tunnel_type: str,
            sas: list[tuple[int, str]], next_action: str = "RECIRCULATE") -> Tunnel:
    """An IPsec decrypt tunnel with SAs [(spi, key hex)]."""
    return {"tunnelId": tunnel_id, "match_criteria": match, "nextAction": next_action,
            "ipsecTunnel": {"ipsecDec": {
                "tunnelType": tunnel_type, "encryptionType": suite.enc_type,
                "ipsecSAs": [{"spi": spi, "encryptionKey": key, "operation": "_CREATE"}
                             for spi, key in sas]}}}


def encrypt(tunnel_id: int, *, match: dict[str, Any], suite: EspSuite, tunnel_type: str,
            spi: int, key: str, outer: tuple[str, str] | None = None,
            next_action: str = "FORWARD") -> Tunnel:
    """An IPsec encrypt tunnel; `outer` (source, destination) in the TUNNEL types."""
    enc: dict[str, Any] = {"tunnelType": tunnel_type, "encryptionType": suite.enc_type,
                           "ipsecSA": {"spi": spi, "encryptionKey": key}}
    if outer:
        family = "ipv6_tunnel" if ":" in outer[0] else "ipv4_tunnel"
        enc[family] = {"sourceIp": outer[0], "destinationIp": outer[1]}
    return {"tunnelId": tunnel_id, "match_criteria": match, "nextAction": next_action,
            "ipsecTunnel": {"ipsecEnc": enc}}


def geneve_encap(tunnel_id: int, *, match: dict[str, Any], encap: Encap,
                 next_action: str = "FORWARD") -> Tunnel:
    return {"tunnelId": tunnel_id, "match_criteria": match, "nextAction": next_action,
            "geneve": {"geneveEncap": {
                "outerIpv4Pair": {"sourceIp": encap.src, "destinationIp": encap.dst},
                "innerMacPair": {"sourceMac": encap.inner_src_mac,
                                 "destinationMac": encap.inner_dst_mac},
                "vni": encap.vni,
                "geneveOption": [{"optionClass": o.classid, "type": o.type,
                                  "length": len(o.data) // 4, "data": o.data.hex()}
                                 for o in encap.options]}}}


def geneve_decap(tunnel_id: int, *, match: dict[str, Any],
                 next_action: str = "RECIRCULATE") -> Tunnel:
    return {"tunnelId": tunnel_id, "match_criteria": match, "nextAction": next_action,
            "geneve": {"geneveDecap": {}}}
