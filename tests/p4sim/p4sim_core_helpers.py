"""Helpers for p4sim core tests: load a test program once, look up P4Info ids by name."""

from __future__ import annotations

from pathlib import Path

from p4sim.program import Program, load_program
from p4sim.runtime import ActionCall, FieldMatch, TableEntry

PROGRAMS = Path(__file__).parent / "programs"


class P4InfoNames:
    """Ids by name (alias or full name) for one Program, for short tests."""

    def __init__(self, program: Program) -> None:
        self.p4info = program.p4info

    def table(self, name: str) -> int:
        return _find(self.p4info.tables, name)

    def action(self, name: str) -> int:
        return _find(self.p4info.actions, name)

    def counter(self, name: str) -> int:
        return _find(self.p4info.counters, name)

    def direct_counter(self, name: str) -> int:
        return _find(self.p4info.direct_counters, name)

    def register(self, name: str) -> int:
        return _find(self.p4info.registers, name)

    def field(self, table: str, name: str) -> int:
        for t in self.p4info.tables:
            if name and (t.preamble.name == table or t.preamble.alias == table):
                for mf in t.match_fields:
                    if mf.name == name:
                        return int(mf.id)
        raise KeyError(name)

    def entry(self, table: str, action: str, args: tuple[int, ...], priority: int = 0,
              **matches: tuple[str, int] | tuple[str, int, int]) -> TableEntry:
        fms = []
        for fname, spec in matches.items():
            kind, value, *extra = spec
            fid = self.field(table, fname)
            if kind == "ternary":
                fms.append(FieldMatch(field_id=fid, kind="ternary", value=value, mask=extra[0]))
            elif kind == "lpm":
                fms.append(FieldMatch(field_id=fid, kind="lpm", value=value, prefix_len=extra[0]))
            elif kind == "range":
                fms.append(FieldMatch(field_id=fid, kind="range", value=value, high=extra[0]))
            else:
                fms.append(FieldMatch(field_id=fid, kind=kind, value=value))  # type: ignore[arg-type]
        return TableEntry(table_id=self.table(table), matches=tuple(fms), priority=priority,
                          action=ActionCall(action_id=self.action(action), args=args))


def _find(items: object, name: str) -> int:
    for item in items:  # type: ignore[attr-defined]
        if item.preamble.name == name or item.preamble.alias == name:
            return int(item.preamble.id)
    raise KeyError(name)


_CACHE: dict[str, Program] = {}


def program(name: str) -> Program:
    """Load tests/p4sim/programs/NAME once per test session."""
    if name not in _CACHE:
        _CACHE[name] = load_program(PROGRAMS / name)
    return _CACHE[name]
