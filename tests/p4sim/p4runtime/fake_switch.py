"""A stand-in for p4sim's executor, for the P4Runtime server's unit tests only.

The P4Info below describes a small router; ``FakeSwitch`` keeps its control-plane state in the
real ``p4sim.runtime`` classes and forwards frames with a few lines of Python so tests can watch
counters move, register writes change forwarding, and packets reach the controller. The PTF
smoke test, and the "real" target of conftest.py, run the real executor on that P4 instead.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format

from p4sim.p4runtime.proto import p4i
from p4sim.runtime import (
    ActionCall,
    ActionSpec,
    CounterState,
    FieldMatch,
    KeySpec,
    RegisterState,
    RuntimeState,
    TableEntry,
    TableState,
)

P4INFO_TEXT = """
pkg_info { arch: "v1model" }
tables {
  preamble { id: 33554433 name: "MyIngress.ipv4_lpm" alias: "ipv4_lpm" }
  match_fields { id: 1 name: "dst" bitwidth: 32 match_type: LPM }
  action_refs { id: 16777217 }
  action_refs { id: 16777218 }
  action_refs { id: 16777219 scope: DEFAULT_ONLY }
  direct_resource_ids: 318767105
  size: 4
}
tables {
  preamble { id: 33554434 name: "MyIngress.acl" alias: "acl" }
  match_fields { id: 1 name: "dst" bitwidth: 32 match_type: TERNARY }
  match_fields { id: 2 name: "port" bitwidth: 9 match_type: RANGE }
  match_fields { id: 3 name: "proto" bitwidth: 8 match_type: OPTIONAL }
  match_fields { id: 4 name: "vrf" bitwidth: 12 match_type: EXACT }
  action_refs { id: 16777218 }
  action_refs { id: 16777220 scope: TABLE_ONLY }
  action_refs { id: 16777219 scope: DEFAULT_ONLY }
  size: 16
}
tables {
  preamble { id: 33554435 name: "MyIngress.fixed" alias: "fixed" }
  match_fields { id: 1 name: "port" bitwidth: 9 match_type: EXACT }
  action_refs { id: 16777217 }
  action_refs { id: 16777218 }
  const_default_action_id: 16777218
  is_const_table: true
  has_initial_entries: true
  size: 8
}
actions {
  preamble { id: 16777217 name: "MyIngress.set_nhop" alias: "set_nhop" }
  params { id: 1 name: "port" bitwidth: 9 }
  params { id: 2 name: "dmac" bitwidth: 48 }
}
actions { preamble { id: 16777218 name: "MyIngress.drop" alias: "drop" } }
actions { preamble { id: 16777219 name: "MyIngress.miss" alias: "miss" } }
actions { preamble { id: 16777220 name: "MyIngress.permit" alias: "permit" } }
counters {
  preamble { id: 302055425 name: "MyIngress.port_packets" alias: "port_packets" }
  spec { unit: BOTH }
  size: 8
}
direct_counters {
  preamble { id: 318767105 name: "MyIngress.route_hits" alias: "route_hits" }
  spec { unit: BOTH }
  direct_table_id: 33554433
}
registers {
  preamble { id: 369098753 name: "MyIngress.blocked" alias: "blocked" }
  type_spec { bitstring { bit { bitwidth: 8 } } }
  size: 4
}
controller_packet_metadata {
  preamble { id: 67146229 name: "packet_in" alias: "packet_in" }
  metadata { id: 1 name: "ingress_port" bitwidth: 9 }
  metadata { id: 2 name: "_pad" bitwidth: 7 }
}
controller_packet_metadata {
  preamble { id: 67121543 name: "packet_out" alias: "packet_out" }
  metadata { id: 1 name: "egress_port" bitwidth: 9 }
  metadata { id: 2 name: "_pad" bitwidth: 7 }
}
"""

IPV4_LPM, ACL, FIXED = 33554433, 33554434, 33554435
SET_NHOP, DROP, MISS, PERMIT = 16777217, 16777218, 16777219, 16777220
PORT_PACKETS, ROUTE_HITS, BLOCKED = 302055425, 318767105, 369098753
CPU_PORT = 64

_SCOPES = {p4i.ActionRef.TABLE_AND_DEFAULT: "TABLE_AND_DEFAULT",
           p4i.ActionRef.TABLE_ONLY: "TABLE_ONLY", p4i.ActionRef.DEFAULT_ONLY: "DEFAULT_ONLY"}
_KINDS = {p4i.MatchField.EXACT: "exact", p4i.MatchField.LPM: "lpm",
          p4i.MatchField.TERNARY: "ternary", p4i.MatchField.RANGE: "range",
          p4i.MatchField.OPTIONAL: "optional"}


def fake_p4info() -> p4i.P4Info:
    return text_format.Parse(P4INFO_TEXT, p4i.P4Info())


@dataclass(frozen=True, kw_only=True)
class FakeProgram:
    p4info: p4i.P4Info
    source_path: Path = Path("fake_router.p4")


_FIXED_ENTRY = TableEntry(table_id=FIXED, priority=0, action=ActionCall(action_id=DROP),
                          matches=(FieldMatch(field_id=1, kind="exact", value=7),))


def _state(p4info: p4i.P4Info) -> RuntimeState:
    state = RuntimeState()
    actions = {a.preamble.id: a for a in p4info.actions}
    direct = {c.direct_table_id: c for c in p4info.direct_counters}
    for c in p4info.direct_counters:
        state.direct_counters[c.preamble.id] = CounterState(
            counter_id=c.preamble.id, name=c.preamble.name, size=0, unit="BOTH")
    for t in p4info.tables:
        dc = direct.get(t.preamble.id)
        default = t.const_default_action_id or MISS
        state.tables[t.preamble.id] = TableState(
            table_id=t.preamble.id, name=t.preamble.name,
            keys=tuple(KeySpec(field_id=m.id, name=m.name, bitwidth=m.bitwidth,
                               match_kind=_KINDS[m.match_type]) for m in t.match_fields),
            actions=tuple(ActionSpec(action_id=r.id, name=actions[r.id].preamble.name,
                                     param_bitwidths=tuple(p.bitwidth
                                                           for p in actions[r.id].params),
                                     scope=_SCOPES[r.scope]) for r in t.action_refs),
            size=t.size, default_action=ActionCall(action_id=default),
            default_is_const=bool(t.const_default_action_id), is_const=t.is_const_table,
            direct_counter=state.direct_counters[dc.preamble.id] if dc else None,
            const_entries=(_FIXED_ENTRY,) if t.preamble.id == FIXED else (),
        )
    for c in p4info.counters:
        state.counters[c.preamble.id] = CounterState(counter_id=c.preamble.id,
                                                     name=c.preamble.name, size=c.size,
                                                     unit="BOTH")
    for r in p4info.registers:
        state.registers[r.preamble.id] = RegisterState(
            register_id=r.preamble.id, name=r.preamble.name, size=r.size,
            bitwidth=r.type_spec.bitstring.bit.bitwidth)
    return state


class FakeSwitch:
    """What programs/conformance.p4 does, in Python: frame = 4-byte destination + protocol +
    payload; count the ingress port, drop when register ``blocked[port % 4]`` is non-zero,
    route with ``ipv4_lpm`` (its direct counter counts), CPU_PORT frames become PacketIn."""

    def __init__(self, program: FakeProgram, *, device_id: int = 0,
                 cpu_port: int | None = None) -> None:
        self.program = program
        self.cpu_port = cpu_port
        self.state = _state(program.p4info)
        self.lock: threading.RLock = self.state.lock
        self.packet_in_sink = None
        self.trace = None

    def process(self, ingress_port: int, frame: bytes) -> list[tuple[int, bytes]]:
        with self.lock:
            if ingress_port < 8:
                self.state.counters[PORT_PACKETS].count(ingress_port, len(frame))
            if self.state.registers[BLOCKED].read(ingress_port % 4):
                return []
            table = self.state.tables[IPV4_LPM]
            entry = table.lookup((int.from_bytes(frame[:4], "big"),))
            if entry is None or entry.action.action_id != SET_NHOP:
                return []
            table.direct_counter.count(entry.key, len(frame))
            port = entry.action.args[0]
            if port == self.cpu_port and self.packet_in_sink is not None:
                self.packet_in_sink(frame, {1: ingress_port, 2: 0})
                return []
            return [(port, frame)]

    def packet_out(self, payload: bytes, metadata: dict[int, int]) -> list[tuple[int, bytes]]:
        if self.cpu_port is None:
            raise ValueError("packet_out needs a cpu_port on the Switch")
        return [(metadata[1], payload)]
