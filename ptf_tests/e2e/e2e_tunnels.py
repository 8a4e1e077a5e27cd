"""Tunnels of the end-to-end tests in the readable form of examples/*.yaml (tunnelctl's format:
dotted IPv4, colon MACs, hex keys and option data, enum names), so a test reads like the API
documents it. Keys are key ‖ salt hex text (docs/api.md "Keys"), derived from public text: TEST
KEYS only.
"""

from __future__ import annotations

import hashlib
from typing import Any

from e2e_packets import Encap, EspSuite

Tunnel = dict[str, Any]

def key_of(suite: EspSuite, spi: int, *, variant: int = 0) -> str:
    """Key ‖ salt hex text for `suite`, derived from the SPI: every SA of the suite has its own
    key, so no (SPI, key) pair is ever installed twice (the controller refuses to reinstall a
    used encrypt SA: its sequence numbers would restart under the same key). `variant` gives
    another key for the same SPI (a peer with the wrong key)."""
    seed = f"tunnel-offload e2e test key {suite.enc_type} {spi} {variant}".encode()
    return hashlib.sha512(seed).digest()[: suite.key_bytes + suite.salt_bytes].hex()


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
                "outerIpv6Pair" if ":" in encap.src else "outerIpv4Pair": {
                    "sourceIp": encap.src, "destinationIp": encap.dst},
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
