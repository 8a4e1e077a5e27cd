"""P4Info generation: what p4c-bm2-ss 1.2.5.16's control-plane back end writes for v1model.

What p4c does and this module follows (learnt from p4c's control-plane/p4RuntimeSerializer.cpp
and frontends/p4/removeParameters.cpp):

- every annotation except `@name`, `@id`, `@brief` and `@description` is written, on actions,
  tables and action refs alike (so `@defaultonly` appears both as an annotation and as the ref's
  `scope`);
- a table with a `default_action` property gets `initial_default_action` (action id and
  arguments), whether or not the default is `const`; `const_default_action_id` as well when it
  is; `has_initial_entries` when its `entries` list is not empty;
- an action called directly (from an apply block or another action) has its parameters bound
  by the front end, so its P4Info entry has none;
- `type_info` is always present (empty when the program has no user-defined P4Runtime types);
- entities come in program order, not sorted: p4c visits the evaluated blocks ingress before
  egress with nested controls inlined where they are instantiated, and top-level actions are
  copied to the front of the control using them. That order is p4c's where it is deterministic
  (p4c keys a block's children by node address; in practice declaration order).
"""

from __future__ import annotations

from finsy.proto import p4i

from p4sim.model import ActionModel, Annotations, ProgramModel

_MATCH = {
    "exact": p4i.MatchField.EXACT, "ternary": p4i.MatchField.TERNARY,
    "lpm": p4i.MatchField.LPM, "range": p4i.MatchField.RANGE,
    "optional": p4i.MatchField.OPTIONAL,
}
_UNIT = {"PACKETS": p4i.CounterSpec.PACKETS, "BYTES": p4i.CounterSpec.BYTES,
         "BOTH": p4i.CounterSpec.BOTH}
_METER_UNIT = {"BYTES": p4i.MeterSpec.BYTES, "PACKETS": p4i.MeterSpec.PACKETS}
# what p4c leaves out of P4Info annotations (represented elsewhere, or documentation)
_SKIPPED_ANNOTATIONS = {"name", "id", "brief", "description"}


class _Aliases:
    """Shortest unique dotted suffix of every name (p4c's P4SymbolSuffixSet)."""

    def __init__(self, names: list[str]) -> None:
        self.counts: dict[tuple[str, ...], int] = {}
        for n in set(names):
            parts = n.split(".")
            for i in range(1, len(parts) + 1):
                key = tuple(parts[-i:])
                self.counts[key] = self.counts.get(key, 0) + 1

    def alias(self, name: str) -> str:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            if self.counts.get(tuple(parts[-i:]), 0) < 2:
                return ".".join(parts[-i:])
        return name


def _preamble(pre: p4i.Preamble, id_: int, name: str, aliases: _Aliases,
              annotations: Annotations = ()) -> None:
    pre.id = id_
    pre.name = name
    pre.alias = aliases.alias(name)
    pre.annotations.extend(_annotation_texts(annotations))


def _annotation_texts(annotations: Annotations) -> list[str]:
    texts = []
    for n, values in annotations:
        if n in _SKIPPED_ANNOTATIONS:
            continue
        args = ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in values)
        texts.append(f"@{n}({args})" if values else f"@{n}")
    return texts


def _value_bytes(value: int, bitwidth: int) -> bytes:
    """P4Runtime's canonical bytestring: big-endian, no leading zero bytes (one byte for 0)."""
    del bitwidth  # canonical form does not pad to the width
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _in_p4c_order(model: ProgramModel) -> list[ActionModel]:
    """Top-level actions first (p4c copies them to the front of the control using them), then
    the controls' actions in program order."""
    actions = list(model.actions.values())
    return [a for a in actions if "." not in a.name] + [a for a in actions if "." in a.name]


def build_p4info(model: ProgramModel) -> p4i.P4Info:
    """The P4Info for a compiled program model (ids already assigned)."""
    info = p4i.P4Info()
    info.pkg_info.arch = "v1model"
    hidden_tables = {t.name for t in model.tables
                     if any(n == "hidden" for n, _ in t.annotations)}
    names = [t.name for t in model.tables] + list(model.actions) + [
        c.name for c in model.counters + model.direct_counters] + [
        r.name for r in model.registers] + [h.name for h in model.controller_headers] + [
        m.name for m in model.meters + model.direct_meters] + [d.name for d in model.digests]
    aliases = _Aliases(names)
    direct_by_name = {c.name: c for c in model.direct_counters}
    direct_meters_by_name = {m.name: m for m in model.direct_meters}
    info.type_info.SetInParent()
    in_tables = {aname for t in model.tables for aname, _ in t.actions}
    bound = model.directly_called - in_tables
    for t in model.tables:
        if t.name in hidden_tables:
            continue
        pt = info.tables.add()
        _preamble(pt.preamble, t.id, t.name, aliases, t.annotations)
        for k in t.keys:
            mf = pt.match_fields.add()
            mf.id = k.field_id
            mf.name = k.name
            mf.bitwidth = k.bitwidth
            mf.match_type = _MATCH[k.match_kind]
        for aname, anns in t.actions:
            ref = pt.action_refs.add()
            ref.id = model.actions[aname].id
            flags = {n for n, _ in anns}
            if "defaultonly" in flags:
                ref.scope = p4i.ActionRef.DEFAULT_ONLY
            elif "tableonly" in flags:
                ref.scope = p4i.ActionRef.TABLE_ONLY
            if "hidden" not in flags:  # the NoAction p4sim adds to a table without a default
                ref.annotations.extend(_annotation_texts(anns))
        if t.default_is_const:
            pt.const_default_action_id = model.actions[t.default_action[0]].id
        if t.default_explicit:
            default = model.actions[t.default_action[0]]
            call = pt.initial_default_action
            call.action_id = default.id
            for pid, ((_pname, width), value) in enumerate(
                    zip(default.params, t.default_action[1], strict=False), 1):
                argument = call.arguments.add()
                argument.param_id = pid
                argument.value = _value_bytes(value, width)
        if t.direct_counter:
            pt.direct_resource_ids.append(direct_by_name[t.direct_counter].id)
        if t.direct_meter:
            pt.direct_resource_ids.append(direct_meters_by_name[t.direct_meter].id)
        pt.size = t.size
        if t.is_const:
            pt.is_const_table = True
        if t.const_entries:
            pt.has_initial_entries = True
    for a in _in_p4c_order(model):
        if any(n == "hidden" for n, _ in a.annotations):
            continue
        pa = info.actions.add()
        _preamble(pa.preamble, a.id, a.name, aliases, a.annotations)
        for i, (pname, width) in enumerate(() if a.name in bound else a.params, 1):
            p = pa.params.add()
            p.id = i
            p.name = pname
            p.bitwidth = width
    for c in model.counters:
        pc = info.counters.add()
        _preamble(pc.preamble, c.id, c.name, aliases)
        pc.spec.unit = _UNIT[c.unit]
        pc.size = c.size
    tables_by_counter = {t.direct_counter: t for t in model.tables if t.direct_counter}
    for c in model.direct_counters:
        pd = info.direct_counters.add()
        _preamble(pd.preamble, c.id, c.name, aliases)
        pd.spec.unit = _UNIT[c.unit]
        table = tables_by_counter.get(c.name)
        if table is not None:
            pd.direct_table_id = table.id
    for m in model.meters:
        pm = info.meters.add()
        _preamble(pm.preamble, m.id, m.name, aliases)
        pm.spec.unit = _METER_UNIT[m.unit]
        pm.size = m.size
    tables_by_meter = {t.direct_meter: t for t in model.tables if t.direct_meter}
    for m in model.direct_meters:
        pdm = info.direct_meters.add()
        _preamble(pdm.preamble, m.id, m.name, aliases)
        pdm.spec.unit = _METER_UNIT[m.unit]
        metered = tables_by_meter.get(m.name)
        if metered is not None:
            pdm.direct_table_id = metered.id
    for r in model.registers:
        pr = info.registers.add()
        _preamble(pr.preamble, r.id, r.name, aliases)
        pr.type_spec.bitstring.bit.bitwidth = r.bitwidth
        pr.size = r.size
    for d in model.digests:
        pd_ = info.digests.add()
        _preamble(pd_.preamble, d.id, d.name, aliases)
        pd_.type_spec.struct.name = d.name
        members = info.type_info.structs[d.name].members
        for fname, width in d.fields:
            member = members.add()
            member.name = fname
            member.type_spec.bitstring.bit.bitwidth = width
    for h in model.controller_headers:
        ph = info.controller_packet_metadata.add()
        ph.preamble.id = h.id
        ph.preamble.name = h.name
        ph.preamble.alias = h.name
        ph.preamble.annotations.append(f'@controller_header("{h.name}")')
        for fid, fname, width in h.fields:
            md = ph.metadata.add()
            md.id = fid
            md.name = fname
            md.bitwidth = width
    return info
