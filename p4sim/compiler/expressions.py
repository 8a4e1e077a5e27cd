# mypy: disable-error-code="misc"
# (each part is a mixin of `Compiler`; its methods say so with `self: Compiler`,
# which mypy reports under `misc` because the host class is not a protocol)
"""Expressions' code: one `e_<rule>` method per expression rule of the grammar.

`expr` has the checker type the expression (`checker.check_expr`: types, constants, every type
error), then generates its code: `gen_expr` dispatches on the parse tree's rule name and each
method reads its node's `Typed` (`typed_of`) and returns a `Val`: the Python code, the P4 type
and the value when it is a compile-time constant. Widths are kept by masking (`& 0xff`), so a
packet's values never outgrow their P4 type.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from lark import Tree

from p4sim.compiler.checker import Typed
from p4sim.compiler.symbols import Scope, Val
from p4sim.errors import UnsupportedConstructError
from p4sim.p4types import (
    BitT,
    BoolT,
    EnumT,
    ErrorT,
    HeaderT,
    InfIntT,
    P4Type,
    StackT,
    StringT,
    StructLikeT,
    VarbitT,
    VoidT,
    bit_width,
)
from p4sim.tree import ident, kids, norm_expr, py

if TYPE_CHECKING:
    from p4sim.compiler.driver import Compiler


class Expressions:
    """Expressions' code generation (a part of `Compiler`)."""

    def expr(self: Compiler, node: Any, scope: Scope) -> Val:
        """Check an expression, then generate its code."""
        node = norm_expr(node)
        self.check_expr(node, scope)
        return self.gen_expr(node, scope)

    def gen_expr(self: Compiler, node: Any, scope: Scope) -> Val:
        """The code of an expression `check_expr` has typed."""
        node = norm_expr(node)
        return getattr(self, f"e_{node.data}")(node, scope)  # type: ignore[no-any-return]

    def _sub(self: Compiler, node: Any, scope: Scope, typed: Typed) -> Val:
        """An operand's code at the type the checker unified it to (a literal adapted)."""
        v = self.gen_expr(node, scope)
        if typed.type == v.type:
            return v
        if isinstance(v.type, InfIntT) and isinstance(typed.type, BitT):
            mask = (1 << typed.type.width) - 1
            code = repr(typed.const) if typed.const is not None else f"(({v.code}) & {mask:#x})"
            return Val(code, typed.type, typed.const)
        if isinstance(v.type, EnumT) and v.type.underlying == typed.type:
            return Val(v.code, typed.type, v.const)
        return v

    def _pair(self: Compiler, node: Tree, scope: Scope) -> tuple[Val, Val, P4Type]:
        x, y = kids(node)
        t = self.typed_of(node)
        ta, tb = t.operands
        return self._sub(x, scope, ta), self._sub(y, scope, tb), ta.type

    def e_int_lit(self: Compiler, node: Tree, scope: Scope) -> Val:
        t = self.typed_of(node)
        return Val(repr(t.const), t.type, t.const)

    def e_true_lit(self: Compiler, node: Tree, scope: Scope) -> Val:
        return Val("True", BoolT(), 1)

    def e_false_lit(self: Compiler, node: Tree, scope: Scope) -> Val:
        return Val("False", BoolT(), 0)

    def e_string_lit(self: Compiler, node: Tree, scope: Scope) -> Val:
        return Val(repr(str(node.children[0])[1:-1]), StringT())

    def e_name_ref(self: Compiler, node: Tree, scope: Scope) -> Val:
        sym = self.typed_of(node).sym
        assert sym is not None
        if sym.kind == "const":
            return Val(sym.code, sym.type, sym.value)
        if sym.kind == "var":
            return Val(sym.code, sym.type)
        return Val(sym.code, sym.type, node=sym)

    def e_dot_name_ref(self: Compiler, node: Tree, scope: Scope) -> Val:
        sym = self.typed_of(node).sym
        assert sym is not None
        return Val(sym.code, sym.type, sym.value)

    def e_type_member(self: Compiler, node: Tree, scope: Scope) -> Val:
        t = self.typed_of(node)
        if t.alias is not None:
            return self.e_member(t.alias, scope)
        return Val(repr(t.const), t.type, t.const)

    def e_error_member(self: Compiler, node: Tree, scope: Scope) -> Val:
        t = self.typed_of(node)
        return Val(repr(t.const), ErrorT(), t.const)

    def e_member(self: Compiler, node: Tree, scope: Scope) -> Val:
        base_node, member = kids(node)
        m = ident(member)
        t = self.typed_of(node)
        if t.form == "apply":
            base_node = norm_expr(base_node)
            callee = norm_expr(kids(base_node)[0])
            v = self.call(callee, kids(base_node)[1], scope, base_node, statement=False)
            assert v is not None
            if m == "hit":
                return Val(f"{v.code}[0]", BoolT())
            return Val(f"(not {v.code}[0])", BoolT())
        b = self.gen_expr(base_node, scope)
        if t.form == "field":
            return Val(f"{b.code}.f_{m}", t.type)
        oob = self.error_code("StackOutOfBounds")
        if m == "next":
            return Val(f"stack_next({b.code}, {oob})", t.type)
        if m == "last":
            return Val(f"stack_last({b.code}, {oob})", t.type)
        if m == "lastIndex":
            return Val(f"(({b.code}.nxt - 1) & 0xffffffff)", t.type)
        if m == "nextIndex":
            return Val(f"{b.code}.nxt", t.type)
        return Val(repr(t.const), t.type, t.const)  # size

    def e_index(self: Compiler, node: Tree, scope: Scope) -> Val:
        base, idx = kids(node)
        b = self.gen_expr(base, scope)
        i = self.gen_expr(idx, scope)
        t = self.typed_of(node).type
        if i.const is None:
            return Val(f"stack_at({b.code}, {i.code})", t)  # out of range: BMv2's
        return Val(f"{b.code}.a[{i.code}]", t)

    def e_slice(self: Compiler, node: Tree, scope: Scope) -> Val:
        base = kids(node)[0]
        b = self.gen_expr(base, scope)
        t = self.typed_of(node)
        h, low = t.bounds
        w = h - low + 1
        return Val(f"(({b.code} >> {low}) & {(1 << w) - 1:#x})", t.type, t.const)

    def e_call(self: Compiler, node: Tree, scope: Scope) -> Val:
        callee, args = kids(node)
        v = self.call(norm_expr(callee), args, scope, node, statement=False)
        assert v is not None and not isinstance(v.type, VoidT)  # checker.c_call refused that
        return v

    def e_lookahead_call(self: Compiler, node: Tree, scope: Scope) -> Val:
        t = self.typed_of(node).type
        if isinstance(t, HeaderT):
            # a header peeked at: extracted into a fresh instance, cursor put back
            return Val(f"lookahead_header(P, H_{py(t.name)}, X_{py(t.name)})", t)
        w = bit_width(t)
        nb = (w + 7) // 8
        err = self.error_code("PacketTooShort")
        return Val(f"lookahead(P, {nb}, {nb * 8 - w}, {(1 << w) - 1:#x}, {err})", t)

    def e_list_expr(self: Compiler, node: Tree, scope: Scope) -> Val:
        items = kids(node)[0]
        vals = [self.gen_expr(e, scope) for e in (kids(items) if items is not None else [])]
        return Val("(" + "".join(v.code + ", " for v in vals) + ")", self.typed_of(node).type,
                   node=vals)

    def e_cast(self: Compiler, node: Tree, scope: Scope) -> Val:
        inner = kids(node)[1]
        v = self.gen_expr(inner, scope)
        t = self.typed_of(node)
        form, c = t.form, t.const
        if form == "identity":
            return v
        if form == "literal":
            assert isinstance(t.type, BitT)
            m = (1 << t.type.width) - 1
            return Val(repr(c) if c is not None else f"(({v.code}) & {m:#x})", t.type, c)
        if form == "bool":
            return Val(f"int({v.code})", t.type, c)
        if form == "sign_extend":
            assert isinstance(t.type, BitT)
            m = (1 << t.type.width) - 1
            return Val(f"(to_signed({v.code}, {t.bounds[0]}) & {m:#x})", t.type)
        if form == "mask":
            assert isinstance(t.type, BitT)
            return Val(f"({v.code} & {(1 << t.type.width) - 1:#x})", t.type, c)
        if form == "to_bool":
            return Val(f"({v.code} == 1)", t.type, c)
        return Val(v.code, t.type, c)  # same

    def _arith(self: Compiler, node: Tree, scope: Scope, pyop: str) -> Val:
        a, b, _ = self._pair(node, scope)
        typed = self.typed_of(node)
        t, const = typed.type, typed.const
        if isinstance(t, InfIntT):
            return Val(repr(const) if const is not None else f"({a.code} {pyop} {b.code})", t,
                       const)
        assert isinstance(t, BitT)
        m = (1 << t.width) - 1
        if const is not None:
            return Val(repr(const), t, const)
        if pyop in ("&", "|", "^"):
            return Val(f"({a.code} {pyop} {b.code})", t)
        if pyop in ("//", "%"):
            # a zero divisor at run time gives 0 rather than stopping the switch
            return Val(f"((({a.code} {pyop} {b.code}) if {b.code} else 0) & {m:#x})", t)
        return Val(f"(({a.code} {pyop} {b.code}) & {m:#x})", t)

    def e_add(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "+")

    def e_sub(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "-")

    def e_mul(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "*")

    def e_div(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "//")

    def e_mod(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "%")

    def e_band(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "&")

    def e_bor(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "|")

    def e_bxor(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "^")

    def _sat(self: Compiler, node: Tree, scope: Scope, op: str) -> Val:
        a, b, t = self._pair(node, scope)
        assert isinstance(t, BitT)
        m = (1 << t.width) - 1
        if t.signed:
            # clamp the exact signed result to [-2^(W-1), 2^(W-1) - 1] (P4_16 "Operations on
            # signed integers"), then back to the two's complement bit pattern
            lo, hi = -(1 << (t.width - 1)), (1 << (t.width - 1)) - 1
            sign = "+" if op == "|+|" else "-"
            return Val(f"(max(min(to_signed({a.code}, {t.width}) {sign} to_signed({b.code}, "
                       f"{t.width}), {hi}), {lo}) & {m:#x})", t)
        if op == "|+|":
            return Val(f"min({a.code} + {b.code}, {m:#x})", t)
        return Val(f"max({a.code} - {b.code}, 0)", t)

    def e_sadd(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._sat(n, s, "|+|")

    def e_ssub(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._sat(n, s, "|-|")

    def e_concat(self: Compiler, node: Tree, scope: Scope) -> Val:
        x, y = kids(node)
        a, b = self.gen_expr(x, scope), self.gen_expr(y, scope)
        assert isinstance(b.type, BitT)
        return Val(f"(({a.code} << {b.type.width}) | {b.code})", self.typed_of(node).type)

    def _shift(self: Compiler, node: Tree, scope: Scope, left: bool) -> Val:
        x, y = kids(node)
        a, b = self.gen_expr(x, scope), self.gen_expr(y, scope)
        typed = self.typed_of(node)
        if isinstance(typed.type, InfIntT):
            return Val(repr(typed.const), typed.type, typed.const)
        t = typed.type
        assert isinstance(t, BitT)
        m = (1 << t.width) - 1
        if left:
            return Val(f"(({a.code} << {b.code}) & {m:#x})", t)
        if t.signed:
            return Val(f"((to_signed({a.code}, {t.width}) >> {b.code}) & {m:#x})", t)
        return Val(f"({a.code} >> {b.code})", t)

    def e_shl(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._shift(n, s, True)

    def e_shr(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._shift(n, s, False)

    def _compare(self: Compiler, node: Tree, scope: Scope, op: str) -> Val:
        a, b, t = self._pair(node, scope)
        ac, bc = a.code, b.code
        if isinstance(t, BitT) and t.signed and op not in ("==", "!="):
            ac, bc = f"to_signed({ac}, {t.width})", f"to_signed({bc}, {t.width})"
        if isinstance(t, StructLikeT | StackT):
            # field-wise, validity included (not Python object identity)
            return Val(f"({'' if op == '==' else 'not '}values_equal({ac}, {bc}))", BoolT())
        if isinstance(t, VarbitT):
            ac, bc = self.varbit_value(a), self.varbit_value(b)
        return Val(f"({ac} {op} {bc})", BoolT())

    def varbit_value(self: Compiler, v: Val) -> str:
        """A varbit field compared as (value, current width): P4_16 makes two varbits equal
        when they have the same width and the same bits."""
        m = re.fullmatch(r"(.+)\.f_(\w+)", v.code)
        if m is None:
            raise self.fail(UnsupportedConstructError, None, "comparison of this varbit "
                            "expression", "comparison")
        return f"({v.code}, {m.group(1)}.w_{m.group(2)})"

    def e_eq(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._compare(n, s, "==")

    def e_ne(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._compare(n, s, "!=")

    def e_lt(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._compare(n, s, "<")

    def e_gt(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._compare(n, s, ">")

    def e_le(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._compare(n, s, "<=")

    def e_ge(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._compare(n, s, ">=")

    def _logic(self: Compiler, node: Tree, scope: Scope, op: str) -> Val:
        x, y = kids(node)
        a, b = self.gen_expr(x, scope), self.gen_expr(y, scope)
        return Val(f"({a.code} {'and' if op == '&&' else 'or'} {b.code})", BoolT())

    def e_land(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._logic(n, s, "&&")

    def e_lor(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._logic(n, s, "||")

    def e_lnot(self: Compiler, node: Tree, scope: Scope) -> Val:
        v = self.gen_expr(kids(node)[0], scope)
        return Val(f"(not {v.code})", BoolT())

    def e_bnot(self: Compiler, node: Tree, scope: Scope) -> Val:
        v = self.gen_expr(kids(node)[0], scope)
        t = self.typed_of(node)
        assert isinstance(t.type, BitT)
        return Val(f"({v.code} ^ {(1 << t.type.width) - 1:#x})", t.type, t.const)

    def e_neg(self: Compiler, node: Tree, scope: Scope) -> Val:
        v = self.gen_expr(kids(node)[0], scope)
        t = self.typed_of(node)
        if isinstance(t.type, InfIntT):
            return Val(repr(t.const), t.type, t.const)
        assert isinstance(t.type, BitT)
        return Val(f"((-{v.code}) & {(1 << t.type.width) - 1:#x})", t.type)

    def e_cond(self: Compiler, node: Tree, scope: Scope) -> Val:
        c, x, y = kids(node)
        cv = self.gen_expr(c, scope)
        t = self.typed_of(node)
        ta, tb = t.operands
        a, b = self._sub(x, scope, ta), self._sub(y, scope, tb)
        return Val(f"({a.code} if {cv.code} else {b.code})", t.type)
