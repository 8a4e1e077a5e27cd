"""Control-plane state of one p4sim device: table entries, counters, registers.

Everything here is plain Python data keyed by P4Info ids, so the P4Runtime server can read and
write it without knowing anything about the compiled program. Values are unsigned ints for every
`bit<W>` field. The data plane reads this state through `TableState.lookup` and the `count`,
`read`/`write` methods while holding `Switch.lock`; a P4Runtime write batch takes the same lock, so
a batch lands between two packets, never inside one.

Validation defined by P4Runtime itself (canonical byte strings, values wider than the field,
ternary priorities required) is the server's job; this module checks only what it needs to stay
consistent: key arity and match kinds, the action allowed in the table, the argument count, the
table size. A failed write raises an `EntryError` and leaves the state exactly as it was.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from p4sim.errors import AlreadyExistsError, InvalidEntryError, NotFoundError, TableFullError

MatchKind = Literal["exact", "ternary", "lpm", "range", "optional"]


@dataclass(frozen=True, kw_only=True)
class FieldMatch:
    """One key field of an entry. A key field left out of `TableEntry.matches` is a wildcard.

    exact/optional: `value`; ternary: `value` and `mask`; lpm: `value` and `prefix_len`;
    range: `value` is the low bound and `high` the high bound (both inclusive).
    """

    field_id: int
    kind: MatchKind
    value: int
    mask: int | None = None
    prefix_len: int | None = None
    high: int | None = None


@dataclass(frozen=True, kw_only=True)
class ActionCall:
    """An action with its directionless arguments, in P4Info parameter order."""

    action_id: int
    args: tuple[int, ...] = ()


EntryKey = tuple[tuple[FieldMatch, ...], int]
"""What identifies an entry in its table: the matches sorted by field id, and the priority."""


@dataclass(frozen=True, kw_only=True)
class TableEntry:
    """A table entry. `priority` is 0 for tables without ternary/range/optional keys; otherwise
    a larger number wins, as in P4Runtime."""

    table_id: int
    matches: tuple[FieldMatch, ...]
    priority: int = 0
    action: ActionCall

    @cached_property
    def key(self) -> EntryKey:
        """The identity of this entry within its table."""
        return (tuple(sorted(self.matches, key=lambda m: m.field_id)), self.priority)


@dataclass(frozen=True, kw_only=True)
class KeySpec:
    """One match field of a table as the P4Info declares it."""

    field_id: int
    name: str
    bitwidth: int
    match_kind: MatchKind


@dataclass(frozen=True, kw_only=True)
class ActionSpec:
    """An action a table may use: its id, name, parameter widths and P4Info scope."""

    action_id: int
    name: str
    param_bitwidths: tuple[int, ...]
    scope: Literal["TABLE_AND_DEFAULT", "TABLE_ONLY", "DEFAULT_ONLY"] = "TABLE_AND_DEFAULT"


class CounterState:
    """Packet and byte counts of an indexed `counter` (int index) or a `direct_counter`
    (index = `EntryKey` of the table entry it belongs to)."""

    def __init__(self, *, counter_id: int, name: str, size: int, unit: str) -> None:
        self.counter_id = counter_id
        self.name = name
        self.size = size
        self.unit = unit  # "PACKETS", "BYTES" or "BOTH", as in P4Info CounterSpec
        self._cells: dict[object, list[int]] = {}

    def count(self, index: object, nbytes: int) -> None:
        """Data-plane increment; an int index out of range is ignored (BMv2 logs and skips)."""
        cell = self._cells.get(index)
        if cell is None:
            if isinstance(index, int) and not 0 <= index < self.size:
                return
            cell = self._cells[index] = [0, 0]
        cell[0] += 1
        cell[1] += nbytes

    def read(self, index: object) -> tuple[int, int]:
        """(packets, bytes) at `index`; raises NotFoundError for an index out of range."""
        self._check(index)
        cell = self._cells.get(index)
        return (cell[0], cell[1]) if cell else (0, 0)

    def write(self, index: object, packets: int, nbytes: int) -> None:
        """Set the cell (P4Runtime counter write)."""
        self._check(index)
        self._cells[index] = [packets, nbytes]

    def reset(self) -> None:
        """Zero every cell."""
        self._cells.clear()

    def indices(self) -> Iterator[object]:
        """Indices whose cells were ever touched (direct counters: live entry keys)."""
        return iter(list(self._cells))

    def _forget(self, index: object) -> None:
        self._cells.pop(index, None)

    def _check(self, index: object) -> None:
        if isinstance(index, int) and not 0 <= index < self.size:
            raise NotFoundError(f"counter {self.name!r}: index {index} outside 0..{self.size - 1}")


class RegisterState:
    """The cells of a `register<bit<W>>(size)`, all starting at 0."""

    def __init__(self, *, register_id: int, name: str, size: int, bitwidth: int) -> None:
        self.register_id = register_id
        self.name = name
        self.size = size
        self.bitwidth = bitwidth
        self.cells = [0] * size

    def read(self, index: int) -> int:
        """The value at `index`; NotFoundError when out of range."""
        self._check(index)
        return self.cells[index]

    def write(self, index: int, value: int) -> None:
        """Store `value` truncated to the register width."""
        self._check(index)
        self.cells[index] = value & ((1 << self.bitwidth) - 1)

    def reset(self) -> None:
        """Zero every cell."""
        self.cells = [0] * self.size

    def _check(self, index: int) -> None:
        if not 0 <= index < self.size:
            raise NotFoundError(
                f"register {self.name!r}: index {index} outside 0..{self.size - 1}"
            )


GREEN, YELLOW, RED = 0, 1, 2  # v1model meter colors (V1MODEL_METER_COLOR_*)


@dataclass(frozen=True, kw_only=True)
class MeterConfig:
    """A two-rate three-color meter configuration (RFC 2698), as P4Runtime's MeterConfig:
    rates in units per second, bursts in units; the unit is the meter's (bytes or packets)."""

    cir: int
    cburst: int
    pir: int
    pburst: int


class MeterState:
    """The cells of a `meter` (int index) or `direct_meter` (index = `EntryKey`).

    A cell without a configuration marks every packet GREEN, as BMv2 does for an unconfigured
    meter. Each configured cell is a color-blind trTCM (RFC 2698): a packet that does not fit
    the peak bucket is RED, one that does not fit the committed bucket is YELLOW (and takes peak
    tokens), otherwise GREEN (and takes both)."""

    def __init__(self, *, meter_id: int, name: str, size: int, unit: str) -> None:
        self.meter_id = meter_id
        self.name = name
        self.size = size
        self.unit = unit  # "BYTES" or "PACKETS", as in P4Info MeterSpec
        self._configs: dict[object, MeterConfig] = {}
        self._buckets: dict[object, list[float]] = {}  # [committed, peak, last time]
        self.clock: Any = time.monotonic

    def set_config(self, index: object, config: MeterConfig | None) -> None:
        """Configure a cell (None: back to unconfigured, all GREEN); buckets start full."""
        self._check(index)
        if config is None:
            self._configs.pop(index, None)
            self._buckets.pop(index, None)
            return
        if config.pir < config.cir or config.pburst < 0 or config.cburst < 0:
            raise InvalidEntryError(
                f"meter {self.name!r}: pir {config.pir} must be >= cir {config.cir} and "
                "bursts >= 0")
        self._configs[index] = config
        self._buckets[index] = [float(config.cburst), float(config.pburst), self.clock()]

    def config(self, index: object) -> MeterConfig | None:
        """The configuration of a cell, None when unconfigured."""
        self._check(index)
        return self._configs.get(index)

    def execute(self, index: object, nbytes: int) -> int:
        """Data plane: the color of one packet of `nbytes` bytes at `index`."""
        config = self._configs.get(index)
        if config is None:
            return GREEN
        bucket = self._buckets[index]
        now = self.clock()
        elapsed = max(now - bucket[2], 0.0)
        bucket[2] = now
        bucket[0] = min(bucket[0] + elapsed * config.cir, float(config.cburst))
        bucket[1] = min(bucket[1] + elapsed * config.pir, float(config.pburst))
        amount = nbytes if self.unit == "BYTES" else 1
        if bucket[1] < amount:
            return RED
        bucket[1] -= amount
        if bucket[0] < amount:
            return YELLOW
        bucket[0] -= amount
        return GREEN

    def reset(self) -> None:
        """Every cell unconfigured."""
        self._configs.clear()
        self._buckets.clear()

    def indices(self) -> Iterator[object]:
        """Configured cells."""
        return iter(list(self._configs))

    def _forget(self, index: object) -> None:
        self._configs.pop(index, None)
        self._buckets.pop(index, None)

    def _check(self, index: object) -> None:
        if isinstance(index, int) and not 0 <= index < self.size:
            raise NotFoundError(f"meter {self.name!r}: index {index} outside 0..{self.size - 1}")


@dataclass
class _Compiled:
    """An entry reduced to (value, mask) per key position, or (low, high) for ranges."""

    entry: TableEntry
    tests: tuple[tuple[int, int, int, bool], ...]  # (position, a, b, is_range)
    rank: tuple[int, int]


class TableState:
    """Entries of one table plus its default action.

    `lookup` is what the compiled program calls per packet; everything else is control plane.
    """

    def __init__(
        self,
        *,
        table_id: int,
        name: str,
        keys: tuple[KeySpec, ...],
        actions: tuple[ActionSpec, ...],
        size: int,
        default_action: ActionCall,
        default_is_const: bool,
        is_const: bool,
        const_entries: tuple[TableEntry, ...] = (),
        direct_counter: CounterState | None = None,
        direct_meter: MeterState | None = None,
    ) -> None:
        self.table_id = table_id
        self.name = name
        self.keys = keys
        self.actions = {a.action_id: a for a in actions}
        self.size = size
        self.is_const = is_const
        self.default_is_const = default_is_const
        self.direct_counter = direct_counter
        self.direct_meter = direct_meter
        self._initial_default = default_action
        self.default_action = default_action
        self._position = {k.field_id: i for i, k in enumerate(keys)}
        self._exact_only = all(k.match_kind == "exact" for k in keys)
        lpm_positions = [i for i, k in enumerate(keys) if k.match_kind == "lpm"]
        # one lpm key, the rest exact: a dict per prefix length, longest first
        self._lpm_position = (
            lpm_positions[0]
            if len(lpm_positions) == 1
            and all(k.match_kind in ("exact", "lpm") for k in keys)
            else None
        )
        self._lpm_index: list[tuple[int, int, dict[tuple[int, ...], TableEntry]]] = []
        self._const_entries = const_entries
        self._entries: dict[EntryKey, TableEntry] = {}
        self._exact_index: dict[tuple[int, ...], TableEntry] = {}
        self._sorted: list[_Compiled] | None = None
        self._seq = 0
        self._order: dict[EntryKey, int] = {}
        self.reset()

    # -- control plane -------------------------------------------------------------------------

    def insert(self, entry: TableEntry) -> None:
        """Add an entry. AlreadyExistsError, TableFullError, InvalidEntryError."""
        self._check_not_const()
        self._validate(entry)
        key = entry.key
        if key in self._entries:
            raise AlreadyExistsError(f"table {self.name!r}: entry already exists")
        if len(self._entries) >= self.size:
            raise TableFullError(f"table {self.name!r}: full ({self.size} entries)")
        self._store(entry)

    def modify(self, entry: TableEntry) -> None:
        """Replace the action of an existing entry (its direct counter keeps counting)."""
        self._check_not_const()
        self._validate(entry)
        key = entry.key
        if key not in self._entries:
            raise NotFoundError(f"table {self.name!r}: no such entry")
        self._entries[key] = entry
        self._reindex()

    def delete(self, key: EntryKey) -> None:
        """Remove the entry with this key (see `TableEntry.key`)."""
        self._check_not_const()
        if key not in self._entries:
            raise NotFoundError(f"table {self.name!r}: no such entry")
        del self._entries[key]
        self._order.pop(key, None)
        if self.direct_counter is not None:
            self.direct_counter._forget(key)
        if self.direct_meter is not None:
            self.direct_meter._forget(key)
        self._reindex()

    def entries(self) -> Iterable[TableEntry]:
        """All entries, in insertion order."""
        return list(self._entries.values())

    def get(self, key: EntryKey) -> TableEntry | None:
        """The entry with this key, if any."""
        return self._entries.get(key)

    def set_default(self, call: ActionCall) -> None:
        """Change the default (miss) action; refused for `const default_action`."""
        if self.default_is_const:
            raise InvalidEntryError(f"table {self.name!r}: default action is const")
        self._check_action(call, default=True)
        self.default_action = call

    def reset_default(self) -> None:
        """Back to the default action the program declares."""
        self.default_action = self._initial_default

    def reset(self) -> None:
        """Only the program's const entries and default action remain."""
        self._entries.clear()
        self._order.clear()
        self.default_action = self._initial_default
        if self.direct_counter is not None:
            self.direct_counter.reset()
        if self.direct_meter is not None:
            self.direct_meter.reset()
        for entry in self._const_entries:
            self._store(entry)

    # -- data plane ----------------------------------------------------------------------------

    def lookup(self, values: tuple[int, ...]) -> TableEntry | None:
        """The matching entry of highest precedence, or None on a miss."""
        if self._exact_only:
            return self._exact_index.get(values)
        pos = self._lpm_position
        if pos is not None:
            for _plen, mask, index in self._lpm_index:
                masked = list(values)
                masked[pos] &= mask
                found = index.get(tuple(masked))
                if found is not None:
                    return found
            return None
        if self._sorted is None:
            self._sorted = sorted(self._compile_all(), key=lambda c: c.rank)
        for compiled in self._sorted:
            for pos, a, b, is_range in compiled.tests:
                v = values[pos]
                if is_range:
                    if v < a or v > b:
                        break
                elif v & b != a:
                    break
            else:
                return compiled.entry
        return None

    # -- internals -----------------------------------------------------------------------------

    def _store(self, entry: TableEntry) -> None:
        key = entry.key
        self._entries[key] = entry
        self._seq += 1
        self._order[key] = self._seq
        self._reindex()

    def _reindex(self) -> None:
        self._sorted = None
        pos = self._lpm_position
        if pos is not None:
            width = self.keys[pos].bitwidth
            full = (1 << width) - 1
            by_length: dict[int, dict[tuple[int, ...], TableEntry]] = {}
            for entry in self._entries.values():
                values = [0] * len(self.keys)
                plen = 0  # an omitted lpm field is a /0 wildcard
                for m in entry.matches:
                    i = self._position[m.field_id]
                    values[i] = m.value
                    if i == pos:
                        plen = m.prefix_len if m.prefix_len is not None else width
                mask = full ^ ((1 << (width - plen)) - 1)
                values[pos] &= mask
                by_length.setdefault(plen, {})[tuple(values)] = entry
            self._lpm_index = sorted(
                ((plen, full ^ ((1 << (width - plen)) - 1), index)
                 for plen, index in by_length.items()),
                key=lambda item: -item[0])
        if self._exact_only:
            index: dict[tuple[int, ...], TableEntry] = {}
            for entry in self._entries.values():
                values = [0] * len(self.keys)
                for m in entry.matches:
                    values[self._position[m.field_id]] = m.value
                index[tuple(values)] = entry
            self._exact_index = index

    def _compile_all(self) -> Iterator[_Compiled]:
        for key, entry in self._entries.items():
            tests = []
            prefix = 0
            for m in entry.matches:
                pos = self._position[m.field_id]
                width = self.keys[pos].bitwidth
                full = (1 << width) - 1
                if m.kind == "range":
                    tests.append((pos, m.value, m.high if m.high is not None else full, True))
                    continue
                if m.kind == "ternary":
                    mask = m.mask if m.mask is not None else full
                elif m.kind == "lpm":
                    plen = m.prefix_len if m.prefix_len is not None else width
                    prefix += plen
                    mask = full ^ ((1 << (width - plen)) - 1)
                else:
                    mask = full
                tests.append((pos, m.value & mask, mask, False))
            # larger priority first, then longer prefix, then older entry
            rank = (-(entry.priority * (1 << 16) + prefix), self._order.get(key, 0))
            yield _Compiled(entry=entry, tests=tuple(tests), rank=rank)

    def _check_not_const(self) -> None:
        if self.is_const:
            raise InvalidEntryError(f"table {self.name!r} has const entries; it cannot be written")

    def _validate(self, entry: TableEntry) -> None:
        if entry.table_id != self.table_id:
            raise InvalidEntryError(
                f"table {self.name!r}: entry is for table id {entry.table_id}"
            )
        seen = set()
        for m in entry.matches:
            pos = self._position.get(m.field_id)
            if pos is None:
                raise InvalidEntryError(f"table {self.name!r}: no match field id {m.field_id}")
            if m.field_id in seen:
                raise InvalidEntryError(
                    f"table {self.name!r}: match field id {m.field_id} given twice"
                )
            seen.add(m.field_id)
            spec = self.keys[pos]
            allowed = {spec.match_kind}
            if spec.match_kind == "ternary":
                allowed.add("exact")
            if m.kind not in allowed:
                raise InvalidEntryError(
                    f"table {self.name!r}: field {spec.name!r} is {spec.match_kind}, "
                    f"got a {m.kind} match"
                )
        for spec in self.keys:
            if spec.match_kind == "exact" and spec.field_id not in seen:
                raise InvalidEntryError(
                    f"table {self.name!r}: exact field {spec.name!r} missing from the entry"
                )
        self._check_action(entry.action, default=False)

    def _check_action(self, call: ActionCall, *, default: bool) -> None:
        spec = self.actions.get(call.action_id)
        if spec is None:
            raise InvalidEntryError(
                f"table {self.name!r}: action id {call.action_id} is not an action of this table"
            )
        if default and spec.scope == "TABLE_ONLY":
            raise InvalidEntryError(f"table {self.name!r}: {spec.name!r} is @tableonly")
        if not default and spec.scope == "DEFAULT_ONLY":
            raise InvalidEntryError(f"table {self.name!r}: {spec.name!r} is @defaultonly")
        if len(call.args) != len(spec.param_bitwidths):
            raise InvalidEntryError(
                f"action {spec.name!r}: takes {len(spec.param_bitwidths)} arguments, "
                f"got {len(call.args)}"
            )


@dataclass(frozen=True, kw_only=True)
class Replica:
    """One copy made by the packet replication engine: the port it leaves on and its instance
    number (`standard_metadata.egress_rid`), as in P4Runtime's Replica."""

    egress_port: int
    instance: int = 0


@dataclass(frozen=True, kw_only=True)
class CloneSession:
    """A clone (mirror) session as P4Runtime's CloneSessionEntry sets it: the copies to make.
    `packet_length_bytes` > 0 truncates each copy to that many bytes."""

    session_id: int
    replicas: tuple[Replica, ...]
    class_of_service: int = 0
    packet_length_bytes: int = 0


@dataclass
class RuntimeState:
    """All control-plane visible state of a device, keyed by P4Info id.

    `multicast_groups` (group id -> replicas) and `clone_sessions` (session id -> CloneSession)
    are the packet replication engine, written by P4Runtime PacketReplicationEngineEntry
    updates; replace a value whole to change a group (the data plane reads them per packet).
    """

    tables: dict[int, TableState] = field(default_factory=dict)
    counters: dict[int, CounterState] = field(default_factory=dict)
    direct_counters: dict[int, CounterState] = field(default_factory=dict)
    registers: dict[int, RegisterState] = field(default_factory=dict)
    meters: dict[int, MeterState] = field(default_factory=dict)
    direct_meters: dict[int, MeterState] = field(default_factory=dict)
    multicast_groups: dict[int, tuple[Replica, ...]] = field(default_factory=dict)
    clone_sessions: dict[int, CloneSession] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def reset(self) -> None:
        """Empty tables (const entries stay), zero counters and registers, no multicast groups
        or clone sessions."""
        self.multicast_groups.clear()
        self.clone_sessions.clear()
        for table in self.tables.values():
            table.reset()
        for counter in self.counters.values():
            counter.reset()
        for counter in self.direct_counters.values():
            counter.reset()
        for register in self.registers.values():
            register.reset()
        for meter in (*self.meters.values(), *self.direct_meters.values()):
            meter.reset()
