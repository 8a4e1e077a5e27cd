"""Test support for the crypto worker: SA set-up and frames built the way P4 builds them.

`p4_encrypt_message` does what docs/dataplane.md and p4src/include/esp.p4 do before sending a
frame to the worker for ENCRYPT (headers built, ESP header with sequence 0, lengths written);
`p4_decrypt_message` wraps a received ESP frame unchanged, as P4 does for DECRYPT.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP
from scapy.layers.ipsec import SecurityAssociation as ScapySA
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from crypto_worker.ciphers import AeadAlgorithm, CipherSuite
from crypto_worker.processor import FrameProcessor
from crypto_worker.sa import Direction, EspMode, SaConfig, SaKeys
from crypto_worker.sa_table import SaTable
from crypto_worker.secret import Secret
from crypto_worker.shim import FLAG_NAT_T, FLAG_TUNNEL_MODE, CryptoShim, ShimOp

ETH_BYTES = 14
NAT_T_PORT = 4500


@dataclass(frozen=True, kw_only=True)
class Keying:
    key: bytes
    salt: bytes

    @classmethod
    def random(cls, suite: CipherSuite) -> Keying:
        return cls(key=os.urandom(suite.key_bytes), salt=os.urandom(suite.salt_bytes))

    def keys(self) -> SaKeys:
        return SaKeys(key=Secret(self.key), salt=Secret(self.salt))


def sa_config(
    *,
    sa_index: int,
    spi: int,
    direction: Direction,
    suite: CipherSuite,
    tunnel: bool,
    nat_t: bool,
    esn: bool = False,
    replay_window: int = 64,
) -> SaConfig:
    return SaConfig(
        sa_index=sa_index,
        spi=spi,
        direction=direction,
        suite=suite,
        mode=EspMode.TUNNEL if tunnel else EspMode.TRANSPORT,
        nat_traversal=nat_t,
        esn=esn,
        replay_window=replay_window,
    )


def scapy_sa(
    suite: CipherSuite,
    keying: Keying,
    *,
    spi: int,
    tunnel_header: Packet | None,
    nat_t: bool,
    esn: bool = False,
    esn_high: int = 0,
    seq_num: int = 1,
) -> ScapySA:
    """The independent implementation: scapy's SA with the same key, salt, ICV size and mode."""
    return ScapySA(
        proto=ESP,
        spi=spi,
        seq_num=seq_num,
        crypt_algo="AES-GCM" if suite.algorithm is AeadAlgorithm.GCM else "AES-CCM",
        crypt_key=keying.key + keying.salt,
        crypt_icv_size=suite.icv_bytes,
        tunnel_header=tunnel_header,
        nat_t_header=UDP(sport=NAT_T_PORT, dport=NAT_T_PORT) if nat_t else None,
        esn_en=esn,
        esn=esn_high,
    )


def shim_bytes(
    *,
    op: ShimOp,
    sa_index: int,
    tunnel: bool,
    nat_t: bool,
    next_header: int,
    esp_offset: int,
    l3_offset: int = ETH_BYTES,
    tunnel_index: int = 7,
    next_action: int = 1,
    ingress_port: int = 3,
) -> bytes:
    return CryptoShim(
        version=1,
        op=op,
        flags=(FLAG_TUNNEL_MODE if tunnel else 0) | (FLAG_NAT_T if nat_t else 0),
        next_action=next_action,
        sa_index=sa_index,
        tunnel_index=tunnel_index,
        pass_count=1,
        next_header=next_header,
        l3_offset=l3_offset,
        status=0,
        esp_offset=esp_offset,
        ingress_port=ingress_port,
    ).pack()


def _esp_placeholder(spi: int) -> bytes:
    return struct.pack("!II", spi, 0)


def p4_encrypt_message(
    packet: Packet,
    *,
    sa_index: int,
    spi: int,
    tunnel_header: Packet | None,
    nat_t: bool,
    eth_padding: bytes = b"",
) -> tuple[bytes, int]:
    """`shim | frame` as p4src/include/esp.p4 sends it for ENCRYPT, and the frame's esp_offset.

    Transport: the packet's own IP header with the protocol set to 50 (17 with NAT-T) and its
    length grown by the inserted UDP and ESP headers. Tunnel: a new outer header whose length
    covers UDP, ESP and the inner packet. UDP length set, UDP checksum 0, ESP sequence 0; the
    IPv4 header checksum left stale (the worker must rewrite it anyway).
    """
    esp_proto = 17 if nat_t else 50
    inner = bytes(packet)
    is_v4 = isinstance(tunnel_header if tunnel_header is not None else packet, IP)
    eth = Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02",
                type=0x0800 if is_v4 else 0x86DD)
    if tunnel_header is not None:
        next_header = 4 if isinstance(packet, IP) else 41
        header = bytearray(bytes(tunnel_header))
        protected = inner
    else:
        raw = bytearray(inner)
        header_bytes = (raw[0] & 0x0F) * 4 if is_v4 else 40
        next_header = raw[9] if is_v4 else raw[6]
        header = raw[:header_bytes]
        protected = bytes(raw[header_bytes:])
    udp = struct.pack("!HHHH", NAT_T_PORT, NAT_T_PORT, 8 + 8 + len(protected), 0) if nat_t else b""
    after_header = len(udp) + 8 + len(protected)
    if is_v4:
        header[9] = esp_proto
        header[2:4] = (len(header) + after_header).to_bytes(2, "big")
    else:
        header[6] = esp_proto
        header[4:6] = (len(header) - 40 + after_header).to_bytes(2, "big")
    head = bytes(eth) + bytes(header)
    frame = head + udp + _esp_placeholder(spi) + protected
    esp_offset = len(head) + len(udp)
    shim = shim_bytes(
        op=ShimOp.ENCRYPT,
        sa_index=sa_index,
        tunnel=tunnel_header is not None,
        nat_t=nat_t,
        next_header=next_header,
        esp_offset=esp_offset,
    )
    return shim + frame + eth_padding, esp_offset


def p4_decrypt_message(
    esp_packet: Packet, *, sa_index: int, tunnel: bool, nat_t: bool
) -> tuple[bytes, int]:
    """`shim | Ether | esp_packet` unchanged, as P4 sends a received ESP packet for DECRYPT."""
    ethertype = 0x0800 if isinstance(esp_packet, IP) else 0x86DD
    frame = bytes(Ether(src="00:00:00:00:00:03", dst="00:00:00:00:00:04", type=ethertype)) + bytes(
        esp_packet
    )
    header = (frame[ETH_BYTES] & 0x0F) * 4 if ethertype == 0x0800 else 40
    esp_offset = ETH_BYTES + header + (8 if nat_t else 0)
    shim = shim_bytes(
        op=ShimOp.DECRYPT,
        sa_index=sa_index,
        tunnel=tunnel,
        nat_t=nat_t,
        next_header=0,
        esp_offset=esp_offset,
    )
    return shim + frame, esp_offset


def worker_with(*sas: tuple[SaConfig, SaKeys]) -> tuple[SaTable, FrameProcessor]:
    table = SaTable()
    for config, keys in sas:
        table.add(config, keys)
    return table, FrameProcessor(table)


def ip_of(frame: bytes) -> Packet:
    """The IP layer of an Ethernet frame, parsed by scapy."""
    eth = Ether(frame)
    return eth[IP] if eth.type == 0x0800 else eth[IPv6]
