"""Packets of the end-to-end tests, built with scapy from the documented behaviour
(docs/dataplane.md, docs/crypto-worker.md), never from the P4 source or the controller.

Expected packets are transforms of a copy of the sent packet. ESP is the one place where the
output cannot be written down without the key: the expected frame is scapy's own encryption of
the expected plaintext with the same SA, sequence number and IV (the worker's IV is the 64-bit
sequence number, docs/crypto-worker.md), and the received frame is also decrypted with scapy's
`SecurityAssociation` and its inner packet compared, so a difference in either the headers or the
plaintext fails.

The Geneve source-port hash and the P4 constants come from the data-plane suite's helpers
(`ptf_tests/dataplane`, on PTF's --pypath), which compute them independently of the P4 source.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from e2e_topology import HOST_MAC, SWITCH_MAC, next_hop_mac, router_mac
from p4_constants import C
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from tunnel_packets import GENEVE, GeneveOptions, geneve_source_port

__all__ = ["GENEVE", "GeneveOptions", "EspSuite", "SUITES", "Encap", "rebuilt", "routed",
           "udp_packet", "geneve_encapped", "geneve_packet", "esp_sa", "esp_frame",
           "expected_esp", "decrypt"]

NAT_T_PORT = 4500
GENEVE_PORT = 6081


@dataclass(frozen=True, kw_only=True)
class EspSuite:
    """One API ENC_TYPE as scapy spells it (scapy 2.8's AES-GCM makes only 16-byte ICVs; its
    AES-CCM takes 8, 12 or 16)."""

    enc_type: str       # the API's name, e.g. "_aes256gcm128"
    scapy_algo: str     # "AES-GCM" or "AES-CCM"
    key_bytes: int      # AES key length
    salt_bytes: int     # 4 (GCM, RFC 4106) or 3 (CCM, RFC 4309)
    icv_bytes: int


SUITES = {
    "_aes256gcm128": EspSuite(enc_type="_aes256gcm128", scapy_algo="AES-GCM", key_bytes=32,
                              salt_bytes=4, icv_bytes=16),
    "_aes128gcm128": EspSuite(enc_type="_aes128gcm128", scapy_algo="AES-GCM", key_bytes=16,
                              salt_bytes=4, icv_bytes=16),
    "_aes256ccm64": EspSuite(enc_type="_aes256ccm64", scapy_algo="AES-CCM", key_bytes=32,
                             salt_bytes=3, icv_bytes=8),
    "_aes128ccm96": EspSuite(enc_type="_aes128ccm96", scapy_algo="AES-CCM", key_bytes=16,
                             salt_bytes=3, icv_bytes=12),
}


@dataclass(frozen=True, kw_only=True)
class Encap:
    """A Geneve encapsulation as a rule asks for it."""

    src: str
    dst: str
    vni: int
    inner_src_mac: str
    inner_dst_mac: str
    options: tuple[GeneveOptions, ...] = ()


def rebuilt(frame: Packet) -> Packet:
    """The frame parsed back from its bytes, so lengths and checksums are filled in."""
    return frame.__class__(bytes(frame))


def routed(frame: Packet, port: int) -> Ether:
    """`frame` as Forwarding emits it towards `port`'s next hop: its MACs, nothing else."""
    out = Ether(bytes(frame))
    out.dst, out.src = next_hop_mac(port), router_mac(port)
    return out


def udp_packet(src: str, dst: str, *, sport: int = 40000, dport: int = 5001,
               payload: bytes = b"e2e-payload-" * 4, ident: int = 1) -> Ether:
    """A plain IPv4/UDP frame from the host to the switch."""
    return rebuilt(Ether(dst=SWITCH_MAC, src=HOST_MAC) / IP(src=src, dst=dst, id=ident)
                   / UDP(sport=sport, dport=dport) / Raw(payload))


def udp6_packet(src: str, dst: str, *, sport: int = 40000, dport: int = 5001,
                payload: bytes = b"e2e-payload-v6-" * 4) -> Ether:
    """A plain IPv6/UDP frame from the host to the switch."""
    return rebuilt(Ether(dst=SWITCH_MAC, src=HOST_MAC) / IPv6(src=src, dst=dst)
                   / UDP(sport=sport, dport=dport) / Raw(payload))


def ip_layer(frame: Packet) -> Packet:
    """The outermost IP packet (IPv4 or IPv6) of an Ethernet frame, as a packet of its own."""
    payload = Ether(bytes(frame)).payload
    return payload.__class__(bytes(payload))


def geneve_encapped(inner: Ether, encap: Encap) -> Ether:
    """`inner` with the rule's inner MACs behind outer Ether / IPv4 (TTL 64, DF, id 0) or IPv6
    (hop limit 64) / UDP (entropy source port, checksum 0) / Geneve, before routing (outer MACs
    zero)."""
    frame = Ether(bytes(inner))
    frame.dst, frame.src = encap.inner_dst_mac, encap.inner_src_mac
    ip = frame[IPv6] if isinstance(frame.payload, IPv6) else frame[IP]
    l4 = frame[UDP] if UDP in frame else frame[TCP] if TCP in frame else None
    sport = geneve_source_port(src=int(ipaddress.ip_address(ip.src)),
                               dst=int(ipaddress.ip_address(ip.dst)),
                               protocol=ip.nh if isinstance(ip, IPv6) else ip.proto,
                               sport=l4.sport if l4 else 0, dport=l4.dport if l4 else 0,
                               base=C("GENEVE_SRC_PORT_BASE"), span=C("GENEVE_SRC_PORT_RANGE"))
    outer: Packet = (IPv6(src=encap.src, dst=encap.dst, hlim=64, tc=0, fl=0)
                     if ":" in encap.src else
                     IP(src=encap.src, dst=encap.dst, ttl=64, id=0, flags="DF"))
    return rebuilt(Ether(dst="00:00:00:00:00:00", src="00:00:00:00:00:00") / outer
                   / UDP(sport=sport, dport=GENEVE_PORT, chksum=0)
                   / GENEVE(vni=encap.vni, proto=0x6558, options=list(encap.options)) / frame)


def geneve_packet(src: str, dst: str, vni: int, inner: Ether, *, sport: int = 49999) -> Ether:
    """A Geneve frame (IPv4 or IPv6 outer, as the addresses are) from the host to the switch
    carrying `inner`."""
    outer: Packet = IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst, id=3)
    return rebuilt(Ether(dst=SWITCH_MAC, src=HOST_MAC) / outer
                   / UDP(sport=sport, dport=GENEVE_PORT, chksum=0)
                   / GENEVE(vni=vni, proto=0x6558) / inner)


def esp_sa(suite: EspSuite, *, spi: int, key_hex: str, tunnel: tuple[str, str] | None = None,
           nat_t: bool = False) -> SecurityAssociation:
    """scapy's SA for a tunnel of the API: `key_hex` is the API's key ‖ salt hex text; tunnel
    mode with the outer header P4 builds (TTL 64, DF, id 0)."""
    key = bytes.fromhex(key_hex)
    assert len(key) == suite.key_bytes + suite.salt_bytes, "give the key with its salt"
    header: Packet | None = None
    if tunnel and ":" in tunnel[0]:
        header = IPv6(src=tunnel[0], dst=tunnel[1], hlim=64, tc=0, fl=0)
    elif tunnel:
        header = IP(src=tunnel[0], dst=tunnel[1], ttl=64, id=0, flags="DF", tos=0)
    return SecurityAssociation(ESP, spi=spi, crypt_algo=suite.scapy_algo, crypt_key=key,
                               crypt_icv_size=suite.icv_bytes, tunnel_header=header,
                               nat_t_header=UDP(sport=NAT_T_PORT, dport=NAT_T_PORT)
                               if nat_t else None)


def _iv(seq: int) -> bytes:
    """The worker's IV: the 64-bit sequence number, big-endian (docs/crypto-worker.md)."""
    return seq.to_bytes(8, "big")


def esp_frame(sa: SecurityAssociation, plain: Packet, *, seq: int, dst_mac: str = SWITCH_MAC,
              src_mac: str = HOST_MAC) -> Ether:
    """The ESP frame a peer sends: scapy encrypts the IP packet `plain` with `sa`, sequence
    number `seq`."""
    return rebuilt(Ether(dst=dst_mac, src=src_mac)
                   / sa.encrypt(plain.__class__(bytes(plain)), seq_num=seq, iv=_iv(seq)))


def expected_esp(sa: SecurityAssociation, plain: Packet, *, seq: int, port: int) -> Ether:
    """The ESP frame the pipeline must emit on `port` for `plain` with sequence number `seq`.
    NAT-T over IPv6 carries a real UDP checksum (RFC 8200 forbids 0; scapy's NAT-T header
    always writes 0, so it is recomputed here); over IPv4 it stays 0 (RFC 3948)."""
    frame = esp_frame(sa, plain, seq=seq)
    if isinstance(frame.payload, IPv6) and isinstance(frame.payload.payload, UDP):
        del frame[UDP].chksum
        frame = rebuilt(frame)
    return routed(frame, port)


def decrypt(sa: SecurityAssociation, frame: bytes) -> Packet:
    """The inner IP packet of an ESP frame (scapy checks the ICV and raises when it fails)."""
    ip = Ether(frame).payload
    plain = sa.decrypt(ip.__class__(bytes(ip)))
    return plain.__class__(bytes(plain))


def esp_spi_seq(frame: bytes) -> tuple[int, int]:
    """(SPI, sequence number) of an Ether/IPv4|IPv6/[UDP 4500/]ESP frame."""
    ip = Ether(frame).payload
    payload = bytes(ip.payload)
    if (ip.proto if ip.version == 4 else ip.nh) == 17:
        payload = payload[8:]
    return int.from_bytes(payload[:4], "big"), int.from_bytes(payload[4:8], "big")
