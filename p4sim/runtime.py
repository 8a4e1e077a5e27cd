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

import bisect
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from p4sim.errors import AlreadyExistsError, InvalidEntryError, NotFoundError, TableFullError

MatchKind = Literal["exact", "ternary", "lpm", "range", "optional"]


class FieldMatch(NamedTuple):
    """One key field of an entry. A key field left out of `TableEntry.matches` is a wildcard.

    exact/optional: `value`; ternary: `value` and `mask`; lpm: `value` and `prefix_len`;
    range: `value` is the low bound and `high` the high bound (both inclusive).

    A named tuple, not a dataclass: 65,536 tunnels hold a quarter of a million of these, and a
    direct counter hashes the entry key (a tuple of them) per packet, which for a tuple is C
    code, for a dataclass one Python `__hash__` call per field match (docs/p4sim.md, "Scale").
    """

    field_id: int
    kind: MatchKind
    value: int
    mask: int | None = None
    prefix_len: int | None = None
    high: int | None = None


class ActionCall(NamedTuple):
    """An action with its directionless arguments, in P4Info parameter order."""

    action_id: int
    args: tuple[int, ...] = ()


EntryKey = tuple[tuple[FieldMatch, ...], int]
"""What identifies an entry in its table: the matches sorted by field id, and the priority."""


@dataclass(frozen=True, kw_only=True, slots=True)
class TableEntry:
    """A table entry. `priority` is 0 for tables without ternary/range/optional keys; otherwise
    a larger number wins, as in P4Runtime. `key`, its identity within its table, is computed
    once here (the matches tuple itself when already sorted by field id, as P4Runtime clients
    send them)."""

    table_id: int
    matches: tuple[FieldMatch, ...]
    priority: int = 0
    action: ActionCall
    key: EntryKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        matches = self.matches
        ordered = all(matches[i].field_id < matches[i + 1].field_id
                      for i in range(len(matches) - 1))
        object.__setattr__(self, "key", (
            matches if ordered else tuple(sorted(matches, key=lambda m: m.field_id)),
            self.priority))


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
        if packets or nbytes:
            self._cells[index] = [packets, nbytes]
        else:  # a zero cell is an untouched one (the controller zeroes 22 per new tunnel)
            self._cells.pop(index, None)

    def reset(self) -> None:
        """Zero every cell."""
        self._cells.clear()

    def indices(self) -> Iterator[object]:
        """Indices whose cells were ever touched (direct counters: live entry keys)."""
        return iter(list(self._cells))

    @property
    def cells(self) -> dict[object, list[int]]:
        """The touched cells, index -> [packets, bytes]: for bulk readers holding the switch
        lock (p4sim.p4runtime.counter_wire); never modify it."""
        return self._cells

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


@dataclass(slots=True)
class _Compiled:
    """An entry reduced to what a lookup tests: its rank (smaller wins; the second element is
    its insertion sequence number), the masked key it hashes under in its mask group, and its
    range tests (position, low, high)."""

    entry: TableEntry
    rank: tuple[int, int]
    ranges: tuple[tuple[int, int, int], ...]
    group: _MaskGroup
    masked: tuple[int, ...]


class _MaskGroup:
    """The entries of one table that share a mask per key position (and the same range fields).

    Their masked keys hash into `buckets`, each bucket sorted best first, so a lookup costs one
    dict probe per group however many entries the group holds. `best` is the best rank in the
    group; it is recomputed lazily after the best entry leaves (a batch of deletes costs one
    recomputation, not one per delete).
    """

    __slots__ = ("signature", "hashed", "buckets", "best", "count")

    def __init__(self, signature: tuple[tuple[tuple[int, int], ...], tuple[int, ...]]) -> None:
        self.signature = signature  # (hashed, range positions): the group's key in its table
        self.hashed = signature[0]  # (position, mask) of every key position the group matches on
        self.buckets: dict[tuple[int, ...], list[_Compiled]] = {}
        self.best: tuple[int, int] | None = None  # None: unknown (recompute) or empty
        self.count = 0

    def masked(self, values: tuple[int, ...]) -> tuple[int, ...]:
        return tuple([values[pos] & mask for pos, mask in self.hashed])

    def best_rank(self) -> tuple[int, int]:
        if self.best is None:
            self.best = min(bucket[0].rank for bucket in self.buckets.values())
        return self.best


class TableState:
    """Entries of one table plus its default action.

    `lookup` is what the compiled program calls per packet; everything else is control plane.
    Indexes are maintained per insert/modify/delete, never rebuilt from all entries: exact-only
    tables keep one dict from key to entry; every other table keeps its entries in mask groups
    (see `_MaskGroup`) visited in order of their best rank, stopping as soon as no remaining
    group can beat the entry already found. A lookup costs one probe per distinct mask shape,
    independent of the number of entries, and is exactly the linear scan's answer: larger
    priority first, then longer prefix, then the older entry.
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
        self._full = tuple((1 << k.bitwidth) - 1 for k in keys)
        self._exact_only = all(k.match_kind == "exact" for k in keys)
        self._const_entries = const_entries
        self._entries: dict[EntryKey, TableEntry] = {}
        self._exact_index: dict[tuple[int, ...], TableEntry] = {}
        self._compiled: dict[EntryKey, _Compiled] = {}
        self._groups: dict[tuple[object, ...], _MaskGroup] = {}
        self._ordered: list[_MaskGroup] | None = None  # groups by best rank; None: re-sort
        self._seq = 0  # insertion sequence number of the newest entry (older wins a tie)
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
        seq = self._unindex(key)
        self._entries[key] = entry
        self._index(entry, seq)

    def delete(self, key: EntryKey) -> None:
        """Remove the entry with this key (see `TableEntry.key`)."""
        self._check_not_const()
        if key not in self._entries:
            raise NotFoundError(f"table {self.name!r}: no such entry")
        self._unindex(key)
        del self._entries[key]
        if self.direct_counter is not None:
            self.direct_counter._forget(key)
        if self.direct_meter is not None:
            self.direct_meter._forget(key)

    def entries(self) -> Iterable[TableEntry]:
        """All entries, in insertion order."""
        return list(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

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
        self._exact_index.clear()
        self._compiled.clear()
        self._groups.clear()
        self._ordered = None
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
        ordered = self._ordered
        if ordered is None:
            ordered = self._ordered = sorted(self._groups.values(),
                                             key=_MaskGroup.best_rank)
        found: _Compiled | None = None
        for group in ordered:
            if found is not None and group.best_rank() >= found.rank:
                break  # groups are sorted: none further on can win
            bucket = group.buckets.get(group.masked(values))
            if bucket is None:
                continue
            for compiled in bucket:
                if found is not None and compiled.rank >= found.rank:
                    break
                for pos, low, high in compiled.ranges:
                    if not low <= values[pos] <= high:
                        break
                else:
                    found = compiled
                    break
        return found.entry if found is not None else None

    # -- internals -----------------------------------------------------------------------------

    def _store(self, entry: TableEntry) -> None:
        key = entry.key
        self._entries[key] = entry
        self._seq += 1
        self._index(entry, self._seq)

    def _index(self, entry: TableEntry, seq: int) -> None:
        """Add one entry to the lookup indexes; `seq` orders it among entries of equal rank."""
        width_keys = self.keys
        if self._exact_only:
            values = [0] * len(width_keys)
            for m in entry.matches:
                values[self._position[m.field_id]] = m.value
            self._exact_index[tuple(values)] = entry
            return
        masks = [0] * len(width_keys)
        values = [0] * len(width_keys)
        ranges = []
        prefix = 0
        for m in entry.matches:
            pos = self._position[m.field_id]
            width = width_keys[pos].bitwidth
            full = self._full[pos]
            if m.kind == "range":
                ranges.append((pos, m.value, m.high if m.high is not None else full))
                continue
            if m.kind == "ternary":
                mask = m.mask if m.mask is not None else full
            elif m.kind == "lpm":
                plen = m.prefix_len if m.prefix_len is not None else width
                prefix += plen
                mask = full ^ ((1 << (width - plen)) - 1)
            else:
                mask = full
            masks[pos] = mask
            value = m.value
            # the decoder refuses bits outside the mask: keep the entry's own int, not a copy
            values[pos] = value if value & mask == value else value & mask
        hashed = tuple((pos, mask) for pos, mask in enumerate(masks) if mask)
        signature = (hashed, tuple(pos for pos, _, _ in ranges))
        masked = tuple([values[pos] for pos, _ in hashed])
        # larger priority first, then longer prefix, then older entry
        rank = (-(entry.priority * (1 << 16) + prefix), seq)
        group = self._groups.get(signature)
        if group is None:  # the group keeps the signature, the entries share it
            group = self._groups[signature] = _MaskGroup(signature)
            self._ordered = None
        compiled = _Compiled(entry=entry, rank=rank, ranges=tuple(ranges), group=group,
                             masked=masked)
        bisect.insort(group.buckets.setdefault(masked, []), compiled, key=_rank)
        group.count += 1
        if group.count == 1 or (group.best is not None and rank < group.best):
            group.best = rank
            self._ordered = None
        self._compiled[entry.key] = compiled

    def _unindex(self, key: EntryKey) -> int:
        """Remove one entry from the lookup indexes; its insertion sequence number (0 in an
        exact-only table, where no two entries can tie)."""
        entry = self._entries[key]
        if self._exact_only:
            values = [0] * len(self.keys)
            for m in entry.matches:
                values[self._position[m.field_id]] = m.value
            self._exact_index.pop(tuple(values), None)
            return 0
        compiled = self._compiled.pop(key)
        group = compiled.group
        bucket = group.buckets[compiled.masked]
        bucket.remove(compiled)
        if not bucket:
            del group.buckets[compiled.masked]
        group.count -= 1
        if group.count == 0:
            del self._groups[group.signature]
            self._ordered = None
        elif group.best == compiled.rank:
            group.best = None  # recomputed at the next lookup
            self._ordered = None
        return compiled.rank[1]

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
            if m.kind != spec.match_kind and not (spec.match_kind == "ternary"
                                                  and m.kind == "exact"):
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


def _rank(compiled: _Compiled) -> tuple[int, int]:
    return compiled.rank


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
