"""Lookups into one P4Info by id, built once per pipeline: what the server validates against."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from p4sim.p4runtime.errors import invalid
from p4sim.p4runtime.proto import p4i

MATCH_KINDS = {
    p4i.MatchField.EXACT: "exact",
    p4i.MatchField.LPM: "lpm",
    p4i.MatchField.TERNARY: "ternary",
    p4i.MatchField.RANGE: "range",
    p4i.MatchField.OPTIONAL: "optional",
}
PRIORITY_KINDS = frozenset({"ternary", "range", "optional"})


@dataclass(frozen=True, kw_only=True)
class FieldInfo:
    """A match field, action parameter or packet metadata field: id, name, bit width."""

    id: int
    name: str
    bitwidth: int
    match_kind: str = ""


@dataclass(frozen=True, kw_only=True)
class ActionInfo:
    id: int
    name: str
    params: tuple[FieldInfo, ...]


@dataclass(frozen=True, kw_only=True)
class TableInfo:
    id: int
    name: str
    match_fields: tuple[FieldInfo, ...]
    action_scopes: dict[int, int]  # action id -> p4i.ActionRef.Scope
    const_default_action_id: int
    is_const: bool
    size: int
    direct_counter_id: int

    @cached_property
    def needs_priority(self) -> bool:
        return any(f.match_kind in PRIORITY_KINDS for f in self.match_fields)

    def field(self, field_id: int) -> FieldInfo | None:
        return self.fields_by_id.get(field_id)

    @cached_property
    def fields_by_id(self) -> dict[int, FieldInfo]:
        return {info.id: info for info in self.match_fields}

    @cached_property
    def exact_fields(self) -> tuple[FieldInfo, ...]:
        """The fields every entry must give (exact match kind)."""
        return tuple(info for info in self.match_fields if info.match_kind == "exact")

    @cached_property
    def exact_ids(self) -> frozenset[int]:
        """The ids of :attr:`exact_fields`."""
        return frozenset(info.id for info in self.exact_fields)


@dataclass(frozen=True, kw_only=True)
class ArrayInfo:
    """An indexed counter or a register: id, name, size; bitwidth for registers, unit for
    counters."""

    id: int
    name: str
    size: int
    bitwidth: int = 0
    unit: int = 0


class Schema:
    """The P4Info of the running pipeline, indexed for the checks of each request."""

    def __init__(self, p4info: p4i.P4Info) -> None:
        self.p4info = p4info
        self.actions = {
            a.preamble.id: ActionInfo(
                id=a.preamble.id, name=a.preamble.name,
                params=tuple(FieldInfo(id=p.id, name=p.name, bitwidth=p.bitwidth)
                             for p in a.params),
            )
            for a in p4info.actions
        }
        direct_by_table = {c.direct_table_id: c.preamble.id for c in p4info.direct_counters}
        self.tables = {
            t.preamble.id: TableInfo(
                id=t.preamble.id, name=t.preamble.name,
                match_fields=tuple(
                    FieldInfo(id=m.id, name=m.name, bitwidth=m.bitwidth,
                              match_kind=MATCH_KINDS.get(m.match_type, "unsupported"))
                    for m in t.match_fields
                ),
                action_scopes={r.id: r.scope for r in t.action_refs},
                const_default_action_id=t.const_default_action_id,
                is_const=t.is_const_table,
                size=t.size,
                direct_counter_id=direct_by_table.get(t.preamble.id, 0),
            )
            for t in p4info.tables
        }
        self.counters = {
            c.preamble.id: ArrayInfo(id=c.preamble.id, name=c.preamble.name, size=c.size,
                                     unit=c.spec.unit)
            for c in p4info.counters
        }
        self.direct_counters = {c.preamble.id: c.direct_table_id for c in p4info.direct_counters}
        self.direct_counter_units = {c.preamble.id: c.spec.unit for c in p4info.direct_counters}
        self.registers = {
            r.preamble.id: ArrayInfo(id=r.preamble.id, name=r.preamble.name, size=r.size,
                                     bitwidth=r.type_spec.bitstring.bit.bitwidth)
            for r in p4info.registers
        }
        self.packet_in: tuple[FieldInfo, ...] = ()
        self.packet_out: tuple[FieldInfo, ...] = ()
        for header in p4info.controller_packet_metadata:
            fields = tuple(FieldInfo(id=m.id, name=m.name, bitwidth=m.bitwidth)
                           for m in header.metadata)
            if header.preamble.name == "packet_in":
                self.packet_in = fields
            elif header.preamble.name == "packet_out":
                self.packet_out = fields

    def table(self, table_id: int) -> TableInfo:
        info = self.tables.get(table_id)
        if info is None:
            raise invalid(f"no table with id {table_id} in the P4Info")
        return info

    def action(self, action_id: int) -> ActionInfo:
        info = self.actions.get(action_id)
        if info is None:
            raise invalid(f"no action with id {action_id} in the P4Info")
        return info

    def counter(self, counter_id: int) -> ArrayInfo:
        info = self.counters.get(counter_id)
        if info is None:
            raise invalid(f"no counter with id {counter_id} in the P4Info")
        return info

    def register(self, register_id: int) -> ArrayInfo:
        info = self.registers.get(register_id)
        if info is None:
            raise invalid(f"no register with id {register_id} in the P4Info")
        return info

    def direct_counter_table(self, counter_id: int) -> TableInfo:
        table_id = self.direct_counters.get(counter_id)
        if table_id is None:
            raise invalid(f"no direct counter with id {counter_id} in the P4Info")
        return self.table(table_id)
