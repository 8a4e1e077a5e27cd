"""Translation between P4Runtime ``TableEntry`` messages and p4sim's runtime entries.

Everything P4Runtime defines about a well-formed entry is checked here, before the runtime
state is touched: ids known to the P4Info, match kinds, byte strings that fit their fields,
LPM and ternary values with no bits outside their prefix or mask, "don't care" written as an
omitted field, priorities present exactly when the table needs them, action scopes, complete
action parameters. Codes and wording follow BMv2's server where it and the spec agree.
"""

from __future__ import annotations

from typing import NamedTuple

from p4sim.p4runtime.bytestrings import decode_uint, encode_uint, full_mask, prefix_mask
from p4sim.p4runtime.errors import denied, invalid
from p4sim.p4runtime.proto import p4i, p4r
from p4sim.p4runtime.schema import ActionInfo, Schema, TableInfo
from p4sim.runtime import ActionCall, FieldMatch, TableEntry

_MASKS: dict[tuple[int, int], int] = {}  # (width, ternary mask) -> the one int kept for it
_MASKS_KEPT = 4096  # bound on _MASKS: masks beyond it are kept per entry

_ONEOF_KIND = {"exact": "exact", "ternary": "ternary", "lpm": "lpm", "range": "range",
               "optional": "optional"}


class DecodedEntry(NamedTuple):
    """A checked ``p4.v1.TableEntry``: the runtime entry (None for the default entry), the
    action (None when absent), and the extras P4Runtime keeps with an entry. (A named tuple:
    one is built per update of a write, and a frozen dataclass's ``__init__`` was a tenth of
    the decode, profiled.)"""

    table: TableInfo
    is_default: bool
    matches: tuple[FieldMatch, ...]
    priority: int
    action: ActionCall | None
    metadata: bytes
    counter_data: tuple[int, int] | None

    def runtime_entry(self) -> TableEntry:
        assert self.action is not None
        return TableEntry(table_id=self.table.id, matches=self.matches, priority=self.priority,
                          action=self.action)

    @property
    def key(self) -> tuple[tuple[FieldMatch, ...], int]:
        return (tuple(sorted(self.matches, key=lambda m: m.field_id)), self.priority)


def decode_table_entry(schema: Schema, message: p4r.TableEntry) -> DecodedEntry:
    """Check and translate one table entry (key, priority, action if present)."""
    table = schema.table(message.table_id)
    if message.HasField("time_since_last_hit"):
        raise invalid("time_since_last_hit must not be set in a write")
    if message.is_default_action:
        if len(message.match):
            raise invalid(f"table {table.name!r}: the default entry must have no match fields")
        if message.priority != 0:
            raise invalid(f"table {table.name!r}: the default entry must have priority 0")
        matches: tuple[FieldMatch, ...] = ()
    else:
        matches = decode_matches(table, message.match)
        check_priority(table, message.priority)
    action = None
    if message.HasField("action"):
        action = decode_action(schema, table, message.action, default=message.is_default_action)
    counter_data = None
    if message.HasField("counter_data"):
        counter_data = decode_counter_data(message.counter_data, f"table {table.name!r}")
    return DecodedEntry(table=table, is_default=message.is_default_action, matches=matches,
                        priority=message.priority, action=action, metadata=message.metadata,
                        counter_data=counter_data)


def check_priority(table: TableInfo, priority: int) -> None:
    if priority < 0:
        raise invalid(f"table {table.name!r}: priority {priority} is negative")
    if table.needs_priority and priority == 0:
        raise invalid(
            f"table {table.name!r}: has ternary, range or optional fields, so priority "
            "must be > 0"
        )
    if not table.needs_priority and priority != 0:
        raise invalid(
            f"table {table.name!r}: has only exact/lpm fields, so priority must be 0, "
            f"got {priority}"
        )


def decode_matches(table: TableInfo, fields: object) -> tuple[FieldMatch, ...]:
    """The checked matches. Exact and ternary fields with well-formed values (what clients
    write almost always) are decoded inline; anything else, and every malformed value, goes
    through :func:`_decode_one`, whose checks and errors are the reference (a write of
    10,000 entries spent a third of its time building the error texts of fields that had no
    error, profiled)."""
    seen: set[int] = set()
    out = []
    by_id = table.fields_by_id
    for field in fields:  # type: ignore[attr-defined]
        field_id = field.field_id
        info = by_id.get(field_id)
        if info is None:
            raise invalid(f"table {table.name!r}: no match field with id {field_id}")
        if field_id in seen:
            raise invalid(f"table {table.name!r}: match field {info.name!r} given twice")
        seen.add(field_id)
        given = field.WhichOneof("field_match_type")
        kind = info.match_kind
        if given != kind:
            raise invalid(
                f"table {table.name!r}: field {info.name!r} is {kind}, "
                f"got a {given} match"
            )
        width = info.bitwidth
        if kind == "exact":
            raw = field.exact.value
            value = int.from_bytes(raw, "big")
            if raw and not value >> width:
                out.append(FieldMatch(field_id, "exact", value))
                continue
        elif kind == "ternary":
            ternary = field.ternary
            raw, raw_mask = ternary.value, ternary.mask
            value, mask = int.from_bytes(raw, "big"), int.from_bytes(raw_mask, "big")
            if raw and raw_mask and mask and not (value >> width or mask >> width
                                                  or value & ~mask):
                out.append(FieldMatch(field_id, "ternary", value, _shared_mask(width, mask)))
                continue
        out.append(_decode_one(table, info.name, info.id, width, given, field))
    if not seen.issuperset(table.exact_ids):
        for info in table.exact_fields:
            if info.id not in seen:
                raise invalid(f"table {table.name!r}: exact field {info.name!r} is missing")
    return tuple(out)


def _decode_one(table: TableInfo, name: str, field_id: int, width: int, kind: str,
                field: p4r.FieldMatch) -> FieldMatch:
    what = f"table {table.name!r} field {name!r}"
    if kind == "exact":
        return FieldMatch(field_id=field_id, kind="exact",
                          value=decode_uint(field.exact.value, width, what))
    if kind == "optional":
        return FieldMatch(field_id=field_id, kind="optional",
                          value=decode_uint(field.optional.value, width, what))
    if kind == "lpm":
        plen = field.lpm.prefix_len
        value = decode_uint(field.lpm.value, width, what)
        if plen <= 0 or plen > width:
            hint = " (omit the field for \"don't care\")" if plen == 0 else ""
            raise invalid(f"{what}: prefix length {plen} outside 1..{width}{hint}")
        if value & ~prefix_mask(width, plen):
            raise invalid(f"{what}: value 0x{field.lpm.value.hex()} has bits set beyond "
                          f"prefix length {plen}")
        return FieldMatch(field_id=field_id, kind="lpm", value=value, prefix_len=plen)
    if kind == "ternary":
        value = decode_uint(field.ternary.value, width, what + " value")
        mask = decode_uint(field.ternary.mask, width, what + " mask")
        if mask == 0:
            raise invalid(f"{what}: mask 0 is \"don't care\"; omit the field instead")
        if value & ~mask:
            raise invalid(f"{what}: value 0x{field.ternary.value.hex()} has bits outside mask "
                          f"0x{field.ternary.mask.hex()}")
        # One int object per distinct mask, not one per entry (most are the field's full mask).
        return FieldMatch(field_id=field_id, kind="ternary", value=value,
                          mask=_shared_mask(width, mask))
    if kind == "range":
        low = decode_uint(field.range.low, width, what + " low")
        high = decode_uint(field.range.high, width, what + " high")
        if low > high:
            raise invalid(f"{what}: range low {low} is above high {high}")
        if low == 0 and high == full_mask(width):
            raise invalid(f"{what}: the full range is \"don't care\"; omit the field instead")
        return FieldMatch(field_id=field_id, kind="range", value=low, high=high)
    raise invalid(f"{what}: match kind {kind} is not supported")


def _shared_mask(width: int, mask: int) -> int:
    found = _MASKS.get((width, mask))
    if found is None:
        if len(_MASKS) >= _MASKS_KEPT:
            return mask
        found = _MASKS[(width, mask)] = mask
    return found


def decode_action(schema: Schema, table: TableInfo, action: p4r.TableAction, *,
                  default: bool) -> ActionCall:
    kind = action.WhichOneof("type")
    if kind != "action":
        raise invalid(f"table {table.name!r} has no action profile; give a direct action, "
                      f"not {kind}")
    call = action.action
    info = schema.action(call.action_id)
    scope = table.action_scopes.get(call.action_id)
    if scope is None:
        raise invalid(f"action {info.name!r} is not an action of table {table.name!r}")
    if default and scope == p4i.ActionRef.TABLE_ONLY:
        raise denied(f"action {info.name!r} is TABLE_ONLY in table {table.name!r}; it cannot "
                     "be the default action")
    if not default and scope == p4i.ActionRef.DEFAULT_ONLY:
        raise denied(f"action {info.name!r} is DEFAULT_ONLY in table {table.name!r}; it cannot "
                     "be used in an entry")
    return ActionCall(action_id=info.id, args=decode_params(info, call.params))


def decode_params(info: ActionInfo, params: object) -> tuple[int, ...]:
    given: dict[int, bytes] = {}
    for param in params:  # type: ignore[attr-defined]
        if param.param_id in given:
            raise invalid(f"action {info.name!r}: parameter id {param.param_id} given twice")
        given[param.param_id] = param.value
    args = []
    for spec in info.params:
        raw = given.pop(spec.id, None)
        if raw is None:
            raise invalid(f"action {info.name!r}: parameter {spec.name!r} is missing")
        value = int.from_bytes(raw, "big")
        if not raw or value >> spec.bitwidth:  # decode_uint's check, and its error
            decode_uint(raw, spec.bitwidth, f"action {info.name!r} parameter {spec.name!r}")
        args.append(value)
    if given:
        raise invalid(f"action {info.name!r}: no parameter with id {min(given)}")
    return tuple(args)


def decode_counter_data(data: p4r.CounterData, what: str) -> tuple[int, int]:
    if data.packet_count < 0 or data.byte_count < 0:
        raise invalid(f"{what}: counter data must not be negative")
    return (data.packet_count, data.byte_count)


# -- encoding for reads ---------------------------------------------------------------------


def encode_matches(matches: tuple[FieldMatch, ...]) -> list[p4r.FieldMatch]:
    out = []
    for m in sorted(matches, key=lambda m: m.field_id):
        field = p4r.FieldMatch(field_id=m.field_id)
        if m.kind == "exact":
            field.exact.value = encode_uint(m.value)
        elif m.kind == "optional":
            field.optional.value = encode_uint(m.value)
        elif m.kind == "lpm":
            field.lpm.value = encode_uint(m.value)
            field.lpm.prefix_len = m.prefix_len or 0
        elif m.kind == "ternary":
            field.ternary.value = encode_uint(m.value)
            field.ternary.mask = encode_uint(m.mask or 0)
        elif m.kind == "range":
            field.range.low = encode_uint(m.value)
            field.range.high = encode_uint(m.high or 0)
        out.append(field)
    return out


def encode_action(schema: Schema, call: ActionCall) -> p4r.TableAction:
    info = schema.actions.get(call.action_id)
    params = []
    if info is not None:
        params = [p4r.Action.Param(param_id=spec.id, value=encode_uint(value))
                  for spec, value in zip(info.params, call.args, strict=False)]
    return p4r.TableAction(action=p4r.Action(action_id=call.action_id, params=params))


def encode_table_entry(schema: Schema, entry: TableEntry, *, is_const: bool,
                       metadata: bytes) -> p4r.TableEntry:
    return p4r.TableEntry(
        table_id=entry.table_id, match=encode_matches(entry.matches), priority=entry.priority,
        action=encode_action(schema, entry.action), is_const=is_const, metadata=metadata,
    )


def encode_default_entry(schema: Schema, table_id: int, call: ActionCall) -> p4r.TableEntry:
    return p4r.TableEntry(table_id=table_id, action=encode_action(schema, call),
                          is_default_action=True)
