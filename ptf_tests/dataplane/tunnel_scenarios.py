"""Packets and rule parameters of the data-plane scenarios, shared by the PTF tests beside this
file and the in-process pytest tests in tests/p4src/. Expected packets are transforms of a copy
of the sent packet, built with scapy from the documented behaviour, not from the P4 source."""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

from p4_constants import C
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw
from tunnel_packets import (
    GENEVE,
    CryptoShim,
    GeneveOptions,
    geneve_source_port,
    pack_geneve_options,
)

HOST_MAC = "02:00:00:00:00:01"
SWITCH_MAC = "02:00:00:00:00:fe"
NEXT_HOP_MAC = "02:00:00:00:0a:01"
ROUTER_MAC = "02:00:00:00:00:aa"
INNER_DST_MAC = "02:00:00:00:0b:01"
INNER_SRC_MAC = "02:00:00:00:0b:02"
OUTER_V4 = ("198.51.100.1", "192.0.2.10")
OUTER_V6 = ("2001:db8::1", "2001:db8:1::10")
TUNNEL_SRC, TUNNEL_DST = "203.0.113.1", "203.0.113.2"
SPI_OUT, SPI_IN = 0x1001, 0x2002


def rebuilt(frame: Ether) -> Ether:
    """The frame parsed back from its bytes, so lengths and checksums are filled in."""
    return Ether(bytes(frame))


def routed(sent: Ether) -> Ether:
    """`sent` as Forwarding emits it: next-hop MACs, nothing else changed."""
    expected = sent.copy()
    expected.dst, expected.src = NEXT_HOP_MAC, ROUTER_MAC
    return expected


# -- Geneve ----------------------------------------------------------------------------------------

def plain_udp(dst: str = "10.0.0.2", *, sport: int = 1234, dport: int = 80) -> Ether:
    return rebuilt(Ether(dst=SWITCH_MAC, src=HOST_MAC) / IP(src="10.0.0.1", dst=dst, id=7)
                   / UDP(sport=sport, dport=dport) / Raw(b"payload-" * 4))


def options_of(count: int, data_len: int) -> list[GeneveOptions]:
    """`count` options with `data_len` data bytes each, distinct classes, types and data."""
    return [GeneveOptions(classid=0x0100 + i, type=0x80 | i,
                          data=bytes([0x11 * (i + 1)]) * data_len) for i in range(count)]


def encap_params(*, tunnel: int, options: list[GeneveOptions], v6: bool = False,
                 next_action: str = "NEXT_ACTION_FORWARD", vni: int = 0x123456,
                 critical: int = 0) -> dict[str, Any]:
    """Parameters of encap_geneve_v4 / encap_geneve_v6 for these options."""
    words, blob = pack_geneve_options(options, region_bits=C("GENEVE_OPTION_BITS"))
    src, dst = OUTER_V6 if v6 else OUTER_V4
    return {"tunnel_index": tunnel, "next_action": C(next_action), "src_addr": src,
            "dst_addr": dst, "inner_dst_mac": INNER_DST_MAC, "inner_src_mac": INNER_SRC_MAC,
            "vni": vni, "oam": 0, "critical": critical, "option_words": words, "options": blob}


def expected_encap(sent: Ether, options: list[GeneveOptions], *, v6: bool = False,
                   vni: int = 0x123456, critical: int = 0) -> Ether:
    """The sent frame with the rule's inner MACs and no tag, behind outer
    Ether/IP/UDP/Geneve, routed to NEXT_HOP_MAC."""
    inner = sent.copy()
    if Dot1Q in inner:
        inner = Ether(dst=inner.dst, src=inner.src, type=inner[Dot1Q].type) / inner[Dot1Q].payload
    inner.dst, inner.src = INNER_DST_MAC, INNER_SRC_MAC
    ip = inner[IP]
    l4 = inner[UDP] if UDP in inner else inner[TCP] if TCP in inner else None
    sport = geneve_source_port(src=int(ipaddress.ip_address(ip.src)),
                               dst=int(ipaddress.ip_address(ip.dst)), protocol=ip.proto,
                               sport=l4.sport if l4 else 0, dport=l4.dport if l4 else 0,
                               base=C("GENEVE_SRC_PORT_BASE"), span=C("GENEVE_SRC_PORT_RANGE"))
    src, dst = OUTER_V6 if v6 else OUTER_V4
    outer_ip = (IPv6(src=src, dst=dst, hlim=64, tc=0, fl=0) if v6
                else IP(src=src, dst=dst, ttl=64, id=0, flags="DF"))
    return rebuilt(Ether(dst=NEXT_HOP_MAC, src=ROUTER_MAC) / outer_ip
                   / UDP(sport=sport, dport=6081, chksum=0)
                   / GENEVE(vni=vni, proto=0x6558, critical=critical, options=options) / inner)


def geneve_packet(vni: int, inner_dst: str = "10.1.0.5",
                  options: list[GeneveOptions] | None = None) -> Ether:
    inner = (Ether(dst="02:00:00:00:0c:01", src="02:00:00:00:0c:02")
             / IP(src="10.1.0.1", dst=inner_dst, id=9) / UDP(sport=5000, dport=53)
             / Raw(b"q" * 12))
    return rebuilt(Ether(dst=SWITCH_MAC, src=HOST_MAC)
                   / IP(src="192.0.2.10", dst="198.51.100.1", id=3)
                   / UDP(sport=49999, dport=6081, chksum=0)
                   / GENEVE(vni=vni, proto=0x6558, options=options or []) / inner)


def vxlan_packet(vni: int) -> Ether:
    inner = (Ether(dst="02:00:00:00:0c:01", src="02:00:00:00:0c:02")
             / IP(src="10.1.0.1", dst="10.1.0.5") / UDP(sport=5000, dport=53) / Raw(b"v" * 12))
    return rebuilt(Ether(dst=SWITCH_MAC, src=HOST_MAC) / IP(src="192.0.2.10", dst="198.51.100.1")
                   / UDP(sport=49998, dport=4789, chksum=0) / VXLAN(vni=vni, flags=0x08) / inner)


def decapped(sent: Ether) -> Ether:
    """The inner frame of a Geneve packet, routed."""
    return routed(Ether(bytes(sent[GENEVE].payload)))


def geneve_vni_of(frame: bytes) -> int:
    """VNI of a frame that is Ether/IPv4/UDP/Geneve."""
    return int(Ether(frame)[GENEVE].vni)


# -- ESP and the crypto port ---------------------------------------------------------------------

def esp_header(spi: int, seq: int = 0) -> bytes:
    return struct.pack("!II", spi, seq)


def inner_tcp() -> Ether:
    return rebuilt(Ether(dst=SWITCH_MAC, src=HOST_MAC) / IP(src="10.0.0.1", dst="10.0.9.9", id=5)
                   / TCP(sport=4000, dport=443, flags="A") / Raw(b"secret" * 5))


def encrypt_tunnel_params(*, tunnel: int = 20, nat_t: int = 0,
                          next_action: str = "NEXT_ACTION_FORWARD") -> dict[str, Any]:
    return {"tunnel_index": tunnel, "next_action": C(next_action), "sa_index": 33,
            "spi": SPI_OUT, "nat_t": nat_t, "src_addr": TUNNEL_SRC, "dst_addr": TUNNEL_DST}


def expected_encrypt_tunnel(sent: Ether, *, tunnel: int = 20, ingress_port: int = 1) -> bytes:
    """What the worker receives for encrypt_tunnel_params(): shim | Ether | outer IPv4 | ESP |
    the inner IP packet."""
    return bytes(CryptoShim(version=1, op=C("CRYPTO_OP_ENCRYPT"),
                            flags=C("CRYPTO_FLAG_TUNNEL_MODE"),
                            next_action=C("NEXT_ACTION_FORWARD"), sa_index=33,
                            tunnel_index=tunnel, pass_=1, next_header=4, l3_offset=14, status=0,
                            esp_offset=34, ingress_port=ingress_port)
                 / Ether(dst=sent.dst, src=sent.src)
                 / IP(src=TUNNEL_SRC, dst=TUNNEL_DST, ttl=64, id=0, flags="DF", proto=50)
                 / Raw(esp_header(SPI_OUT) + bytes(sent[IP])))


def worker_encrypt_return(frame_to_worker: bytes) -> bytes:
    """What the worker returns, as far as P4 can tell: the same shim, ESP with sequence number 1
    and an opaque ciphertext, outer lengths and checksum fixed."""
    shim = CryptoShim(frame_to_worker[:16])
    eth = Ether(frame_to_worker[16:])
    ip = eth[IP]
    esp = esp_header(SPI_OUT, 1) + b"\xa5" * 60
    return bytes(CryptoShim(bytes(shim)[:16]) / Ether(dst=eth.dst, src=eth.src)
                 / IP(src=ip.src, dst=ip.dst, ttl=ip.ttl, id=0, proto=50) / Raw(esp))


def esp_in(*, nat_t: bool = False, spi: int = SPI_IN) -> Ether:
    body = Raw(esp_header(spi, 7) + b"\x5a" * 48)
    if nat_t:
        return rebuilt(Ether(dst=SWITCH_MAC, src=HOST_MAC) / IP(src=TUNNEL_DST, dst=TUNNEL_SRC,
                                                                 id=11)
                       / UDP(sport=4500, dport=4500) / body)
    return rebuilt(Ether(dst=SWITCH_MAC, src=HOST_MAC)
                   / IP(src=TUNNEL_DST, dst=TUNNEL_SRC, proto=50, id=11) / body)


def worker_decrypt_return_tunnel(frame_to_worker: bytes, plain: IP) -> bytes:
    """A tunnel-mode DECRYPT return of an esp_in(nat_t=True) frame: IV, padding, trailer and ICV
    gone, `plain` behind the kept ESP header, next_header 4."""
    shim = CryptoShim(frame_to_worker[:16])
    shim.next_header = 4
    return bytes(shim / Ether(dst=SWITCH_MAC, src=HOST_MAC)
                 / IP(src=TUNNEL_DST, dst=TUNNEL_SRC, id=11)
                 / UDP(sport=4500, dport=4500, chksum=0)
                 / Raw(esp_header(SPI_IN, 7) + bytes(plain)))
