"""The only module that spells P4 names: tables, actions, match fields, parameters, counters.

:meth:`Pipeline.load` reads the P4Info with finsy and checks every name this module uses
against it, failing fast with ``no table 'x'; did you mean 'y'?``, so a drift between
``p4src/`` and the controller shows up at start-up instead of as a refused write. The builders
turn the controller's model into finsy entities (finsy encodes the values); sizes for
Capabilities come from the same P4Info.

Rule priority (``tunnel_rules`` is ternary, the highest priority wins; docs/api.md):
chained rules (``prev_tunnel`` set) before unchained ones, then more matched prefix bits
(outer and inner, source and destination), then more exact-matched other fields, then the lower
tunnel index; every tunnel's priority is unique, so two rules never have the same key.

A decrypt tunnel also owns one ``esp_endpoints`` entry: its rule's match without the SPI, at a
priority from the same formula. The switch looks it up only for ESP that no ``tunnel_rules``
entry took, and drops such ESP as an unknown SPI on that tunnel (its in and in-drop counters);
ESP no decrypt tunnel's match claims is routed like any IP packet (docs/dataplane.md "ESP with
an unknown SPI").
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Protocol

import finsy as fy

from controller.model import (
    GeneveDecap,
    GeneveEncap,
    IpMatch,
    IpsecDecrypt,
    IpsecEncrypt,
    MacPair,
    Match,
    Tunnel,
)

log = logging.getLogger(__name__)

TUNNEL_RULES = "TunnelIngress.classifier.tunnel_rules"
DECRYPT_SAS = "TunnelIngress.esp.decrypt_sas"
ESP_ENDPOINTS = "TunnelIngress.classifier.esp_endpoints"
ROUTES_V4 = "TunnelIngress.forwarding.routes_v4"
ROUTES_V6 = "TunnelIngress.forwarding.routes_v6"
ENCAP_GENEVE_V4 = "TunnelIngress.classifier.encap_geneve_v4"
ENCAP_GENEVE_V6 = "TunnelIngress.classifier.encap_geneve_v6"
DECAP_GENEVE = "TunnelIngress.classifier.decap_geneve"
ENCRYPT_TRANSPORT = "TunnelIngress.classifier.ipsec_encrypt_transport"
ENCRYPT_TUNNEL_V4 = "TunnelIngress.classifier.ipsec_encrypt_tunnel_v4"
ENCRYPT_TUNNEL_V6 = "TunnelIngress.classifier.ipsec_encrypt_tunnel_v6"
DECRYPT = "TunnelIngress.classifier.ipsec_decrypt"
DROP_UNKNOWN_SPI = "TunnelIngress.classifier.drop_unknown_spi"
SET_DECRYPT_SA = "TunnelIngress.esp.set_decrypt_sa"
SET_NEXT_HOP = "TunnelIngress.forwarding.set_next_hop"
TUNNEL_IN = "TunnelIngress.counters.tunnel_in"
TUNNEL_OUT = "TunnelIngress.counters.tunnel_out"
TUNNEL_DROP_IN = "TunnelIngress.counters.tunnel_drop_in"
TUNNEL_DROP_OUT = "TunnelIngress.counters.tunnel_drop_out"
TUNNEL_COUNTERS = (TUNNEL_IN, TUNNEL_OUT, TUNNEL_DROP_IN, TUNNEL_DROP_OUT)
# Switch-wide drops by DROP_* code and parser errors by PARSER_ERROR_* kind (defines.p4 names
# the indexes: controller/drop_reasons.py); read for the metrics endpoint.
DROP_REASONS = "TunnelIngress.counters.drop_reasons"
PARSER_ERRORS = "TunnelIngress.counters.parser_errors"
# Per-tunnel counter → the counter of its length deltas (p4src/include/counters.p4 LengthDelta):
# the four tunnel counters are packets_and_bytes and count v1model's pass length, which is the
# exact frame for in and drop-in; for out and drop-out cell index * bits + b counts the frames
# whose emitted length - pass length + 2^(bits - 1) has bit b set (tunnel_figures recombines).
TUNNEL_DELTAS = {name: f"{name}_delta.bits" for name in (TUNNEL_OUT, TUNNEL_DROP_OUT)}

# tunnel_header key values (p4src/include/defines.p4 TUNNEL_HEADER_*; checked by tests against it)
TUNNEL_HEADER_ESP = 1
TUNNEL_HEADER_GENEVE = 2
TUNNEL_HEADER_VXLAN = 3

_TABLE_KEYS = {
    TUNNEL_RULES: ("ingress_port", "prev_tunnel", "dst_mac", "src_mac", "ip_version", "ipv4_src",
                   "ipv4_dst", "ipv6_src", "ipv6_dst", "tunnel_header", "esp_spi", "geneve_vni",
                   "geneve_protocol", "vxlan_vni", "inner_dst_mac", "inner_src_mac",
                   "inner_ip_version", "inner_ipv4_src", "inner_ipv4_dst", "inner_ipv6_src",
                   "inner_ipv6_dst"),
    DECRYPT_SAS: ("tunnel_index", "spi"),
    ESP_ENDPOINTS: ("ingress_port", "prev_tunnel", "dst_mac", "src_mac", "ip_version",
                    "ipv4_src", "ipv4_dst", "ipv6_src", "ipv6_dst"),
    ROUTES_V4: ("ipv4_dst",),
    ROUTES_V6: ("ipv6_dst",),
}
_GENEVE_PARAMS = ("tunnel_index", "next_action", "src_addr", "dst_addr", "inner_dst_mac",
                  "inner_src_mac", "vni", "oam", "critical", "option_words", "options")
_ACTION_PARAMS = {
    ENCAP_GENEVE_V4: _GENEVE_PARAMS,
    ENCAP_GENEVE_V6: _GENEVE_PARAMS,
    DECAP_GENEVE: ("tunnel_index", "next_action"),
    ENCRYPT_TRANSPORT: ("tunnel_index", "next_action", "sa_index", "spi", "nat_t"),
    ENCRYPT_TUNNEL_V4: ("tunnel_index", "next_action", "sa_index", "spi", "nat_t", "src_addr",
                        "dst_addr"),
    ENCRYPT_TUNNEL_V6: ("tunnel_index", "next_action", "sa_index", "spi", "nat_t", "src_addr",
                        "dst_addr"),
    DECRYPT: ("tunnel_index", "next_action", "tunnel_mode"),
    DROP_UNKNOWN_SPI: ("tunnel_index",),
    SET_DECRYPT_SA: ("sa_index",),
    SET_NEXT_HOP: ("port", "src_mac", "dst_mac"),
}
_ANNOTATIONS = ("max_geneve_options", "max_geneve_option_data", "max_passes")


class PipelineMismatch(ValueError):
    """The P4Info lacks a name the controller uses (the message suggests the closest one)."""


def _did_you_mean(kind: str, name: str, known: Iterable[str]) -> PipelineMismatch:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return PipelineMismatch(f"no {kind} {name!r}{hint}")


class CellCounts(Protocol):
    """Packet and byte counts by (counter name, index), as a counter snapshot holds them."""

    def get(self, cell: tuple[str, int], default: int, /) -> int: ...

    def get_bytes(self, cell: tuple[str, int], default: int, /) -> int: ...


@dataclass(frozen=True, kw_only=True)
class PipelineSizes:
    """What the P4Info says about capacity (Capabilities reports these)."""

    max_tunnels: int  # usable tunnel indices 1 … tunnel counter size - 1
    max_sas: int  # usable SA indices 1 … decrypt_sas size - 1
    tunnel_rules: int
    routes_v4: int
    routes_v6: int
    max_geneve_options: int
    max_geneve_option_data: int
    max_passes: int


@dataclass(frozen=True, kw_only=True)
class Route:
    """One routes-file line: a prefix, the port and the MACs to rewrite to."""

    address: IPv4Address | IPv6Address
    length: int
    port: int
    src_mac: bytes
    dst_mac: bytes


def _mac(value: bytes | None) -> int:
    return int.from_bytes(value, "big") if value else 0


def _mask(bits: int, length: int) -> int:
    return ((1 << length) - 1) << (bits - length)


class Pipeline:
    """The loaded P4Info, checked against every name the controller uses, and entity builders."""

    def __init__(self, schema: fy.P4Schema, p4info_path: Path) -> None:
        self.schema = schema
        self.p4info_path = p4info_path
        self._check_names()
        self.delta_bits = 0  # length-delta cells per tunnel (sizes.p4 LENGTH_DELTA_BITS): _sizes
        self.sizes = self._sizes()

    @classmethod
    def load(cls, p4info_path: Path) -> Pipeline:
        """Read and check the P4Info text file (raises :class:`PipelineMismatch`/OSError)."""
        if not p4info_path.is_file():
            raise PipelineMismatch(f"--p4info {str(p4info_path)!r}: no such file")
        return cls(fy.P4Schema(p4info_path), p4info_path)

    def _check_names(self) -> None:
        schema = self.schema
        tables = [table.name for table in schema.tables]
        for table_name, keys in _TABLE_KEYS.items():
            table = schema.tables.get(table_name)
            if table is None:
                raise _did_you_mean("table", table_name, tables)
            fields = [field.name for field in table.match_fields]
            for key in keys:
                if key not in fields:
                    raise _did_you_mean(f"match field in {table_name}:", key, fields)
        actions = [action.name for action in schema.actions]
        for action_name, params in _ACTION_PARAMS.items():
            action = schema.actions.get(action_name)
            if action is None:
                raise _did_you_mean("action", action_name, actions)
            names = [param.name for param in action.params]
            for param in params:
                if param not in names:
                    raise _did_you_mean(f"parameter of {action_name}:", param, names)
        counters = [counter.name for counter in schema.counters]
        for counter in (*TUNNEL_COUNTERS, *TUNNEL_DELTAS.values(), DROP_REASONS, PARSER_ERRORS):
            if schema.counters.get(counter) is None:
                raise _did_you_mean("counter", counter, counters)

    def _sizes(self) -> PipelineSizes:
        rules = self.schema.tables[TUNNEL_RULES]
        annotations = {annotation.name: annotation.body for annotation in rules.annotations}
        values: dict[str, int] = {}
        for name in _ANNOTATIONS:
            if name not in annotations:
                raise _did_you_mean(f"annotation on {TUNNEL_RULES}:", name, annotations)
            body = annotations[name]
            values[name] = int(body[0] if isinstance(body, list) else str(body))
        counter_size = min(self.schema.counters[name].size for name in TUNNEL_COUNTERS)
        endpoints = self.schema.tables[ESP_ENDPOINTS].size
        if endpoints < counter_size - 1:
            raise PipelineMismatch(f"table {ESP_ENDPOINTS!r} has {endpoints} entries; "
                                   f"{counter_size - 1} tunnels may all be decrypt tunnels, "
                                   "one entry each")
        both = fy.P4CounterUnit.BOTH
        for name in TUNNEL_COUNTERS:
            unit = self.schema.counters[name].unit
            if unit != both:
                raise PipelineMismatch(f"counter {name!r} counts {unit.name}; the tunnel "
                                       "figures need packets and bytes")
        cells = {self.schema.counters[name].size for name in TUNNEL_DELTAS.values()}
        bits, rest = divmod(min(cells), counter_size)
        if len(cells) != 1 or rest or not 1 <= bits <= 16:
            raise PipelineMismatch(f"counters {sorted(TUNNEL_DELTAS.values())} have "
                                   f"{sorted(cells)} cells; the length deltas of {counter_size} "
                                   "tunnels need the same whole number of cells per tunnel")
        self.delta_bits = bits
        return PipelineSizes(
            max_tunnels=counter_size - 1,
            max_sas=self.schema.tables[DECRYPT_SAS].size - 1,
            tunnel_rules=rules.size,
            routes_v4=self.schema.tables[ROUTES_V4].size,
            routes_v6=self.schema.tables[ROUTES_V6].size,
            **values)

    # ---- builders ------------------------------------------------------------------------

    def rule_entries(self, tunnel: Tunnel, *, tunnel_index: int,
                     sa_indexes: dict[int, int],
                     tunnel_indexes: dict[int, int]) -> list[fy.P4TableEntry]:
        """The rule entries of one tunnel: one ``tunnel_rules`` entry, or for a decrypt tunnel
        one per SA SPI and its ``esp_endpoints`` entry (unknown SPIs, module doc).

        ``tunnel_indexes`` maps tunnel ids to indices (for ``prev_tunnel``); ``sa_indexes``
        maps this tunnel's SPIs to worker SA indices.
        """
        match = self._match(tunnel.match, tunnel_indexes)
        action = self._action(tunnel, tunnel_index, sa_indexes)
        if isinstance(tunnel.body, IpsecDecrypt):
            entries = []
            for sa in tunnel.body.sas:
                spi_match = {**match, "tunnel_header": TUNNEL_HEADER_ESP, "esp_spi": sa.spi}
                entries.append(self._rule(spi_match, action, tunnel_index))
            return [*entries, self.esp_endpoint_entry(match, tunnel_index)]
        return [self._rule(match, action, tunnel_index)]

    def esp_endpoint_entry(self, match: dict[str, object],
                           tunnel_index: int) -> fy.P4TableEntry:
        """``esp_endpoints``: the decrypt rule's match without the SPI → drop on this tunnel.

        Validation leaves a decrypt match only outer fields and the SPI (no overlay), so the
        entry claims exactly the ESP the tunnel's rules would match, whatever its SPI."""
        outer = {name: value for name, value in match.items()
                 if name not in ("tunnel_header", "esp_spi")}
        return fy.P4TableEntry(ESP_ENDPOINTS, match=fy.P4TableMatch(outer),
                               action=fy.P4TableAction(DROP_UNKNOWN_SPI,
                                                       tunnel_index=tunnel_index),
                               priority=self.priority(outer, tunnel_index))

    def _rule(self, match: dict[str, object], action: fy.P4TableAction,
              tunnel_index: int) -> fy.P4TableEntry:
        return fy.P4TableEntry(TUNNEL_RULES, match=fy.P4TableMatch(match), action=action,
                               priority=self.priority(match, tunnel_index))

    def priority(self, match: dict[str, object], tunnel_index: int) -> int:
        """Chained first, then prefix bits, then other fields, then the lower tunnel index."""
        chained = 1 if "prev_tunnel" in match else 0
        prefix_bits = 0
        others = 0
        for name, value in match.items():
            if name == "prev_tunnel":
                continue
            if isinstance(value, tuple) and name.startswith(("ipv", "inner_ipv")):
                prefix_bits += bin(int(value[1])).count("1")
            else:
                others += 1
        max_index = self.sizes.max_tunnels + 1
        # P4Runtime priorities are int32: at 65,536 tunnels the score gets 15 bits. Prefix bits
        # are at most 512 (< 1024) and a match has at most 12 other fields (< 16), so no order
        # is lost.
        score = ((chained * 1024 + prefix_bits) * 16 + min(others, 15))
        return score * max_index + (max_index - tunnel_index)

    def _match(self, match: Match, tunnel_indexes: dict[int, int]) -> dict[str, object]:
        fields: dict[str, object] = {}
        if match.ingress_port is not None:
            fields["ingress_port"] = match.ingress_port
        if match.previous_tunnel is not None:
            fields["prev_tunnel"] = tunnel_indexes[match.previous_tunnel]
        self._mac_fields(fields, match.mac, "")
        self._ip_fields(fields, match.ip, "")
        if match.esp is not None:
            fields["tunnel_header"] = TUNNEL_HEADER_ESP
            fields["esp_spi"] = match.esp.spi
        overlay = match.overlay
        if overlay is not None:
            if overlay.kind == "geneve":
                fields["tunnel_header"] = TUNNEL_HEADER_GENEVE
                if overlay.vni:
                    fields["geneve_vni"] = overlay.vni
                if overlay.protocol_type:
                    fields["geneve_protocol"] = overlay.protocol_type
            else:
                fields["tunnel_header"] = TUNNEL_HEADER_VXLAN
                if overlay.vni:
                    fields["vxlan_vni"] = overlay.vni
            self._mac_fields(fields, overlay.mac, "inner_")
            self._ip_fields(fields, overlay.ip, "inner_")
        return fields

    @staticmethod
    def _mac_fields(fields: dict[str, object], macs: MacPair | None, prefix: str) -> None:
        if macs is None:
            return
        if macs.destination is not None:
            fields[f"{prefix}dst_mac"] = _mac(macs.destination)
        if macs.source is not None:
            fields[f"{prefix}src_mac"] = _mac(macs.source)

    @staticmethod
    def _ip_fields(fields: dict[str, object], ip: IpMatch | None, prefix: str) -> None:
        if ip is None:
            return
        fields[f"{prefix}ip_version"] = ip.version
        bits = 32 if ip.version == 4 else 128
        for side, value in (("src", ip.source), ("dst", ip.destination)):
            if value is not None and value.length > 0:
                fields[f"{prefix}ipv{ip.version}_{side}"] = (
                    int(value.address), _mask(bits, value.length))

    def _action(self, tunnel: Tunnel, tunnel_index: int,
                sa_indexes: dict[int, int]) -> fy.P4TableAction:
        common = {"tunnel_index": tunnel_index, "next_action": int(tunnel.next_action)}
        body = tunnel.body
        if isinstance(body, GeneveEncap):
            v6 = isinstance(body.outer.source, IPv6Address)
            region = b"".join(
                ((option.option_class << 16) | (option.option_type << 8)
                 | option.length_words).to_bytes(4, "big") + option.data
                for option in body.options)
            options_bits = self.schema.actions[ENCAP_GENEVE_V4].params["options"].bitwidth
            options_value = int.from_bytes(region.ljust(options_bits // 8, b"\0"), "big")
            inner = body.inner_mac or MacPair()
            return fy.P4TableAction(
                ENCAP_GENEVE_V6 if v6 else ENCAP_GENEVE_V4, **common,
                src_addr=int(body.outer.source), dst_addr=int(body.outer.destination),
                inner_dst_mac=_mac(inner.destination), inner_src_mac=_mac(inner.source),
                vni=body.vni, oam=int(body.control_packet),
                critical=int(body.critical_option_present),
                option_words=body.option_length_words, options=options_value)
        if isinstance(body, GeneveDecap):
            return fy.P4TableAction(DECAP_GENEVE, **common)
        if isinstance(body, IpsecEncrypt):
            crypto = {"sa_index": sa_indexes[body.sa.spi], "spi": body.sa.spi,
                      "nat_t": int(body.mode.nat_traversal)}
            if body.outer is None:
                return fy.P4TableAction(ENCRYPT_TRANSPORT, **common, **crypto)
            v6 = isinstance(body.outer.source, IPv6Address)
            return fy.P4TableAction(ENCRYPT_TUNNEL_V6 if v6 else ENCRYPT_TUNNEL_V4, **common,
                                    **crypto, src_addr=int(body.outer.source),
                                    dst_addr=int(body.outer.destination))
        assert isinstance(body, IpsecDecrypt)
        return fy.P4TableAction(DECRYPT, **common, tunnel_mode=int(body.mode.is_tunnel))

    def decrypt_sa_entry(self, *, tunnel_index: int, spi: int, sa_index: int
                         ) -> fy.P4TableEntry:
        """``decrypt_sas``: (tunnel index, SPI) → worker SA index."""
        return fy.P4TableEntry(DECRYPT_SAS,
                               match=fy.P4TableMatch(tunnel_index=tunnel_index, spi=spi),
                               action=fy.P4TableAction(SET_DECRYPT_SA, sa_index=sa_index))

    def route_entry(self, route: Route) -> fy.P4TableEntry:
        """``routes_v4``/``routes_v6`` entry for one routes-file line."""
        v6 = isinstance(route.address, IPv6Address)
        table, field = (ROUTES_V6, "ipv6_dst") if v6 else (ROUTES_V4, "ipv4_dst")
        # An LPM prefix of length 0 is written as "no match field" (P4Runtime 9.1.1).
        match = {field: (int(route.address), route.length)} if route.length else {}
        return fy.P4TableEntry(table, match=fy.P4TableMatch(match),
                               action=fy.P4TableAction(SET_NEXT_HOP, port=route.port,
                                                       src_mac=_mac(route.src_mac),
                                                       dst_mac=_mac(route.dst_mac)))

    def counter_resets(self, tunnel_index: int) -> list[fy.P4CounterEntry]:
        """Zero the four per-tunnel counters and their delta cells at ``tunnel_index`` (a reused
        index starts at 0)."""
        return [fy.P4CounterEntry(name, index=index, data=fy.P4CounterData())
                for name, index in self.counter_cells(tunnel_index)]

    def tunnel_counter_arrays(self) -> dict[str, tuple[int, int]]:
        """Every counter holding tunnel figures: name → (P4Info id, size), for bulk reads."""
        return {name: (self.schema.counters[name].id, self.schema.counters[name].size)
                for name in (*TUNNEL_COUNTERS, *TUNNEL_DELTAS.values())}

    def drop_counter_arrays(self) -> dict[str, tuple[int, int]]:
        """The switch's drops by reason and its parser errors by kind: name → (id, size)."""
        return {name: (self.schema.counters[name].id, self.schema.counters[name].size)
                for name in (DROP_REASONS, PARSER_ERRORS)}

    def counter_cells(self, tunnel_index: int) -> list[tuple[str, int]]:
        """Every (counter, index) holding a figure of the tunnel at ``tunnel_index``."""
        base = tunnel_index * self.delta_bits
        return [(name, tunnel_index) for name in TUNNEL_COUNTERS] + [
            (delta, base + bit) for delta in TUNNEL_DELTAS.values()
            for bit in range(self.delta_bits)]

    def tunnel_figures(self, tunnel_index: int,
                       counts: CellCounts) -> dict[str, tuple[int, int]]:
        """(packets, bytes) per tunnel counter name, from the counts read at
        :meth:`counter_cells` (a cell not read counts 0): in and drop-in as counted; out and
        drop-out bytes = counted bytes + Σ delta cell(b) << b - packets × 2^(bits - 1)."""
        bits = self.delta_bits
        base = tunnel_index * bits
        figures = {}
        for name in TUNNEL_COUNTERS:
            packets = counts.get((name, tunnel_index), 0)
            nbytes = counts.get_bytes((name, tunnel_index), 0)
            delta = TUNNEL_DELTAS.get(name)
            if delta is not None and packets:
                nbytes += sum(counts.get((delta, base + bit), 0) << bit for bit in range(bits))
                nbytes -= packets << (bits - 1)
            figures[name] = (packets, nbytes)
        return figures

    def managed_tables(self) -> tuple[str, ...]:
        """The tables the controller owns entirely (reconciliation compares them whole)."""
        return (TUNNEL_RULES, ESP_ENDPOINTS, DECRYPT_SAS, ROUTES_V4, ROUTES_V6)
