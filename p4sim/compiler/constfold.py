# mypy: disable-error-code="misc"
# (each part is a mixin of `Compiler`; its methods say so with `self: Compiler`,
# which mypy reports under `misc` because the host class is not a protocol)
"""Integer literals and compile-time constants.

P4 needs some values before run time: widths (`bit<W>`), stack sizes, `const` declarations,
annotation arguments, enum values. Every compiled expression (`Val`) carries its value when it
is known; `const_eval` asks for it and refuses an expression that has none, and `fold` computes
the arithmetic operators on known values so constant expressions stay constant.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from lark import Token

from p4sim.compiler.symbols import Scope
from p4sim.errors import P4TypeError, UnknownNameError
from p4sim.p4types import BitT
from p4sim.tree import kids

if TYPE_CHECKING:
    from p4sim.compiler.driver import Compiler


def fold(op: str, a: int | None, b: int | None) -> int | None:
    if a is None or b is None:
        return None
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "//":
        return a // b if b else None
    if op == "%":
        return a % b if b else None
    if op == "&":
        return a & b
    if op == "|":
        return a | b
    if op == "^":
        return a ^ b
    return None


class ConstantFolding:
    """Literals, widths and constants (a part of `Compiler`)."""

    def size_value(self: Compiler, node: Any) -> int:
        if node.data == "size_int":
            return self.parse_int(node.children[0])[0]
        if node.data == "size_name":
            sym = self.globals.get(str(node.children[0]))
            if sym is None or sym.value is None:
                raise self.fail(UnknownNameError, node,
                                f"unknown constant '{node.children[0]}' in a width", "type")
            return sym.value
        return self.const_eval(kids(node)[0])

    def parse_int(self: Compiler, tok: Token) -> tuple[int, BitT | None]:
        text = str(tok).replace("_", "")
        m = re.fullmatch(r"(\d+)([ws])(.*)", text)
        width_t = None
        if m:
            width_t = BitT(int(m.group(1)), signed=m.group(2) == "s")
            text = m.group(3)
        low = text.lower()
        if low.startswith("0x"):
            v = int(low[2:], 16)
        elif low.startswith("0b"):
            v = int(low[2:], 2)
        elif low.startswith("0o"):
            v = int(low[2:], 8)
        elif low.startswith("0d"):
            v = int(low[2:], 10)
        else:
            v = int(low, 10)
        if width_t is not None:
            v &= (1 << width_t.width) - 1
        return v, width_t

    def const_eval(self: Compiler, node: Any) -> int:
        v = self.expr(node, Scope(self, None, {}))
        if v.const is None:
            raise self.fail(P4TypeError, node, "expression is not a compile-time constant",
                            "constant")
        return v.const
