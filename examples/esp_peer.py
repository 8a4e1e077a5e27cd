"""The far end of an IPsec tunnel, for examples/send_traffic.py: ESP (RFC 4303) with AES-GCM
(RFC 4106) or AES-CCM (RFC 4309) and any ICV length the API names, built on `cryptography`'s AES
primitives.

Why not scapy's ``SecurityAssociation``: scapy 2.8 makes only 16-byte GCM tags, and the examples
use ``_aes256gcm64`` (8-byte ICV, the reference client's cipher). Why not the crypto worker's own
code: the peer must be an independent implementation, or a bug on both sides would cancel out.
``tests/examples/test_esp_peer.py`` checks this module against scapy for the suites scapy has.

Key material is what the API takes (docs/api.md, "Keys"): hex text of the AES key followed by
the salt (4 bytes for GCM, 3 for CCM); a key given without salt gets an all-zero salt, as the
server gives it.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet

__all__ = ["EspError", "Suite", "PeerSa", "suite_of", "read_key_file", "encrypt", "decrypt",
           "NAT_T_PORT"]

NAT_T_PORT = 4500          # RFC 3948 ESP-in-UDP
IPPROTO_ESP = 50
IPPROTO_UDP = 17
NEXT_HEADER_IPV4, NEXT_HEADER_IPV6 = 4, 41
IV_BYTES = 8
_ENC_TYPE = re.compile(r"^_aes(128|256)(gcm|ccm)(64|96|128)$")


class EspError(ValueError):
    """A frame or a key this peer cannot use (the message says which and why)."""


@dataclass(frozen=True, kw_only=True)
class Suite:
    """One API ``ENC_TYPE``: AES key size, mode and ICV length."""

    name: str
    key_bytes: int
    mode: str           # "gcm" or "ccm"
    icv_bytes: int

    @property
    def salt_bytes(self) -> int:
        return 4 if self.mode == "gcm" else 3


def suite_of(enc_type: str) -> Suite:
    """``_aes256gcm64`` -> AES-256-GCM with an 8-byte ICV (the API's ``ENC_TYPE`` names)."""
    found = _ENC_TYPE.match(enc_type)
    if not found:
        raise EspError(f"cipher {enc_type!r} is not an ENC_TYPE such as _aes256gcm64 or "
                       "_aes128ccm96")
    bits, mode, icv = found.groups()
    return Suite(name=enc_type, key_bytes=int(bits) // 8, mode=mode, icv_bytes=int(icv) // 8)


def split_key(material: bytes, suite: Suite) -> tuple[bytes, bytes]:
    """(AES key, salt) from key ‖ salt, or from a bare key (zero salt)."""
    if len(material) == suite.key_bytes + suite.salt_bytes:
        return material[:suite.key_bytes], material[suite.key_bytes:]
    if len(material) == suite.key_bytes:
        return material, bytes(suite.salt_bytes)
    raise EspError(f"a {len(material)}-byte key does not fit {suite.name}: it takes "
                   f"{suite.key_bytes} bytes (key) or {suite.key_bytes + suite.salt_bytes} "
                   f"(key + {suite.salt_bytes}-byte salt)")


def read_key_file(path: Path) -> bytes:
    """The key ‖ salt from a file of hex text (what ``tunnelctl rekey --new-key-file`` reads)."""
    try:
        text = path.read_text(encoding="ascii").strip()
        return bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        reason = getattr(error, "strerror", None) or "not hex text"
        raise EspError(f"key file {path}: {reason}") from None


@dataclass(frozen=True, kw_only=True)
class PeerSa:
    """One SA as the remote peer holds it. ``tunnel`` (outer source, destination) means tunnel
    mode; None means transport mode. ``nat_t`` puts ESP in UDP 4500 (RFC 3948)."""

    spi: int
    suite: Suite
    key: bytes = b""      # AES key
    salt: bytes = b""
    tunnel: tuple[str, str] | None = None
    nat_t: bool = False

    @classmethod
    def make(cls, *, spi: int, enc_type: str, material: bytes,
             tunnel: tuple[str, str] | None = None, nat_t: bool = False) -> PeerSa:
        suite = suite_of(enc_type)
        key, salt = split_key(material, suite)
        return cls(spi=spi, suite=suite, key=key, salt=salt, tunnel=tunnel, nat_t=nat_t)

    def __repr__(self) -> str:  # never the key
        return (f"PeerSa(spi={self.spi}, suite={self.suite.name}, key=<secret "
                f"len={len(self.key) + len(self.salt)}>, tunnel={self.tunnel}, nat_t={self.nat_t})")

    def _seal(self, iv: bytes, aad: bytes, plaintext: bytes) -> bytes:
        nonce = self.salt + iv
        if self.suite.mode == "ccm":
            return AESCCM(self.key, tag_length=self.suite.icv_bytes).encrypt(nonce, plaintext, aad)
        encryptor = Cipher(algorithms.AES(self.key), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(aad)
        sealed = encryptor.update(plaintext) + encryptor.finalize()
        return sealed + encryptor.tag[:self.suite.icv_bytes]  # a GCM ICV is a prefix of the tag

    def _open(self, iv: bytes, aad: bytes, sealed: bytes) -> bytes:
        nonce = self.salt + iv
        icv = self.suite.icv_bytes
        if len(sealed) < icv:
            raise EspError("ESP payload shorter than its ICV")
        try:
            if self.suite.mode == "ccm":
                return AESCCM(self.key, tag_length=icv).decrypt(nonce, sealed, aad)
            decryptor = Cipher(algorithms.AES(self.key),
                               modes.GCM(nonce, sealed[-icv:], min_tag_length=icv)).decryptor()
            decryptor.authenticate_additional_data(aad)
            return decryptor.update(sealed[:-icv]) + decryptor.finalize()
        except InvalidTag:
            raise EspError(f"ICV check failed for SPI {self.spi} (wrong key or cipher?)") from None


def _ip_class(address: str) -> type[Packet]:
    return IPv6 if ip_address(address).version == 6 else IP


def encrypt(sa: PeerSa, packet: Packet, *, seq: int) -> Packet:
    """The ESP packet (an IP packet) the peer sends for the IP packet ``packet``: tunnel mode
    wraps all of it under new outer addresses; transport mode keeps its IP header and protects
    what follows. The IV is the sequence number (any unique IV is valid)."""
    if sa.tunnel is not None:
        header: Packet = _ip_class(sa.tunnel[0])(src=sa.tunnel[0], dst=sa.tunnel[1])
        payload = bytes(packet)
        next_header = NEXT_HEADER_IPV6 if isinstance(packet, IPv6) else NEXT_HEADER_IPV4
    else:
        header = packet.copy()
        header.remove_payload()
        payload = bytes(packet.payload)
        next_header = packet.nh if isinstance(packet, IPv6) else packet.proto
        for field in ("len", "plen", "chksum"):
            if field in header.fields:
                del header.fields[field]
    pad = (-(len(payload) + 2)) % 4
    trailer = bytes(range(1, pad + 1)) + bytes([pad, next_header])
    iv = seq.to_bytes(IV_BYTES, "big")
    esp_header = struct.pack("!II", sa.spi, seq)
    esp = esp_header + iv + sa._seal(iv, esp_header, payload + trailer)
    protocol = IPPROTO_UDP if sa.nat_t else IPPROTO_ESP
    if isinstance(header, IPv6):
        header.nh = protocol
    else:
        header.proto = protocol
    if sa.nat_t:
        built = header / UDP(sport=NAT_T_PORT, dport=NAT_T_PORT, chksum=0) / esp
    else:
        built = header / esp
    return built.__class__(bytes(built))


@dataclass(frozen=True, kw_only=True)
class Opened:
    """What decrypting one ESP packet gave: its SPI, sequence number and the inner IP packet
    (tunnel mode) or the transport packet with its payload restored."""

    spi: int
    seq: int
    packet: Packet
    tunnel_mode: bool


def esp_of(packet: Packet) -> tuple[int, int] | None:
    """(SPI, sequence) when the IP packet ``packet`` carries ESP (or ESP in UDP 4500)."""
    data = _esp_bytes(packet)
    if data is None or len(data) < 8:
        return None
    spi, seq = struct.unpack_from("!II", data)
    return spi, seq


def _esp_bytes(packet: Packet) -> bytes | None:
    protocol = packet.nh if isinstance(packet, IPv6) else getattr(packet, "proto", None)
    body = bytes(packet.payload)
    if protocol == IPPROTO_ESP:
        return body
    if protocol == IPPROTO_UDP and len(body) >= 8:
        sport, dport = struct.unpack_from("!HH", body)
        if NAT_T_PORT in (sport, dport) and body[8:12] != bytes(4):  # 4 zero bytes: IKE
            return body[8:]
    return None


def decrypt(sa: PeerSa, packet: Packet) -> Opened:
    """Open the ESP packet ``packet`` (an IP packet) with ``sa``: checks the SPI and the ICV.
    The mode is the packet's: next header 4 or 41 is tunnel mode, anything else transport."""
    data = _esp_bytes(packet)
    if data is None or len(data) < 8 + IV_BYTES + sa.suite.icv_bytes:
        raise EspError("not an ESP packet")
    spi, seq = struct.unpack_from("!II", data)
    if spi != sa.spi:
        raise EspError(f"SPI {spi} is not the SA's ({sa.spi})")
    plain = sa._open(data[8:8 + IV_BYTES], data[:8], data[8 + IV_BYTES:])
    pad, next_header = plain[-2], plain[-1]
    if pad + 2 > len(plain):
        raise EspError("ESP padding longer than the payload")
    inner = plain[:-(pad + 2)]
    if next_header in (NEXT_HEADER_IPV4, NEXT_HEADER_IPV6):  # tunnel mode
        return Opened(spi=spi, seq=seq, tunnel_mode=True,
                      packet=(IPv6 if next_header == NEXT_HEADER_IPV6 else IP)(inner))
    header = packet.copy()
    header.remove_payload()
    for field in ("len", "plen", "chksum"):
        if field in header.fields:
            del header.fields[field]
    if isinstance(header, IPv6):
        header.nh = next_header
    else:
        header.proto = next_header
    restored = header / inner
    return Opened(spi=spi, seq=seq, tunnel_mode=False,
                  packet=restored.__class__(bytes(restored)))
