"""Constants of the P4 program read from its source (defines.p4, sizes.p4), so tests never
retype a P4 constant. Shared by the PTF tests and tests/p4src/."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

P4_DIR = Path(__file__).resolve().parents[2] / "p4src"

_CONST = re.compile(
    r"^\s*const\s+\w+(?:<\d+>)?\s+(\w+)\s*=\s*(0x[0-9a-fA-F]+|0b[01]+|\d+)\s*;", re.M)
_DEFINE = re.compile(r"^\s*#define\s+(\w+)\s+(0x[0-9a-fA-F]+|\d+|[A-Z_]+)\s*$", re.M)


@cache
def p4_constants() -> dict[str, int]:
    """Typed `const`s of defines.p4 and numeric `#define`s of sizes.p4, by name."""
    values: dict[str, int] = {}
    for name, text in _CONST.findall((P4_DIR / "include" / "defines.p4").read_text()):
        values[name] = int(text, 0)
    for name, text in _DEFINE.findall((P4_DIR / "include" / "sizes.p4").read_text()):
        values[name] = values[text] if text in values else int(text, 0)
    return values


def C(name: str) -> int:  # noqa: N802 - reads like the P4 constant it names
    """The value of P4 constant `name` (KeyError names it when it does not exist)."""
    return p4_constants()[name]
