"""What a compiled program exposes to the control plane: tables, actions, externs, headers.

Filled by the compiler, ids assigned by `p4sim.ids`, turned into P4Info by `p4sim.p4info` and
into `RuntimeState` by `CompiledProgram.new_state`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from p4sim.runtime import FieldMatch

Annotations = tuple[tuple[str, tuple[object, ...]], ...]


@dataclass
class KeyModel:
    field_id: int
    name: str
    bitwidth: int
    match_kind: str


@dataclass
class ActionModel:
    name: str
    params: tuple[tuple[str, int], ...]  # (name, bitwidth) in declaration order
    explicit_id: int | None = None
    annotations: Annotations = ()
    id: int = 0


@dataclass
class TableModel:
    name: str
    keys: tuple[KeyModel, ...]
    actions: tuple[tuple[str, Annotations], ...]  # (qualified action name, annotations of ref)
    size: int
    default_action: tuple[str, tuple[int, ...]]
    default_is_const: bool
    is_const: bool
    const_entries: tuple[tuple[tuple[FieldMatch, ...], int, tuple[str, tuple[int, ...]]], ...]
    direct_counter: str | None
    annotations: Annotations = ()
    explicit_id: int | None = None
    id: int = 0
    direct_meter: str | None = None
    default_explicit: bool = True  # False: no default_action property (p4c writes no default)


@dataclass
class CounterModel:
    name: str
    size: int
    unit: str
    explicit_id: int | None = None
    id: int = 0


@dataclass
class MeterModel:
    name: str
    size: int
    unit: str  # "BYTES" or "PACKETS"
    explicit_id: int | None = None
    id: int = 0


@dataclass
class DigestModel:
    name: str  # the struct type's name, as p4c names digests
    fields: tuple[tuple[str, int], ...]  # (member name, bitwidth)
    explicit_id: int | None = None
    id: int = 0


@dataclass
class RegisterModel:
    name: str
    size: int
    bitwidth: int
    explicit_id: int | None = None
    id: int = 0


@dataclass
class ControllerHeaderModel:
    name: str
    header_type: str
    fields: tuple[tuple[int, str, int], ...]  # (id, name, bitwidth)
    id: int = 0


@dataclass
class ProgramModel:
    tables: list[TableModel] = field(default_factory=list)
    actions: dict[str, ActionModel] = field(default_factory=dict)
    counters: list[CounterModel] = field(default_factory=list)
    direct_counters: list[CounterModel] = field(default_factory=list)
    registers: list[RegisterModel] = field(default_factory=list)
    meters: list[MeterModel] = field(default_factory=list)
    direct_meters: list[MeterModel] = field(default_factory=list)
    digests: list[DigestModel] = field(default_factory=list)
    controller_headers: list[ControllerHeaderModel] = field(default_factory=list)
    directly_called: set[str] = field(default_factory=set)  # actions called from a block
    headers_type: str = ""
    metadata_type: str = ""

    def controller_header(self, name: str) -> ControllerHeaderModel:
        for ch in self.controller_headers:
            if ch.name == name:
                return ch
        raise KeyError(f"program has no @controller_header({name!r}) header")
