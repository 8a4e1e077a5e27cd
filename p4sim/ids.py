"""P4Runtime ids allocated the way p4c allocates them.

p4c (control-plane/p4RuntimeSymbolTable.cpp): an `@id` annotation wins (the 8-bit type prefix is
added when missing); every other entity of a type gets, in sorted name order, the prefix in the
top 8 bits and the low 24 bits of Jenkins' one-at-a-time hash of its fully qualified name (for a
`@controller_header` header: its type name), moving on by one (linear probing) while the id is
taken. Checked against a p4c-generated P4Info: NoAction 21257015, a nested table, a counter, a
direct counter, an action, a digest and both controller headers give p4c's ids.
"""

from __future__ import annotations

from typing import Any

from p4sim.model import ControllerHeaderModel, ProgramModel

PREFIX_ACTION = 0x01
PREFIX_TABLE = 0x02
PREFIX_CONTROLLER_HEADER = 0x04
PREFIX_COUNTER = 0x12
PREFIX_DIRECT_COUNTER = 0x13
PREFIX_METER = 0x14
PREFIX_DIRECT_METER = 0x15
PREFIX_REGISTER = 0x16
PREFIX_DIGEST = 0x17


def jenkins_one_at_a_time(data: bytes) -> int:
    """Bob Jenkins' one-at-a-time hash, 32-bit."""
    h = 0
    for b in data:
        h = (h + b) & 0xFFFFFFFF
        h = (h + (h << 10)) & 0xFFFFFFFF
        h ^= h >> 6
    h = (h + (h << 3)) & 0xFFFFFFFF
    h ^= h >> 11
    h = (h + (h << 15)) & 0xFFFFFFFF
    return h


def _symbol_name(item: Any) -> str:
    """The name p4c hashes: the fully qualified name, except for controller headers, which p4c
    registers under their header type's name (the P4Info shows the annotation's name)."""
    if isinstance(item, ControllerHeaderModel):
        return item.header_type
    return str(item.name)


class IdAllocator:
    """Fills in `.id` on every entity of a ProgramModel."""

    def __init__(self, model: ProgramModel) -> None:
        self.model = model
        self.taken: set[int] = set()

    def assign(self) -> None:
        m = self.model
        groups: list[tuple[int, list[Any]]] = [
            (PREFIX_ACTION, list(m.actions.values())),
            (PREFIX_TABLE, m.tables),
            (PREFIX_CONTROLLER_HEADER, m.controller_headers),
            (PREFIX_COUNTER, m.counters),
            (PREFIX_DIRECT_COUNTER, m.direct_counters),
            (PREFIX_REGISTER, m.registers),
            (PREFIX_METER, m.meters),
            (PREFIX_DIRECT_METER, m.direct_meters),
            (PREFIX_DIGEST, m.digests),
        ]
        for prefix, items in groups:
            for item in items:
                explicit = getattr(item, "explicit_id", None)
                if explicit is not None:
                    item.id = explicit | (prefix << 24)
                    self.taken.add(item.id)
        for prefix, items in groups:
            for item in sorted(items, key=_symbol_name):
                if getattr(item, "explicit_id", None) is not None:
                    continue
                h = jenkins_one_at_a_time(_symbol_name(item).encode())
                while True:
                    candidate = (prefix << 24) | (h & 0xFFFFFF)
                    if candidate not in self.taken:
                        break
                    h += 1
                item.id = candidate
                self.taken.add(candidate)
