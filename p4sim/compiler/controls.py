# mypy: disable-error-code="misc"
# (each part is a mixin of `Compiler`; its methods say so with `self: Compiler`,
# which mypy reports under `misc` because the host class is not a protocol)
"""Controls and actions: the ingress, egress and other pipeline blocks.

A control becomes one Python function taking the packet and the control's parameters; its local
variables, extern instances, tables and actions are declared in a scope of their own, and
control-plane names are qualified as p4c does (`MyIngress.fwd`). Actions become functions the
tables and direct calls share; `C.apply(...)` of another control calls that control's function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lark import Tree

from p4sim.compiler.declarations import annotation_int
from p4sim.compiler.symbols import Instance, Scope, Sym, Val
from p4sim.errors import UnsupportedConstructError
from p4sim.model import ActionModel
from p4sim.p4types import ExternT, P4Type, StackT, StructLikeT, VoidT, bit_width
from p4sim.tree import ident, kids, norm, py

if TYPE_CHECKING:
    from p4sim.compiler.driver import Compiler


class Controls:
    """Controls and actions (a part of `Compiler`)."""

    def local_variable(self: Compiler, loc: Tree, scope: Scope) -> tuple[str, P4Type, Any, Scope]:
        """Declares a variable local to a control or parser instance (`scope`) and returns its
        initialisation `(target, type, initialiser, scope)` for the instance's constructor."""
        _annotations, tnode, vname, vinit = kids(loc)
        t = self.resolve_type(tnode)
        self.check_instance_type(t, tnode)
        n = ident(vname)
        self.check_unique(scope.names, n, vname, "variable")
        scope.names[n] = Sym("var", t, f"L.v_{py(n)}")
        return f"L.v_{py(n)}", t, vinit, scope

    def compile_control(self: Compiler, decl: Tree, qname: str,
                        ctor_args: dict[str, Sym] | None = None) -> Instance:
        """One control instance `qname`. `ctor_args` binds its control-typed constructor
        parameters (`control C2(...)(ctl_t c)` instantiated as `C2(c1) c2;`) to the instances
        passed; other constructor parameters are refused."""
        ann, name_node, params, ctor, *rest = kids(decl)
        *locals_, apply_block = rest
        plist = self.param_types(params)
        inst = Instance(qname=qname, pyname=f"ctl_{py(qname)}", params=plist)
        scope = Scope(self, None, {})
        self.check_control_constructor(decl, ctor_args or {})
        for cname, _d, _ctype in self.ctor_param_types(ctor):
            scope.names[cname] = (ctor_args or {})[cname]
        pyparams = []
        scalar_outs: list[tuple[str, str]] = []  # (Python parameter, where the value lives)
        for pname, d, ptype in plist:
            code = f"p_{py(pname)}"
            if isinstance(ptype, ExternT) and ptype.name == "packet_out":
                scope.names[pname] = Sym("packet_out", ptype, "P")
                continue
            if not isinstance(ptype, StructLikeT | StackT) and d in ("out", "inout"):
                # an out/inout scalar lives in L (actions and tables share it) and comes back
                # in the control's return tuple
                scalar_outs.append((code, f"L.o_{py(pname)}"))
                scope.names[pname] = Sym("var", ptype, f"L.o_{py(pname)}")
            else:
                scope.names[pname] = Sym("var", ptype, code, info="in" if d == "in" else None)
            pyparams.append(code)
        inst.returns = bool(scalar_outs)
        scope.ctl = inst
        scope.pyparams = pyparams
        g = self.gen
        cscope = Scope(self, scope, {})
        cscope.ctl = inst
        cscope.pyparams = pyparams
        init_lines: list[tuple[str, P4Type, Any, Scope]] = []
        sub_controls: list[tuple[Tree, str]] = []
        for loc in locals_:
            d = loc.data
            if d == "const_decl":
                self.declare_const(loc, cscope.names)
            elif d == "var_decl":
                init_lines.append(self.local_variable(loc, cscope))
            elif d == "action_decl":
                n = ident(kids(loc)[1])
                self.check_unique(cscope.names, n, loc, "action")
                anns = self.annotations(kids(loc)[0])
                cscope.names[n] = Sym("action", info=(loc, self.qualify(qname, n, anns), anns))
            elif d == "table_decl":
                n = ident(kids(loc)[1])
                self.check_unique(cscope.names, n, loc, "table")
                cscope.names[n] = Sym("table", info=loc)
            elif d == "instantiation":
                iann, tnode, args, iname = kids(loc)
                n = ident(iname)
                self.check_unique(cscope.names, n, iname, "instance")
                tname = str(tnode.children[0]) if tnode.data in ("named_type",
                                                                 "specialized_type") else ""
                if tname in self.controls:
                    sub_controls.append((loc, n))
                    cscope.names[n] = Sym("control_inst", info=(tname, f"{qname}.{n}"))
                else:
                    cscope.names[n] = self.instantiate_extern(loc, qname, n, tname, tnode, args,
                                                              cscope)
            elif d == "function_decl":
                raise self.fail(UnsupportedConstructError, loc,
                                "function declaration is not supported", "function declaration")
            else:
                raise self.fail(UnsupportedConstructError, loc, f"{d} is not supported", d)
        # global actions visible from the control (NoAction and program-level actions)
        for an, adecl in self.global_actions.items():
            if an not in cscope.names and an not in scope.names:
                anns = self.annotations(kids(adecl)[0])
                scope.names[an] = Sym("action", info=(adecl, self.qualify("", an, anns), anns))
        sub_controls += self.direct_invocations_in(apply_block, cscope, qname)
        for loc, n in sub_controls:
            tname, sub_q = cscope.names[n].info
            ctor_args = self.control_ctor_args(loc, tname, cscope)
            sub = self.compile_control(self.controls[tname], sub_q, ctor_args)
            cscope.names[n].info = (tname, sub_q, sub)
        # actions and tables are module-level functions
        cparams = ", ".join(pyparams)
        g.emit(f"class CL_{py(qname)}:")
        g.emit("    pass")
        # names first, so an action may call another action declared after it
        compiled_actions: dict[str, str] = {}
        to_compile: list[Sym] = []
        for n, sym in list(cscope.names.items()) + list(scope.names.items()):
            if sym.kind == "action" and n not in compiled_actions:
                compiled_actions[n] = f"act_{py(qname)}__{py(sym.info[1])}"
                to_compile.append(sym)
        cscope.compiled_actions = compiled_actions
        for sym in to_compile:
            self.compile_action(sym, cscope, qname, cparams)
        for sym in list(cscope.names.values()):
            if sym.kind == "table":
                sym.code = self.compile_table(sym.info, cscope, qname, cparams)
        g.emit(f"def {inst.pyname}(P, {cparams}):")
        g.depth += 1
        g.emit(f"L = CL_{py(qname)}()" if init_lines or scalar_outs
               else "L = None  # no control-level variables")
        for code, store in scalar_outs:
            g.emit(f"{store} = {code}")
        for target, t, vinit, sc in init_lines:
            if vinit is not None:
                self.initialize(target, t, vinit, sc)
            else:
                g.emit(f"{target} = {self.new_value(t)}")
        if scalar_outs:
            # like an action with out/inout parameters: return the values and whether `exit`
            # ran, so the caller copies out before exiting
            saved_frame = self.function_frame
            self.action_with_copy_out(apply_block, Scope(self, cscope, {}),
                                      [store for _c, store in scalar_outs])
            self.function_frame = saved_frame
        else:
            # `exit` raises ExitSignal, caught only around the top-level block (by Switch), so
            # an exit inside a nested control or an action ends the whole block as P4 requires.
            self.block(apply_block, Scope(self, cscope, {}), ctx="apply")
            g.emit("pass")
        g.depth -= 1
        return inst

    def ctor_param_types(self: Compiler, ctor: Tree | None) -> list[tuple[str, str, P4Type]]:
        """The parameters of `ctor_params` (`(...)` after a control's parameters), if any."""
        inner = [k for k in kids(ctor) if k is not None] if ctor is not None else []
        return self.param_types(inner[0]) if inner else []

    def control_ctor_args(self: Compiler, loc: Tree, tname: str, cscope: Scope
                          ) -> dict[str, Sym]:
        """`C2(c1) c2;`: C2's constructor parameters bound to the control instances passed
        (declared before, in the same control). P4_16 "Constructor parameters": the callee
        then applies the very instance c1, sharing its state (counters, registers) with every
        other user of c1, as p4c's inlining does. Anything else passed is refused."""
        if loc.data != "instantiation":
            return {}  # a direct invocation `C.apply()` passes no constructor arguments
        given = [a for a in kids(kids(loc)[2]) if a is not None]
        names = [n for n, _d, _t in self.ctor_param_types(kids(self.controls[tname])[3])]
        syms = self.check_control_ctor_args(loc, tname, given, names, cscope)
        return dict(zip(names, syms, strict=True))

    def direct_invocations_in(self: Compiler, apply_block: Tree, cscope: Scope, qname: str
                              ) -> list[tuple[Tree, str]]:
        """`Sub.apply(...)` of a control type without an instance (P4_16 "Direct type
        invocation"): each call site gets its own instance, named as p4c's
        InstantiateDirectCalls names it (`Sub_inst`, then `Sub_inst_0`, ...)."""
        found = []
        for node in apply_block.iter_subtrees_topdown():
            if node.data != "call_statement":
                continue
            callee = norm(kids(node)[0])
            if callee.data != "member" or ident(kids(callee)[1]) != "apply":
                continue
            base = norm(kids(callee)[0])
            tname = ident(kids(base)[0]) if base.data == "name_ref" else ""
            if tname not in self.controls or cscope.lookup(tname) is not None:
                continue
            inst, n = f"{tname}_inst", 0
            while inst in cscope.names:
                inst, n = f"{tname}_inst_{n}", n + 1
            cscope.names[inst] = Sym("control_inst", info=(tname, f"{qname}.{inst}"))
            self.direct_calls[id(node)] = inst
            found.append((node, inst))
        return found

    def qualify(self: Compiler, prefix: str, name: str,
                anns: tuple[tuple[str, tuple[object, ...]], ...]) -> str:
        override = self.ann_get(anns, "name")
        if override:
            n = str(override[0])
            if n.startswith("."):
                return n[1:]
            name = n
        return f"{prefix}.{name}" if prefix else name

    def compile_action(self: Compiler, sym: Sym, scope: Scope, qname: str, cparams: str) -> str:
        decl, full, anns = sym.info
        ann, name_node, params, body = kids(decl)
        plist = self.param_types(params)
        pyname = f"act_{py(qname)}__{py(full)}"
        ascope = Scope(self, scope, {})
        argnames = []
        widths = []
        pinfo = []
        outs: list[str] = []
        writes = any(d in ("out", "inout") for _n, d, _t in plist)
        for pname, d, ptype in plist:
            self.check_unique(ascope.names, pname, params, "parameter")
            if d:
                # directional parameters: bound by the caller (direct calls only); scalar
                # out/inout ones are returned and copied out by the call statement
                code = f"da_{py(pname)}"
                ascope.names[pname] = Sym("var", ptype, code, info="in" if d == "in" else None)
                if d in ("out", "inout") and not isinstance(ptype, StructLikeT | StackT):
                    outs.append(code)
                argnames.append(code)
                continue
            code = f"a_{py(pname)}"
            ascope.names[pname] = Sym("var", ptype, code)
            argnames.append(code)
            widths.append(bit_width(ptype))
            pinfo.append((pname, bit_width(ptype)))
        if full not in self.model.actions:
            self.model.actions[full] = ActionModel(
                name=full, params=tuple(pinfo),
                explicit_id=annotation_int(self.ann_get(anns, "id")), annotations=anns)
        g = self.gen
        g.emit(f"def {pyname}(P, {cparams}, L{''.join(', ' + a for a in argnames)}):")
        g.depth += 1
        saved_frame = self.function_frame
        if writes:
            self.action_with_copy_out(body, ascope, outs)
        else:
            self.function_frame = (VoidT(), outs, False)
            self.block(body, ascope, ctx="action")
            g.emit("pass")
        self.function_frame = saved_frame
        g.depth -= 1
        sym.code = pyname
        return pyname

    def action_with_copy_out(self: Compiler, body: Tree, scope: Scope, outs: list[str]) -> None:
        """The body of an action with out/inout parameters. It returns its scalar out/inout
        values and whether it ran `exit`: the caller copies every out/inout argument back, then
        exits, as p4c's front end lowers `exit` inside an action (P4_16 "Calling convention":
        copy-out happens on every way out of the callee)."""
        g = self.gen
        self.function_frame = (VoidT(), outs + ["False"], False)
        g.emit("try:")
        g.depth += 1
        self.block(body, scope, ctx="function")
        g.emit("pass")
        g.depth -= 1
        g.emit("except ExitSignal:")
        g.emit(f"    return ({''.join(o + ', ' for o in outs)}True,)")
        g.emit(f"return ({''.join(o + ', ' for o in outs)}False,)")

    def control_apply(self: Compiler, sym: Sym, m: str, args: list[Any], scope: Scope,
                      node: Any) -> Val:
        """`c.apply(...)` of a control instance. A control reaches nothing of the caller's but
        its arguments, so they are passed in place unless two overlap; then they are copied in
        and copied back even when the control exits (P4_16 "Calling convention")."""
        tname, sub_q, inst = sym.info
        args = self.check_block_apply("control", m, args, inst.params, tname, node)
        copy = self.arguments_overlap(args, inst.params, scope)
        bound = self.bind_arguments(f"{tname}.apply", args, inst.params, scope, copy)
        call = f"{inst.pyname}(P, {', '.join(bound.codes)})"
        if inst.returns:
            r = self.gen.tmp("cr")
            scalars = sum(1 for kind, *_ in bound.copy_out if kind in ("scalar", "skip"))
            return Val("\n".join(bound.pre + [f"{r} = {call}"]
                                 + self.copy_out_lines(bound, r, 0, scope)
                                 + [f"if {r}[{scalars}]: raise ExitSignal()"]), VoidT())
        if not bound.copy_out:
            return Val("\n".join(bound.pre + [call]), VoidT())
        back = self.copy_out_lines(bound, "", 0, scope)
        return Val("\n".join(bound.pre + ["try:", f"    {call}", "finally:"]
                             + [f"    {line}" for line in back]), VoidT())
