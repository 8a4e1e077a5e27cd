# mypy: disable-error-code="misc"
# (each part is a mixin of `Compiler`; its methods say so with `self: Compiler`,
# which mypy reports under `misc` because the host class is not a protocol)
"""The checker: the type of every expression, before any code is generated for it.

`check_expr` walks one expression tree once, resolves its names and computes, for every node,
its P4 type, its value when it is a compile-time constant and what the code generator needs to
know about it (the symbol a name denotes, the operand types after an untyped literal adapted).
Every type error of an expression is reported here, at the node's file:line:column; the result
is recorded in a side table keyed by node (`typed_of`), which `expressions` reads instead of
recomputing types. One `c_<rule>` method per expression rule of the grammar.

Calls are typed by what they return (`call_type`: `isValid()`, a function's declared return
type, a one-argument `register.read`). Also here: the rules several constructs share (literal
adaptation `coerce_type`, writability `check_lvalue`, conditions, `switch` values and labels,
header layouts of instances, header/struct/stack compatibility).

Every other rule (declarations, where a statement may stand, a call's arguments against its
parameters, extern uses, tables, parsers, controls, `V1Switch`) is in `checker_rules`, one
`check_*` function each, called by the code that lays the construct out before it writes
anything, so the emit modules only lay out code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lark import Token, Tree

from p4sim.compiler.constfold import fold
from p4sim.compiler.symbols import Scope, Sym, Val
from p4sim.errors import P4Error, P4TypeError, UnknownNameError, UnsupportedConstructError
from p4sim.p4types import (
    BitT,
    BoolT,
    EnumT,
    ErrorT,
    HeaderT,
    HeaderUnionT,
    InfIntT,
    ListT,
    P4Type,
    StackT,
    StringT,
    StructLikeT,
    TypeParamT,
    VarbitT,
    VoidT,
    bit_width,
)
from p4sim.tree import ident, kids, norm_expr, source_text

if TYPE_CHECKING:
    from p4sim.compiler.driver import Compiler

# A header stack's members that are values, not elements (P4_16 8.18): never written.
_STACK_VALUES = frozenset({"size", "lastIndex", "nextIndex"})


@dataclass
class Typed:
    """What the checker learnt about one expression node.

    `operands` are the operands' `Typed` after an untyped literal adapted to the other side
    (binary operators and `?:`); `sym` is the symbol a name denotes; `alias` is the tree the
    node stands for (a variable spelled like a type, `hdr.x`); `form` tells the generator which
    of a rule's code shapes applies (casts, stack members, lookahead)."""

    type: P4Type
    const: int | None = None
    sym: Sym | None = None
    operands: tuple[Typed, ...] = ()
    alias: Any = None
    form: str = ""
    bounds: tuple[int, int] = (0, 0)


_ARITH = {"add": ("+", "+"), "sub": ("-", "-"), "mul": ("*", "*"), "div": ("/", "//"),
          "mod": ("%", "%"), "band": ("&", "&"), "bor": ("|", "|"), "bxor": ("^", "^")}
_COMPARE = {"eq": "==", "ne": "!=", "lt": "<", "gt": ">", "le": "<=", "ge": ">="}


class Checker:
    """The expression checker (a part of `Compiler`)."""

    def check_expr(self: Compiler, node: Any, scope: Scope) -> Typed:
        """Type `node` and every expression under it; record each in the side table."""
        node = norm_expr(node)
        d = node.data
        if d in _ARITH:
            t = self.c_arith(node, scope, *_ARITH[d])
        elif d in _COMPARE:
            t = self.c_compare(node, scope, _COMPARE[d])
        elif d in ("sadd", "ssub"):
            t = self.c_sat(node, scope, "|+|" if d == "sadd" else "|-|")
        elif d in ("shl", "shr"):
            t = self.c_shift(node, scope, d == "shl")
        elif d in ("land", "lor"):
            t = self.c_logic(node, scope, "&&" if d == "land" else "||")
        else:
            method = getattr(self, f"c_{d}", None)
            if method is None:
                raise self.fail(UnsupportedConstructError, node,
                                f"expression {d} is not supported", d)
            t = method(node, scope)
        self.typed[id(node)] = (node, t)  # the node is kept alive so its id stays its own
        return t

    def typed_of(self: Compiler, node: Any) -> Typed:
        """The checker's result for a node `check_expr` has seen."""
        return self.typed[id(node)][1]

    def coerce_type(self: Compiler, v: Typed, t: P4Type, node: Any, construct: str,
                    what: str = "") -> Typed:
        """`statements.coerce` on types: can `v` be used where `t` is expected (literals
        adapt, their value masked to the width)?"""
        if isinstance(t, TypeParamT):
            return v
        if isinstance(v.type, InfIntT):
            if isinstance(t, BitT):
                value = v.const & ((1 << t.width) - 1) if v.const is not None else None
                return Typed(t, value)
            if isinstance(t, InfIntT):
                return v
        if v.type == t:
            return v
        if isinstance(t, EnumT) and isinstance(v.type, EnumT) and t.name == v.type.name:
            return v
        if isinstance(v.type, EnumT) and v.type.underlying is not None and v.type.underlying == t:
            return Typed(t, v.const)
        target = f" to {what}" if what else ""
        raise self.fail(P4TypeError, node, f"cannot use {v.type.show()} as {t.show()}{target}"
                        " without a cast", construct)

    def check_lvalue(self: Compiler, node: Tree, scope: Scope, param: str | None = None
                     ) -> None:
        """A written expression (assignment, out/inout argument ``param``) must be writable:
        a variable or a writable parameter, or a member, element or slice of one — as p4c's
        type checker marks ``leftValue`` (frontends/p4/typeChecking): not a constant, an
        `in` parameter or a directionless action parameter, and not any other expression (a
        literal, an operation, a cast, a call's result, an enum or error member, a stack's
        ``size``/``lastIndex``/``nextIndex``). For an argument p4c says "Read-only value used
        for out/inout parameter"; for an assignment "cannot be the target of an assignment"."""
        root = node
        while root.data in ("member", "index", "slice"):
            if root.data == "member" and ident(kids(root)[1]) in _STACK_VALUES and isinstance(
                    self.check_expr(kids(root)[0], scope).type, StackT):
                raise self.not_lvalue(node, param)
            root = norm_expr(kids(root)[0])
            if not isinstance(root, Tree):
                raise self.not_lvalue(node, param)
        if root.data != "name_ref":
            raise self.not_lvalue(node, param)
        sym = scope.lookup(ident(kids(root)[0]))
        if sym is not None and sym.kind == "const":
            raise self.fail(P4TypeError, node, f"cannot assign to constant "
                            f"'{ident(kids(root)[0])}'", "assignment")
        if sym is not None and sym.kind == "var" and sym.info == "in":
            raise self.fail(P4TypeError, node, f"cannot assign to '{ident(kids(root)[0])}': "
                            "it is an `in` parameter", "assignment")
        if sym is not None and sym.kind == "var" and sym.code.startswith("a_"):
            raise self.fail(P4TypeError, node, "cannot assign to a directionless action "
                            "parameter", "assignment")

    def not_lvalue(self: Compiler, node: Tree, param: str | None) -> P4Error:
        """The error for an expression that is not an lvalue, in p4c's words."""
        text = source_text(node)
        if isinstance(node, Tree) and not node.meta.empty:  # as written (p4c quotes it so)
            text = " ".join(self.pre.text[node.meta.start_pos:node.meta.end_pos].split())
        if param is not None:
            return self.fail(P4TypeError, node, f"{text}: Read-only value used for out/inout "
                             f"parameter '{param}'", "argument")
        return self.fail(P4TypeError, node, f"Expression {text} cannot be the target of an "
                         "assignment", "assignment")

    def check_condition(self: Compiler, node: Any, scope: Scope, what: str, construct: str
                        ) -> Typed:
        """The condition of an `if` or a `for`: a bool."""
        t = self.check_expr(node, scope)
        if not isinstance(t.type, BoolT):
            raise self.fail(P4TypeError, node, f"{what} condition is {t.type.show()}, not bool",
                            construct)
        return t

    def check_instance_type(self: Compiler, t: P4Type, node: Any) -> None:
        """Refuse an instance (the headers or metadata struct, a variable) holding a header
        whose fields total a number of bits that is not a multiple of 8, as p4c's BMv2 back
        end does: `HeaderConverter::addHeaderType` (backends/bmv2/common/header.cpp) reports
        "Found header with fields totaling W bits. BMv2 target only supports headers with
        fields totaling a multiple of 8 bits." (`bm::Header` asserts whole bytes,
        src/bm_sim/headers.cpp). A struct is padded to whole bytes there; a header is not.
        A header type that is declared but never instantiated is accepted, as there."""
        if isinstance(t, StackT):
            self.check_instance_type(t.elem, node)
        elif isinstance(t, HeaderT):
            width = sum(f.type.max_width if isinstance(f.type, VarbitT) else bit_width(f.type)
                        for f in t.fields)
            if width % 8:
                raise self.fail(UnsupportedConstructError, self.header_decls.get(t.name, node),
                                f"header '{t.name}': its fields total {width} bits; p4c's BMv2 "
                                "back end only supports headers with fields totaling a multiple "
                                "of 8 bits", "header layout")
            if t.fixed_width() % 8:
                # p4c accepts e.g. { bit<4> a; varbit<12> v; }; p4sim's extract and emit move
                # the fixed part as whole bytes
                raise self.fail(UnsupportedConstructError, self.header_decls.get(t.name, node),
                                f"header '{t.name}': p4sim needs the fields before the varbit "
                                f"to total whole bytes, they total {t.fixed_width()} bits",
                                "header layout")
        elif isinstance(t, StructLikeT):
            for f in t.fields:
                self.check_instance_type(f.type, node)

    def check_same_type(self: Compiler, v: Typed | Val, t: P4Type, node: Any, message: str,
                        construct: str) -> None:
        """A header, struct, union or stack value where `t` is expected: the same type (no
        literal adapts, no cast applies)."""
        if v.type != t:
            raise self.fail(P4TypeError, node, message, construct)

    def check_switch_value(self: Compiler, node: Any, scope: Scope, where: Any) -> Typed:
        """`switch (e)` over a value (not `action_run`): bit<W> or a serializable enum."""
        t = self.check_expr(node, scope)
        if not isinstance(t.type, BitT | EnumT) or (
                isinstance(t.type, EnumT) and t.type.underlying is None):
            raise self.fail(UnsupportedConstructError, where,
                            f"switch over {t.type.show()}: p4sim switches over action_run, "
                            "bit<W> and serializable enums", "switch")
        return t

    def check_switch_label(self: Compiler, label: Any, value_type: P4Type, scope: Scope) -> int:
        """A label of `switch (e)`: a compile-time constant of the value's type; its value."""
        t = self.coerce_type(self.check_expr(label, scope), value_type, label, "switch")
        if t.const is None:
            raise self.fail(P4TypeError, label, "switch labels must be constants", "switch")
        return t.const

    # --- leaves and names

    def c_int_lit(self: Compiler, node: Tree, scope: Scope) -> Typed:
        tok = node.children[0]
        assert isinstance(tok, Token)
        v, t = self.parse_int(tok)
        return Typed(t or InfIntT(), v)

    def c_true_lit(self: Compiler, node: Tree, scope: Scope) -> Typed:
        return Typed(BoolT(), 1)

    def c_false_lit(self: Compiler, node: Tree, scope: Scope) -> Typed:
        return Typed(BoolT(), 0)

    def c_string_lit(self: Compiler, node: Tree, scope: Scope) -> Typed:
        return Typed(StringT())

    def c_name_ref(self: Compiler, node: Tree, scope: Scope) -> Typed:
        name = ident(kids(node)[0])
        sym = scope.lookup(name)
        if sym is None:
            raise self.fail(UnknownNameError, node, f"unknown name '{name}'", "expression")
        return Typed(sym.type, sym.value if sym.kind == "const" else None, sym=sym)

    def c_dot_name_ref(self: Compiler, node: Tree, scope: Scope) -> Typed:
        name = ident(kids(node)[0])
        sym = self.globals.get(name)
        if sym is None:
            raise self.fail(UnknownNameError, node, f"unknown name '.{name}'", "expression")
        return Typed(sym.type, sym.value, sym=sym)

    def c_type_member(self: Compiler, node: Tree, scope: Scope) -> Typed:
        tname, member = kids(node)
        shadow = scope.lookup(str(tname))
        if shadow is not None and shadow.kind == "var":
            # a parameter or variable spelled like a type (p4c scopes type names; p4sim's
            # lexer does not): `hdr.x` with a `header hdr` elsewhere
            alias = Tree("member", [Tree("name_ref", [tname], node.meta), member], node.meta)
            t = self.check_expr(alias, scope)
            return Typed(t.type, t.const, alias=alias)
        et = self.types.get(str(tname))
        m = ident(member)
        if isinstance(et, EnumT):
            if m not in et.members:
                raise self.fail(UnknownNameError, member, f"enum {et.name} has no member '{m}'",
                                "enum")
            i = et.members.index(m)
            return Typed(et, et.values[i] if et.underlying else i)
        raise self.fail(UnsupportedConstructError, node, f"{tname}.{m} is not supported",
                        "type member")

    def c_error_member(self: Compiler, node: Tree, scope: Scope) -> Typed:
        m = ident(kids(node)[0])
        if m not in self.errors:
            raise self.fail(UnknownNameError, node, f"unknown error '{m}'", "error")
        return Typed(ErrorT(), self.errors.index(m))

    # --- members, indexes, slices

    def c_member(self: Compiler, node: Tree, scope: Scope) -> Typed:
        base_node, member = kids(node)
        m = ident(member)
        base_node = norm_expr(base_node)
        if base_node.data == "call":
            callee = norm_expr(kids(base_node)[0])
            if callee.data == "member" and ident(kids(callee)[1]) == "apply":
                if m in ("hit", "miss"):
                    return Typed(BoolT(), form="apply")
                raise self.fail(UnsupportedConstructError, member,
                                f"table apply result .{m} is not supported here", "table apply")
        b = self.check_expr(base_node, scope)
        t = b.type
        if isinstance(t, StructLikeT):
            f = t.field(m)
            if f is None:
                raise self.fail(UnknownNameError, member, f"{t.show()} has no field '{m}'",
                                "member")
            return Typed(f.type, form="field")
        if isinstance(t, StackT):
            if m in ("next", "last", "lastIndex") and not scope.find_states():
                raise self.fail(P4TypeError, member, f"'{m}' of a header stack can only be used "
                                "in a parser (as p4c requires)", "header stack")
            if m in ("next", "last"):
                return Typed(t.elem, form=m)
            if m in ("lastIndex", "nextIndex"):
                return Typed(BitT(32), form=m)
            if m == "size":
                return Typed(BitT(32), t.size, form=m)
        raise self.fail(UnknownNameError, member, f"{t.show()} has no member '{m}'", "member")

    def c_index(self: Compiler, node: Tree, scope: Scope) -> Typed:
        base, idx = kids(node)
        b = self.check_expr(base, scope)
        if not isinstance(b.type, StackT):
            raise self.fail(P4TypeError, node, f"cannot index {b.type.show()}", "index")
        i = self.check_expr(idx, scope)
        if i.const is not None and not 0 <= i.const < b.type.size:
            raise self.fail(P4TypeError, idx, f"index {i.const} out of range for "
                            f"{b.type.show()}", "index")
        return Typed(b.type.elem)

    def c_slice(self: Compiler, node: Tree, scope: Scope) -> Typed:
        base, hi, lo = kids(node)
        b = self.check_expr(base, scope)
        h, low = self.slice_bounds(b, hi, lo, node)
        w = h - low + 1
        const = (b.const >> low) & ((1 << w) - 1) if b.const is not None else None
        return Typed(BitT(w), const, bounds=(h, low))

    # --- calls

    def slice_bounds(self: Compiler, b: Typed | Val, hi: Any, lo: Any, node: Any
                     ) -> tuple[int, int]:
        """The constant bounds of `b[hi:lo]`, within `b`'s width (also for a slice written)."""
        if not isinstance(b.type, BitT):
            raise self.fail(P4TypeError, node, f"cannot slice {b.type.show()}", "slice")
        h = self.const_eval(hi)
        low = self.const_eval(lo)
        if not 0 <= low <= h < b.type.width:
            raise self.fail(P4TypeError, node, f"slice [{h}:{low}] out of range for "
                            f"{b.type.show()}", "slice")
        return h, low

    def c_call(self: Compiler, node: Tree, scope: Scope) -> Typed:
        callee, args = kids(node)
        t = self.call_type(norm_expr(callee), args, scope, node)
        if isinstance(t, VoidT):
            raise self.fail(P4TypeError, node, "call has no value", "call")
        return Typed(t)

    def method_target(self: Compiler, callee: Tree, scope: Scope, node: Any
                      ) -> tuple[Any, str, Any]:
        """For a call `base.method(...)` (`callee` a member node): the base expression, the
        method's name, and when the base is a plain name its symbol — the name in scope, or the
        instance a direct invocation `C.apply()` stands for (`direct_calls`) — else None. An
        unknown name fails at the base. Shared by the checker's `call_type` and the layout in
        `calls`."""
        base_node, mnode = kids(callee)
        base_node = norm_expr(base_node)
        if base_node.data != "name_ref":
            return base_node, ident(mnode), None
        sym = scope.lookup(ident(kids(base_node)[0]))
        if sym is None and id(node) in self.direct_calls:
            sym = scope.lookup(self.direct_calls[id(node)])
        if sym is None:
            raise self.fail(UnknownNameError, base_node,
                            f"unknown name '{ident(kids(base_node)[0])}'", "call")
        return base_node, ident(mnode), sym

    def no_method(self: Compiler, base_type: P4Type, callee: Tree) -> Exception:
        """The error for `base.method(...)` when `base`'s type has no such method."""
        mnode = kids(callee)[1]
        return self.fail(UnknownNameError, mnode,
                         f"{base_type.show()} has no method '{ident(mnode)}'", "call")

    def function_target(self: Compiler, callee: Tree, scope: Scope, node: Any
                        ) -> tuple[str, Any]:
        """For a call `name(...)`: the name and its symbol in scope (None for an extern
        function or a v1model primitive); any other callee expression is refused."""
        if callee.data != "name_ref":
            raise self.fail(UnsupportedConstructError, node, "call of this expression", "call")
        name = ident(kids(callee)[0])
        return name, scope.lookup(name)

    def call_type(self: Compiler, callee: Tree, args_node: Any, scope: Scope, node: Any
                  ) -> P4Type:
        """What a call returns (its arguments are checked where it is laid out, in `calls`)."""
        nargs = len([a for a in kids(args_node) if a is not None]) if args_node is not None else 0
        if callee.data == "member":
            base_node, m, sym = self.method_target(callee, scope, node)
            if sym is not None:
                if sym.kind == "extern":
                    if sym.type.name == "register" and m == "read" and nargs == 1:  # type: ignore[attr-defined]
                        return sym.info[1]  # type: ignore[no-any-return]
                    return VoidT()
                if sym.kind in ("table", "control_inst", "parser_inst", "packet_in",
                                "packet_out"):
                    return VoidT()
            b = self.check_expr(base_node, scope)
            if isinstance(b.type, HeaderUnionT) and m == "isValid":
                return BoolT()
            if isinstance(b.type, HeaderT) and m in ("isValid", "setValid", "setInvalid"):
                return BoolT() if m == "isValid" else VoidT()
            if isinstance(b.type, StackT) and m in ("push_front", "pop_front"):
                return VoidT()
            if isinstance(b.type, HeaderT):
                self.check_args([a for a in kids(args_node) if a is not None]
                                if args_node is not None else [], {0}, node, m)
            raise self.no_method(b.type, callee)
        name, sym = self.function_target(callee, scope, node)
        if sym is not None and sym.kind == "function":
            return self.resolve_type(kids(kids(sym.info)[1])[0])
        if sym is not None and sym.kind == "action":
            return VoidT()
        self.check_extern_function(name, callee)
        return VoidT()

    def c_lookahead_call(self: Compiler, node: Tree, scope: Scope) -> Typed:
        base, tnode = kids(node)
        b = self.check_expr(base, scope)
        if b.sym is None or b.sym.kind != "packet_in":
            raise self.fail(P4TypeError, node, "lookahead is a packet_in method", "lookahead")
        t = self.resolve_type(tnode)
        if isinstance(t, HeaderT) and not any(isinstance(f.type, VarbitT) for f in t.fields):
            self.check_instance_type(t, tnode)  # p4c makes a variable of it
            return Typed(t, form="header")  # extracted into a fresh instance, cursor put back
        if not isinstance(t, BitT):
            raise self.fail(UnsupportedConstructError, tnode,
                            f"lookahead<{t.show()}>: p4sim supports lookahead of bit<W> and of "
                            "fixed-size headers", "lookahead")
        return Typed(t, form="bits")

    def c_constructor(self: Compiler, node: Tree, scope: Scope) -> Typed:
        raise self.fail(UnsupportedConstructError, node,
                        "constructor calls in expressions are not supported", "constructor")

    def c_list_expr(self: Compiler, node: Tree, scope: Scope) -> Typed:
        items = kids(node)[0]
        elems = [self.check_expr(e, scope) for e in (kids(items) if items is not None else [])]
        return Typed(ListT(tuple(e.type for e in elems)))

    # --- operators

    def c_cast(self: Compiler, node: Tree, scope: Scope) -> Typed:
        tnode, inner = kids(node)
        t = self.resolve_type(tnode)
        v = self.check_expr(inner, scope)
        src = v.type
        if isinstance(t, BitT):
            m = (1 << t.width) - 1
            if isinstance(src, InfIntT):
                return Typed(t, v.const & m if v.const is not None else None, form="literal")
            if isinstance(src, BoolT):
                if t.width != 1:
                    raise self.fail(P4TypeError, node, f"cannot cast bool to {t.show()}", "cast")
                return Typed(t, v.const, form="bool")
            if isinstance(src, EnumT) and src.underlying is not None:
                src = src.underlying
            if isinstance(src, BitT):
                if src.signed and t.width > src.width:
                    return Typed(t, form="sign_extend", bounds=(src.width, 0))
                if t.width >= src.width and src.signed == t.signed:
                    return Typed(t, v.const, form="same")
                return Typed(t, v.const & m if v.const is not None else None, form="mask")
        if isinstance(t, BoolT) and isinstance(src, BitT) and src.width == 1:
            return Typed(t, v.const, form="to_bool")
        if isinstance(t, EnumT) and t.underlying is not None and isinstance(src, BitT):
            return Typed(t, v.const, form="same")
        if t == src:
            return Typed(v.type, v.const, v.sym, form="identity")
        raise self.fail(P4TypeError, node, f"cannot cast {src.show()} to {t.show()}", "cast")

    def unify(self: Compiler, a: Typed, b: Typed, node: Any, op: str) -> tuple[Typed, Typed,
                                                                                P4Type]:
        """Both operands of a binary operator at one type: an untyped literal adapts to the
        other side; otherwise the types must be equal (different widths need a cast)."""
        if isinstance(a.type, InfIntT) and isinstance(b.type, InfIntT):
            return a, b, InfIntT()
        if isinstance(a.type, InfIntT):
            a = self.coerce_type(a, b.type, node, op)
        elif isinstance(b.type, InfIntT):
            b = self.coerce_type(b, a.type, node, op)
        if a.type != b.type:
            same_enum = isinstance(a.type, EnumT) and isinstance(b.type, EnumT) and (
                a.type.name == b.type.name)
            if same_enum:
                return a, b, a.type
            raise self.fail(P4TypeError, node, f"operator {op}: operands are {a.type.show()} and "
                            f"{b.type.show()} (different widths need a cast)", "expression")
        return a, b, a.type

    def _operands(self: Compiler, node: Tree, scope: Scope, op: str) -> tuple[Typed, Typed,
                                                                              P4Type]:
        x, y = kids(node)
        return self.unify(self.check_expr(x, scope), self.check_expr(y, scope), node, op)

    def c_arith(self: Compiler, node: Tree, scope: Scope, op: str, pyop: str) -> Typed:
        a, b, t = self._operands(node, scope, op)
        if isinstance(t, InfIntT):
            return Typed(t, fold(pyop, a.const, b.const), operands=(a, b))
        if not isinstance(t, BitT):
            raise self.fail(P4TypeError, node, f"operator {op} needs bit<W>, got {t.show()}",
                            "expression")
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
            const = folded & ((1 << t.width) - 1) if folded is not None else None
        return Typed(t, const, operands=(a, b))

    def c_sat(self: Compiler, node: Tree, scope: Scope, op: str) -> Typed:
        a, b, t = self._operands(node, scope, op)
        if not isinstance(t, BitT):
            raise self.fail(P4TypeError, node, f"saturating {op} needs bit<W> or int<W>, got "
                            f"{t.show()}", "saturating arithmetic")
        return Typed(t, operands=(a, b))

    def c_concat(self: Compiler, node: Tree, scope: Scope) -> Typed:
        x, y = kids(node)
        a, b = self.check_expr(x, scope), self.check_expr(y, scope)
        if not isinstance(a.type, BitT) or not isinstance(b.type, BitT):
            raise self.fail(P4TypeError, node, f"++ needs bit<W> operands, got {a.type.show()} "
                            f"and {b.type.show()}", "concatenation")
        return Typed(BitT(a.type.width + b.type.width, a.type.signed), operands=(a, b))

    def c_shift(self: Compiler, node: Tree, scope: Scope, left: bool) -> Typed:
        x, y = kids(node)
        a, b = self.check_expr(x, scope), self.check_expr(y, scope)
        if isinstance(b.type, BitT) and b.type.signed:
            raise self.fail(P4TypeError, node, "shift amount must be unsigned", "shift")
        if isinstance(a.type, InfIntT):
            if a.const is not None and b.const is not None:
                c = a.const << b.const if left else a.const >> b.const
                return Typed(a.type, c, operands=(a, b))
            raise self.fail(P4TypeError, node, "shift of an int literal by a variable needs a "
                            "width", "shift")
        if not isinstance(a.type, BitT):
            raise self.fail(P4TypeError, node, f"cannot shift {a.type.show()}", "shift")
        return Typed(a.type, operands=(a, b))

    def c_compare(self: Compiler, node: Tree, scope: Scope, op: str) -> Typed:
        a, b, t = self._operands(node, scope, op)
        if op not in ("==", "!=") and not isinstance(t, BitT | InfIntT):
            raise self.fail(P4TypeError, node, f"operator {op} needs numbers, got {t.show()}",
                            "comparison")
        if isinstance(t, ListT):
            raise self.fail(UnsupportedConstructError, node, "comparison of lists", "comparison")
        return Typed(BoolT(), operands=(a, b))

    def c_logic(self: Compiler, node: Tree, scope: Scope, op: str) -> Typed:
        x, y = kids(node)
        a, b = self.check_expr(x, scope), self.check_expr(y, scope)
        for v, n in ((a, x), (b, y)):
            if not isinstance(v.type, BoolT):
                raise self.fail(P4TypeError, n, f"operator {op} needs bool, got {v.type.show()}",
                                "expression")
        return Typed(BoolT())

    def c_lnot(self: Compiler, node: Tree, scope: Scope) -> Typed:
        v = self.check_expr(kids(node)[0], scope)
        if not isinstance(v.type, BoolT):
            raise self.fail(P4TypeError, node, f"! needs bool, got {v.type.show()}", "expression")
        return Typed(BoolT())

    def c_bnot(self: Compiler, node: Tree, scope: Scope) -> Typed:
        v = self.check_expr(kids(node)[0], scope)
        if not isinstance(v.type, BitT):
            raise self.fail(P4TypeError, node, f"~ needs bit<W>, got {v.type.show()}",
                            "expression")
        m = (1 << v.type.width) - 1
        return Typed(v.type, v.const ^ m if v.const is not None else None)

    def c_neg(self: Compiler, node: Tree, scope: Scope) -> Typed:
        v = self.check_expr(kids(node)[0], scope)
        if isinstance(v.type, InfIntT) and v.const is not None:
            return Typed(v.type, -v.const)
        if not isinstance(v.type, BitT):
            raise self.fail(P4TypeError, node, f"- needs a number, got {v.type.show()}",
                            "expression")
        return Typed(v.type)

    def c_cond(self: Compiler, node: Tree, scope: Scope) -> Typed:
        c, x, y = kids(node)
        cv = self.check_expr(c, scope)
        if not isinstance(cv.type, BoolT):
            raise self.fail(P4TypeError, c, f"?: condition is {cv.type.show()}, not bool", "?:")
        a, b, t = self.unify(self.check_expr(x, scope), self.check_expr(y, scope), node, "?:")
        if isinstance(t, InfIntT):
            raise self.fail(P4TypeError, node, "?: with two untyped int literals needs a width",
                            "?:")
        return Typed(t, operands=(a, b))
