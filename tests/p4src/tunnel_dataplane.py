"""Test harness: p4src/tunnel_offload.p4 running in-process on p4sim.

Tables, actions, counters and match fields are addressed by their P4Runtime names (a unique
suffix is enough, as p4runtime-shell allows), so the tests read like the control plane that will
program the real thing. Constants come from the P4 source itself (p4_constants, shared with
the PTF tests), never retyped here.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from finsy.proto import p4i
from p4_constants import C, p4_constants
from scapy.packet import Packet

from p4sim.program import Program, load_program
from p4sim.runtime import ActionCall, FieldMatch, TableEntry
from p4sim.switch import Switch

__all__ = ["C", "p4_constants", "P4INFO_FILE", "program", "to_int", "Ternary", "Lpm",
           "TunnelDataplane"]

REPO = Path(__file__).resolve().parents[2]
P4_DIR = REPO / "p4src"
P4_PROGRAM = P4_DIR / "tunnel_offload.p4"
P4INFO_FILE = P4_DIR / "tunnel_offload.p4info.txtpb"


@cache
def program() -> Program:
    """The program, loaded once per test session (loading compiles it)."""
    return load_program(P4_PROGRAM)


def to_int(value: int | str | bytes) -> int:
    """MAC ("02:00:00:00:00:01"), IPv4/IPv6 text, bytes (big-endian) or int → int."""
    if isinstance(value, int):
        return value
    if isinstance(value, bytes):
        return int.from_bytes(value, "big")
    if re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", value):
        return int(value.replace(":", ""), 16)
    return int(ipaddress.ip_address(value))


@dataclass(frozen=True)
class Ternary:
    """A ternary match value with its mask."""

    value: int | str | bytes
    mask: int | str | bytes


@dataclass(frozen=True)
class Lpm:
    """An LPM match: address and prefix length."""

    value: int | str | bytes
    prefix_len: int


def _unique(items: Any, name: str, what: str) -> Any:
    found = [i for i in items
             if i.preamble.name == name or i.preamble.name.endswith("." + name)]
    if len(found) != 1:
        names = sorted(i.preamble.name for i in items)
        raise KeyError(f"{len(found)} {what}s named {name!r}; have {names}")
    return found[0]


class TunnelDataplane:
    """One fresh p4sim switch running the TunnelOffload program."""

    def __init__(self) -> None:
        self.program = program()
        self.p4info = self.program.p4info
        self.switch = Switch(self.program)

    # -- control plane ---------------------------------------------------------------------------

    def add_entry(self, table: str, action: str, *, match: dict[str, Any] | None = None,
                  params: dict[str, Any] | None = None, priority: int = 0) -> TableEntry:
        """Insert an entry; `match` maps key @names to values (int/str → exact, or a full-mask
        ternary on a ternary key; Ternary; Lpm), `params` maps every action parameter name."""
        tinfo = _unique(self.p4info.tables, table, "table")
        ainfo = _unique(self.p4info.actions, action, "action")
        fields = {f.name: f for f in tinfo.match_fields}
        matches = []
        for name, value in (match or {}).items():
            if name not in fields:
                raise KeyError(f"table {tinfo.preamble.name}: no key {name!r}; have {list(fields)}")
            f = fields[name]
            full = (1 << f.bitwidth) - 1
            kind = p4i.MatchField.MatchType.Name(f.match_type).lower()
            if isinstance(value, Ternary):
                matches.append(FieldMatch(field_id=f.id, kind="ternary", value=to_int(value.value),
                                          mask=to_int(value.mask)))
            elif isinstance(value, Lpm):
                matches.append(FieldMatch(field_id=f.id, kind="lpm", value=to_int(value.value),
                                          prefix_len=value.prefix_len))
            elif kind == "ternary":
                matches.append(FieldMatch(field_id=f.id, kind="ternary", value=to_int(value),
                                          mask=full))
            else:
                matches.append(FieldMatch(field_id=f.id, kind=kind, value=to_int(value)))
        given = dict(params or {})
        args = []
        for p in ainfo.params:
            if p.name not in given:
                raise KeyError(f"action {ainfo.preamble.name}: parameter {p.name!r} missing")
            args.append(to_int(given.pop(p.name)))
        if given:
            raise KeyError(f"action {ainfo.preamble.name}: unknown parameters {sorted(given)}")
        entry = TableEntry(table_id=tinfo.preamble.id, matches=tuple(matches), priority=priority,
                           action=ActionCall(action_id=ainfo.preamble.id, args=tuple(args)))
        with self.switch.lock:
            self.switch.state.tables[tinfo.preamble.id].insert(entry)
        return entry

    def add_route(self, prefix: str, *, port: int, src_mac: str, dst_mac: str) -> None:
        """One routes_v4 / routes_v6 entry."""
        net = ipaddress.ip_network(prefix)
        table = "routes_v4" if net.version == 4 else "routes_v6"
        key = "ipv4_dst" if net.version == 4 else "ipv6_dst"
        self.add_entry(table, "set_next_hop",
                       match={key: Lpm(str(net.network_address), net.prefixlen)},
                       params={"port": port, "src_mac": src_mac, "dst_mac": dst_mac})

    def counter(self, name: str, index: int) -> tuple[int, int]:
        """(packets, bytes) of indexed counter `name` at `index`, as P4Runtime reports them: a
        count the counter's unit does not include reads 0."""
        cinfo = _unique(self.p4info.counters, name, "counter")
        with self.switch.lock:
            packets, nbytes = self.switch.state.counters[cinfo.preamble.id].read(index)
        unit = p4i.CounterSpec.Unit.Name(cinfo.spec.unit)
        return (0 if unit == "BYTES" else packets, 0 if unit == "PACKETS" else nbytes)

    def tunnel_counts(self, name: str, tunnel_index: int) -> tuple[int, int]:
        """(packets, bytes) of per-tunnel counter `name` ("tunnel_in", "tunnel_out",
        "tunnel_drop_in", "tunnel_drop_out"): packets from the counter, bytes summed from the
        per-bit cells of `<name>_bytes.length_bits` (p4src/include/counters.p4)."""
        packets, _ = self.counter(name, tunnel_index)
        bits = C("FRAME_LENGTH_BITS")
        nbytes = sum(self.counter(f"{name}_bytes.length_bits", tunnel_index * bits + bit)[0]
                     << bit for bit in range(bits))
        return packets, nbytes

    def rule_hits(self, table: str, entry: TableEntry) -> tuple[int, int]:
        """(packets, bytes) of the direct counter of `table` for `entry`."""
        tinfo = _unique(self.p4info.tables, table, "table")
        (counter_id,) = tinfo.direct_resource_ids
        with self.switch.lock:
            return self.switch.state.direct_counters[counter_id].read(entry.key)

    # -- data plane ------------------------------------------------------------------------------

    def send(self, port: int, frame: Packet | bytes) -> list[tuple[int, bytes]]:
        """Process one frame entering on `port`; the frames it produced, as (port, bytes)."""
        return self.switch.process(port, bytes(frame))
