"""The controller's own, protobuf-free picture of a tunnel rule.

Validation turns wire messages into these frozen values; the store, the data-plane seam and the
read path only ever see them, so no module below the servicer depends on an API version.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from controller.keys import SaKey

IpAddress = IPv4Address | IPv6Address


class Cipher(enum.IntEnum):
    """ENC_TYPE: AES key size, AEAD mode and ICV length; values are the wire enum numbers."""

    AES256_GCM64 = 0
    AES256_GCM96 = 1
    AES256_GCM128 = 2
    AES128_GCM64 = 3
    AES128_GCM96 = 4
    AES128_GCM128 = 5
    AES256_CCM64 = 6
    AES256_CCM96 = 7
    AES256_CCM128 = 8
    AES128_CCM64 = 9
    AES128_CCM96 = 10
    AES128_CCM128 = 11

    @property
    def key_len(self) -> int:
        """AES key length in bytes."""
        return 32 if self.name.startswith("AES256") else 16

    @property
    def aead(self) -> str:
        """``"gcm"`` (RFC 4106) or ``"ccm"`` (RFC 4309)."""
        return "gcm" if "_GCM" in self.name else "ccm"

    @property
    def salt_len(self) -> int:
        """Salt (nonce prefix) length: 4 bytes for GCM (RFC 4106), 3 for CCM (RFC 4309)."""
        return 4 if self.aead == "gcm" else 3

    @property
    def icv_len(self) -> int:
        """Integrity check value length in bytes (64, 96 or 128 bits)."""
        return int(self.name.rsplit(self.aead.upper(), 1)[1]) // 8

    @property
    def api_name(self) -> str:
        """The v1alpha1 enum name, e.g. ``_aes256gcm64``."""
        return "_" + self.name.replace("_", "").lower()


class TunnelMode(enum.IntEnum):
    """IPSecTunnelType; values are the wire enum numbers."""

    TRANSPORT = 0
    TUNNEL = 1
    TRANSPORT_NAT_TRAVERSAL = 2
    TUNNEL_NAT_TRAVERSAL = 3

    @property
    def is_tunnel(self) -> bool:
        """True when ESP wraps the whole packet in new outer IP addresses."""
        return self in (TunnelMode.TUNNEL, TunnelMode.TUNNEL_NAT_TRAVERSAL)

    @property
    def nat_traversal(self) -> bool:
        """True when ESP travels in UDP port 4500 (RFC 3948)."""
        return self in (TunnelMode.TRANSPORT_NAT_TRAVERSAL, TunnelMode.TUNNEL_NAT_TRAVERSAL)


class NextAction(enum.IntEnum):
    """What happens after the tunnel: ACTION values (NONE=0 is not a valid rule action)."""

    FORWARD = 1
    RECIRCULATE = 2


class Operation(enum.IntEnum):
    """The change a request asks for (OPERATION values)."""

    CREATE = 1
    UPDATE = 2
    DELETE = 3


@dataclass(frozen=True, kw_only=True)
class Prefix:
    """An address with a prefix length; host bits past the prefix are always zero."""

    address: IpAddress
    length: int


@dataclass(frozen=True, kw_only=True)
class MacPair:
    """Destination and source MAC, 6 bytes each; None is a wildcard (match) or unset (encap)."""

    destination: bytes | None = None
    source: bytes | None = None


@dataclass(frozen=True, kw_only=True)
class IpMatch:
    """Source and destination prefixes of one IP version; None is a wildcard."""

    version: int
    source: Prefix | None = None
    destination: Prefix | None = None


@dataclass(frozen=True, kw_only=True)
class EspMatch:
    """Match ESP packets carrying this SPI."""

    spi: int


@dataclass(frozen=True, kw_only=True)
class OverlayMatch:
    """Match a Geneve or VXLAN header (kind ``"geneve"`` / ``"vxlan"``) and its inner packet."""

    kind: str
    vni: int | None = None
    protocol_type: int | None = None
    mac: MacPair | None = None
    ip: IpMatch | None = None


@dataclass(frozen=True, kw_only=True)
class Match:
    """A rule's match; every None field is a wildcard. ``previous_tunnel`` is chaining."""

    ingress_port: int | None = None
    mac: MacPair | None = None
    ip: IpMatch | None = None
    previous_tunnel: int | None = None
    esp: EspMatch | None = None
    overlay: OverlayMatch | None = None


@dataclass(frozen=True, kw_only=True)
class IpPair:
    """Outer source and destination addresses of an encapsulation (same IP version)."""

    source: IpAddress
    destination: IpAddress


@dataclass(frozen=True, kw_only=True)
class SecurityAssociation:
    """One ESP SA: its SPI and its key material (never leaves the SaKey in clear)."""

    spi: int
    secret: SaKey


@dataclass(frozen=True, kw_only=True)
class IpsecEncrypt:
    """ESP encryption with exactly one SA; ``outer`` is set exactly when the mode is a tunnel."""

    mode: TunnelMode
    cipher: Cipher
    sa: SecurityAssociation
    outer: IpPair | None = None


@dataclass(frozen=True, kw_only=True)
class IpsecDecrypt:
    """ESP decryption with one or more live SAs (several during a rekey)."""

    mode: TunnelMode
    cipher: Cipher
    sas: tuple[SecurityAssociation, ...]


@dataclass(frozen=True, kw_only=True)
class GeneveOption:
    """One Geneve TLV option; its length field is ``len(data) // 4``."""

    option_class: int
    option_type: int
    data: bytes

    @property
    def length_words(self) -> int:
        """The option's 5-bit length field: data length in 4-byte words."""
        return len(self.data) // 4


@dataclass(frozen=True, kw_only=True)
class GeneveEncap:
    """Geneve encapsulation (RFC 8926) with outer IPs, VNI and options."""

    outer: IpPair
    inner_mac: MacPair | None
    vni: int
    protocol_type: int
    control_packet: bool
    critical_option_present: bool
    options: tuple[GeneveOption, ...]

    @property
    def option_length_words(self) -> int:
        """The header's Opt Len: all options (4-byte header + data) in 4-byte words."""
        return sum(1 + option.length_words for option in self.options)


@dataclass(frozen=True, kw_only=True)
class GeneveDecap:
    """Remove the outer Geneve encapsulation (the match must be a Geneve match)."""


TunnelBody = IpsecEncrypt | IpsecDecrypt | GeneveEncap | GeneveDecap


@dataclass(frozen=True, kw_only=True)
class Tunnel:
    """A complete, validated tunnel rule as stored and as handed to the data plane."""

    tunnel_id: int
    match: Match
    next_action: NextAction
    body: TunnelBody

    @property
    def security_associations(self) -> tuple[SecurityAssociation, ...]:
        """The SAs this rule occupies in the crypto worker (0, 1 or several)."""
        if isinstance(self.body, IpsecEncrypt):
            return (self.body.sa,)
        if isinstance(self.body, IpsecDecrypt):
            return self.body.sas
        return ()

    @property
    def kind(self) -> str:
        """A short name for logs and errors: ipsec-encrypt, ipsec-decrypt, geneve-encap, ..."""
        return {
            IpsecEncrypt: "ipsec-encrypt",
            IpsecDecrypt: "ipsec-decrypt",
            GeneveEncap: "geneve-encap",
            GeneveDecap: "geneve-decap",
        }[type(self.body)]
