"""Packets for the data-plane tests, built with scapy independently of the P4 source.

Shared by the PTF tests beside this file and the in-process pytest tests in tests/p4src/ (their
conftest puts this folder on sys.path); it depends on scapy only.

`CryptoShim` is the crypto-port shim written from the contract table in docs/dataplane.md (not
from headers.p4), so a layout slip on either side fails the tests.
"""

from __future__ import annotations

import struct

from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.fields import ByteField, ShortField
from scapy.packet import Packet

__all__ = ["GENEVE", "GeneveOptions", "CryptoShim", "pack_geneve_options",
           "geneve_source_port"]


class CryptoShim(Packet):
    """docs/dataplane.md, "The crypto shim header": 16 bytes, network byte order."""

    name = "CryptoShim"
    fields_desc = [
        ByteField("version", 1),
        ByteField("op", 0),
        ByteField("flags", 0),
        ByteField("next_action", 0),
        ShortField("sa_index", 0),
        ShortField("tunnel_index", 0),
        ByteField("pass_", 0),
        ByteField("next_header", 0),
        ByteField("l3_offset", 0),
        ByteField("status", 0),
        ShortField("esp_offset", 0),
        ShortField("ingress_port", 0),
    ]


def pack_geneve_options(options: list[GeneveOptions], *, region_bits: int) -> tuple[int, int]:
    """(option_words, options) action parameters: the option region as scapy encodes it,
    left-aligned in `region_bits` bits."""
    region = b"".join(bytes(o) for o in options)
    assert len(region) % 4 == 0
    padded = region.ljust(region_bits // 8, b"\0")
    return len(region) // 4, int.from_bytes(padded, "big")


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC (poly 0x8005 reflected, init 0, no final xor): BMv2's `crc16`."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def geneve_source_port(*, src: int, dst: int, protocol: int, sport: int = 0,
                       dport: int = 0, base: int, span: int) -> int:
    """The entropy source port geneve.p4 derives: base + crc16(flow) % span, where the flow is
    (src addr 128, dst addr 128, protocol 8, L4 source port 16, L4 destination port 16)."""
    flow = src.to_bytes(16, "big") + dst.to_bytes(16, "big") + struct.pack(
        "!BHH", protocol, sport, dport)
    return base + crc16_arc(flow) % span
