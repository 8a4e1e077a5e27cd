"""Table, counter and register state (p4sim.runtime).

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_runtime.py -q
"""

from __future__ import annotations

import pytest

from p4sim.errors import AlreadyExistsError, InvalidEntryError, NotFoundError, TableFullError
from p4sim.runtime import (
    ActionCall,
    ActionSpec,
    CounterState,
    FieldMatch,
    KeySpec,
    RegisterState,
    TableEntry,
    TableState,
)

FWD = ActionSpec(action_id=1, name="fwd", param_bitwidths=(9,))
MISS = ActionSpec(action_id=2, name="miss", param_bitwidths=(), scope="DEFAULT_ONLY")


def _table(kinds: tuple[str, ...], size: int = 4) -> TableState:
    keys = tuple(
        KeySpec(field_id=i + 1, name=f"k{i}", bitwidth=8, match_kind=k)  # type: ignore[arg-type]
        for i, k in enumerate(kinds)
    )
    return TableState(table_id=7, name="t", keys=keys, actions=(FWD, MISS), size=size,
                      default_action=ActionCall(action_id=2), default_is_const=False,
                      is_const=False)


def _entry(matches: tuple[FieldMatch, ...], port: int, priority: int = 0) -> TableEntry:
    return TableEntry(table_id=7, matches=matches, priority=priority,
                      action=ActionCall(action_id=1, args=(port,)))


def test_exact_insert_lookup_delete() -> None:
    t = _table(("exact",))
    e = _entry((FieldMatch(field_id=1, kind="exact", value=5),), 3)
    t.insert(e)
    assert t.lookup((5,)) == e
    assert t.lookup((6,)) is None
    with pytest.raises(AlreadyExistsError):
        t.insert(e)
    t.delete(e.key)
    assert t.lookup((5,)) is None
    with pytest.raises(NotFoundError):
        t.delete(e.key)


def test_ternary_priority_highest_wins() -> None:
    t = _table(("ternary",))
    low = _entry((FieldMatch(field_id=1, kind="ternary", value=0, mask=0),), 1, priority=1)
    high = _entry((FieldMatch(field_id=1, kind="ternary", value=0x10, mask=0xF0),), 2, priority=9)
    t.insert(low)
    t.insert(high)
    assert t.lookup((0x1F,)) == high
    assert t.lookup((0x2F,)) == low


def test_lpm_longest_prefix_and_range() -> None:
    t = _table(("lpm", "range"))
    short = _entry((FieldMatch(field_id=1, kind="lpm", value=0x80, prefix_len=1),), 1)
    long = _entry((FieldMatch(field_id=1, kind="lpm", value=0xC0, prefix_len=2),
                   FieldMatch(field_id=2, kind="range", value=10, high=20)), 2)
    t.insert(short)
    t.insert(long)
    assert t.lookup((0xC1, 15)) == long
    assert t.lookup((0xC1, 25)) == short
    assert t.lookup((0x41, 15)) is None


def test_validation_leaves_state_unchanged() -> None:
    t = _table(("exact",), size=1)
    t.insert(_entry((FieldMatch(field_id=1, kind="exact", value=1),), 1))
    with pytest.raises(TableFullError):
        t.insert(_entry((FieldMatch(field_id=1, kind="exact", value=2),), 1))
    with pytest.raises(InvalidEntryError, match="takes 1 arguments, got 0"):
        t.modify(TableEntry(table_id=7, matches=(FieldMatch(field_id=1, kind="exact", value=1),),
                            action=ActionCall(action_id=1)))
    with pytest.raises(InvalidEntryError, match="defaultonly"):
        t.modify(TableEntry(table_id=7, matches=(FieldMatch(field_id=1, kind="exact", value=1),),
                            action=ActionCall(action_id=2)))
    with pytest.raises(InvalidEntryError, match="exact field 'k0' missing"):
        t.insert(TableEntry(table_id=7, matches=(), action=ActionCall(action_id=1, args=(1,))))
    assert [e.action.args for e in t.entries()] == [(1,)]


def test_counter_and_register() -> None:
    c = CounterState(counter_id=1, name="c", size=2, unit="BOTH")
    c.count(1, 100)
    c.count(1, 50)
    c.count(5, 10)  # out of range: ignored like BMv2
    assert c.read(1) == (2, 150)
    with pytest.raises(NotFoundError):
        c.read(2)
    r = RegisterState(register_id=2, name="r", size=4, bitwidth=8)
    r.write(3, 0x1FF)
    assert r.read(3) == 0xFF
    with pytest.raises(NotFoundError):
        r.write(4, 1)


def test_lpm_with_exact_key_uses_longest_prefix_and_wildcard_entry() -> None:
    keys = (KeySpec(field_id=1, name="vrf", bitwidth=8, match_kind="exact"),
            KeySpec(field_id=2, name="dst", bitwidth=32, match_kind="lpm"))
    t = TableState(table_id=7, name="routes", keys=keys, actions=(FWD, MISS), size=8,
                   default_action=ActionCall(action_id=2), default_is_const=False,
                   is_const=False)

    def route(vrf: int, prefix: int, plen: int | None, port: int) -> TableEntry:
        matches = [FieldMatch(field_id=1, kind="exact", value=vrf)]
        if plen is not None:
            matches.append(FieldMatch(field_id=2, kind="lpm", value=prefix, prefix_len=plen))
        return _entry(tuple(matches), port)

    default_route = route(1, 0, None, 9)  # lpm field omitted: /0
    t.insert(default_route)
    t.insert(route(1, 0x0A000000, 8, 1))
    t.insert(route(1, 0x0A010000, 16, 2))
    t.insert(route(2, 0x0A010000, 16, 3))
    assert t.lookup((1, 0x0A010203)).action.args == (2,)  # type: ignore[union-attr]
    assert t.lookup((1, 0x0A020203)).action.args == (1,)  # type: ignore[union-attr]
    assert t.lookup((1, 0x0B000000)) == default_route
    assert t.lookup((2, 0x0A010203)).action.args == (3,)  # type: ignore[union-attr]
    assert t.lookup((2, 0x0B000000)) is None
    t.delete(route(1, 0x0A010000, 16, 2).key)
    assert t.lookup((1, 0x0A010203)).action.args == (1,)  # type: ignore[union-attr]


def test_entry_key_is_order_independent_and_reuses_sorted_matches() -> None:
    a = FieldMatch(field_id=1, kind="ternary", value=1, mask=0xFF)
    b = FieldMatch(field_id=2, kind="exact", value=9)
    sorted_entry = _entry((a, b), 1, priority=3)
    reversed_entry = _entry((b, a), 1, priority=3)
    assert sorted_entry.key == reversed_entry.key == ((a, b), 3)
    assert sorted_entry.key[0] is sorted_entry.matches  # no second tuple per entry
    assert reversed_entry.matches == (b, a)  # the entry keeps what was written
    t = _table(("ternary", "exact"))
    t.insert(reversed_entry)
    with pytest.raises(AlreadyExistsError):
        t.insert(sorted_entry)
    assert t.lookup((1, 9)) == reversed_entry


def test_modify_keeps_the_entry_older_than_a_later_equal_rank_entry() -> None:
    t = _table(("ternary",))
    first = _entry((FieldMatch(field_id=1, kind="ternary", value=0x10, mask=0xF0),), 1,
                   priority=5)
    second = _entry((FieldMatch(field_id=1, kind="ternary", value=0x12, mask=0xFF),), 2,
                    priority=5)
    t.insert(first)
    t.insert(second)
    assert t.lookup((0x12,)) == first  # equal priority: the older entry wins
    modified = _entry(first.matches, 3, priority=5)
    t.modify(modified)
    assert t.lookup((0x12,)) == modified  # still the older one after a modify
    assert [e.action.args for e in t.entries()] == [(3,), (2,)]


def test_zero_counter_write_leaves_no_cell_and_reads_zero() -> None:
    c = CounterState(counter_id=1, name="c", size=4, unit="BOTH")
    c.write(1, 0, 0)
    assert c.cells == {} and c.read(1) == (0, 0)
    c.count(1, 100)
    c.write(2, 5, 7)
    assert c.read(1) == (1, 100) and c.read(2) == (5, 7)
    c.write(1, 0, 0)  # a reset of a counted cell
    assert c.read(1) == (0, 0) and set(c.cells) == {2}
    c.count(1, 10)
    assert c.read(1) == (1, 10)
