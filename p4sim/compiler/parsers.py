# mypy: disable-error-code="misc"
# (each part is a mixin of `Compiler`; its methods say so with `self: Compiler`,
# which mypy reports under `misc` because the host class is not a protocol)
"""Parsers: one Python function per parser state.

A P4 parser is a state machine; each state compiles to a function that runs its statements and
returns the next state's function (`transition select` becomes a chain of keyset tests), so a
packet's parse is a loop over small functions. Sub-parsers (`p.apply(...)` inside a parser) get
their own state functions under a qualified name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lark import Tree

from p4sim.compiler.symbols import Scope, Sym, Val
from p4sim.errors import (
    UnsupportedConstructError,
)
from p4sim.p4types import ExternT, P4Type, StackT, StructLikeT, VoidT
from p4sim.tree import ident, kids, py

if TYPE_CHECKING:
    from p4sim.compiler.driver import Compiler


class Parsers:
    """Parsers and their states (a part of `Compiler`)."""

    def compile_parser(self: Compiler, decl: Tree) -> None:
        """The v1model parser: `parser_<name>(P)` runs the states from `start` and turns a
        ParserFailure into `parser_error` (v1model goes on to ingress)."""
        params = kids(decl)[2]
        plist = self.param_types(params)
        self.check_v1model_parser(params, plist)
        self.blocks["parse"] = self.parser_states(decl, ident(kids(decl)[1]), plist, top=True)

    def parser_states(self: Compiler, decl: Tree, qname: str, plist: list[tuple[str, str, P4Type]],
                      top: bool) -> str:
        """One parser (the top-level one or a sub-parser instance `qname`): a Python function
        per state and a driver returning the driver's name. A sub-parser's driver takes its
        parameters but the packet_in, runs until `accept`, and lets a ParserFailure (or its
        `reject`, ParserReject) end the whole parse, as p4c's inlining of sub-parsers does."""
        ann, name_node, params, ctor, *body = kids(decl)
        self.check_parser_constructor(decl)
        states = [b for b in body if isinstance(b, Tree) and b.data == "parser_state"]
        locals_ = [b for b in body if isinstance(b, Tree) and b.data != "parser_state"]
        scope = Scope(self, None, {})
        codes: list[str] = []
        scalar_outs: list[tuple[str, str]] = []  # (Python parameter, where the value lives)
        for pname, d, ptype in plist:
            if isinstance(ptype, ExternT) and ptype.name == "packet_in":
                scope.names[pname] = Sym("packet_in", ExternT("packet_in"), "P")
                continue
            code = ("hdr", "meta", "sm")[len(codes)] if top else f"p_{py(pname)}"
            if not top and not isinstance(ptype, StructLikeT | StackT) and d in ("out", "inout"):
                # an out/inout scalar of a sub-parser lives in L, so every state sees the
                # value the previous one wrote, and the driver returns it for the copy-out
                scalar_outs.append((code, f"L.o_{py(pname)}"))
                scope.names[pname] = Sym("var", ptype, f"L.o_{py(pname)}")
            else:
                scope.names[pname] = Sym("var", ptype, code, info="in" if d == "in" else None)
            codes.append(code)
        args = "".join(c + ", " for c in codes)
        state_names: dict[str, str] = {}
        for st in states:
            sname = ident(kids(st)[1])
            self.check_unique(state_names, sname, st, "state")
            state_names[sname] = f"ps_{py(qname)}_{py(sname)}"
        self.check_start_state(decl, state_names)
        if not top:
            state_names["reject"] = "sub_parser_reject"
        scope.states = state_names
        g = self.gen
        # parser-level locals live in L
        g.emit(f"class PL_{py(qname)}:")
        g.emit("    pass")
        pscope = Scope(self, scope, {})
        init_lines = []
        for loc in locals_:
            if loc.data == "const_decl":
                self.declare_const(loc, pscope.names)
            elif loc.data == "var_decl":
                init_lines.append(self.local_variable(loc, pscope))
            elif loc.data == "instantiation" and self.sub_parser_type(loc) is not None:
                n = ident(kids(loc)[3])
                self.check_unique(pscope.names, n, loc, "instance")
                pscope.names[n] = self.sub_parser_instance(loc, qname)
            else:
                raise self.fail(UnsupportedConstructError, loc,
                                f"{loc.data} in a parser is not supported", loc.data)
        for st in states:
            sann, sname, *stmts = kids(st)
            *body_stmts, trans = stmts  # trans is None: no transition means reject (P4 spec)
            g.emit(f"def {state_names[ident(sname)]}(P, {args}L):")
            g.depth += 1
            g.emit(f"if P.trace is not None: P.trace.append('parser {qname}: state "
                   f"{ident(sname)} at byte ' + str(P.off))")
            sscope = Scope(self, pscope, {})
            for stmt in body_stmts:
                self.statement(stmt, sscope, ctx="parser")
            if trans is None:
                g.emit("return None" if top else "raise ParserReject()")
            else:
                self.transition(trans, sscope)
            g.depth -= 1
        driver = f"parser_{py(qname)}"
        g.emit(f"def {driver}(P{''.join(', ' + c for c in codes) if not top else ''}):")
        g.depth += 1
        g.emit(f"L = PL_{py(qname)}()" if init_lines or scalar_outs
               else "L = None  # no parser-level variables")
        for code, store in scalar_outs:
            g.emit(f"{store} = {code}")
        if top:
            g.emit("hdr = P.hdr; meta = P.meta; sm = P.sm")
        for target, t, vinit, sc in init_lines:
            if vinit is not None:
                self.initialize(target, t, vinit, sc)
            else:
                g.emit(f"{target} = {self.new_value(t)}")
        g.emit(f"st = {state_names['start']}")
        if not top:
            g.emit("while st is not None:")
            g.emit(f"    st = st(P, {args}L)")
            if scalar_outs:  # accepted: the out/inout scalars, in parameter order
                g.emit(f"return ({''.join(store + ', ' for _c, store in scalar_outs)})")
            g.depth -= 1
            return driver
        g.emit("try:")
        g.emit("    while st is not None:")
        g.emit(f"        st = st(P, {args}L)")
        g.emit("except ParserFailure as e:")
        g.emit("    sm.f_parser_error = e.error_code")
        g.emit("    if P.trace is not None: P.trace.append('parser error ' + "
               f"{self.errors!r}[e.error_code])")
        g.emit("except ParserReject:")
        g.emit("    pass  # a sub-parser's reject: parsing ends, parser_error unchanged")
        g.depth -= 1
        return driver

    def sub_parser_type(self: Compiler, loc: Tree) -> str | None:
        """The parser type an instantiation inside a parser names (`Sub() sub;`), if any."""
        tnode = kids(loc)[1]
        tname = str(tnode.children[0]) if tnode.data in ("named_type",
                                                          "specialized_type") else ""
        return tname if tname in self.parsers else None

    def sub_parser_instance(self: Compiler, loc: Tree, qname: str) -> Sym:
        """`Sub() sub;` in a parser: Sub compiled for this instance, called by `sub.apply`."""
        iann, tnode, iargs, iname = kids(loc)
        tname = self.sub_parser_type(loc)
        assert tname is not None
        self.check_sub_parser_instance(iargs, tname)
        sub_q = f"{qname}.{ident(iname)}"
        decl = self.parsers[tname]
        plist = self.param_types(kids(decl)[2])
        driver = self.parser_states(decl, sub_q, plist, top=False)
        return Sym("parser_inst", info=(tname, plist, driver))

    def parser_apply(self: Compiler, sym: Sym, m: str, args: list[Any], scope: Scope,
                     node: Any) -> Val:
        """`sub.apply(pkt, ...)` in a parser state: the sub-parser runs on the same packet and
        cursor. Arguments follow the calling convention (in place unless two overlap; then
        copied in, and copied out when the sub-parser accepts)."""
        tname, plist, driver = sym.info
        args = self.check_block_apply("parser", m, args, plist, tname, node)
        rest_args, rest_params = [], []
        for a, p in zip(args, plist, strict=True):
            if isinstance(p[2], ExternT) and p[2].name == "packet_in":
                self.check_packet_in_argument(a, p[0], tname, scope)
                continue
            rest_args.append(a)
            rest_params.append(p)
        copy = self.arguments_overlap(rest_args, rest_params, scope)
        bound = self.bind_arguments(f"{tname}.apply", rest_args, rest_params, scope, copy)
        call = f"{driver}(P{''.join(', ' + c for c in bound.codes)})"
        if any(kind in ("scalar", "skip") for kind, *_ in bound.copy_out):
            r = self.gen.tmp("pr")
            return Val("\n".join(bound.pre + [f"{r} = {call}"]
                                 + self.copy_out_lines(bound, r, 0, scope)), VoidT())
        return Val("\n".join(bound.pre + [call] + self.copy_out_lines(bound, "", 0, scope)),
                   VoidT())

    def transition(self: Compiler, t: Tree, scope: Scope) -> None:
        g = self.gen
        if t.data == "transition":
            g.emit(f"return {self.state_target(kids(t)[0], scope)}")
            return
        sel = kids(t)[0]
        exprs, *cases = kids(sel)
        keys = [self.expr(e, scope) for e in kids(exprs)]
        knames = []
        for k in keys:
            kn = g.tmp("k")
            g.emit(f"{kn} = {k.code}")
            knames.append(kn)
        has_default = False
        for case in cases:
            ks, target = kids(case)
            tgt = self.state_target(target, scope)
            sets = kids(ks) if ks.data == "tuple_keyset" else [kids(ks)[0]]
            self.check_select_case(ks, sets, len(keys))
            conds = []
            for i, s in enumerate(sets):
                if s.data in ("ks_default", "ks_dontcare"):
                    continue
                conds.append(self.keyset_cond(s, knames[i], keys[i].type, scope))
            if not conds:
                has_default = True
                g.emit(f"return {tgt}")
                break
            g.emit(f"if {' and '.join(conds)}: return {tgt}")
        if not has_default:
            g.emit(f"raise ParserFailure({self.error_code('NoMatch')})")

    def keyset_cond(self: Compiler, s: Tree, key: str, ktype: P4Type, scope: Scope) -> str:
        if s.data == "ks_mask":
            v, m = (self.coerce(self.expr(x, scope), ktype, x, "select") for x in kids(s))
            return f"({key} & {m.code}) == ({v.code} & {m.code})"
        if s.data == "ks_range":
            lo, hi = (self.coerce(self.expr(x, scope), ktype, x, "select") for x in kids(s))
            return f"{lo.code} <= {key} <= {hi.code}"
        v = self.coerce(self.expr(kids(s)[0], scope), ktype, s, "select")
        return f"{key} == {v.code}"

    def state_target(self: Compiler, node: Any, scope: Scope) -> str:
        name = ident(node)
        states = scope.find_states()
        self.check_state(node, states)
        if name == "accept":
            return "None"
        if name == "reject":
            return states.get("reject", "None")  # a sub-parser's reject ends the whole parse
        return states[name]
