"""Plan: what the switch and the worker must hold after a change, decided without any I/O.

:meth:`Planner.plan` turns one validated :class:`~controller.dataplane.TunnelChange` into a
:class:`Plan` — switch updates to write (and their inverses), worker SAs to add and remove, the
tunnel's new :class:`~controller.allocation.Allocation`, encrypt keys it retires — and raises the
API's own request errors when the change cannot fit: a reused or retired encrypt key
(``INVALID_KEY``, the texts of :mod:`controller.key_guard`) or no free tunnel/SA index for the
make-before-break peak (``TABLE_FULL``). The executor (:mod:`controller.executor`) then does it.

A plan reserves its indices at once, so the next change of a batch is planned on top of it;
:meth:`Planner.commit` makes it final, :meth:`Planner.abort` gives back exactly what it took.
Indices a plan frees (a DELETE, an old SA) return to the free lists only at commit: a batch
never reuses an index another of its plans still holds on the switch or the worker.

Every lookup is incremental — free tunnel and SA indices in heaps (lowest free first, as
:func:`controller.allocation.allocate` chooses), live encrypt keys by fingerprint, allocations
by tunnel id — so planning a change costs the same with 10 tunnels as with 65,536.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import finsy as fy
from finsy.proto import p4r

from controller.allocation import Allocation, IndexExhausted
from controller.crypto_client import WorkerSa, worker_sas
from controller.dataplane import TunnelChange
from controller.errors import ErrorCode, RequestError
from controller.key_guard import KEY_FIELD, keeps_sa, key_in_use, key_of_this_tunnel, key_retired
from controller.keys import SaKey
from controller.model import IpsecEncrypt, Tunnel
from controller.pipeline import Pipeline
from p4rt_wire import varint


class FreeIndexes:
    """Indices 1 … ``maximum``: :meth:`take` hands out the lowest free one in O(log n)."""

    def __init__(self, maximum: int, used: Iterable[int], what: str) -> None:
        taken = set(used)
        self._maximum = maximum
        self._what = what
        self._next = max(taken, default=0) + 1  # every index below is used or in _free
        self._free = [index for index in range(1, self._next) if index not in taken]
        heapq.heapify(self._free)

    def take(self) -> int:
        """The lowest free index, now used; :class:`IndexExhausted` when there is none."""
        if self._free:
            return heapq.heappop(self._free)
        if self._next > self._maximum:
            raise IndexExhausted(f"no free {self._what} index (1 … {self._maximum} all in use)")
        self._next += 1
        return self._next - 1

    def give(self, index: int) -> None:
        """``index`` is free again."""
        heapq.heappush(self._free, index)

    @property
    def free(self) -> int:
        """How many indices are free."""
        return len(self._free) + self._maximum - self._next + 1


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What one change does to the data plane (``make`` before ``brk``, module doc of
    :mod:`controller.executor`); each switch update has its inverse at the same position
    (``None``: nothing to undo, e.g. a counter reset)."""

    change: TunnelChange
    previous: Allocation | None
    allocation: Allocation | None
    make: tuple[Any, ...] = ()
    undo_make: tuple[Any, ...] = ()
    brk: tuple[Any, ...] = ()
    undo_brk: tuple[Any, ...] = ()
    add_sas: tuple[WorkerSa, ...] = ()
    remove_sas: tuple[WorkerSa, ...] = ()
    retire: tuple[bytes, ...] = ()  # fingerprints of the encrypt keys whose SA leaves
    # bookkeeping for commit/abort: indices this plan took and frees
    taken_tunnel: int | None = None
    taken_sas: tuple[int, ...] = ()
    freed_tunnel: int | None = None
    freed_sas: tuple[int, ...] = ()
    keys_added: tuple[tuple[bytes, tuple[int, int]], ...] = ()
    keys_removed: tuple[tuple[bytes, tuple[int, int]], ...] = ()

    @property
    def tunnel_id(self) -> int:
        """The tunnel the plan is about."""
        return self.change.tunnel_id

    @property
    def fresh_index(self) -> bool:
        """The tunnel index is new or gone (its counter baselines start over)."""
        return self.previous is None or self.allocation is None

    @property
    def switch_updates(self) -> int:
        """How many switch updates the plan writes."""
        return len(self.make) + len(self.brk)


def _encrypt(tunnel: Tunnel | None) -> IpsecEncrypt | None:
    return tunnel.body if tunnel is not None and isinstance(tunnel.body, IpsecEncrypt) else None


def unchanged_spis(before: Tunnel | None, after: Tunnel) -> set[int]:
    """The SPIs whose worker SA stays as it is (same SA, same cipher and mode)."""
    if before is None or type(before.body) is not type(after.body):
        return set()
    if before.security_associations and (
            getattr(before.body, "cipher", None) != getattr(after.body, "cipher", None)
            or getattr(before.body, "mode", None) != getattr(after.body, "mode", None)):
        return set()
    old = {sa.spi: sa for sa in before.security_associations}
    return {sa.spi for sa in after.security_associations if old.get(sa.spi) == sa}


@dataclass
class _Book:
    """The planner's state: committed-or-reserved allocations and live keys."""

    allocations: dict[int, Allocation]
    tunnels: FreeIndexes
    sas: FreeIndexes
    live_keys: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    leaving: dict[bytes, int] = field(default_factory=dict)  # keys reserved plans retire


class Planner:
    """Plans changes against incrementally kept indexes (module doc)."""

    def __init__(self, *, pipeline: Pipeline, allocations: Mapping[int, Allocation],
                 tunnels: Mapping[int, Tunnel], fingerprint: Callable[[SaKey], bytes],
                 is_retired: Callable[[bytes], bool]) -> None:
        self.pipeline = pipeline
        self._encoder = EntryEncoder(pipeline.schema)
        # Free tunnel indices whose counter cells are known to be 0 on the switch (read back,
        # or reset when their tunnel left): a CREATE there writes no counter resets.
        self._clean: set[int] = set()
        self._fingerprint = fingerprint
        self._is_retired = is_retired
        sizes = pipeline.sizes
        self._book = _Book(
            allocations=dict(allocations),
            tunnels=FreeIndexes(sizes.max_tunnels, (a.tunnel_index for a in allocations.values()),
                                "tunnel"),
            sas=FreeIndexes(sizes.max_sas, (index for a in allocations.values()
                                            for _, index in a.sa_pairs), "SA"))
        for tunnel_id, tunnel in tunnels.items():
            body = _encrypt(tunnel)
            if body is not None and tunnel_id in allocations:
                self._book.live_keys[fingerprint(body.sa.secret)] = (tunnel_id, body.sa.spi)

    @property
    def allocations(self) -> Mapping[int, Allocation]:
        """Allocations as the committed and reserved plans leave them."""
        return self._book.allocations

    def free(self) -> tuple[int, int]:
        """(free tunnel indices, free SA indices) right now."""
        return self._book.tunnels.free, self._book.sas.free

    # ---- entries ----------------------------------------------------------------------

    def entries(self, tunnel: Tunnel, allocation: Allocation) -> list[Any]:
        """The switch entries of one tunnel at ``allocation`` (its previous tunnel's index is
        looked up, not every tunnel's)."""
        previous = tunnel.match.previous_tunnel
        indexes: dict[int, int] = {}
        if previous is not None and previous in self._book.allocations:
            indexes[previous] = self._book.allocations[previous].tunnel_index
        entries: list[Any] = []
        if tunnel.kind == "ipsec-decrypt":
            entries += [self.pipeline.decrypt_sa_entry(tunnel_index=allocation.tunnel_index,
                                                       spi=spi, sa_index=sa_index)
                        for spi, sa_index in allocation.sa_pairs]
        entries += self.pipeline.rule_entries(tunnel, tunnel_index=allocation.tunnel_index,
                                              sa_indexes=allocation.sa_indexes,
                                              tunnel_indexes=indexes)
        return entries

    # ---- plan / commit / abort --------------------------------------------------------

    def plan(self, change: TunnelChange) -> Plan:
        """Plan ``change`` on top of every reserved plan and reserve its indices; raises
        :class:`RequestError` (key reuse, retired key, no free index) with nothing reserved."""
        book = self._book
        tunnel_id, before, after = change.tunnel_id, change.before, change.after
        previous = book.allocations.get(tunnel_id)
        if before is not None and previous is None:
            raise LookupError(f"tunnel {tunnel_id} has no data-plane allocation")
        keep = unchanged_spis(before, after) if after is not None else set()
        old_sas = ({} if before is None or previous is None else
                   {sa.sa_index: sa for sa in worker_sas(before, previous.sa_indexes)})
        added_keys = self._new_key(change)
        allocation: Allocation | None = None
        taken_tunnel: int | None = None
        taken_sas: list[int] = []
        if after is not None:
            try:
                if previous is None:
                    taken_tunnel = book.tunnels.take()
                tunnel_index = previous.tunnel_index if previous is not None else taken_tunnel
                kept = previous.sa_indexes if previous is not None else {}
                pairs = []
                for sa in after.security_associations:
                    if sa.spi in keep and sa.spi in kept:
                        pairs.append((sa.spi, kept[sa.spi]))
                    else:
                        taken_sas.append(book.sas.take())
                        pairs.append((sa.spi, taken_sas[-1]))
            except IndexExhausted as error:
                self._give_back(taken_tunnel, taken_sas)
                raise RequestError(ErrorCode.TABLE_FULL, "", f"not applied: {error}; this "
                                   "change holds its old and new SAs at once") from None
            assert tunnel_index is not None
            allocation = Allocation(tunnel_index=tunnel_index, sa_pairs=tuple(pairs))
        old_entries = ({} if before is None or previous is None else
                       self._by_key(self.entries(before, previous)))
        new_entries = ({} if after is None or allocation is None else
                       self._by_key(self.entries(after, allocation)))
        new_sas = ({} if after is None or allocation is None else
                   {sa.sa_index: sa for sa in worker_sas(after, allocation.sa_indexes)})
        make: list[Any] = []
        undo_make: list[Any] = []
        if (previous is None and allocation is not None
                and allocation.tunnel_index not in self._clean):
            schema = self.pipeline.schema
            make += [_update(MODIFY, counter.encode(schema)) for counter in
                     self.pipeline.counter_resets(allocation.tunnel_index)]
            undo_make += [None] * len(make)
        for key, entry in new_entries.items():
            old = old_entries.get(key)
            if old is None:
                make.append(_wire_update(INSERT, entry))
                undo_make.append(_wire_update(DELETE, entry))
            elif old != entry:
                make.append(_wire_update(MODIFY, entry))
                undo_make.append(_wire_update(MODIFY, old))
        gone = [entry for key, entry in old_entries.items() if key not in new_entries]
        remove_sas = tuple(sa for index, sa in old_sas.items() if new_sas.get(index) != sa)
        removed_keys = [(self._fingerprint(sa.sa.secret), (tunnel_id, sa.sa.spi))
                        for sa in remove_sas if sa.encrypt]
        plan = Plan(
            change=change, previous=previous, allocation=allocation,
            make=tuple(make), undo_make=tuple(undo_make),
            brk=tuple(_wire_update(DELETE, entry) for entry in gone),
            undo_brk=tuple(_wire_update(INSERT, entry) for entry in gone),
            add_sas=tuple(sa for index, sa in new_sas.items() if old_sas.get(index) != sa),
            remove_sas=remove_sas, retire=tuple(key for key, _ in removed_keys),
            taken_tunnel=taken_tunnel, taken_sas=tuple(taken_sas),
            freed_tunnel=previous.tunnel_index if previous is not None and after is None
            else None,
            freed_sas=tuple(sa.sa_index for sa in remove_sas
                            if allocation is None or sa.sa_index not in
                            {index for _, index in allocation.sa_pairs}),
            keys_added=tuple(added_keys), keys_removed=tuple(removed_keys))
        self._reserve(plan)
        return plan

    def _new_key(self, change: TunnelChange) -> list[tuple[bytes, tuple[int, int]]]:
        """The live key a change adds (none when its encrypt SA stays); refuses a key in use
        or retired with the texts of :mod:`controller.key_guard`."""
        new = _encrypt(change.after)
        if new is None or keeps_sa(change.before, change.after):
            return []
        book, tunnel_id = self._book, change.tunnel_id
        fingerprint = self._fingerprint(new.sa.secret)
        owner = book.live_keys.get(fingerprint)
        if owner is not None and owner[0] == tunnel_id:
            raise RequestError(ErrorCode.INVALID_KEY, KEY_FIELD,
                               key_of_this_tunnel(new.sa.spi, owner[1]))
        if owner is not None:
            raise RequestError(ErrorCode.INVALID_KEY, KEY_FIELD, key_in_use(new.sa.spi, owner))
        if fingerprint in book.leaving or self._is_retired(fingerprint):
            raise RequestError(ErrorCode.INVALID_KEY, KEY_FIELD, key_retired(new.sa.spi))
        return [(fingerprint, (tunnel_id, new.sa.spi))]

    def mark_clean(self, tunnel_indexes: Iterable[int], *, free: bool = False) -> None:
        """These tunnel indices' counter cells are 0 on the switch (ignored while in use).

        ``free``: the caller knows none of them is allocated — indices of applied DELETEs not
        yet given back by :meth:`commit`, which no plan can take — so the set of indices in use
        (one pass over every allocation, 65,535 at capacity) is not built for each batch."""
        if free:
            self._clean.update(tunnel_indexes)
            return
        used = {allocation.tunnel_index for allocation in self._book.allocations.values()}
        self._clean.update(index for index in tunnel_indexes if index not in used)

    def forget_clean(self) -> None:
        """Nothing is known about the switch's counters any more (a new connection)."""
        self._clean.clear()

    def _reserve(self, plan: Plan) -> None:
        book = self._book
        if plan.allocation is not None:
            self._clean.discard(plan.allocation.tunnel_index)  # its cells will count
        if plan.allocation is None:
            book.allocations.pop(plan.tunnel_id, None)
        else:
            book.allocations[plan.tunnel_id] = plan.allocation
        for fingerprint, _ in plan.keys_removed:
            book.live_keys.pop(fingerprint, None)
            book.leaving[fingerprint] = book.leaving.get(fingerprint, 0) + 1
        for fingerprint, owner in plan.keys_added:
            book.live_keys[fingerprint] = owner

    def commit(self, plan: Plan) -> None:
        """The plan is done on the data plane: the indices it frees are free now."""
        if plan.freed_tunnel is not None:
            self._book.tunnels.give(plan.freed_tunnel)
        for index in plan.freed_sas:
            self._book.sas.give(index)
        self._unleave(plan)

    def abort(self, plan: Plan) -> None:
        """The plan did not happen: restore what it reserved (plans of one batch touch
        different tunnels, so each can be aborted on its own)."""
        book = self._book
        if plan.previous is None:
            book.allocations.pop(plan.tunnel_id, None)
        else:
            book.allocations[plan.tunnel_id] = plan.previous
        self._give_back(plan.taken_tunnel, plan.taken_sas)
        for fingerprint, _ in plan.keys_added:
            book.live_keys.pop(fingerprint, None)
        for fingerprint, owner in plan.keys_removed:
            book.live_keys[fingerprint] = owner
        self._unleave(plan)

    def _unleave(self, plan: Plan) -> None:
        book = self._book
        for fingerprint, _ in plan.keys_removed:
            count = book.leaving.get(fingerprint, 0) - 1
            if count > 0:
                book.leaving[fingerprint] = count
            else:
                book.leaving.pop(fingerprint, None)

    def _give_back(self, tunnel_index: int | None, sa_indexes: Iterable[int]) -> None:
        if tunnel_index is not None:
            self._book.tunnels.give(tunnel_index)
        for index in sa_indexes:
            self._book.sas.give(index)

    def _by_key(self, entries: Iterable[Any]) -> dict[bytes, bytes]:
        """Entries encoded once (:class:`EntryEncoder`): identity → the serialized P4Runtime
        entity its updates carry (equal bytes: equal entries)."""
        wire = self._encoder.wire
        found: dict[bytes, bytes] = {}
        for entry in entries:
            encoded = wire(entry)
            if encoded is None:  # finsy's encoding
                message = entry.encode(self.pipeline.schema)
                encoded = (message_key(message), _whole(message))
            found[encoded[0]] = encoded[1]
        return found


class EntryEncoder:
    """finsy table entries → P4Runtime entities, byte for byte as finsy's own encoding, with
    the P4Info lookups done once per table and action and the protobuf wire bytes written
    directly (finsy's per-entry lookups and checks were a quarter of the controller's time in
    a stream of CREATEs; building the nested messages field by field was then most of the
    planner's time, ~15 µs an entry against ~0.5 µs to parse the same bytes: both profiled).
    Only what the controller's tables use is handled here — integer values of exact,
    ternary, LPM and optional fields and action parameters on direct tables; anything else
    (and every counter entry) goes to finsy. tests/controller/test_planner.py compares both
    encodings, and the identity key, for every tunnel kind."""

    def __init__(self, schema: Any) -> None:
        self._schema = schema
        # table name -> (table_id field bytes, {field name: (field_id bytes, kind, bitwidth)},
        # direct?, {action name: (action_id bytes, {param name: (param_id bytes, bitwidth)})})
        self._tables: dict[str, Any] = {}

    def _table(self, name: str) -> Any:
        found = self._tables.get(name)
        if found is None:
            table = self._schema.tables[name]
            fields = {field.alias: (_FM_FIELD_ID + varint(field.id), field.match_type.name,
                                    field.bitwidth)
                      for field in table.match_fields}
            found = (_TE_TABLE_ID + varint(table.id), fields, table.action_profile is None, {})
            self._tables[name] = found
        return found

    def encode(self, entry: Any) -> p4r.Entity:
        """One entry as a P4Runtime entity."""
        wire = self.wire(entry)
        if wire is None:
            return entry.encode(self._schema)
        return p4r.Entity.FromString(wire[1])

    def wire(self, entry: Any) -> tuple[bytes, bytes] | None:
        """(identity key, entity) of one entry as the bytes of :func:`message_key` and of
        the entity's deterministic serialization; None for what only finsy encodes."""
        if not isinstance(entry, fy.P4TableEntry) or not entry.table_id or entry.counter_data \
                or entry.meter_config or entry.is_default_action or entry.idle_timeout_ns \
                or entry.controller_metadata or entry.time_since_last_hit is not None \
                or entry.meter_counter_data or not isinstance(entry.action, fy.P4TableAction) \
                or entry.priority < 0:
            return None
        table_id, fields, direct, actions = self._table(entry.table_id)
        if not direct:
            return None
        matches: list[bytes] = []
        for name, value in (entry.match or {}).items():
            field = fields.get(name)
            match: Any = _field_match(field, value) if field is not None else _UNHANDLED
            if match is _UNHANDLED:
                return None
            if match is not None:
                matches.append(_TE_MATCH + _length(len(match)) + match)
        action = entry.action
        known = actions.get(action.name)
        if known is None:
            spec = self._schema.tables[entry.table_id].actions[action.name]
            known = (_A_ACTION_ID + varint(spec.id),
                     {param.name: (_P_PARAM_ID + varint(param.id), param.bitwidth)
                      for param in spec.params})
            actions[action.name] = known
        action_id, param_specs = known
        if action.args and len(action.args) != len(param_specs):
            return None  # finsy names the missing parameters
        body = [action_id]
        for name, value in action.args.items():
            spec = param_specs.get(name)
            if spec is None or type(value) is not int or not 0 <= value < 1 << spec[1]:
                return None
            raw = _canonical(value)
            param = spec[0] + _P_VALUE + _length(len(raw)) + raw
            body.append(_A_PARAMS + _length(len(param)) + param)
        call = b"".join(body)
        call = _TA_ACTION + _length(len(call)) + call
        matched = b"".join(matches)
        priority = _TE_PRIORITY + _length(entry.priority) if entry.priority else b""
        key = table_id + matched + priority
        whole = table_id + matched + _TE_ACTION + _length(len(call)) + call + priority
        return (_E_TABLE_ENTRY + _length(len(key)) + key,
                _E_TABLE_ENTRY + _length(len(whole)) + whole)


def _tag(message: Any, name: str) -> bytes:
    """The protobuf tag of field ``name`` of ``message`` (numbers from the descriptors)."""
    field = message.DESCRIPTOR.fields_by_name[name]
    wire_type = 2 if field.type in (field.TYPE_MESSAGE, field.TYPE_BYTES) else 0
    return varint(field.number << 3 | wire_type)


_E_TABLE_ENTRY = _tag(p4r.Entity, "table_entry")
_TE_TABLE_ID, _TE_MATCH, _TE_ACTION, _TE_PRIORITY = (
    _tag(p4r.TableEntry, name) for name in ("table_id", "match", "action", "priority"))
_FM_FIELD_ID = _tag(p4r.FieldMatch, "field_id")
_FM_KIND = {kind: _tag(p4r.FieldMatch, kind) for kind in ("exact", "ternary", "lpm", "optional")}
_VALUE = _tag(p4r.FieldMatch.Exact, "value")  # 1 in Exact, Ternary, LPM and Optional alike
_MASK = _tag(p4r.FieldMatch.Ternary, "mask")
_PREFIX_LEN = _tag(p4r.FieldMatch.LPM, "prefix_len")
_TA_ACTION = _tag(p4r.TableAction, "action")
_A_ACTION_ID, _A_PARAMS = _tag(p4r.Action, "action_id"), _tag(p4r.Action, "params")
_P_PARAM_ID, _P_VALUE = _tag(p4r.Action.Param, "param_id"), _tag(p4r.Action.Param, "value")
_U_TYPE, _U_ENTITY = _tag(p4r.Update, "type"), _tag(p4r.Update, "entity")
assert all(_tag(kind, "value") == _VALUE for kind in (
    p4r.FieldMatch.Ternary, p4r.FieldMatch.LPM, p4r.FieldMatch.Optional))

_UNHANDLED = object()
_SHORT = tuple(varint(length) for length in range(1 << 14))  # varints of 1-2 bytes, by value


def _length(value: int) -> bytes:
    """``varint(value)`` (a table lookup for the lengths and ids an entry has)."""
    return _SHORT[value] if value < 16384 else varint(value)


def _canonical(value: int) -> bytes:
    """P4Runtime's canonical bytestring of a non-negative integer (no leading zero bytes)."""
    return value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")


def _bytes_field(tag: bytes, raw: bytes) -> bytes:
    return tag + _length(len(raw)) + raw


def _field_match(field: tuple[bytes, str, int], value: Any) -> Any:
    """One FieldMatch's bytes as finsy encodes it; None for a don't-care; _UNHANDLED for
    values finsy must encode (or refuse)."""
    field_id, kind, bits = field
    top = 1 << bits
    if kind == "EXACT" or (kind == "OPTIONAL" and value is not None):
        if type(value) is not int or not 0 <= value < top:
            return _UNHANDLED
        inner = _bytes_field(_VALUE, _canonical(value))
        return field_id + _bytes_field(_FM_KIND["exact" if kind == "EXACT" else "optional"],
                                       inner)
    if kind == "TERNARY":
        if type(value) is int:
            data, mask = value, top - 1
        elif (type(value) is tuple and len(value) == 2 and type(value[0]) is int
              and type(value[1]) is int):
            data, mask = value
        else:
            return _UNHANDLED
        if not (0 <= data < top and 0 <= mask < top):
            return _UNHANDLED
        if mask == 0:
            return None
        inner = _bytes_field(_VALUE, _canonical(data)) + _bytes_field(_MASK, _canonical(mask))
        return field_id + _bytes_field(_FM_KIND["ternary"], inner)
    if kind == "LPM":
        if type(value) is int:
            data, prefix = value, bits
        elif (type(value) is tuple and len(value) == 2 and type(value[0]) is int
              and type(value[1]) is int):
            data, prefix = value
        else:
            return _UNHANDLED
        if not (0 <= data < top and 0 <= prefix <= bits):
            return _UNHANDLED
        if prefix == 0:
            return None
        data &= ~((1 << (bits - prefix)) - 1)
        inner = _bytes_field(_VALUE, _canonical(data)) + _PREFIX_LEN + _length(prefix)
        return field_id + _bytes_field(_FM_KIND["lpm"], inner)
    return _UNHANDLED


INSERT, MODIFY, DELETE = p4r.Update.INSERT, p4r.Update.MODIFY, p4r.Update.DELETE


def _update(kind: Any, entity: p4r.Entity) -> p4r.Update:
    """A P4Runtime update, written as it is (finsy's Switch.write passes Update messages)."""
    return p4r.Update(type=kind, entity=entity)


def _wire_update(kind: int, entity: bytes) -> p4r.Update:
    """:func:`_update` of a serialized entity (parsed once: ~0.5 µs)."""
    return p4r.Update.FromString(_U_TYPE + _SHORT[kind] + _U_ENTITY + _length(len(entity))
                                 + entity)


def _whole(message: p4r.Entity) -> bytes:
    return bytes(message.SerializeToString(deterministic=True))


def message_key(message: p4r.Entity) -> bytes:
    """The identity of an encoded table entry (table, match, priority) as canonical bytes."""
    key = p4r.Entity()
    key.CopyFrom(message)
    entry = key.table_entry
    entry.ClearField("action")
    entry.ClearField("counter_data")
    return bytes(key.SerializeToString(deterministic=True))


def entry_key(entity: Any, pipeline: Pipeline) -> bytes:
    """The identity of a table entry (table, match, priority) as canonical bytes."""
    return message_key(entity.encode(pipeline.schema))


def full_entry(entity: Any, pipeline: Pipeline) -> bytes:
    """The whole entry (with its action) as canonical bytes."""
    message = entity.encode(pipeline.schema)
    message.table_entry.ClearField("counter_data")
    return bytes(message.SerializeToString(deterministic=True))
