"""Limits of p4c's BMv2 back end that p4sim does not enforce, checked on p4src/ statically.

p4c-bm2-ss lowers every shift written in the source through `LowerExpressions` with
`maxShiftWidth = 8` (p4lang/p4c backends/bmv2/common/lower.h and lower.cpp): a constant shift
amount above 2**8 or a shift by a value wider than 8 bits is a compile error ("shift amount
limited to ..."). p4sim accepts both, so without this check such a shift would pass every suite
here and fail only when BMv2's image is built (docs/docker.md, "Checked against the p4lang
sources"). Slices (`x[639:608]`) are not affected: p4c turns them into shifts after that check.
"""

from __future__ import annotations

import re
from pathlib import Path

P4SRC = Path(__file__).resolve().parents[2] / "p4src"
MAX_CONSTANT_SHIFT = 2 ** 8
# A shift operator and its right operand; `>>(` ends a nested type argument
# (`lookahead<bit<32>>()`), not a shift.
SHIFT = re.compile(r"(<<|>>)(?!\()\s*(\(?[A-Za-z_0-9]+)")
COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)


def shifts(text: str) -> list[tuple[int, str, str]]:
    """(line, operator, right operand) of every shift in P4 source text, comments removed."""
    code = COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return [(code.count("\n", 0, m.start()) + 1, m.group(1), m.group(2))
            for m in SHIFT.finditer(code)]


def test_shift_finder_sees_shifts_and_skips_type_arguments_and_comments() -> None:
    text = ("x = packet.lookahead<bit<32>>();\n"
            "// y << 999 in a comment\n"
            "z = (a << 2) + (b >> 300);\n"
            "w = c << n;\n")
    assert shifts(text) == [(3, "<<", "2"), (3, ">>", "300"), (4, "<<", "n")]


def test_every_shift_in_p4src_is_by_a_small_literal() -> None:
    problems = []
    files = sorted(P4SRC.rglob("*.p4"))
    assert files, f"no P4 sources under {P4SRC}"
    for path in files:
        for line, op, amount in shifts(path.read_text()):
            where = f"{path.relative_to(P4SRC.parent)}:{line}: {op} {amount}"
            if not amount.isdigit():
                problems.append(f"{where}: shift by a non-literal; p4c-bm2-ss requires its type "
                                "to be at most 8 bits wide (check, then use a literal)")
            elif int(amount) > MAX_CONSTANT_SHIFT:
                problems.append(f"{where}: p4c-bm2-ss limits constant shifts to "
                                f"{MAX_CONSTANT_SHIFT}")
    assert not problems, "\n".join(problems)
