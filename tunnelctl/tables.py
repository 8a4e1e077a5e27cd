"""Plain-text tables for ``list`` and ``stats``: left-aligned text, right-aligned numbers."""

from __future__ import annotations

import re
from collections.abc import Sequence

# Cells of a numeric column: numbers, and "-" for "no value yet" (a rate before its second sample).
_NUMBER = re.compile(r"^(-|\d+(\.\d+)?)$")

__all__ = ["render_table"]


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns as wide as their widest cell, two spaces apart; numeric columns right-aligned."""
    cells = [[str(value) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for column, text in enumerate(row):
            widths[column] = max(widths[column], len(text))
    numeric = [bool(cells) and all(_NUMBER.match(row[column]) for row in cells)
               for column in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        padded = [value.rjust(widths[i]) if numeric[i] else value.ljust(widths[i])
                  for i, value in enumerate(values)]
        return "  ".join(padded).rstrip()

    return "\n".join([line(list(headers)), *(line(row) for row in cells)]) + "\n"
