# mypy: disable-error-code="misc"
# (each part is a mixin of `Compiler`; its methods say so with `self: Compiler`,
# which mypy reports under `misc` because the host class is not a protocol)
"""Statements: assignments, blocks, `if`, `switch`, `for`, `return` and `exit`.

Statements compile to Python statements in place, in the function being generated. Assignments
are where P4's value semantics are kept: headers and structs are copied, not aliased, slices and
widths are masked, and list or structure expressions are laid out field by field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lark import Token, Tree

from p4sim.compiler.checker import Typed
from p4sim.compiler.symbols import Scope, Sym, Val
from p4sim.errors import (
    UnsupportedConstructError,
)
from p4sim.p4types import (
    BitT,
    HeaderT,
    HeaderUnionT,
    InfIntT,
    P4Type,
    StackT,
    StructLikeT,
    StructT,
    TypeParamT,
    bit_width,
)
from p4sim.tree import ident, kids, norm, norm_expr, py, source_text

if TYPE_CHECKING:
    from p4sim.compiler.driver import Compiler


# `a op= b` is `a = a op b` (P4_16 1.2.4, "Assignment statement"): the expression rule it becomes
_COMPOUND_OPS = {
    "+=": "add", "-=": "sub", "*=": "mul", "/=": "div", "%=": "mod", "<<=": "shl", ">>=": "shr",
    "&=": "band", "|=": "bor", "^=": "bxor", "|+|=": "sadd", "|-|=": "ssub",
}


class Statements:
    """Statements (a part of `Compiler`)."""

    def block(self: Compiler, node: Tree, scope: Scope, ctx: str) -> None:
        inner = Scope(self, scope, {})
        for st in kids(node)[1:]:
            self.statement(st, inner, ctx)

    def statement(self: Compiler, st: Tree, scope: Scope, ctx: str) -> None:
        g = self.gen
        d = st.data
        self.check_statement(st, ctx)
        if d == "block":
            # a nested block only opens a scope; Python needs no statement for that
            self.block(st, scope, ctx)
        elif d == "assignment":
            lhs, rhs = kids(st)
            self.assign(norm(lhs), rhs, scope, st)
        elif d in ("compound_assignment", "shr_assignment"):
            lhs, *op, rhs = [c for c in st.children if not (isinstance(c, Token) and c.type in (
                "SHR_START",))]
            operator = ">>=" if d == "shr_assignment" else str(op[0])
            value = Tree(_COMPOUND_OPS[operator], [norm(lhs), rhs], st.meta)
            self.assign(norm(lhs), value, scope, st)
        elif d in ("call_statement", "generic_call_statement"):
            parts = kids(st)
            callee, args = norm(parts[0]), parts[-1]
            v = self.call(callee, args, scope, st, statement=True)
            if v is not None and v.code:
                for line in v.code.split("\n"):  # copy-in/copy-out calls take several lines
                    g.emit(line)
        elif d == "if_statement":
            cond, then, other = kids(st)
            self.check_condition(cond, scope, "if", "if")
            c = self.gen_expr(cond, scope)
            g.emit(f"if {c.code}:")
            g.depth += 1
            self.statement(then, Scope(self, scope, {}), ctx)
            g.emit("pass")
            g.depth -= 1
            if other is not None:
                g.emit("else:")
                g.depth += 1
                self.statement(other, Scope(self, scope, {}), ctx)
                g.emit("pass")
                g.depth -= 1
        elif d == "var_decl":
            vann, tnode, vname, vinit = kids(st)
            t = self.resolve_type(tnode)
            self.check_instance_type(t, tnode)
            n = ident(vname)
            self.check_unique(scope.names, n, vname, "variable")
            code = g.tmp("v_" + py(n) + "_")
            if vinit is not None:
                self.initialize(code, t, vinit, scope)
            else:
                g.emit(f"{code} = {self.new_value(t)}")
            scope.names[n] = Sym("var", t, code)
        elif d == "const_decl":
            self.declare_const(st, scope.names)
        elif d == "exit_statement":
            g.emit("raise ExitSignal()")
        elif d == "for_statement":
            self.for_loop(st, scope, ctx)
        elif d in ("break_statement", "continue_statement"):
            word = d.split("_")[0]
            if word == "continue":
                updates, uscope = self.loops[-1]
                for u in updates:  # the update runs before the next test, as in C
                    self.statement(u, uscope, ctx)
            g.emit(word)
        elif d == "lookahead_statement":
            # `pkt.lookahead<T>();`: only the PacketTooShort check has an effect
            base, tnode = kids(st)
            v = self.expr(Tree("lookahead_call", [norm(base), tnode], st.meta), scope)
            g.emit(v.code)
        elif d == "return_statement":
            if ctx == "function":
                _ret_type, outs, leading = self.function_frame
                if not outs:
                    g.emit("return")
                elif leading:
                    g.emit("return (None" + "".join(f", {o}" for o in outs) + ",)")
                else:
                    g.emit(f"return ({', '.join(outs)},)")
            else:
                g.emit("return")
        elif d == "return_value_statement":
            ret_type, outs, _leading = self.function_frame
            value = kids(st)[0]
            if isinstance(ret_type, HeaderT | StructT) and self.is_struct_literal(value):
                v = Val(self.struct_value(ret_type, value, scope), ret_type)
            else:
                v = self.coerce(self.expr(value, scope), ret_type, value, "return")
            g.emit(f"return ({v.code}" + "".join(f", {o}" for o in outs) + ",)" if outs
                   else f"return {v.code}")
        elif d == "empty_statement":
            g.emit("pass")
        elif d == "switch_statement":
            self.switch(st, scope, ctx)
        else:
            raise self.fail(UnsupportedConstructError, st, f"statement {d} is not supported", d)

    def for_loop(self: Compiler, st: Tree, scope: Scope, ctx: str) -> None:
        """`for (init; cond; update) body` (P4_16 1.2.4) as a Python `while`: the init steps in
        a scope of their own, the condition tested before each pass, the update after the body
        and before a `continue`. Nothing bounds the number of passes (p4c leaves termination to
        the program too)."""
        g = self.gen
        inits, cond, updates, body = kids(st)
        fscope = Scope(self, scope, {})
        for step in kids(inits) if inits is not None else []:
            self.statement(step, fscope, ctx)
        g.emit("while True:")
        g.depth += 1
        if cond is not None:
            self.check_condition(cond, fscope, "for", "for loop")
            c = self.gen_expr(cond, fscope)
            g.emit(f"if not {c.code}: break")
        steps = kids(updates) if updates is not None else []
        self.loops.append((steps, fscope))
        self.statement(body, Scope(self, fscope, {}), ctx)
        self.loops.pop()
        for step in steps:
            self.statement(step, fscope, ctx)
        g.emit("pass")
        g.depth -= 1

    def switch(self: Compiler, st: Tree, scope: Scope, ctx: str) -> None:
        """`switch (t.apply().action_run)` with action labels, or `switch (expr)` over a bit<W>
        or serializable-enum value with constant labels; fall-through labels join the next
        case, `default` must come last."""
        g = self.gen
        expr_node, *cases = kids(st)
        e = norm_expr(expr_node)
        table_actions: dict[str, str] | None = None
        value_type: P4Type | None = None
        r = g.tmp("sw")
        if e.data == "member" and ident(kids(e)[1]) == "action_run":
            call = kids(e)[0]
            v = self.call(kids(call)[0], kids(call)[1], scope, call, statement=False)
            assert v is not None and v.info_table is not None  # type: ignore[attr-defined]
            table_actions = v.info_table  # type: ignore[attr-defined]
            g.emit(f"{r} = {v.code}[1]")
        else:
            value_type = self.check_switch_value(e, scope, expr_node).type
            g.emit(f"{r} = {self.gen_expr(e, scope).code}")
        pending: list[str] = []
        first = True
        seen: set[object] = set()
        for case in cases:
            key = self.check_switch_case(case, table_actions, value_type, scope, seen)
            is_default = key is None
            if not is_default:
                pending.append(f"_A_{py(table_actions[str(key)])}" if table_actions is not None
                               else repr(key))
            if case.data == "fallthrough_case":
                continue
            if is_default:
                g.emit("if True:" if first else "else:")
            else:
                g.emit(f"{'if' if first else 'elif'} {r} in ({', '.join(pending)},):")
            first = False
            pending = []
            g.depth += 1
            self.block(kids(case)[1], scope, ctx)
            g.emit("pass")
            g.depth -= 1

    def slice_store(self: Compiler, lhs: Tree, value_code: str, scope: Scope) -> tuple[str, int]:
        """Python code storing `value_code` into the slice `lhs` (nested slices flattened), and
        the slice's width."""
        base, hi, lo = kids(lhs)
        b = self.expr(base, scope)
        h, lo_ = self.slice_bounds(b, hi, lo, lhs)
        while norm_expr(base).data == "slice":
            # x[h1:l1][h:l] is x[l1 + h : l1 + l]
            inner_base, inner_hi, inner_lo = kids(norm_expr(base))
            ib = self.expr(inner_base, scope)
            ih, il = self.slice_bounds(ib, inner_hi, inner_lo, base)
            h, lo_ = il + h, il + lo_
            base, b = inner_base, ib
        w = h - lo_ + 1
        m = ((1 << w) - 1) << lo_
        self.check_lvalue(norm_expr(base), scope)
        return (f"{b.code} = ({b.code} & {~m & ((1 << bit_width(b.type)) - 1):#x}) | "
                f"((({value_code}) << {lo_}) & {m:#x})", w)

    def store(self: Compiler, target_node: Any, value_code: str, scope: Scope) -> str:
        """Python code storing an already-checked value into an lvalue (slices included)."""
        target_node = norm_expr(target_node)
        if target_node.data == "slice":
            return self.slice_store(target_node, value_code, scope)[0]
        return f"{self.expr(target_node, scope).code} = {value_code}"

    def assign(self: Compiler, lhs: Tree, rhs: Any, scope: Scope, node: Any) -> None:
        g = self.gen
        if lhs.data == "slice":
            _code, w = self.slice_store(lhs, "0", scope)
            v = self.coerce(self.expr(rhs, scope), BitT(w), rhs, "assignment")
            g.emit(self.slice_store(lhs, v.code, scope)[0])
            return
        target = self.expr(lhs, scope)
        self.check_lvalue(lhs, scope)
        if isinstance(target.type, HeaderT | StructT) and self.is_struct_literal(rhs):
            self.assign_list(target.code, target.type, rhs, scope, source_text(lhs))
            return
        if isinstance(target.type, HeaderT | StructT | HeaderUnionT | StackT):
            src = self.expr(rhs, scope)
            self.check_same_type(src, target.type, node, f"cannot assign {src.type.show()} to "
                                 f"{target.type.show()}", "assignment")
            copy = "copy_value" if isinstance(target.type, StackT) else "copy_header"
            g.emit(f"{copy}({target.code}, {src.code})")
            off = self.union_siblings_off(lhs, scope)
            if off:
                g.emit(f"if {target.code}._v:{off[1:]}")
            return
        v = self.coerce(self.expr(rhs, scope), target.type, rhs, "assignment",
                        what=source_text(lhs))
        g.emit(f"{target.code} = {v.code}")

    def assign_list(self: Compiler, target: str, t: HeaderT | StructT, rhs: Any, scope: Scope,
                    what: str) -> None:
        """`x = {a, b, ...}` for a header or struct: field by field, in declaration order (a
        header becomes valid, as P4_16's "Structure-valued expressions" and p4c make it)."""
        values = self.literal_fields(t, rhs)
        for f, value in zip(t.fields, values, strict=True):
            if isinstance(f.type, HeaderT | StructT) and self.is_struct_literal(value):
                self.assign_list(f"{target}.f_{f.name}", f.type, value, scope,
                                 f"{what}.{f.name}")
                continue
            if isinstance(f.type, StructLikeT | StackT):
                src = self.expr(value, scope)
                self.check_same_type(src, f.type, value, f"cannot use {src.type.show()} as "
                                     f"{f.type.show()} for {what}.{f.name}", "assignment")
                self.gen.emit(f"copy_value({target}.f_{f.name}, {src.code})")
                continue
            v = self.coerce(self.expr(value, scope), f.type, value, "assignment",
                            what=f"{what}.{f.name}")
            self.gen.emit(f"{target}.f_{f.name} = {v.code}")
        if isinstance(t, HeaderT):
            self.gen.emit(f"{target}._v = True")

    @staticmethod
    def is_struct_literal(node: Any) -> bool:
        """`{a, b}` or `{x = a, y = b}`: a value for a header or struct."""
        return isinstance(node, Tree) and norm_expr(node).data in ("list_expr", "struct_expr")

    def struct_value(self: Compiler, t: HeaderT | StructT, node: Any, scope: Scope) -> str:
        """A temporary holding the header or struct a `{...}` expression describes (emitted
        before the statement that uses it)."""
        tmp = self.gen.tmp("lit")
        self.gen.emit(f"{tmp} = {self.new_value(t)}")
        self.assign_list(tmp, t, node, scope, t.show())
        return tmp

    def initialize(self: Compiler, target: str, t: P4Type, init: Any, scope: Scope) -> None:
        """A variable's initializer. Headers, structs and stacks get their own value (a copy,
        never the initializer's storage: P4 variables have value semantics), also from a list
        expression `{...}`."""
        g = self.gen
        if isinstance(t, HeaderT | StructT) and self.is_struct_literal(init):
            g.emit(f"{target} = {self.new_value(t)}")
            self.assign_list(target, t, init, scope, "the initializer")
            return
        v = self.expr(init, scope)
        if isinstance(t, StructLikeT | StackT):
            self.check_same_type(v, t, init, f"cannot initialize {t.show()} with "
                                 f"{v.type.show()}", "initializer")
            g.emit(f"{target} = copy_of({v.code})")
            return
        v = self.coerce(v, t, init, "initializer")
        g.emit(f"{target} = {v.code}")

    def union_stack_next(self: Compiler, target: Any,
                         scope: Scope) -> tuple[str, HeaderUnionT] | None:
        """For `us.next.x` (a member of the next element of a header-union stack): the stack's
        code and the union type; None otherwise."""
        if target.data != "member":
            return None
        base = norm_expr(kids(target)[0])
        if base.data != "member" or ident(kids(base)[1]) != "next":
            return None
        stack = self.expr(kids(base)[0], scope)
        if not isinstance(stack.type, StackT) or not isinstance(stack.type.elem, HeaderUnionT):
            return None
        return stack.code, stack.type.elem

    def union_siblings_off(self: Compiler, member_node: Any, scope: Scope) -> str:
        """`; other._v = False` for the other members when `member_node` is a header inside a
        header_union (making one member valid invalidates the rest); empty otherwise."""
        member_node = norm_expr(member_node)
        if member_node.data != "member":
            return ""
        base_node, mnode = kids(member_node)
        base = self.expr(base_node, scope)
        if not isinstance(base.type, HeaderUnionT):
            return ""
        chosen = ident(mnode)
        return "".join(f"; {base.code}.f_{f.name}._v = False"
                       for f in base.type.fields if f.name != chosen)

    def coerce(self: Compiler, v: Val, t: P4Type, node: Any, construct: str, what: str = "") -> Val:
        """`v` where `t` is expected: checked by `checker.coerce_type`; an untyped literal
        adapts (its value masked to the width), a serializable enum becomes its type."""
        typed = self.coerce_type(Typed(v.type, v.const), t, node, construct, what)
        if typed.type == v.type or isinstance(t, TypeParamT):
            return v
        if isinstance(v.type, InfIntT) and isinstance(t, BitT):
            mask = (1 << t.width) - 1
            code = repr(typed.const) if typed.const is not None else f"(({v.code}) & {mask:#x})"
            return Val(code, t, typed.const)
        return Val(v.code, typed.type, v.const)
