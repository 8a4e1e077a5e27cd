"""The generated module's text: lines, indentation and fresh temporary names.

Kept apart so every part of the compiler writes Python the same way (`emit`, `depth`, `tmp`).
"""

from __future__ import annotations


class Gen:
    """Python source with indentation."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0
        self.counter = 0

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    def tmp(self, stem: str = "t") -> str:
        self.counter += 1
        return f"_{stem}{self.counter}"

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"
