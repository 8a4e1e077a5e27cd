"""Model → v1alpha1 messages for the read path (getIpTunnel, getAllIpTunnels, Capabilities).

Reads return the canonical form of what was accepted: MACs and IPv6 addresses as raw bytes, IPv4
as fixed32 in the wire-order convention, optionLength as RFC 8926 counts it. Keys are never
written: ``encryptionKey`` is left empty in every SA (there is no opt-in, see docs/api.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address
from typing import cast

from controller.capabilities import Capabilities
from controller.dataplane import ZERO_COUNTERS, SparseCounters, TunnelCounters
from controller.encodings import ipv4_to_fixed32
from controller.errors import API_ERRORS, RequestError
from controller.model import (
    GeneveDecap,
    GeneveEncap,
    IpMatch,
    IpPair,
    IpsecDecrypt,
    IpsecEncrypt,
    MacPair,
    Match,
    OverlayMatch,
    Prefix,
    SecurityAssociation,
    Tunnel,
)
from p4rt_wire import with_varints
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb


def capabilities_to_proto(caps: Capabilities) -> pb.CapabilityResponse:
    """The Capabilities rpc answer, straight from the object the validator uses."""
    response = pb.CapabilityResponse()
    match = response.matchCapabilities
    match.ingressInterfaceMatching = caps.ingress_interface_matching
    match.vxlanMatching = caps.vxlan_matching
    match.geneveMatching = caps.geneve_matching
    match.tunnelMatching = caps.tunnel_matching
    match.spiMatching = caps.spi_matching
    response.ipsecCapabilities.tunnelTypeSupported.extend(sorted(caps.tunnel_modes))
    response.ipsecCapabilities.encryptionSupported.extend(sorted(caps.ciphers))
    response.geneveCapabilities.numberGeneveOptionsSupported = caps.max_geneve_options
    return response


def error_to_proto(error: RequestError, target: pb.Error) -> None:
    """Fill a wire ``Error`` from a typed error through the one mapping table."""
    api = API_ERRORS[error.code]
    setattr(target.errorMessage, api.category, api.value)
    target.errorString = str(error)


def counters_to_proto(counters: TunnelCounters, target: pb.counters) -> None:
    """Copy data-plane counters into the wire message."""
    target.inPackets = counters.in_packets
    target.outPackets = counters.out_packets
    target.inBytes = counters.in_bytes
    target.outBytes = counters.out_bytes
    target.inPacketsDrops = counters.in_packets_drops
    target.outPacketsDrops = counters.out_packets_drops
    target.inBytesDrops = counters.in_bytes_drops
    target.outBytesDrops = counters.out_bytes_drops


# A page of getAllIpTunnelsStats as bytes: one ``responses`` element per tunnel. A tunnel at
# zero is ``tunnelId`` and an empty ``tunnelCounters`` — the bytes protobuf writes for
# ipTunnelStatsResponse(tunnelId=i, tunnelCounters=counters()) (tests compare), kept per id;
# only counted tunnels are built as messages. Tag bytes come from the descriptors.
_RESPONSES = pb.ipTunnelStatsResponses.DESCRIPTOR.fields_by_name["responses"].number << 3 | 2
_TUNNEL_ID = pb.ipTunnelStatsResponse.DESCRIPTOR.fields_by_name["tunnelId"].number << 3
_COUNTERS = pb.ipTunnelStatsResponse.DESCRIPTOR.fields_by_name["tunnelCounters"].number << 3 | 2
ZERO_ELEMENTS_KEPT = 1 << 18  # ids whose zero element is kept (cleared past it: bounded memory)
_zero_elements: dict[int, bytes] = {}
_ZERO_TAIL = (_COUNTERS, 0)


def _zero_element(tunnel_id: int) -> bytes:
    """The element of a tunnel at zero (built from a tuple of ints: a few hundred ns)."""
    if len(_zero_elements) >= ZERO_ELEMENTS_KEPT:
        _zero_elements.clear()
    if 0 < tunnel_id < 1 << 7:
        found = bytes((_RESPONSES, 4, _TUNNEL_ID, tunnel_id, *_ZERO_TAIL))
    elif 0 < tunnel_id < 1 << 14:
        found = bytes((_RESPONSES, 5, _TUNNEL_ID, tunnel_id & 0x7F | 0x80, tunnel_id >> 7,
                       *_ZERO_TAIL))
    elif 0 < tunnel_id < 1 << 21:
        found = bytes((_RESPONSES, 6, _TUNNEL_ID, tunnel_id & 0x7F | 0x80,
                       tunnel_id >> 7 & 0x7F | 0x80, tunnel_id >> 14, *_ZERO_TAIL))
    else:
        found = pb.ipTunnelStatsResponses(responses=[pb.ipTunnelStatsResponse(
            tunnelId=tunnel_id, tunnelCounters=pb.counters())]).SerializeToString()
    _zero_elements[tunnel_id] = found
    return found


_WIDTH_LIMITS = (1 << 7, 1 << 14, 1 << 21)  # ids below each: 1, 2, 3 varint bytes (fast paths)


def _zero_run(first: int, stop: int) -> bytes:
    """The zero elements of ids first .. stop-1 (one varint width, first > 0): one sample,
    its id column rewritten per copy (p4rt_wire.with_varints) — no Python work per id."""
    sample = _zero_element(first)
    return with_varints(sample, 3, len(sample) - 5, first, stop)


def _zero_elements_of(tunnel_ids: Sequence[int]) -> list[bytes]:
    """The zero elements of `tunnel_ids`, in order: consecutive ids (a page of a table
    created in order) in runs, other ids one by one (kept per id)."""
    first = tunnel_ids[0] if tunnel_ids else 0
    stop = first + len(tunnel_ids)
    if (first > 0 and stop <= _WIDTH_LIMITS[-1] and tunnel_ids[-1] == stop - 1
            and list(tunnel_ids) == list(range(first, stop))):
        runs = []
        for limit in _WIDTH_LIMITS:
            if first < limit:
                runs.append(_zero_run(first, min(stop, limit)))
                first = min(stop, limit)
        return runs
    known = _zero_elements.get
    return [known(tunnel_id) or _zero_element(tunnel_id) for tunnel_id in tunnel_ids]


def stats_responses(tunnel_ids: Sequence[int], counters: Mapping[int, TunnelCounters]
                    ) -> pb.ipTunnelStatsResponses:
    """One getAllIpTunnelsStats page: each tunnel's counters, in the order given. With
    :class:`SparseCounters` only the counted tunnels cost a message, the others are cut from
    zero elements; the page is parsed from bytes in one call (protobuf's C code), not built
    field by field."""
    nonzero = counters.nonzero if isinstance(counters, SparseCounters) else counters
    counted = [position for position, tunnel_id in enumerate(tunnel_ids)
               if tunnel_id in nonzero and nonzero[tunnel_id] != ZERO_COUNTERS] if nonzero else []
    parts: list[bytes] = []
    start = 0
    for position in counted:
        parts += _zero_elements_of(tunnel_ids[start:position])
        item = pb.ipTunnelStatsResponses()
        tunnel_id = tunnel_ids[position]
        counters_to_proto(nonzero[tunnel_id],
                          item.responses.add(tunnelId=tunnel_id).tunnelCounters)
        parts.append(item.SerializeToString())
        start = position + 1
    parts += _zero_elements_of(tunnel_ids[start:])
    return pb.ipTunnelStatsResponses.FromString(b"".join(parts))


def tunnel_to_proto(tunnel: Tunnel) -> pb.ipTunnelRequest:
    """The tunnel's definition as an ``ipTunnelRequest`` (operation _NONE, keys left out)."""
    message = pb.ipTunnelRequest(tunnelId=tunnel.tunnel_id, operation=pb._NONE,
                                 nextAction=cast(pb.ACTION, int(tunnel.next_action)))
    _match_to_proto(tunnel.match, message.match_criteria)
    body = tunnel.body
    if isinstance(body, IpsecEncrypt):
        enc = message.ipsecTunnel.ipsecEnc
        enc.tunnelType = cast(pb.IPSecTunnelType, int(body.mode))
        enc.encryptionType = cast(pb.ENC_TYPE, int(body.cipher))
        _sa_to_proto(body.sa, enc.ipsecSA)
        if body.outer is not None:
            target = (enc.ipv4_tunnel if isinstance(body.outer.source, IPv4Address)
                      else enc.ipv6_tunnel)
            _pair_to_proto(body.outer, target)
    elif isinstance(body, IpsecDecrypt):
        dec = message.ipsecTunnel.ipsecDec
        dec.tunnelType = cast(pb.IPSecTunnelType, int(body.mode))
        dec.encryptionType = cast(pb.ENC_TYPE, int(body.cipher))
        for sa in body.sas:
            _sa_to_proto(sa, dec.ipsecSAs.add())
    elif isinstance(body, GeneveEncap):
        _encap_to_proto(body, message.geneve.geneveEncap)
    elif isinstance(body, GeneveDecap):
        message.geneve.geneveDecap.SetInParent()
    return message


def _sa_to_proto(sa: SecurityAssociation, target: pb.IPSecSAParams) -> None:
    target.spi = sa.spi  # encryptionKey deliberately left empty


def _encap_to_proto(encap: GeneveEncap, target: pb.GENEVEEncap) -> None:
    pair = (target.outerIpv4Pair if isinstance(encap.outer.source, IPv4Address)
            else target.outerIpv6Pair)
    _pair_to_proto(encap.outer, pair)
    if encap.inner_mac is not None:
        _mac_to_proto(encap.inner_mac, target.innerMacPair)
    target.optionLength = encap.option_length_words
    target.controlPacket = encap.control_packet
    target.criticalOptionPresent = encap.critical_option_present
    target.vni = encap.vni
    target.protocolType = encap.protocol_type
    for option in encap.options:
        target.geneveOption.add(optionClass=option.option_class, type=option.option_type,
                                length=option.length_words, data=option.data)


def _address(address: object) -> int | bytes:
    if isinstance(address, IPv4Address):
        return ipv4_to_fixed32(address)
    return address.packed  # type: ignore[attr-defined, no-any-return]


def _pair_to_proto(pair: IpPair, target: pb.IPV4Pair | pb.IPV6Pair) -> None:
    target.sourceIp = _address(pair.source)  # type: ignore[assignment]
    target.destinationIp = _address(pair.destination)  # type: ignore[assignment]


def _mac_to_proto(mac: MacPair, target: pb.MacPair) -> None:
    if mac.destination is not None:
        target.destinationMac = mac.destination
    if mac.source is not None:
        target.sourceMac = mac.source


def _prefix_to_proto(prefix: Prefix | None, target: pb.IPV4Match | pb.IPV6Match,
                     which: str) -> None:
    if prefix is None:
        return
    setattr(target, f"{which}Ip", _address(prefix.address))
    setattr(target, f"{which}IpPrefix", prefix.length)


def _ip_match_to_proto(ip: IpMatch | None, container: object) -> None:
    if ip is None:
        return
    target = getattr(container, "ipv4Match" if ip.version == 4 else "ipv6Match")
    target.SetInParent()
    _prefix_to_proto(ip.source, target, "source")
    _prefix_to_proto(ip.destination, target, "destination")


def _overlay_to_proto(overlay: OverlayMatch, target: object) -> None:
    target.SetInParent()  # type: ignore[attr-defined]
    if overlay.vni is not None:
        target.vni = overlay.vni  # type: ignore[attr-defined]
    if overlay.protocol_type is not None:
        target.protocolType = overlay.protocol_type  # type: ignore[attr-defined]
    if overlay.mac is not None:
        _mac_to_proto(overlay.mac, target.macMatch)  # type: ignore[attr-defined]
    _ip_match_to_proto(overlay.ip, target)


def _match_to_proto(match: Match, target: pb.MatchCriteria) -> None:
    target.SetInParent()
    if match.ingress_port is not None:
        target.ingressInterface = str(match.ingress_port)
    if match.mac is not None:
        _mac_to_proto(match.mac, target.macMatch)
    _ip_match_to_proto(match.ip, target)
    if match.previous_tunnel is not None:
        target.tunnelId = match.previous_tunnel
    if match.esp is not None:
        target.ipsecMatch.spi = match.esp.spi
    if match.overlay is not None:
        _overlay_to_proto(match.overlay, target.geneveMatch if match.overlay.kind == "geneve"
                          else target.vxlanMatch)
