#!/usr/bin/env python3
"""Compare two P4Info files by what the control plane depends on: names, ids and bit widths.

    scripts/p4info_diff.py p4src/tunnel_offload.p4info.txtpb build/bmv2/tunnel_offload.p4info.txt

The checked-in P4Info (written by our own generator) must describe the same program as the one
p4c writes for BMv2; otherwise the controller, which resolves names against the checked-in file,
would program the wrong ids on BMv2. Each difference is one line; the exit status is 1 when there
is any. Text format (.txt/.txtpb), binary (.bin/.binpb) and JSON (.json) files are read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from finsy.proto import p4i
from google.protobuf import json_format, text_format

# Repeated P4Info fields holding entities with a preamble (name, id), and what to compare inside.
_ENTITY_KINDS = ("tables", "actions", "action_profiles", "counters", "direct_counters", "meters",
                 "direct_meters", "controller_packet_metadata", "value_sets", "registers",
                 "digests")


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


def compare(left: Any, right: Any) -> list[str]:
    """Every difference in names, ids, widths (and match kinds) between two P4Info messages."""
    problems: list[str] = []
    for kind in _ENTITY_KINDS:
        ours = {entity.preamble.name: entity for entity in getattr(left, kind)}
        theirs = {entity.preamble.name: entity for entity in getattr(right, kind)}
        for name in sorted(ours.keys() - theirs.keys()):
            problems.append(f"{kind}: {name!r} only in the first file")
        for name in sorted(theirs.keys() - ours.keys()):
            problems.append(f"{kind}: {name!r} only in the second file")
        for name in sorted(ours.keys() & theirs.keys()):
            problems.extend(f"{kind}: {name!r}: {text}"
                            for text in _entity_differences(kind, ours[name], theirs[name]))
    return problems


def _entity_differences(kind: str, a: Any, b: Any) -> Iterable[str]:
    if a.preamble.id != b.preamble.id:
        yield f"id {a.preamble.id:#010x} != {b.preamble.id:#010x}"
    if kind == "tables":
        yield from _fields("match field", a.match_fields, b.match_fields,
                           ("id", "bitwidth", "match_type"))
        actions_a = sorted(ref.id for ref in a.action_refs)
        actions_b = sorted(ref.id for ref in b.action_refs)
        if actions_a != actions_b:
            yield f"action ids {_hex(actions_a)} != {_hex(actions_b)}"
    elif kind == "actions":
        yield from _fields("param", a.params, b.params, ("id", "bitwidth"))
    elif kind == "controller_packet_metadata":
        yield from _fields("metadata", a.metadata, b.metadata, ("id", "bitwidth"))
    elif kind in ("registers", "value_sets", "digests"):
        spec_a, spec_b = _type_spec_text(a), _type_spec_text(b)
        if spec_a != spec_b:
            yield f"type {spec_a} != {spec_b}"
    elif kind in ("direct_counters", "direct_meters"):
        if a.direct_table_id != b.direct_table_id:
            yield f"direct table id {a.direct_table_id:#010x} != {b.direct_table_id:#010x}"


def _fields(what: str, first: Sequence[Any], second: Sequence[Any],
            attributes: Sequence[str]) -> Iterable[str]:
    by_name_a = {item.name: item for item in first}
    by_name_b = {item.name: item for item in second}
    for name in sorted(by_name_a.keys() ^ by_name_b.keys()):
        where = "first" if name in by_name_a else "second"
        yield f"{what} {name!r} only in the {where} file"
    for name in sorted(by_name_a.keys() & by_name_b.keys()):
        for attribute in attributes:
            value_a = getattr(by_name_a[name], attribute)
            value_b = getattr(by_name_b[name], attribute)
            if value_a != value_b:
                if attribute == "match_type":
                    value_a, value_b = (p4i.MatchField.MatchType.Name(value_a),
                                        p4i.MatchField.MatchType.Name(value_b))
                yield f"{what} {name!r} {attribute} {value_a} != {value_b}"


def _type_spec_text(entity: Any) -> str:
    spec = getattr(entity, "type_spec", None)
    if spec is None:
        return ""
    return text_format.MessageToString(spec, as_one_line=True)


def _hex(ids: Sequence[int]) -> str:
    return "[" + ", ".join(f"{value:#010x}" for value in ids) + "]"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path, help="e.g. the checked-in P4Info")
    parser.add_argument("second", type=Path, help="e.g. the P4Info p4c wrote")
    args = parser.parse_args(argv)
    try:
        problems = compare(load(args.first), load(args.second))
    except (OSError, text_format.ParseError, json_format.ParseError) as error:
        print(f"p4info_diff: {error}", file=sys.stderr)
        return 2
    for line in problems:
        print(line)
    if problems:
        print(f"p4info_diff: {len(problems)} difference(s) between {args.first} and "
              f"{args.second}", file=sys.stderr)
        return 1
    print(f"p4info_diff: {args.first} and {args.second} agree on names, ids and widths")
    return 0


if __name__ == "__main__":
    sys.exit(main())
