# mypy: disable-error-code="misc"
# (each part is a mixin of `Compiler`; its methods say so with `self: Compiler`,
# which mypy reports under `misc` because the host class is not a protocol)
"""Calls of functions and actions, and P4_16's calling convention.

P4_16 ("Calling convention") copies arguments in at the call and copies `out`/`inout` ones back
at return, in order. Python passes references, so this module lays each call out explicitly
(`BoundArgs`): copies of headers and structs before the call, scalars returned by the callee,
and the copy-back after it. Every call site (a statement, inside an expression, a direct action
call) goes through it; the extern calls it meets are handed to `externs`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from lark import Tree

from p4sim.compiler.checker_rules import FIELD_LIST_CALLS
from p4sim.compiler.pysource import Gen
from p4sim.compiler.symbols import BoundArgs, Scope, Sym, Val
from p4sim.errors import (
    UnsupportedConstructError,
)
from p4sim.p4types import (
    BoolT,
    HeaderT,
    HeaderUnionT,
    P4Type,
    StackT,
    StructLikeT,
    StructT,
    TypeParamT,
    VoidT,
)
from p4sim.tree import ident, kids, norm_expr, py

if TYPE_CHECKING:
    from p4sim.compiler.driver import Compiler


class Calls:
    """Calls and the calling convention (a part of `Compiler`)."""

    def call(self: Compiler, callee: Tree, args_node: Any, scope: Scope, node: Any, statement: bool
             ) -> Val | None:
        callee = norm_expr(callee)
        args = [a for a in kids(args_node) if a is not None] if args_node is not None else []
        if callee.data == "member":
            base_node, m, sym = self.method_target(callee, scope, node)
            if sym is not None:
                if sym.kind == "table":
                    return self.table_apply(sym, m, args, scope, node)
                if sym.kind == "extern":
                    return self.extern_method(sym, m, args, scope, node, statement)
                if sym.kind == "control_inst":
                    return self.control_apply(sym, m, args, scope, node)
                if sym.kind == "parser_inst":
                    return self.parser_apply(sym, m, args, scope, node)
                if sym.kind in ("packet_in", "packet_out"):
                    return self.packet_method(sym.kind, m, args, scope, node)
            b = self.expr(base_node, scope)
            if isinstance(b.type, HeaderUnionT) and m == "isValid":
                self.check_args(args, {0}, node, m)
                return Val("(" + " or ".join(f"{b.code}.f_{f.name}._v" for f in b.type.fields)
                           + ")", BoolT())
            if isinstance(b.type, HeaderT):
                self.check_args(args, {0}, node, m)
                if m == "isValid":
                    return Val(f"{b.code}._v", BoolT())
                if m == "setValid":
                    self.check_lvalue(base_node, scope)
                    return Val(f"{b.code}._v = True{self.union_siblings_off(base_node, scope)}",
                               VoidT())
                if m == "setInvalid":
                    self.check_lvalue(base_node, scope)
                    return Val(f"{b.code}._v = False", VoidT())
            if isinstance(b.type, StackT) and m in ("push_front", "pop_front"):
                self.check_lvalue(base_node, scope)
                self.check_args(args, {1}, node, m)
                n = self.const_eval(args[0])
                return Val(f"{m}({b.code}, {n})", VoidT())
            raise self.no_method(b.type, callee)
        name, sym = self.function_target(callee, scope, node)
        if sym is not None and sym.kind == "action":
            return self.direct_action_call(sym, args, scope, node)
        if sym is not None and sym.kind == "function":
            return self.function_call(name, sym, args, scope, node, statement)
        if name in FIELD_LIST_CALLS:
            # the deprecated field-list forms run when the list is empty (`resubmit({})`,
            # `clone3(t, s, {})`): no metadata preserved, which is
            # `resubmit_preserving_field_list` of a list with no fields and `clone(t, s)`
            # (p4c-bm2-ss gives them an empty "field_lists" entry)
            self.check_field_list_call(name, args, node)
            if name == "clone3":
                return self.extern_function("clone", args[:2], scope, node)
            return Val(f"P.{name} = -1  # a field list without fields", VoidT())
        self.check_extern_function(name, callee)
        self.check_args(args, self.extern_funcs[name], node, name)
        self.check_signature(name, self.extern_sigs.get(name, []), args, scope, {})
        return self.extern_function(name, args, scope, node)

    def compile_function(self: Compiler, name: str, sym: Sym) -> tuple[str, P4Type, list[Any]]:
        """A P4 function as a module-level Python function, compiled on its first call.

        Scalar out/inout parameters come back with the result: `return (value, out1, ...)`;
        headers and structs are passed by reference (see docs/p4sim.md)."""
        if sym.code:
            return sym.code, sym.type, sym.value  # type: ignore[return-value]
        ann, proto, body = kids(sym.info)
        ret_type = self.resolve_type(kids(proto)[0])
        plist = self.param_types(kids(proto)[3])
        pyname = f"fn_{py(name)}"
        fscope = Scope(self, None, {})
        fscope.pyparams = []
        params = []
        outs: list[str] = []
        for pname, direction, ptype in plist:
            code = f"fa_{py(pname)}"
            fscope.names[pname] = Sym("var", ptype, code,
                                      info="in" if direction == "in" else None)
            params.append(code)
            scalar = not isinstance(ptype, StructLikeT | StackT)
            if direction in ("out", "inout") and scalar:
                outs.append(code)
        sym.code, sym.type, sym.value = pyname, ret_type, plist  # type: ignore[assignment]
        saved = (self.gen, self.function_frame)
        self.gen = Gen()
        self.gen.counter = saved[0].counter + 1000
        self.function_frame = (ret_type, outs, True)
        saved_in_function, self.in_function = self.in_function, True
        saved_loops, self.loops = self.loops, []
        g = self.gen
        g.emit(f"def {pyname}(P{''.join(', ' + p for p in params)}):")
        g.depth += 1
        g.emit("L = None")
        self.block(body, fscope, ctx="function")
        self.in_function, self.loops = saved_in_function, saved_loops
        if outs:
            g.emit("return (None" + "".join(f", {o}" for o in outs) + ",)")
        else:
            g.emit("return None")
        g.depth -= 1
        function_lines = g.lines
        self.gen, self.function_frame = saved
        # functions go before the code being generated (Python resolves names at call time,
        # so the position only has to be at module level)
        self.gen.lines[0:0] = function_lines
        return pyname, ret_type, plist

    def function_call(self: Compiler, name: str, sym: Sym, args: list[Any], scope: Scope, node: Any,
                      statement: bool) -> Val:
        """A call of a program-level function. A function reaches nothing of the caller's but its
        arguments, so headers and structs are passed in place unless two arguments overlap
        (then copied in and out, P4_16 "Calling convention")."""
        pyname, ret_type, plist = self.compile_function(name, sym)
        self.check_args(args, {len(plist)}, node, f"function {name}")
        args = self.order_arguments(args, plist, node, f"function {name}")
        copy = self.arguments_overlap(args, plist, scope)
        bound = self.bind_arguments(f"function {name}", args, plist, scope, copy)
        call = f"{pyname}(P{''.join(', ' + c for c in bound.codes)})"
        if not bound.copy_out:
            return Val(call, ret_type)
        r = self.gen.tmp("fr")
        if not statement:
            return Val(self.call_in_expression(name, call, bound, r, scope, node), ret_type)
        return Val("\n".join(bound.pre + [f"{r} = {call}"] + self.copy_out_lines(bound, r, 1,
                                                                              scope)), VoidT())

    def call_in_expression(self: Compiler, name: str, call: str, bound: BoundArgs, r: str,
                           scope: Scope, node: Any) -> str:
        """A function call with scalar out/inout arguments inside an expression, as one Python
        expression evaluated in place (so `c ? f(x) : 0` and left-to-right order hold): the
        call, then each copy-out in parameter order (`name := value` for a Python local,
        `setattr` for a field), then the returned value."""
        parts = [f"{r} := {call}"]
        k = 1
        for kind, target, _tmp in bound.copy_out:
            if kind == "skip":
                k += 1
                continue
            code = self.expr(target, scope).code if kind == "scalar" else ""
            attr = re.fullmatch(r"(.+)\.(\w+)", code)
            if kind != "scalar" or norm_expr(target).data == "slice" or not (
                    attr or re.fullmatch(r"[A-Za-z_]\w*", code)):
                raise self.fail(UnsupportedConstructError, node,
                                f"function {name} inside an expression with this out/inout "
                                "argument (a slice, or overlapping header arguments): call it as "
                                "a statement", "function call")
            parts.append(f"setattr({attr.group(1)}, {attr.group(2)!r}, {r}[{k}])" if attr
                         else f"({code} := {r}[{k}])")
            k += 1
        return f"(({parts[0]}), {', '.join(parts[1:])}, {r}[0])[-1]"

    def direct_action_call(self: Compiler, sym: Sym, args: list[Any], scope: Scope,
                           node: Any) -> Val:
        """A direct action call (all its parameters bound here)."""
        decl, full, anns = sym.info
        self.model.directly_called.add(full)  # p4c binds (removes) all its parameters
        plist = self.param_types(kids(decl)[2])
        aname = ident(kids(decl)[1])
        self.check_args(args, {len(plist)}, node, f"action {aname}")
        args = self.order_arguments(args, plist, node, f"action {aname}")
        return Val("\n".join(self.action_call_lines(sym, args, plist, scope, node, "")), VoidT())

    def action_call_lines(self: Compiler, sym: Sym, args: list[Any],
                          plist: list[tuple[str, str, P4Type]],
                          scope: Scope, node: Any, extra: str) -> list[str]:
        """Statements calling an action with `args` for its first parameters (`extra` passes
        the rest: a table's action data). An action also sees its control's parameters and
        variables, so header and struct arguments are always copied in (and out, for
        out/inout), as P4_16's "Calling convention" says: a write to `hdr` inside the action is
        overwritten by the copy-out of an inout argument bound to it."""
        decl, full, anns = sym.info
        aname = ident(kids(decl)[1])
        bound = self.bind_arguments(f"action {aname}", args, plist, scope, copy=True)
        fn = self.check_action_callable(scope, aname, node)
        self.used_actions.add(full)
        cparams = ", ".join(scope.find_pyparams())
        call = f"{fn}(P, {cparams}, L{''.join(', ' + v for v in bound.codes)}{extra})"
        if not any(d in ("out", "inout") for _n, d, _t in plist):
            return bound.pre + [call]
        r = self.gen.tmp("ar")
        scalars = sum(1 for kind, *_ in bound.copy_out if kind in ("scalar", "skip"))
        return (bound.pre + [f"{r} = {call}"] + self.copy_out_lines(bound, r, 0, scope)
                + [f"if {r}[{scalars}]: raise ExitSignal()"])

    def bind_arguments(self: Compiler, what: str, args: list[Any],
                       plist: list[tuple[str, str, P4Type]], scope: Scope, copy: bool) -> BoundArgs:
        """Type-check call arguments and lay out the copy-in: scalars are passed by value (out
        ones as 0) and come back in the callee's result; headers, structs and stacks are passed
        in place (an `out` one made invalid first) or, when `copy`, as copies that
        `copy_out_lines` writes back."""
        bound = BoundArgs()
        for a, (pname, d, pt) in zip(args, plist, strict=True):
            if isinstance(a, Tree) and a.data == "dontcare_arg":
                self.dont_care_argument(a, pname, d, pt, bound, what)
                continue
            if isinstance(pt, HeaderT | StructT) and d in ("in", "") and self.is_struct_literal(a):
                bound.codes.append(self.struct_value(pt, a, scope))
                continue
            v = self.expr(a, scope)
            self.check_argument(what, a, v, pname, d, pt, scope)
            if isinstance(pt, StructLikeT | StackT):
                if not copy:
                    bound.codes.append(f"out_arg({v.code})" if d == "out" else v.code)
                elif d == "in":
                    bound.codes.append(f"copy_of({v.code})")
                else:
                    ref, tmp = self.gen.tmp("ref"), self.gen.tmp("arg")
                    bound.pre.append(f"{ref} = {v.code}")
                    bound.pre.append(f"{tmp} = copy_of({ref})" if d == "inout"
                                     else f"{tmp} = {self.new_value(pt)}")
                    bound.codes.append(tmp)
                    bound.copy_out.append(("copy", ref, tmp))
                continue
            if d != "out" and not isinstance(pt, TypeParamT):
                v = self.coerce(v, pt, a, "argument", what=f"{what}'s parameter '{pname}'")
            if d in ("out", "inout"):
                bound.copy_out.append(("scalar", a, ""))
            bound.codes.append("0" if d == "out" else v.code)
        return bound

    def dont_care_argument(self: Compiler, a: Tree, pname: str, d: str, pt: P4Type,
                           bound: BoundArgs, what: str) -> None:
        """`_` for an out or inout parameter (P4_16 "Don't care" arguments, as p4c's
        DontcareArgs pass lowers it): a fresh temporary whose value is thrown away."""
        self.check_dont_care(a, pname, d, what)
        if isinstance(pt, StructLikeT | StackT):
            bound.codes.append(self.new_value(pt))
            return
        bound.codes.append("False" if isinstance(pt, BoolT) else "0")
        bound.copy_out.append(("skip", None, ""))

    def copy_out_lines(self: Compiler, bound: BoundArgs, result: str, first: int, scope: Scope
                       ) -> list[str]:
        """Copy-out, left to right in parameter order: copied headers/structs back into the
        arguments, scalar out/inout values from `result[first]`, `result[first + 1]`, ..."""
        lines = []
        k = first
        for kind, target, tmp in bound.copy_out:
            if kind == "copy":
                lines.append(f"copy_value({target}, {tmp})")
            elif kind == "skip":
                k += 1  # a `_` argument: the value comes back and is dropped
            else:
                lines.append(self.store(target, f"{result}[{k}]", scope))
                k += 1
        return lines

    def arguments_overlap(self: Compiler, args: list[Any], plist: list[tuple[str, str, P4Type]],
                          scope: Scope) -> bool:
        """Whether passing headers and structs in place could differ from copy-in/copy-out:
        two arguments name overlapping storage (`hdr` and `hdr.h`, `a[i]` and `a[0]`), one of
        them is written (out/inout) and one is a header, struct or stack."""
        items = [(self.arg_path(a, scope), d in ("out", "inout"),
                  isinstance(pt, StructLikeT | StackT))
                 for a, (_n, d, pt) in zip(args, plist, strict=True)]
        for i, (p, w, st) in enumerate(items):
            for q, w2, st2 in items[i + 1:]:
                if p is None or q is None or not (w or w2) or not (st or st2):
                    continue
                n = min(len(p), len(q))
                if p[:n] == q[:n]:
                    return True
        return False

    def arg_path(self: Compiler, node: Any, scope: Scope) -> tuple[str, ...] | None:
        """The storage an lvalue argument names, as a path from its variable (a run-time stack
        index or `.next`/`.last` stops at the stack: any element); None for other values."""
        node = norm_expr(node)
        d = node.data
        if d == "name_ref":
            sym = scope.lookup(ident(kids(node)[0]))
            return (sym.code,) if sym is not None and sym.kind == "var" else None
        if d == "type_member":
            sym = scope.lookup(str(kids(node)[0]))
            return (sym.code, ident(kids(node)[1])) if sym is not None and sym.kind == "var" \
                else None
        if d in ("member", "index", "slice"):
            base = self.arg_path(kids(node)[0], scope)
            if base is None or d == "slice":
                return base
            if d == "member":
                m = ident(kids(node)[1])
                return base if m in ("next", "last") else base + (m,)
            i = self.expr(kids(node)[1], scope)
            return base if i.const is None else base + (str(i.const),)
        return None
