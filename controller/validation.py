"""Pure validation: one v1alpha1 ``ipTunnelRequest`` plus the current tunnels in, one
:class:`~controller.dataplane.TunnelChange` out — or a :class:`RequestError` naming the field and
the bad value. No I/O, no state changes; the service decides what to apply.

Field paths in messages use the v1alpha1 names (``match_criteria.ipv4Match.sourceIpPrefix``); v2
clients see the same paths (the v2 names are the snake_case forms of the same fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv6Address
from typing import TypeVar

from controller.capabilities import Capabilities
from controller.dataplane import TunnelChange
from controller.encodings import ipv4_from_fixed32, parse_ipv6, parse_mac
from controller.errors import ErrorCode, RequestError
from controller.keys import parse_key
from controller.model import (
    Cipher,
    EspMatch,
    GeneveDecap,
    GeneveEncap,
    GeneveOption,
    IpAddress,
    IpMatch,
    IpPair,
    IpsecDecrypt,
    IpsecEncrypt,
    MacPair,
    Match,
    NextAction,
    Operation,
    OverlayMatch,
    Prefix,
    SecurityAssociation,
    Tunnel,
    TunnelBody,
    TunnelMode,
)
from controller.tunnel_view import TunnelView
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

_T = TypeVar("_T")
MAX_UINT24 = (1 << 24) - 1
MAX_UINT16 = (1 << 16) - 1
GENEVE_ETHERNET = 0x6558  # Transparent Ethernet Bridging: the default Geneve protocol type
MIN_SPI = 256  # RFC 4303: SPIs 1 … 255 are reserved by IANA, 0 is local use only
MAX_ECHO = 32  # characters of a client's text quoted back in an error (the rest is elided)
_OPERATION_NAMES = {value: name for name, value in pb.OPERATION.items()}


def _fail(code: ErrorCode, field: str, message: str) -> RequestError:
    return RequestError(code, field, message)


def _echo(text: str) -> str:
    """``repr`` of client text for an error, cut to :data:`MAX_ECHO` characters so a request
    cannot make its error (and the log line) as large as itself."""
    if len(text) <= MAX_ECHO:
        return repr(text)
    return f"{text[:MAX_ECHO]!r}… ({len(text)} characters)"


def validate_request(
    request: pb.ipTunnelRequest, *, view: Mapping[int, Tunnel], caps: Capabilities
) -> TunnelChange:
    """Check one request against ``view`` (the tunnels as they will be when it applies)."""
    operation = request.operation
    if operation == pb._CREATE:
        return _validate_create(request, view=view, caps=caps)
    if operation == pb._UPDATE:
        return _validate_update(request, view=view, caps=caps)
    if operation == pb._DELETE:
        return _validate_delete(request, view=view)
    if operation == pb._NONE:
        raise _fail(ErrorCode.MISSING_FIELD, "operation",
                    "_NONE; set _CREATE, _UPDATE or _DELETE")
    raise _fail(ErrorCode.INVALID_FIELD, "operation", f"{operation} is not an OPERATION value")


# --- CREATE / UPDATE / DELETE --------------------------------------------------------------


def _lowest_free_id(view: Mapping[int, Tunnel]) -> int:
    if isinstance(view, TunnelView):
        return view.lowest_free_id()  # kept incrementally (controller.tunnel_view)
    candidate = 1
    while candidate in view:
        candidate += 1
    return candidate


def _validate_create(
    request: pb.ipTunnelRequest, *, view: Mapping[int, Tunnel], caps: Capabilities
) -> TunnelChange:
    tunnel_id = request.tunnelId
    if tunnel_id == 0:
        tunnel_id = _lowest_free_id(view)
    elif tunnel_id in view:
        raise _fail(ErrorCode.DUPLICATE_TUNNEL, "tunnelId",
                    f"{tunnel_id} already exists; UPDATE or DELETE it, or send 0 to have an id "
                    "allocated")
    body = _parse_body(request, caps=caps, before=None)
    match = (_parse_match(request.match_criteria, caps=caps)
             if request.HasField("match_criteria") else Match())
    tunnel = Tunnel(tunnel_id=tunnel_id, match=match,
                    next_action=_parse_next_action(request.nextAction), body=body)
    _check_tunnel(tunnel, view=view, caps=caps)
    return TunnelChange(operation=Operation.CREATE, before=None, after=tunnel)


def _existing(request: pb.ipTunnelRequest, view: Mapping[int, Tunnel], verb: str) -> Tunnel:
    if request.tunnelId == 0:
        raise _fail(ErrorCode.MISSING_FIELD, "tunnelId",
                    f"0; {verb} needs the id of an existing tunnel")
    before = view.get(request.tunnelId)
    if before is None:
        raise _fail(ErrorCode.UNKNOWN_TUNNEL, "tunnelId", f"{request.tunnelId} does not exist")
    return before


def _validate_update(
    request: pb.ipTunnelRequest, *, view: Mapping[int, Tunnel], caps: Capabilities
) -> TunnelChange:
    before = _existing(request, view, "_UPDATE")
    carries_match = request.HasField("match_criteria")
    carries_tunnel = request.WhichOneof("tunnel") is not None
    if not (carries_match or carries_tunnel or request.nextAction):
        raise _fail(ErrorCode.MISSING_FIELD, "ipTunnelRequest",
                    f"_UPDATE of tunnel {before.tunnel_id} carries nothing to change "
                    "(no match_criteria, nextAction or tunnel)")
    match = (_parse_match(request.match_criteria, caps=caps) if carries_match else before.match)
    next_action = (_parse_next_action(request.nextAction) if request.nextAction
                   else before.next_action)
    body = _parse_body(request, caps=caps, before=before) if carries_tunnel else before.body
    after = Tunnel(tunnel_id=before.tunnel_id, match=match, next_action=next_action, body=body)
    _check_tunnel(after, view=view, caps=caps)
    return TunnelChange(operation=Operation.UPDATE, before=before, after=after)


def _validate_delete(request: pb.ipTunnelRequest, *, view: Mapping[int, Tunnel]) -> TunnelChange:
    before = _existing(request, view, "_DELETE")
    dependents = (view.dependents(before.tunnel_id) if isinstance(view, TunnelView) else
                  sorted(tunnel.tunnel_id for tunnel in view.values()
                         if tunnel.match.previous_tunnel == before.tunnel_id))
    if dependents:
        names = ", ".join(str(tunnel_id) for tunnel_id in dependents)
        raise _fail(ErrorCode.TUNNEL_IN_USE, "tunnelId",
                    f"{before.tunnel_id} is chained from by tunnel(s) {names} (their "
                    "match_criteria.tunnelId); delete or update those first")
    return TunnelChange(operation=Operation.DELETE, before=before, after=None)


def _parse_next_action(value: int) -> NextAction:
    if value == pb.NONE:
        raise _fail(ErrorCode.MISSING_FIELD, "nextAction",
                    "NONE; a rule needs FORWARD or RECIRCULATE")
    try:
        return NextAction(value)
    except ValueError:
        raise _fail(ErrorCode.INVALID_FIELD, "nextAction",
                    f"{value} is not an ACTION value") from None


# --- checks on the whole tunnel -------------------------------------------------------------


def _check_tunnel(tunnel: Tunnel, *, view: Mapping[int, Tunnel], caps: Capabilities) -> None:
    """Rules that need the whole tunnel or the other tunnels (run after CREATE and UPDATE)."""
    match, body = tunnel.match, tunnel.body
    if match == Match() and not isinstance(body, IpsecDecrypt):
        raise _fail(ErrorCode.MISSING_FIELD, "match_criteria",
                    f"empty; a {tunnel.kind} rule needs at least one match field (an empty match "
                    "would capture all traffic)")
    if match.previous_tunnel is not None:
        _check_chain(tunnel, view)
    if isinstance(body, GeneveDecap) and (match.overlay is None or match.overlay.kind != "geneve"):
        raise _fail(ErrorCode.MISSING_FIELD, "match_criteria.geneveMatch",
                    "missing; a Geneve decap rule must match on the Geneve header")
    if isinstance(body, IpsecDecrypt):
        if match.overlay is not None:
            raise _fail(ErrorCode.INVALID_FIELD, f"match_criteria.{match.overlay.kind}Match",
                        "set, but an IPsec decrypt rule matches ESP packets, not "
                        f"{match.overlay.kind.upper()}")
        spis = [sa.spi for sa in body.sas]
        if match.esp is not None and match.esp.spi not in spis:
            raise _fail(ErrorCode.INVALID_FIELD, "match_criteria.ipsecMatch.spi",
                        f"{match.esp.spi} is not one of this decrypt tunnel's SAs "
                        f"({_join(spis)})")
        for other in _spi_sharers(tunnel, spis, view):
            if other.tunnel_id == tunnel.tunnel_id or not isinstance(other.body, IpsecDecrypt):
                continue
            shared = sorted(set(spis) & {sa.spi for sa in other.body.sas})
            if shared:
                raise _fail(ErrorCode.IPSEC_FIELD, "ipsecTunnel.ipsecDec.ipsecSAs",
                            f"spi {_join(shared)} is already an SA of decrypt tunnel "
                            f"{other.tunnel_id}; inbound SPIs must be unique")
    if isinstance(body, IpsecEncrypt | IpsecDecrypt):
        for sa in tunnel.security_associations:
            if (sa.secret.key_len, sa.secret.salt_len) != (body.cipher.key_len,
                                                           body.cipher.salt_len):
                raise _fail(ErrorCode.INVALID_KEY, "ipsecTunnel",
                            f"the key of spi {sa.spi} does not fit {body.cipher.api_name}; "
                            "send new SAs with the cipher change")


def _spi_sharers(tunnel: Tunnel, spis: list[int], view: Mapping[int, Tunnel]
                 ) -> list[Tunnel]:
    """The tunnels that may own one of ``spis``: looked up in a :class:`TunnelView`'s index,
    every tunnel of another mapping."""
    if not isinstance(view, TunnelView):
        return list(view.values())
    owners = {owner for owner in map(view.spi_owner, spis)
              if owner is not None and owner != tunnel.tunnel_id}
    return [view[owner] for owner in sorted(owners)]


def _check_chain(tunnel: Tunnel, view: Mapping[int, Tunnel]) -> None:
    previous = tunnel.match.previous_tunnel
    field = "match_criteria.tunnelId"
    if previous == tunnel.tunnel_id:
        raise _fail(ErrorCode.UNKNOWN_TUNNEL, field,
                    f"{previous} is this tunnel itself; a rule cannot chain from itself")
    if previous not in view:
        raise _fail(ErrorCode.UNKNOWN_TUNNEL, field, f"{previous} does not exist")
    path = [tunnel.tunnel_id]
    current: int | None = previous
    while current is not None:
        path.append(current)
        if current == tunnel.tunnel_id:
            raise _fail(ErrorCode.UNKNOWN_TUNNEL, field,
                        f"{previous} would make a chaining loop {' → '.join(map(str, path))}")
        current = view[current].match.previous_tunnel if current in view else None


def _join(values: list[int]) -> str:
    return ", ".join(str(value) for value in values)


# --- match ----------------------------------------------------------------------------------


def _parse_match(message: pb.MatchCriteria, *, caps: Capabilities) -> Match:
    field = "match_criteria"
    ingress_port = None
    if message.ingressInterface:
        _require(caps.ingress_interface_matching, f"{field}.ingressInterface", "ingress interface")
        text = message.ingressInterface
        # ASCII digits only and short: str.isdecimal() also accepts other scripts' digits, and
        # int() of thousands of digits raises instead of comparing.
        digits = len(str(caps.max_ingress_port))
        if (not text.isascii() or not text.isdecimal() or len(text) > digits
                or int(text) > caps.max_ingress_port):
            raise _fail(ErrorCode.INVALID_FIELD, f"{field}.ingressInterface",
                        f"{_echo(text)} is not a port number 0…{caps.max_ingress_port}")
        ingress_port = int(text)
    mac = _parse_mac_pair(message.macMatch, f"{field}.macMatch") if message.HasField(
        "macMatch") else None
    previous = None
    if message.tunnelId:
        _require(caps.tunnel_matching, f"{field}.tunnelId", "tunnel id (chaining)")
        previous = message.tunnelId
    esp = overlay = None
    which = message.WhichOneof("match")
    if which == "ipsecMatch":
        esp = _parse_esp_match(message.ipsecMatch, f"{field}.ipsecMatch", caps)
    elif which == "geneveMatch":
        _require(caps.geneve_matching, f"{field}.geneveMatch", "Geneve")
        overlay = _parse_overlay(message.geneveMatch, f"{field}.geneveMatch", "geneve")
    elif which == "vxlanMatch":
        _require(caps.vxlan_matching, f"{field}.vxlanMatch", "VXLAN")
        overlay = _parse_overlay(message.vxlanMatch, f"{field}.vxlanMatch", "vxlan")
    return Match(ingress_port=ingress_port, mac=mac, ip=_parse_ip_match(message, field),
                 previous_tunnel=previous, esp=esp, overlay=overlay)


def _require(supported: bool, field: str, what: str) -> None:
    if not supported:
        raise _fail(ErrorCode.UNSUPPORTED_MATCH, field,
                    f"matching on {what} is not supported by this device (see Capabilities)")


def _parse_esp_match(message: pb.MatchCriteria.IPSecMatch, field: str,
                     caps: Capabilities) -> EspMatch:
    _require(caps.spi_matching, field, "the ESP SPI")
    if message.sn:
        raise _fail(ErrorCode.UNSUPPORTED_MATCH, f"{field}.sn",
                    f"{message.sn}: matching on the ESP sequence number is not supported")
    if message.spi < MIN_SPI:
        raise _fail(ErrorCode.INVALID_FIELD, f"{field}.spi",
                    f"{message.spi} is reserved (RFC 4303: SPIs 0 … 255 are never on the wire)")
    return EspMatch(spi=message.spi)


def _parse_overlay(message: pb.MatchCriteria.GeneveMatch | pb.MatchCriteria.VXLanMatch,
                   field: str, kind: str) -> OverlayMatch:
    vni_code = ErrorCode.GENEVE_FIELD if kind == "geneve" else ErrorCode.INVALID_FIELD
    if message.vni > MAX_UINT24:
        raise _fail(vni_code, f"{field}.vni",
                    f"{message.vni} does not fit 24 bits (max {MAX_UINT24})")
    protocol_type = None
    if kind == "geneve" and isinstance(message, pb.MatchCriteria.GeneveMatch):
        if message.protocolType > MAX_UINT16:
            raise _fail(ErrorCode.GENEVE_FIELD, f"{field}.protocolType",
                        f"{message.protocolType:#x} does not fit 16 bits")
        protocol_type = message.protocolType or None
    mac = _parse_mac_pair(message.macMatch, f"{field}.macMatch") if message.HasField(
        "macMatch") else None
    return OverlayMatch(kind=kind, vni=message.vni or None, protocol_type=protocol_type, mac=mac,
                        ip=_parse_ip_match(message, field))


def _parse_mac_pair(message: pb.MacPair, field: str,
                    code: ErrorCode = ErrorCode.INVALID_FIELD) -> MacPair | None:
    destination = (parse_mac(message.destinationMac, field=f"{field}.destinationMac", code=code)
                   if message.destinationMac else None)
    source = (parse_mac(message.sourceMac, field=f"{field}.sourceMac", code=code)
              if message.sourceMac else None)
    if destination is None and source is None:
        return None
    return MacPair(destination=destination, source=source)


def _parse_ip_match(container: pb.MatchCriteria | pb.MatchCriteria.GeneveMatch |
                    pb.MatchCriteria.VXLanMatch, field: str) -> IpMatch | None:
    which = container.WhichOneof("ip_match")
    if which is None:
        return None
    message = getattr(container, which)
    path = f"{field}.{which}"
    version = 4 if which == "ipv4Match" else 6
    source = _parse_prefix(message.sourceIp, message.sourceIpPrefix, version,
                           f"{path}.sourceIp", f"{path}.sourceIpPrefix")
    destination = _parse_prefix(message.destinationIp, message.destinationIpPrefix, version,
                                f"{path}.destinationIp", f"{path}.destinationIpPrefix")
    if source is None and destination is None:
        return None
    return IpMatch(version=version, source=source, destination=destination)


def _parse_prefix(raw: int | bytes, length: int, version: int, address_field: str,
                  length_field: str) -> Prefix | None:
    max_length = 32 if version == 4 else 128
    if length > max_length:
        raise _fail(ErrorCode.INVALID_FIELD, length_field,
                    f"{length} is over {max_length} (IPv{version})")
    if isinstance(raw, int):
        present = raw != 0
        address: IpAddress = ipv4_from_fixed32(raw)
    else:
        present = bool(raw)
        address = parse_ipv6(raw, field=address_field) if present else IPv6Address(0)
    if not present and length == 0:
        return None
    if length == 0:
        raise _fail(ErrorCode.INVALID_FIELD, length_field,
                    f"0 with {address_field.rsplit('.', 1)[1]} {address} would match every "
                    f"address; give a prefix length 1…{max_length}")
    if version == 6 and not present:
        raise _fail(ErrorCode.MISSING_FIELD, address_field,
                    f"empty, but {length_field.rsplit('.', 1)[1]} is {length}")
    value = int(address)
    network = value & (((1 << length) - 1) << (max_length - length))  # integer math: no parse
    if network != value:
        raise _fail(ErrorCode.INVALID_FIELD, address_field,
                    f"{address}/{length} has host bits set; did you mean "
                    f"{type(address)(network)}/{length}?")
    return Prefix(address=address, length=length)


# --- tunnel bodies --------------------------------------------------------------------------


def _parse_body(request: pb.ipTunnelRequest, *, caps: Capabilities,
                before: Tunnel | None) -> TunnelBody:
    kind = request.WhichOneof("tunnel")
    if kind is None:
        raise _fail(ErrorCode.MISSING_FIELD, "tunnel",
                    "none of ipsecTunnel, geneve, nat is set; a rule needs one tunnel")
    if kind == "nat":
        raise _fail(ErrorCode.UNSUPPORTED_TUNNEL, "nat",
                    "NAT tunnels are not supported by this device (IPsec ESP and Geneve are)")
    if kind == "ipsecTunnel":
        which = request.ipsecTunnel.WhichOneof("ipsec")
        if which is None:
            raise _fail(ErrorCode.MISSING_FIELD, "ipsecTunnel",
                        "neither ipsecEnc nor ipsecDec is set")
        if which == "ipsecEnc":
            previous_enc = _same_kind(before, IpsecEncrypt, "ipsecTunnel.ipsecEnc")
            return _parse_encrypt(request.ipsecTunnel.ipsecEnc, caps, previous_enc)
        previous_dec = _same_kind(before, IpsecDecrypt, "ipsecTunnel.ipsecDec")
        return _parse_decrypt(request.ipsecTunnel.ipsecDec, caps, previous_dec)
    which = request.geneve.WhichOneof("encap_decap")
    if which is None:
        raise _fail(ErrorCode.MISSING_FIELD, "geneve",
                    "neither geneveEncap nor geneveDecap is set")
    if which == "geneveDecap":
        _same_kind(before, GeneveDecap, "geneve.geneveDecap")
        return GeneveDecap()
    _same_kind(before, GeneveEncap, "geneve.geneveEncap")
    return _parse_geneve_encap(request.geneve.geneveEncap, caps)


def _same_kind(before: Tunnel | None, expected: type[_T], field: str) -> _T | None:
    if before is None:
        return None
    if not isinstance(before.body, expected):
        raise _fail(ErrorCode.INVALID_FIELD, field,
                    f"tunnel {before.tunnel_id} is a {before.kind} tunnel; an UPDATE cannot "
                    "change the kind of tunnel (DELETE it and CREATE a new one)")
    return before.body


def _parse_mode(value: int, field: str, caps: Capabilities) -> TunnelMode:
    try:
        mode = TunnelMode(value)
    except ValueError:
        raise _fail(ErrorCode.UNSUPPORTED_MODE, field,
                    f"{value} is not an IPSecTunnelType") from None
    if mode not in caps.tunnel_modes:
        raise _fail(ErrorCode.UNSUPPORTED_MODE, field,
                    f"{mode.name} is not supported by this device (see Capabilities)")
    return mode


def _parse_cipher(value: int, field: str, caps: Capabilities) -> Cipher:
    try:
        cipher = Cipher(value)
    except ValueError:
        raise _fail(ErrorCode.UNSUPPORTED_CIPHER, field,
                    f"{value} is not an ENC_TYPE value") from None
    if cipher not in caps.ciphers:
        raise _fail(ErrorCode.UNSUPPORTED_CIPHER, field,
                    f"{cipher.api_name} is not supported by this device (see Capabilities)")
    return cipher


def _parse_sa(message: pb.IPSecSAParams, cipher: Cipher, field: str) -> SecurityAssociation:
    if message.spi < MIN_SPI:
        raise _fail(ErrorCode.IPSEC_FIELD, f"{field}.spi",
                    f"{message.spi} is reserved (RFC 4303: SPIs 0 … 255 are never on the wire)")
    secret = parse_key(message.encryptionKey, key_len=cipher.key_len, salt_len=cipher.salt_len,
                       cipher_name=cipher.api_name, field=f"{field}.encryptionKey")
    return SecurityAssociation(spi=message.spi, secret=secret)


def _check_sa_operation(message: pb.IPSecSAParams, field: str, allowed: tuple[int, ...],
                        hint: str) -> None:
    if message.operation not in allowed:
        name = _OPERATION_NAMES.get(message.operation, str(message.operation))
        raise _fail(ErrorCode.IPSEC_FIELD, f"{field}.operation", f"{name}: {hint}")


def _parse_tunnel_ips(message: pb.IPSecEnc, field: str) -> IpPair | None:
    which = message.WhichOneof("tunnelIps")
    if which is None:
        return None
    return _parse_ip_pair(getattr(message, which), f"{field}.{which}", ErrorCode.IPSEC_FIELD)


def _parse_ip_pair(message: pb.IPV4Pair | pb.IPV6Pair, field: str, code: ErrorCode) -> IpPair:
    addresses: list[IpAddress] = []
    for name in ("sourceIp", "destinationIp"):
        raw = getattr(message, name)
        address: IpAddress
        if isinstance(raw, int):
            address = ipv4_from_fixed32(raw)
        else:
            if not raw:
                raise _fail(code, f"{field}.{name}", "missing")
            address = parse_ipv6(raw, field=f"{field}.{name}", code=code)
        if address.is_unspecified or address.is_multicast:
            raise _fail(code, f"{field}.{name}",
                        f"{address} is not a usable unicast outer address")
        addresses.append(address)
    return IpPair(source=addresses[0], destination=addresses[1])


def _check_mode_addresses(mode: TunnelMode, outer: IpPair | None, field: str) -> None:
    if mode.is_tunnel and outer is None:
        raise _fail(ErrorCode.IPSEC_FIELD, field,
                    f"tunnelType {mode.name} needs the outer addresses: set ipv4_tunnel or "
                    "ipv6_tunnel")
    if not mode.is_tunnel and outer is not None:
        raise _fail(ErrorCode.IPSEC_FIELD, field,
                    f"ipv4_tunnel/ipv6_tunnel set, but tunnelType {mode.name} keeps the packet's "
                    "own addresses; remove them or use a TUNNEL type")


def _parse_encrypt(message: pb.IPSecEnc, caps: Capabilities,
                   before: IpsecEncrypt | None) -> IpsecEncrypt:
    field = "ipsecTunnel.ipsecEnc"
    # On UPDATE a zero enum (proto3 "not set") keeps the current value: UPDATE changes only what
    # it carries.
    mode = (before.mode if before is not None and message.tunnelType == 0
            else _parse_mode(message.tunnelType, f"{field}.tunnelType", caps))
    cipher = (before.cipher if before is not None and message.encryptionType == 0
              else _parse_cipher(message.encryptionType, f"{field}.encryptionType", caps))
    if message.HasField("ipsecSA"):
        _check_sa_operation(message.ipsecSA, f"{field}.ipsecSA",
                            (pb._NONE, pb._CREATE, pb._UPDATE),
                            "an encrypt tunnel has exactly one SA; send the new SA to replace it")
        sa = _parse_sa(message.ipsecSA, cipher, f"{field}.ipsecSA")
    elif before is not None:
        sa = before.sa
    else:
        raise _fail(ErrorCode.IPSEC_FIELD, f"{field}.ipsecSA",
                    "missing; an encrypt tunnel needs its SA (spi, encryptionKey)")
    outer = _parse_tunnel_ips(message, field)
    if outer is None and before is not None:
        outer = before.outer
    _check_mode_addresses(mode, outer, field)
    return IpsecEncrypt(mode=mode, cipher=cipher, sa=sa, outer=outer)


def _parse_decrypt(message: pb.IPSecDec, caps: Capabilities,
                   before: IpsecDecrypt | None) -> IpsecDecrypt:
    field = "ipsecTunnel.ipsecDec"
    mode = (before.mode if before is not None and message.tunnelType == 0
            else _parse_mode(message.tunnelType, f"{field}.tunnelType", caps))
    cipher = (before.cipher if before is not None and message.encryptionType == 0
              else _parse_cipher(message.encryptionType, f"{field}.encryptionType", caps))
    if before is None:
        if not message.ipsecSAs:
            raise _fail(ErrorCode.IPSEC_FIELD, f"{field}.ipsecSAs",
                        "empty; a decrypt tunnel needs at least one SA")
        _check_sa_count(message, field, caps)
        sas: list[SecurityAssociation] = []
        seen: set[int] = set()
        for index, sa_message in enumerate(message.ipsecSAs):
            sa_field = f"{field}.ipsecSAs[{index}]"
            _check_sa_operation(sa_message, sa_field, (pb._NONE, pb._CREATE),
                                "a CREATE can only create SAs")
            sa = _parse_sa(sa_message, cipher, sa_field)
            if sa.spi in seen:
                raise _fail(ErrorCode.IPSEC_FIELD, f"{sa_field}.spi",
                            f"{sa.spi} is listed twice")
            seen.add(sa.spi)
            sas.append(sa)
        return IpsecDecrypt(mode=mode, cipher=cipher, sas=tuple(sas))
    _check_sa_count(message, field, caps)
    sas = list(before.sas)
    for index, sa_message in enumerate(message.ipsecSAs):
        sa_field = f"{field}.ipsecSAs[{index}]"
        _check_sa_operation(sa_message, sa_field, (pb._CREATE, pb._DELETE),
                            "a decrypt UPDATE adds (_CREATE) or removes (_DELETE) SAs")
        spis = [existing.spi for existing in sas]
        if sa_message.operation == pb._CREATE:
            if sa_message.spi in spis:
                raise _fail(ErrorCode.IPSEC_FIELD, f"{sa_field}.spi",
                            f"{sa_message.spi} is already an SA of this tunnel")
            sas.append(_parse_sa(sa_message, cipher, sa_field))
            continue
        if sa_message.spi not in spis:
            raise _fail(ErrorCode.IPSEC_FIELD, f"{sa_field}.spi",
                        f"{sa_message.spi} is not an SA of this tunnel (its SAs: {_join(spis)})")
        if len(sas) == 1:
            raise _fail(ErrorCode.IPSEC_FIELD, f"{sa_field}.spi",
                        f"removing {sa_message.spi} would leave the decrypt tunnel without an "
                        "SA; DELETE the tunnel instead")
        sas = [existing for existing in sas if existing.spi != sa_message.spi]
    return IpsecDecrypt(mode=mode, cipher=cipher, sas=tuple(sas))


def _check_sa_count(message: pb.IPSecDec, field: str, caps: Capabilities) -> None:
    """Refuse more SAs in one request than the device holds at all, before parsing any key:
    such a request can never apply, and parsing it would cost time for nothing."""
    if len(message.ipsecSAs) > caps.max_sas:
        raise _fail(ErrorCode.IPSEC_FIELD, f"{field}.ipsecSAs",
                    f"{len(message.ipsecSAs)} SAs; this device holds at most {caps.max_sas} "
                    "SAs in all")


def _parse_geneve_encap(message: pb.GENEVEEncap, caps: Capabilities) -> GeneveEncap:
    field = "geneve.geneveEncap"
    which = message.WhichOneof("ip")
    if which is None:
        raise _fail(ErrorCode.GENEVE_FIELD, field,
                    "outerIpv4Pair or outerIpv6Pair is required (the outer addresses)")
    outer = _parse_ip_pair(getattr(message, which), f"{field}.{which}", ErrorCode.GENEVE_FIELD)
    inner_mac = (_parse_mac_pair(message.innerMacPair, f"{field}.innerMacPair",
                                 ErrorCode.GENEVE_FIELD)
                 if message.HasField("innerMacPair") else None)
    if message.vni > MAX_UINT24:
        raise _fail(ErrorCode.GENEVE_FIELD, f"{field}.vni",
                    f"{message.vni} does not fit 24 bits (max {MAX_UINT24})")
    if message.protocolType > MAX_UINT16:
        raise _fail(ErrorCode.GENEVE_FIELD, f"{field}.protocolType",
                    f"{message.protocolType:#x} does not fit 16 bits")
    if message.protocolType not in (0, GENEVE_ETHERNET):
        raise _fail(ErrorCode.GENEVE_FIELD, f"{field}.protocolType",
                    f"{message.protocolType:#x}: this device's Geneve encapsulation always "
                    f"carries an Ethernet frame ({GENEVE_ETHERNET:#x}); send 0 or "
                    f"{GENEVE_ETHERNET:#x}")
    if len(message.geneveOption) > caps.max_geneve_options:
        raise _fail(ErrorCode.TOO_MANY_OPTIONS, f"{field}.geneveOption",
                    f"{len(message.geneveOption)} options; this device supports at most "
                    f"{caps.max_geneve_options} (numberGeneveOptionsSupported)")
    options = tuple(_parse_option(option, f"{field}.geneveOption[{index}]", caps)
                    for index, option in enumerate(message.geneveOption))
    critical = any(option.option_type & 0x80 for option in options)
    if critical != message.criticalOptionPresent:
        raise _fail(ErrorCode.GENEVE_FIELD, f"{field}.criticalOptionPresent",
                    f"{str(message.criticalOptionPresent).lower()}, but "
                    f"{'an' if critical else 'no'} option has the critical bit (type & 0x80) set")
    encap = GeneveEncap(outer=outer, inner_mac=inner_mac, vni=message.vni,
                        protocol_type=message.protocolType or GENEVE_ETHERNET,
                        control_packet=message.controlPacket,
                        critical_option_present=message.criticalOptionPresent, options=options)
    words = encap.option_length_words
    if message.optionLength not in (0, words, words + 2):
        raise _fail(ErrorCode.GENEVE_FIELD, f"{field}.optionLength",
                    f"{message.optionLength} does not match the options: {words} four-byte words "
                    f"by RFC 8926 ({words + 2} counting the 8-byte fixed header, as the reference "
                    "client does; 0 lets the server compute it)")
    return encap


def _parse_option(message: pb.GENEVEOption, field: str, caps: Capabilities) -> GeneveOption:
    if message.optionClass > MAX_UINT16:
        raise _fail(ErrorCode.GENEVE_OPTION, f"{field}.optionClass",
                    f"{message.optionClass:#x} does not fit 16 bits")
    if message.type > 0xFF:
        raise _fail(ErrorCode.GENEVE_OPTION, f"{field}.type",
                    f"{message.type:#x} does not fit 8 bits")
    max_words = caps.max_geneve_option_data // 4
    if message.length > max_words:
        raise _fail(ErrorCode.GENEVE_OPTION, f"{field}.length",
                    f"{message.length} words ({4 * message.length} bytes) exceeds this device's "
                    f"{caps.max_geneve_option_data} bytes of data per option")
    if len(message.data) != 4 * message.length:
        raise _fail(ErrorCode.GENEVE_OPTION, f"{field}.data",
                    f"{len(message.data)} bytes, but length {message.length} says "
                    f"{4 * message.length} (length counts 4-byte words)")
    return GeneveOption(option_class=message.optionClass, option_type=message.type,
                        data=bytes(message.data))

