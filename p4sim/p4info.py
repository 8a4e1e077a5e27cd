"""P4Info generation, following what p4c's control-plane back end writes for v1model."""

from __future__ import annotations

from finsy.proto import p4i

from p4sim.model import Annotations, ProgramModel

_MATCH = {
    "exact": p4i.MatchField.EXACT, "ternary": p4i.MatchField.TERNARY,
    "lpm": p4i.MatchField.LPM, "range": p4i.MatchField.RANGE,
    "optional": p4i.MatchField.OPTIONAL,
}
_UNIT = {"PACKETS": p4i.CounterSpec.PACKETS, "BYTES": p4i.CounterSpec.BYTES,
         "BOTH": p4i.CounterSpec.BOTH}
_METER_UNIT = {"BYTES": p4i.MeterSpec.BYTES, "PACKETS": p4i.MeterSpec.PACKETS}
_SKIPPED_ANNOTATIONS = {"name", "id", "defaultonly", "tableonly", "hidden", "field_list",
                        "controller_header"}


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
    for n, values in annotations:
        if n in _SKIPPED_ANNOTATIONS:
            continue
        args = ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in values)
        pre.annotations.append(f"@{n}({args})" if values else f"@{n}")


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
    for t in sorted(model.tables, key=lambda t: t.id):
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
            for n, _values in anns:
                if n not in _SKIPPED_ANNOTATIONS:
                    ref.annotations.append(f"@{n}")
        if t.default_is_const:
            pt.const_default_action_id = model.actions[t.default_action[0]].id
        if t.direct_counter:
            pt.direct_resource_ids.append(direct_by_name[t.direct_counter].id)
        if t.direct_meter:
            pt.direct_resource_ids.append(direct_meters_by_name[t.direct_meter].id)
        pt.size = t.size
        if t.is_const:
            pt.is_const_table = True
    for a in sorted(model.actions.values(), key=lambda a: a.id):
        pa = info.actions.add()
        _preamble(pa.preamble, a.id, a.name, aliases, a.annotations)
        for i, (pname, width) in enumerate(a.params, 1):
            p = pa.params.add()
            p.id = i
            p.name = pname
            p.bitwidth = width
    for c in sorted(model.counters, key=lambda c: c.id):
        pc = info.counters.add()
        _preamble(pc.preamble, c.id, c.name, aliases)
        pc.spec.unit = _UNIT[c.unit]
        pc.size = c.size
    tables_by_counter = {t.direct_counter: t for t in model.tables if t.direct_counter}
    for c in sorted(model.direct_counters, key=lambda c: c.id):
        pd = info.direct_counters.add()
        _preamble(pd.preamble, c.id, c.name, aliases)
        pd.spec.unit = _UNIT[c.unit]
        table = tables_by_counter.get(c.name)
        if table is not None:
            pd.direct_table_id = table.id
    for m in sorted(model.meters, key=lambda m: m.id):
        pm = info.meters.add()
        _preamble(pm.preamble, m.id, m.name, aliases)
        pm.spec.unit = _METER_UNIT[m.unit]
        pm.size = m.size
    tables_by_meter = {t.direct_meter: t for t in model.tables if t.direct_meter}
    for m in sorted(model.direct_meters, key=lambda m: m.id):
        pdm = info.direct_meters.add()
        _preamble(pdm.preamble, m.id, m.name, aliases)
        pdm.spec.unit = _METER_UNIT[m.unit]
        metered = tables_by_meter.get(m.name)
        if metered is not None:
            pdm.direct_table_id = metered.id
    for r in sorted(model.registers, key=lambda r: r.id):
        pr = info.registers.add()
        _preamble(pr.preamble, r.id, r.name, aliases)
        pr.type_spec.bitstring.bit.bitwidth = r.bitwidth
        pr.size = r.size
    for d in sorted(model.digests, key=lambda d: d.id):
        pd_ = info.digests.add()
        _preamble(pd_.preamble, d.id, d.name, aliases)
        pd_.type_spec.struct.name = d.name
        members = info.type_info.structs[d.name].members
        for fname, width in d.fields:
            member = members.add()
            member.name = fname
            member.type_spec.bitstring.bit.bitwidth = width
    for h in sorted(model.controller_headers, key=lambda h: h.id):
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
