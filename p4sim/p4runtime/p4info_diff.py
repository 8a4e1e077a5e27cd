"""The first difference between two P4Info messages, named by path, for pipeline checks.

Repeated entities with a preamble (tables, actions, counters, ...) are paired by id, so a
reordered but equal P4Info matches and a difference names the entity, e.g.
``tables[MyIngress.ipv4_lpm].match_fields[0].bitwidth: expected 32, got 16``.
"""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message


def first_difference(expected: Message, got: Message, path: str = "") -> str | None:
    """None when equal, else ``"<path>: expected X, got Y"`` for the first difference."""
    for field in expected.DESCRIPTOR.fields:
        name = f"{path}.{field.name}" if path else field.name
        want = getattr(expected, field.name)
        have = getattr(got, field.name)
        if _is_repeated(field):
            found = _repeated_difference(field, list(want), list(have), name)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if expected.HasField(field.name) != got.HasField(field.name):
                found = (f"{name}: expected {'set' if expected.HasField(field.name) else 'unset'}"
                         f", got {'set' if got.HasField(field.name) else 'unset'}")
            else:
                found = first_difference(want, have, name)
        else:
            found = None if want == have else f"{name}: expected {want!r}, got {have!r}"
        if found:
            return found
    return None


def _is_repeated(field: FieldDescriptor) -> bool:
    if hasattr(field, "is_repeated"):
        return bool(field.is_repeated)
    return bool(field.label == FieldDescriptor.LABEL_REPEATED)


def _repeated_difference(field: FieldDescriptor, want: list, have: list, name: str) -> str | None:
    is_message = field.type == FieldDescriptor.TYPE_MESSAGE
    if is_message and want and all(_has_preamble(m) for m in want + have):
        have_by_id = {m.preamble.id: m for m in have}
        for item in want:
            label = f"{name}[{item.preamble.name or item.preamble.id}]"
            other = have_by_id.pop(item.preamble.id, None)
            if other is None:
                return f"{label}: missing (id {item.preamble.id})"
            found = first_difference(item, other, label)
            if found:
                return found
        if have_by_id:
            extra = next(iter(have_by_id.values()))
            return f"{name}: unexpected {extra.preamble.name or extra.preamble.id!r}"
        return None
    for index, (a, b) in enumerate(zip(want, have, strict=False)):
        label = f"{name}[{index}]"
        found = first_difference(a, b, label) if is_message else (
            None if a == b else f"{label}: expected {a!r}, got {b!r}")
        if found:
            return found
    if len(want) != len(have):
        return f"{name}: expected {len(want)} items, got {len(have)}"
    return None


def _has_preamble(message: Message) -> bool:
    return "preamble" in message.DESCRIPTOR.fields_by_name
