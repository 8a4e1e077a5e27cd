"""Plain-text tables for ``list`` and ``stats``: left-aligned text, right-aligned numbers."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["render_table"]


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns as wide as their widest cell, two spaces apart; ints are right-aligned."""
    cells = [[str(value) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for column, text in enumerate(row):
            widths[column] = max(widths[column], len(text))
    numeric = [bool(rows) and all(isinstance(row[column], int) for row in rows)
               for column in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        padded = [value.rjust(widths[i]) if numeric[i] else value.ljust(widths[i])
                  for i, value in enumerate(values)]
        return "  ".join(padded).rstrip()

    return "\n".join([line(list(headers)), *(line(row) for row in cells)]) + "\n"
