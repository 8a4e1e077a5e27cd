#!/usr/bin/env python3
"""Compare two P4Info files field by field: everything p4c writes, and the entity order.

    scripts/p4info_diff.py p4src/tunnel_offload.p4info.txtpb build/bmv2/tunnel_offload.p4info.txt

The checked-in P4Info (written by p4sim's generator) must be what p4c-bm2-ss writes for the same
source: the controller resolves names against the checked-in file and BMv2 runs p4c's, so any
difference — an id, a width, an annotation, a default action, a size — is a drift. Entities are
paired by name (match fields and parameters too, action refs by id) so that each difference is
one readable line; `--ignore-order` leaves out the order of entities, which p4c derives from node
addresses where a program gives it no order. The exit status is 1 when there is any difference.
Text format (.txt/.txtpb), binary (.bin/.binpb) and JSON (.json) files are read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from finsy.proto import p4i
from google.protobuf import json_format, text_format
from google.protobuf.descriptor import FieldDescriptor

# sub-items paired by name, and how a difference names them
_NAMED_ITEMS = {"match_fields": "match field", "params": "param", "metadata": "metadata"}


def load(path: Path) -> Any:
    """Read a P4Info in the format its file name says."""
    info = p4i.P4Info()
    data = path.read_bytes()
    if path.suffix in (".bin", ".binpb"):
        info.ParseFromString(data)
    elif path.suffix == ".json":
        json_format.Parse(data.decode(), info)
    else:
        text_format.Parse(data.decode(), info)
    return info


def compare(left: Any, right: Any, *, ignore_order: bool = False) -> list[str]:
    """Every difference between two P4Info messages, one line each."""
    problems: list[str] = []
    for field in left.DESCRIPTOR.fields:
        kind = field.name
        a, b = getattr(left, kind), getattr(right, kind)
        if not _is_repeated(field):
            if left.HasField(kind) != right.HasField(kind):
                where = "first" if left.HasField(kind) else "second"
                problems.append(f"{kind}: only in the {where} file")
            else:
                problems.extend(f"{kind}: {text}" for text in _differences(a, b, top=True))
            continue
        key = _entity_key(kind)
        ours = {key(entity): entity for entity in a}
        theirs = {key(entity): entity for entity in b}
        for name in sorted(ours.keys() - theirs.keys()):
            problems.append(f"{kind}: {name!r} only in the first file")
        for name in sorted(theirs.keys() - ours.keys()):
            problems.append(f"{kind}: {name!r} only in the second file")
        for name in sorted(ours.keys() & theirs.keys()):
            problems.extend(f"{kind}: {name!r}: {text}"
                            for text in _differences(ours[name], theirs[name], top=True))
        common_a = [key(e) for e in a if key(e) in theirs]
        common_b = [key(e) for e in b if key(e) in ours]
        if not ignore_order and common_a != common_b:
            problems.append(f"{kind}: order {common_a} != {common_b}")
    return problems


def _entity_key(kind: str) -> Any:
    if kind == "externs":
        return lambda entity: entity.extern_type_name
    return lambda entity: entity.preamble.name


def _differences(a: Any, b: Any, *, top: bool = False, what: str = "") -> Iterable[str]:
    """Differences inside one entity; the preamble's fields are named as the entity's own."""
    prefix = f"{what} " if what else ""
    for field in a.DESCRIPTOR.fields:
        name = field.name
        va, vb = getattr(a, name), getattr(b, name)
        if name == "preamble":
            yield from _differences(va, vb, top=top, what=what)
            continue
        if _is_repeated(field):
            if field.type != FieldDescriptor.TYPE_MESSAGE:
                if list(va) != list(vb):
                    yield f"{prefix}{name} {_show(name, list(va), top)} != " \
                          f"{_show(name, list(vb), top)}"
            elif name in _NAMED_ITEMS:
                yield from _named(_NAMED_ITEMS[name], va, vb)
            elif name == "action_refs":
                yield from _action_refs(va, vb)
            else:
                for index, (item_a, item_b) in enumerate(zip(va, vb, strict=False)):
                    yield from _differences(item_a, item_b, what=f"{prefix}{name}[{index}]")
                if len(va) != len(vb):
                    yield f"{prefix}{name}: {len(va)} item(s) != {len(vb)}"
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if a.HasField(name) != b.HasField(name):
                where = "first" if a.HasField(name) else "second"
                yield f"{prefix}{name} only in the {where} file"
            else:
                yield from _differences(va, vb, what=f"{prefix}{name}".strip())
        elif va != vb:
            if field.enum_type is not None:
                va, vb = field.enum_type.values_by_number[va].name, \
                    field.enum_type.values_by_number[vb].name
            yield f"{prefix}{name} {_show(name, va, top)} != {_show(name, vb, top)}"


def _named(what: str, first: Sequence[Any], second: Sequence[Any]) -> Iterable[str]:
    by_name_a = {item.name: item for item in first}
    by_name_b = {item.name: item for item in second}
    for name in sorted(by_name_a.keys() ^ by_name_b.keys()):
        where = "first" if name in by_name_a else "second"
        yield f"{what} {name!r} only in the {where} file"
    for name in sorted(by_name_a.keys() & by_name_b.keys()):
        yield from _differences(by_name_a[name], by_name_b[name], what=f"{what} {name!r}")


def _action_refs(first: Sequence[Any], second: Sequence[Any]) -> Iterable[str]:
    ids_a, ids_b = sorted(ref.id for ref in first), sorted(ref.id for ref in second)
    if ids_a != ids_b:
        yield f"action ids {_hex(ids_a)} != {_hex(ids_b)}"
    by_id_b = {ref.id: ref for ref in second}
    for ref in first:
        if ref.id in by_id_b:
            yield from _differences(ref, by_id_b[ref.id], what=f"action ref {ref.id:#010x}")


def _show(name: str, value: Any, top: bool) -> str:
    """Entity ids in hex (as p4c's ids are read), everything else as it is."""
    is_id = name == "id" or name.endswith("_id") or name.endswith("_ids")
    if top and is_id:
        return _hex(value) if isinstance(value, list) else f"{value:#010x}"
    return str(value)


def _is_repeated(field: FieldDescriptor) -> bool:
    if hasattr(field, "is_repeated"):
        return bool(field.is_repeated)
    return bool(field.label == FieldDescriptor.LABEL_REPEATED)


def _hex(ids: Sequence[int]) -> str:
    return "[" + ", ".join(f"{value:#010x}" for value in ids) + "]"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path, help="e.g. the checked-in P4Info")
    parser.add_argument("second", type=Path, help="e.g. the P4Info p4c wrote")
    parser.add_argument("--ignore-order", action="store_true",
                        help="do not report entities listed in a different order")
    args = parser.parse_args(argv)
    try:
        problems = compare(load(args.first), load(args.second), ignore_order=args.ignore_order)
    except (OSError, text_format.ParseError, json_format.ParseError) as error:
        print(f"p4info_diff: {error}", file=sys.stderr)
        return 2
    for line in problems:
        print(line)
    if problems:
        print(f"p4info_diff: {len(problems)} difference(s) between {args.first} and "
              f"{args.second}", file=sys.stderr)
        return 1
    print(f"p4info_diff: {args.first} and {args.second} agree on every field p4c writes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
