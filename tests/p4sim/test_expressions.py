"""Expression semantics on fixed widths (programs/expressions.p4), checked against Python.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_expressions.py -q
"""

from __future__ import annotations

import pytest
from p4sim_core_helpers import program

from p4sim.switch import Switch


def _signed(v: int) -> int:
    return v - 256 if v & 0x80 else v


def _expected(a: int, b: int) -> bytes:
    flags = (int(_signed(a) < _signed(b)) | int(a < b) << 1
             | int(a == b or a == 7) << 2 | 0xA << 4)
    patched = 0xFF & ~0b00111100
    out = bytes([
        (a + b) & 0xFF, (a - b) & 0xFF, (a * b) & 0xFF, min(a + b, 255), max(a - b, 0),
        (a << 3) & 0xFF, a >> 2, ((a >> 4) << 4) | (b & 0xF),
    ])
    out += ((a << 8) | b).to_bytes(2, "big") + a.to_bytes(2, "big")
    out += (_signed(a) & 0xFFFF).to_bytes(2, "big")
    out += bytes([(-a) & 0xFF, a ^ 0xFF, flags, a if a > b else b, patched])
    return out


@pytest.mark.parametrize(("a", "b"), [(0, 0), (200, 100), (7, 9), (0x80, 0x7F), (255, 255),
                                      (3, 250)])
def test_results_match_python(a: int, b: int) -> None:
    out = Switch(program("expressions.p4")).process(0, bytes([a, b]))
    assert out == [(2, bytes([a, b]) + _expected(a, b))]
