"""TableState lookups (mask groups, incremental indexes) against a plain linear scan.

The reference is the definition: among the entries whose every field matches, the one of
largest priority wins, then the longest total prefix, then the older entry. Hypothesis builds
random tables of ternary, lpm, range and optional fields (overlapping entries, equal
priorities, deletes and modifies between lookups) and checks every lookup.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_table_lookup_property.py -q
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from p4sim.errors import AlreadyExistsError
from p4sim.runtime import ActionCall, ActionSpec, FieldMatch, KeySpec, TableEntry, TableState

WIDTH = 4  # small fields so random keys collide and entries overlap
KINDS = ("ternary", "lpm", "range", "optional")
ACTION = ActionSpec(action_id=1, name="hit", param_bitwidths=(8,))


def _table(kinds: tuple[str, ...]) -> TableState:
    keys = tuple(KeySpec(field_id=i + 1, name=f"f{i}", bitwidth=WIDTH, match_kind=kind)  # type: ignore[arg-type]
                 for i, kind in enumerate(kinds))
    return TableState(table_id=7, name="t", keys=keys, actions=(ACTION,), size=10_000,
                      default_action=ActionCall(action_id=1, args=(0,)),
                      default_is_const=False, is_const=False)


def _field(draw: st.DrawFn, field_id: int, kind: str) -> FieldMatch | None:
    full = (1 << WIDTH) - 1
    if draw(st.booleans()):
        return None  # wildcard
    if kind == "ternary":
        mask = draw(st.integers(1, full))
        return FieldMatch(field_id=field_id, kind="ternary",
                          value=draw(st.integers(0, full)) & mask, mask=mask)
    if kind == "lpm":
        plen = draw(st.integers(1, WIDTH))
        mask = full ^ ((1 << (WIDTH - plen)) - 1)
        return FieldMatch(field_id=field_id, kind="lpm", value=draw(st.integers(0, full)) & mask,
                          prefix_len=plen)
    if kind == "range":
        low = draw(st.integers(0, full))
        return FieldMatch(field_id=field_id, kind="range", value=low,
                          high=draw(st.integers(low, full)))
    return FieldMatch(field_id=field_id, kind="optional", value=draw(st.integers(0, full)))


@st.composite
def _entries(draw: st.DrawFn, kinds: tuple[str, ...]) -> list[TableEntry]:
    out = []
    for n in range(draw(st.integers(0, 40))):
        matches = tuple(m for i, kind in enumerate(kinds)
                        if (m := _field(draw, i + 1, kind)) is not None)
        out.append(TableEntry(table_id=7, matches=matches, priority=draw(st.integers(1, 4)),
                              action=ActionCall(action_id=1, args=(n,))))
    return out


def _matches(m: FieldMatch, value: int) -> bool:
    full = (1 << WIDTH) - 1
    if m.kind == "range":
        return m.value <= value <= (m.high if m.high is not None else full)
    if m.kind == "ternary":
        return value & (m.mask or 0) == m.value
    if m.kind == "lpm":
        plen = m.prefix_len or 0
        mask = full ^ ((1 << (WIDTH - plen)) - 1)
        return value & mask == m.value
    return value == m.value


def _reference(live: list[TableEntry], values: tuple[int, ...]) -> TableEntry | None:
    """Linear scan: the first of the matching entries by (priority, prefix) desc, age asc."""
    best = None
    best_score = None
    for entry in live:  # oldest first
        if all(_matches(m, values[m.field_id - 1]) for m in entry.matches):
            prefix = sum(m.prefix_len or 0 for m in entry.matches if m.kind == "lpm")
            score = (entry.priority, prefix)
            if best_score is None or score > best_score:
                best, best_score = entry, score
    return best


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_lookup_equals_linear_scan(data: st.DataObject) -> None:
    kinds = tuple(data.draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=3)))
    table = _table(kinds)
    live: list[TableEntry] = []
    for entry in data.draw(_entries(kinds)):
        try:
            table.insert(entry)
        except AlreadyExistsError:
            continue
        live.append(entry)
    probes = st.tuples(*[st.integers(0, (1 << WIDTH) - 1) for _ in kinds])
    for _ in range(3):
        for values in data.draw(st.lists(probes, min_size=1, max_size=12)):
            assert table.lookup(values) == _reference(live, values)
        # deletes, modifies and re-inserts between lookups keep the indexes exact
        if live:
            victim = live.pop(data.draw(st.integers(0, len(live) - 1)))
            table.delete(victim.key)
        if live:
            position = data.draw(st.integers(0, len(live) - 1))
            changed = TableEntry(table_id=7, matches=live[position].matches,
                                 priority=live[position].priority,
                                 action=ActionCall(action_id=1, args=(255,)))
            table.modify(changed)
            live[position] = changed


def test_exact_only_table_indexes_incrementally() -> None:
    keys = (KeySpec(field_id=1, name="k", bitwidth=16, match_kind="exact"),)
    table = TableState(table_id=7, name="t", keys=keys, actions=(ACTION,), size=100,
                       default_action=ActionCall(action_id=1, args=(0,)),
                       default_is_const=False, is_const=False)
    entries = [TableEntry(table_id=7, matches=(FieldMatch(field_id=1, kind="exact", value=v),),
                          action=ActionCall(action_id=1, args=(v,))) for v in range(50)]
    for entry in entries:
        table.insert(entry)
    table.delete(entries[10].key)
    assert table.lookup((10,)) is None
    assert table.lookup((11,)) == entries[11]
    table.modify(TableEntry(table_id=7, matches=entries[12].matches,
                            action=ActionCall(action_id=1, args=(99,))))
    hit = table.lookup((12,))
    assert hit is not None and hit.action.args == (99,)
