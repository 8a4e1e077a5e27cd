# mypy: disable-error-code="misc"
# (each part is a mixin of `Compiler`; its methods say so with `self: Compiler`,
# which mypy reports under `misc` because the host class is not a protocol)
"""Expressions: one `e_<rule>` method per expression rule of the grammar.

`expr` dispatches on the parse tree's rule name; each method checks its operands' types and widths
and returns a `Val`: the Python code, the P4 type and the value when it is a compile-time
constant. Widths are kept by masking (`& 0xff`), so a packet's values never outgrow their P4 type.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from lark import Token, Tree

from p4sim.compiler.constfold import fold
from p4sim.compiler.symbols import Scope, Val
from p4sim.errors import P4TypeError, UnknownNameError, UnsupportedConstructError
from p4sim.p4types import (
    BitT,
    BoolT,
    EnumT,
    ErrorT,
    HeaderT,
    InfIntT,
    ListT,
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
    """Expressions (a part of `Compiler`)."""

    def expr(self: Compiler, node: Any, scope: Scope) -> Val:
        node = norm_expr(node)
        d = node.data
        method = getattr(self, f"e_{d}", None)
        if method is None:
            raise self.fail(UnsupportedConstructError, node, f"expression {d} is not supported",
                            d)
        return method(node, scope)  # type: ignore[no-any-return]

    def e_int_lit(self: Compiler, node: Tree, scope: Scope) -> Val:
        tok = node.children[0]
        assert isinstance(tok, Token)
        v, t = self.parse_int(tok)
        return Val(repr(v), t or InfIntT(), v)

    def e_true_lit(self: Compiler, node: Tree, scope: Scope) -> Val:
        return Val("True", BoolT(), 1)

    def e_false_lit(self: Compiler, node: Tree, scope: Scope) -> Val:
        return Val("False", BoolT(), 0)

    def e_string_lit(self: Compiler, node: Tree, scope: Scope) -> Val:
        return Val(repr(str(node.children[0])[1:-1]), StringT())

    def e_name_ref(self: Compiler, node: Tree, scope: Scope) -> Val:
        name = ident(kids(node)[0])
        sym = scope.lookup(name)
        if sym is None:
            raise self.fail(UnknownNameError, node, f"unknown name '{name}'", "expression")
        if sym.kind == "const":
            return Val(sym.code, sym.type, sym.value)
        if sym.kind == "var":
            return Val(sym.code, sym.type)
        return Val(sym.code, sym.type, node=sym)

    def e_dot_name_ref(self: Compiler, node: Tree, scope: Scope) -> Val:
        name = ident(kids(node)[0])
        sym = self.globals.get(name)
        if sym is None:
            raise self.fail(UnknownNameError, node, f"unknown name '.{name}'", "expression")
        return Val(sym.code, sym.type, sym.value)

    def e_type_member(self: Compiler, node: Tree, scope: Scope) -> Val:
        tname, member = kids(node)
        shadow = scope.lookup(str(tname))
        if shadow is not None and shadow.kind == "var":
            # a parameter or variable spelled like a type (p4c scopes type names; p4sim's
            # lexer does not): `hdr.x` with a `header hdr` elsewhere
            return self.e_member(Tree("member", [Tree("name_ref", [tname], node.meta), member],
                                      node.meta), scope)
        t = self.types.get(str(tname))
        m = ident(member)
        if isinstance(t, EnumT):
            if m not in t.members:
                raise self.fail(UnknownNameError, member, f"enum {t.name} has no member '{m}'",
                                "enum")
            i = t.members.index(m)
            value = t.values[i] if t.underlying else i
            return Val(repr(value), t, value)
        raise self.fail(UnsupportedConstructError, node, f"{tname}.{m} is not supported",
                        "type member")

    def e_error_member(self: Compiler, node: Tree, scope: Scope) -> Val:
        m = ident(kids(node)[0])
        if m not in self.errors:
            raise self.fail(UnknownNameError, node, f"unknown error '{m}'", "error")
        code = self.errors.index(m)
        return Val(repr(code), ErrorT(), code)

    def e_member(self: Compiler, node: Tree, scope: Scope) -> Val:
        base_node, member = kids(node)
        m = ident(member)
        base_node = norm_expr(base_node)
        if base_node.data == "call":
            callee = norm_expr(kids(base_node)[0])
            if callee.data == "member" and ident(kids(callee)[1]) == "apply":
                v = self.call(callee, kids(base_node)[1], scope, base_node, statement=False)
                assert v is not None
                if m == "hit":
                    return Val(f"{v.code}[0]", BoolT())
                if m == "miss":
                    return Val(f"(not {v.code}[0])", BoolT())
                raise self.fail(UnsupportedConstructError, member,
                                f"table apply result .{m} is not supported here", "table apply")
        if base_node.data == "error_member":
            pass
        b = self.expr(base_node, scope)
        t = b.type
        if isinstance(t, StructLikeT):
            f = t.field(m)
            if f is None:
                raise self.fail(UnknownNameError, member, f"{t.show()} has no field '{m}'",
                                "member")
            return Val(f"{b.code}.f_{m}", f.type)
        if isinstance(t, StackT):
            oob = self.error_code("StackOutOfBounds")
            if m in ("next", "last", "lastIndex") and not scope.find_states():
                raise self.fail(P4TypeError, member, f"'{m}' of a header stack can only be used "
                                "in a parser (as p4c requires)", "header stack")
            if m == "next":
                return Val(f"stack_next({b.code}, {oob})", t.elem)
            if m == "last":
                return Val(f"stack_last({b.code}, {oob})", t.elem)
            if m == "lastIndex":
                return Val(f"(({b.code}.nxt - 1) & 0xffffffff)", BitT(32))
            if m == "nextIndex":
                return Val(f"{b.code}.nxt", BitT(32))
            if m == "size":
                return Val(repr(t.size), BitT(32), t.size)
        raise self.fail(UnknownNameError, member, f"{t.show()} has no member '{m}'", "member")

    def e_index(self: Compiler, node: Tree, scope: Scope) -> Val:
        base, idx = kids(node)
        b = self.expr(base, scope)
        if not isinstance(b.type, StackT):
            raise self.fail(P4TypeError, node, f"cannot index {b.type.show()}", "index")
        i = self.expr(idx, scope)
        if i.const is not None and not 0 <= i.const < b.type.size:
            raise self.fail(P4TypeError, idx, f"index {i.const} out of range for "
                            f"{b.type.show()}", "index")
        if i.const is None:
            return Val(f"stack_at({b.code}, {i.code})", b.type.elem)  # out of range: BMv2's
        return Val(f"{b.code}.a[{i.code}]", b.type.elem)

    def slice_bounds(self: Compiler, b: Val, hi: Any, lo: Any, node: Any) -> tuple[int, int]:
        if not isinstance(b.type, BitT):
            raise self.fail(P4TypeError, node, f"cannot slice {b.type.show()}", "slice")
        h = self.const_eval(hi)
        low = self.const_eval(lo)
        if not 0 <= low <= h < b.type.width:
            raise self.fail(P4TypeError, node, f"slice [{h}:{low}] out of range for "
                            f"{b.type.show()}", "slice")
        return h, low

    def e_slice(self: Compiler, node: Tree, scope: Scope) -> Val:
        base, hi, lo = kids(node)
        b = self.expr(base, scope)
        h, low = self.slice_bounds(b, hi, lo, node)
        w = h - low + 1
        const = (b.const >> low) & ((1 << w) - 1) if b.const is not None else None
        return Val(f"(({b.code} >> {low}) & {(1 << w) - 1:#x})", BitT(w), const)

    def e_call(self: Compiler, node: Tree, scope: Scope) -> Val:
        callee, args = kids(node)
        v = self.call(norm_expr(callee), args, scope, node, statement=False)
        if v is None or isinstance(v.type, VoidT):
            raise self.fail(P4TypeError, node, "call has no value", "call")
        return v

    def e_lookahead_call(self: Compiler, node: Tree, scope: Scope) -> Val:
        base, tnode = kids(node)
        b = self.expr(base, scope)
        if b.node is None or b.node.kind != "packet_in":
            raise self.fail(P4TypeError, node, "lookahead is a packet_in method", "lookahead")
        t = self.resolve_type(tnode)
        w = bit_width(t)
        if isinstance(t, HeaderT) and not any(isinstance(f.type, VarbitT) for f in t.fields):
            # a header peeked at: extracted into a fresh instance, cursor put back
            return Val(f"lookahead_header(P, H_{py(t.name)}, X_{py(t.name)})", t)
        if not isinstance(t, BitT):
            raise self.fail(UnsupportedConstructError, tnode,
                            f"lookahead<{t.show()}>: p4sim supports lookahead of bit<W> and of "
                            "fixed-size headers", "lookahead")
        nb = (w + 7) // 8
        err = self.error_code("PacketTooShort")
        return Val(f"lookahead(P, {nb}, {nb * 8 - w}, {(1 << w) - 1:#x}, {err})", t)

    def e_constructor(self: Compiler, node: Tree, scope: Scope) -> Val:
        raise self.fail(UnsupportedConstructError, node,
                        "constructor calls in expressions are not supported", "constructor")

    def e_list_expr(self: Compiler, node: Tree, scope: Scope) -> Val:
        items = kids(node)[0]
        vals = [self.expr(e, scope) for e in (kids(items) if items is not None else [])]
        return Val("(" + "".join(v.code + ", " for v in vals) + ")", ListT(
            tuple(v.type for v in vals)), node=vals)

    def e_cast(self: Compiler, node: Tree, scope: Scope) -> Val:
        tnode, inner = kids(node)
        t = self.resolve_type(tnode)
        v = self.expr(inner, scope)
        src = v.type
        if isinstance(t, BitT):
            m = (1 << t.width) - 1
            if isinstance(src, InfIntT):
                c = v.const & m if v.const is not None else None
                return Val(repr(c) if c is not None else f"(({v.code}) & {m:#x})", t, c)
            if isinstance(src, BoolT):
                if t.width != 1:
                    raise self.fail(P4TypeError, node, f"cannot cast bool to {t.show()}", "cast")
                return Val(f"int({v.code})", t, v.const)
            if isinstance(src, EnumT) and src.underlying is not None:
                src = src.underlying
            if isinstance(src, BitT):
                if src.signed and not t.signed and t.width > src.width:
                    return Val(f"(to_signed({v.code}, {src.width}) & {m:#x})", t)
                if src.signed and t.signed and t.width > src.width:
                    return Val(f"(to_signed({v.code}, {src.width}) & {m:#x})", t)
                if t.width >= src.width and src.signed == t.signed:
                    return Val(v.code, t, v.const)
                c = v.const & m if v.const is not None else None
                return Val(f"({v.code} & {m:#x})", t, c)
        if isinstance(t, BoolT) and isinstance(src, BitT) and src.width == 1:
            return Val(f"({v.code} == 1)", t, v.const)
        if isinstance(t, EnumT) and t.underlying is not None and isinstance(src, BitT):
            return Val(v.code, t, v.const)
        if t == src:
            return v
        raise self.fail(P4TypeError, node, f"cannot cast {src.show()} to {t.show()}", "cast")

    def _unify(self: Compiler, a: Val, b: Val, node: Any, op: str) -> tuple[Val, Val, P4Type]:
        if isinstance(a.type, InfIntT) and isinstance(b.type, InfIntT):
            return a, b, InfIntT()
        if isinstance(a.type, InfIntT):
            a = self.coerce(a, b.type, node, op)
        elif isinstance(b.type, InfIntT):
            b = self.coerce(b, a.type, node, op)
        if a.type != b.type:
            same_enum = isinstance(a.type, EnumT) and isinstance(b.type, EnumT) and (
                a.type.name == b.type.name)
            if same_enum:
                return a, b, a.type
            raise self.fail(P4TypeError, node, f"operator {op}: operands are {a.type.show()} and "
                            f"{b.type.show()} (different widths need a cast)", "expression")
        return a, b, a.type

    def _arith(self: Compiler, node: Tree, scope: Scope, op: str, pyop: str) -> Val:
        x, y = kids(node)
        a, b, t = self._unify(self.expr(x, scope), self.expr(y, scope), node, op)
        if isinstance(t, InfIntT):
            c = fold(pyop, a.const, b.const)
            return Val(repr(c) if c is not None else f"({a.code} {pyop} {b.code})", t, c)
        if not isinstance(t, BitT):
            raise self.fail(P4TypeError, node, f"operator {op} needs bit<W>, got {t.show()}",
                            "expression")
        m = (1 << t.width) - 1
        if t.signed and pyop in ("//", "%") and not (
                a.const is not None and b.const is not None
                and not (a.const | b.const) >> (t.width - 1)):
            # P4_16 defines / and % on int<W> for positive compile-time values only (p4c
            # refuses the rest); floor division of two's complement patterns would be wrong
            raise self.fail(P4TypeError, node, f"operator {op} on {t.show()} needs positive "
                            "compile-time constants", "expression")
        const = None
        if a.const is not None and b.const is not None:
            folded = fold(pyop, a.const, b.const)
            const = folded & m if folded is not None else None
        if const is not None:
            return Val(repr(const), t, const)
        if pyop in ("&", "|", "^"):
            return Val(f"({a.code} {pyop} {b.code})", t)
        if pyop in ("//", "%"):
            # a zero divisor at run time gives 0 rather than stopping the switch
            return Val(f"((({a.code} {pyop} {b.code}) if {b.code} else 0) & {m:#x})", t)
        return Val(f"(({a.code} {pyop} {b.code}) & {m:#x})", t)

    def e_add(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "+", "+")

    def e_sub(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "-", "-")

    def e_mul(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "*", "*")

    def e_div(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "/", "//")

    def e_mod(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "%", "%")

    def e_band(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "&", "&")

    def e_bor(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "|", "|")

    def e_bxor(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "^", "^")

    def _sat(self: Compiler, node: Tree, scope: Scope, op: str) -> Val:
        x, y = kids(node)
        a, b, t = self._unify(self.expr(x, scope), self.expr(y, scope), node, op)
        if not isinstance(t, BitT):
            raise self.fail(P4TypeError, node, f"saturating {op} needs bit<W> or int<W>, got "
                            f"{t.show()}", "saturating arithmetic")
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
        a, b = self.expr(x, scope), self.expr(y, scope)
        if not isinstance(a.type, BitT) or not isinstance(b.type, BitT):
            raise self.fail(P4TypeError, node, f"++ needs bit<W> operands, got {a.type.show()} "
                            f"and {b.type.show()}", "concatenation")
        t = BitT(a.type.width + b.type.width, a.type.signed)
        return Val(f"(({a.code} << {b.type.width}) | {b.code})", t)

    def _shift(self: Compiler, node: Tree, scope: Scope, left: bool) -> Val:
        x, y = kids(node)
        a, b = self.expr(x, scope), self.expr(y, scope)
        if isinstance(b.type, BitT) and b.type.signed:
            raise self.fail(P4TypeError, node, "shift amount must be unsigned", "shift")
        if isinstance(a.type, InfIntT):
            if a.const is not None and b.const is not None:
                c = a.const << b.const if left else a.const >> b.const
                return Val(repr(c), a.type, c)
            raise self.fail(P4TypeError, node, "shift of an int literal by a variable needs a "
                            "width", "shift")
        if not isinstance(a.type, BitT):
            raise self.fail(P4TypeError, node, f"cannot shift {a.type.show()}", "shift")
        m = (1 << a.type.width) - 1
        if left:
            return Val(f"(({a.code} << {b.code}) & {m:#x})", a.type)
        if a.type.signed:
            return Val(f"((to_signed({a.code}, {a.type.width}) >> {b.code}) & {m:#x})", a.type)
        return Val(f"({a.code} >> {b.code})", a.type)

    def e_shl(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._shift(n, s, True)

    def e_shr(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._shift(n, s, False)

    def _compare(self: Compiler, node: Tree, scope: Scope, op: str) -> Val:
        x, y = kids(node)
        a, b, t = self._unify(self.expr(x, scope), self.expr(y, scope), node, op)
        if op not in ("==", "!=") and not isinstance(t, BitT | InfIntT):
            raise self.fail(P4TypeError, node, f"operator {op} needs numbers, got {t.show()}",
                            "comparison")
        ac, bc = a.code, b.code
        if isinstance(t, BitT) and t.signed and op not in ("==", "!="):
            ac, bc = f"to_signed({ac}, {t.width})", f"to_signed({bc}, {t.width})"
        if isinstance(t, ListT):
            raise self.fail(UnsupportedConstructError, node, "comparison of lists", "comparison")
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
        a, b = self.expr(x, scope), self.expr(y, scope)
        for v, n in ((a, x), (b, y)):
            if not isinstance(v.type, BoolT):
                raise self.fail(P4TypeError, n, f"operator {op} needs bool, got {v.type.show()}",
                                "expression")
        return Val(f"({a.code} {'and' if op == '&&' else 'or'} {b.code})", BoolT())

    def e_land(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._logic(n, s, "&&")

    def e_lor(self: Compiler, n: Tree, s: Scope) -> Val:
        return self._logic(n, s, "||")

    def e_lnot(self: Compiler, node: Tree, scope: Scope) -> Val:
        v = self.expr(kids(node)[0], scope)
        if not isinstance(v.type, BoolT):
            raise self.fail(P4TypeError, node, f"! needs bool, got {v.type.show()}", "expression")
        return Val(f"(not {v.code})", BoolT())

    def e_bnot(self: Compiler, node: Tree, scope: Scope) -> Val:
        v = self.expr(kids(node)[0], scope)
        if not isinstance(v.type, BitT):
            raise self.fail(P4TypeError, node, f"~ needs bit<W>, got {v.type.show()}",
                            "expression")
        m = (1 << v.type.width) - 1
        return Val(f"({v.code} ^ {m:#x})", v.type,
                   v.const ^ m if v.const is not None else None)

    def e_neg(self: Compiler, node: Tree, scope: Scope) -> Val:
        v = self.expr(kids(node)[0], scope)
        if isinstance(v.type, InfIntT) and v.const is not None:
            return Val(repr(-v.const), v.type, -v.const)
        if not isinstance(v.type, BitT):
            raise self.fail(P4TypeError, node, f"- needs a number, got {v.type.show()}",
                            "expression")
        m = (1 << v.type.width) - 1
        return Val(f"((-{v.code}) & {m:#x})", v.type)

    def e_cond(self: Compiler, node: Tree, scope: Scope) -> Val:
        c, x, y = kids(node)
        cv = self.expr(c, scope)
        if not isinstance(cv.type, BoolT):
            raise self.fail(P4TypeError, c, f"?: condition is {cv.type.show()}, not bool", "?:")
        a, b, t = self._unify(self.expr(x, scope), self.expr(y, scope), node, "?:")
        if isinstance(t, InfIntT):
            raise self.fail(P4TypeError, node, "?: with two untyped int literals needs a width",
                            "?:")
        return Val(f"({a.code} if {cv.code} else {b.code})", t)
