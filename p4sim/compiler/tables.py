# mypy: disable-error-code="misc"
# (each part is a mixin of `Compiler`; its methods say so with `self: Compiler`,
# which mypy reports under `misc` because the host class is not a protocol)
"""Match-action tables: the P4Info model and the generated lookup.

A table declaration becomes a `TableModel` for the control plane (keys, actions, sizes, const
entries, default action, ids from annotations) and a generated `tbl_<name>` function that looks
up the runtime `TableState` (bound as `_T_<name>`) and calls the chosen action with its data.
`t.apply()` is lowered here; `.hit`/`.miss` are read in `expressions`, `switch (...action_run)`
in `statements`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lark import Tree

from p4sim.compiler.declarations import annotation_int
from p4sim.compiler.symbols import Scope, Sym, Val
from p4sim.errors import (
    UnsupportedConstructError,
)
from p4sim.model import KeyModel, TableModel
from p4sim.p4types import BitT, BoolT, P4Type, VoidT
from p4sim.runtime import FieldMatch
from p4sim.tree import ident, kids, py, source_text

if TYPE_CHECKING:
    from p4sim.compiler.driver import Compiler


class Tables:
    """Tables (a part of `Compiler`)."""

    def compile_table(self: Compiler, decl: Tree, scope: Scope, qname: str, cparams: str) -> str:
        ann, name_node, *props = kids(decl)
        anns = self.annotations(ann)
        tname = ident(name_node)
        full = self.qualify(qname, tname, anns)
        pyname = py(full)
        keys: list[KeyModel] = []
        key_codes: list[str] = []
        actions: list[tuple[str, str, tuple[tuple[str, tuple[object, ...]], ...]]] = []
        default_call: tuple[str, tuple[int, ...]] | None = None
        default_const = False
        size = 1024
        entries_nodes: list[Tree] = []
        const_entries = False
        direct_counter = None
        direct_meter = None
        # actions listed with their directional arguments bound (`actions = { a(hdr.x); }`)
        bound_actions: dict[str, tuple[Sym, list[Any], list[tuple[str, str, P4Type]], Any]] = {}
        for p in props:
            d = p.data
            if d == "key_prop":
                for i, ke in enumerate(kids(p), 1):
                    expr_node, kind_node, kann = kids(ke)
                    v = self.expr(expr_node, scope)
                    width = self.check_table_key(v.type, expr_node, kind_node)
                    kind = ident(kind_node)
                    kanns = self.annotations(kann)
                    nm = self.ann_get(kanns, "name")
                    name = str(nm[0]) if nm else source_text(expr_node)
                    keys.append(KeyModel(field_id=i, name=name, bitwidth=width, match_kind=kind))
                    key_codes.append(f"int({v.code})" if isinstance(v.type, BoolT) else v.code)
            elif d == "actions_prop":
                for ar in kids(p):
                    aann, aname, _aargs = kids(ar)
                    an = ident(aname)
                    sym, given, dparams = self.check_listed_action(ar, scope,
                                                                   [a[0] for a in actions])
                    if given:
                        bound_actions[an] = (sym, given, dparams, ar)
                    actions.append((an, sym.info[1], self.annotations(aann)))
                    self.used_actions.add(sym.info[1])
            elif d in ("simple_prop", "const_simple_prop"):
                pann, pname, pexpr = kids(p)
                pn = ident(pname)
                if pn == "default_action":
                    default_call = self.action_call(pexpr, scope, actions)
                    default_const = d == "const_simple_prop"
                elif pn == "size":
                    size = self.const_eval(pexpr)
                elif pn == "counters":
                    direct_counter = self.check_direct_extern(pexpr, scope, "direct_counter", pn)
                elif pn == "meters":
                    direct_meter = self.check_direct_extern(pexpr, scope, "direct_meter", pn)
                elif pn == "support_timeout":
                    self.check_support_timeout(p, pexpr, scope)
                else:
                    raise self.fail(UnsupportedConstructError, p,
                                    f"table property '{pn}' is not supported", "table property")
            elif d in ("entries_prop", "const_entries_prop"):
                if d == "entries_prop":
                    raise self.fail(UnsupportedConstructError, p,
                                    "non-const entries are not supported", "table entries")
                const_entries = True
                entries_nodes = [e for e in kids(p)[1:]]
        if not actions:
            actions = []  # p4c accepts a table without actions: only NoAction, by default
        default_explicit = default_call is not None
        if default_call is None:
            self.check_no_action(decl, scope, [a[0] for a in actions])
            default_call = ("NoAction", ())
            na = scope.lookup("NoAction")
            assert na is not None
            if all(a[0] != "NoAction" for a in actions):
                actions.append(("NoAction", na.info[1], (("defaultonly", ()), ("hidden", ()))))
                self.used_actions.add(na.info[1])
        entries = []
        # p4c's BMv2 back end gives const entry i priority `@priority(n)` or else i + 1, and in
        # BMv2 the smaller number wins (backends/bmv2/common/control.cpp, entry "priority";
        # p4c's table-entries-priority-bmv2.p4). p4sim's TableState lets the larger number win
        # (as P4Runtime), so the BMv2 number b becomes top - b.
        bmv2_priorities: list[int] = []
        for idx, en in enumerate(entries_nodes):
            value = self.check_entry_priority(en)
            bmv2_priorities.append(value if value is not None else idx + 1)
        top = max(bmv2_priorities, default=0) + 1
        for idx, en in enumerate(entries_nodes):
            _, ks, ename, eargs, _ = kids(en)
            sets = kids(ks) if ks.data == "tuple_keyset" else [kids(ks)[0]]
            self.check_entry_keys(ks, sets, keys)
            matches = []
            for k, s in zip(keys, sets, strict=True):
                m = self.entry_match(k, s, scope)
                if m is not None:
                    matches.append(m)
            call = self.action_call_parts(ename, eargs, scope, actions, en)
            priority = top - bmv2_priorities[idx]
            if all(k.match_kind in ("exact", "lpm") for k in keys):
                priority = 0
            entries.append((tuple(matches), priority, call))
        g = self.gen
        self.model.tables.append(TableModel(
            name=full, keys=tuple(keys), actions=tuple((q, a) for _, q, a in actions),
            size=size, default_action=(scope.lookup(default_call[0]).info[1],  # type: ignore[union-attr]
                                       default_call[1]),
            default_is_const=default_const, default_explicit=default_explicit,
            is_const=const_entries, const_entries=tuple(
                (m, p, (scope.lookup(c[0]).info[1], c[1]))  # type: ignore[union-attr]
                for m, p, c in entries),
            direct_counter=direct_counter, direct_meter=direct_meter, annotations=anns,
            explicit_id=annotation_int(self.ann_get(anns, "id"))))
        fn = f"tbl_{pyname}"
        compiled = dict(scope.compiled_actions or {})
        for an, (sym, given, dparams, ar) in bound_actions.items():
            wrapper = f"tw_{pyname}__{py(an)}"
            lines = self.action_call_lines(sym, given, dparams, scope, ar, ", *cp")
            g.emit(f"def {wrapper}(P, {cparams}, L, *cp):  # {an} with its bound arguments")
            for line in lines:
                g.emit("    " + line)
            compiled[an] = wrapper
        amap = ", ".join(f"_A_{py(q)}: {compiled[a]}" for a, q, _ in actions)
        g.emit(f"_AM_{pyname} = {{}}  # filled at instantiate: action id -> function")
        g.emit(f"def _bind_{pyname}():")
        g.emit(f"    _AM_{pyname}.update({{{amap}}})")
        g.emit(f"def {fn}(P, {cparams}, L):")
        g.depth += 1
        keytuple = "(" + "".join(f"{k}, " for k in key_codes) + ")"
        g.emit(f"e = _T_{pyname}.lookup({keytuple})")
        g.emit("if e is None:")
        g.emit(f"    a = _T_{pyname}.default_action; hit = False")
        g.emit("else:")
        g.emit("    a = e.action; hit = True")
        if direct_counter:
            g.emit(f"    _DC_{py(direct_counter)}.count(e.key, len(P.data))")
        if direct_meter:
            # BMv2 executes a table's direct meter on every hit; read() returns that color
            g.emit(f"    P.meter_color = _DM_{py(direct_meter)}.execute(e.key, len(P.data))")
        g.emit(f"if P.trace is not None: P.trace.append('table {full}: ' + "
               f"('hit' if hit else 'miss') + ' -> ' + _AN[a.action_id])")
        g.emit(f"_AM_{pyname}[a.action_id](P, {cparams}, L, *a.args)")
        g.emit("return hit, a.action_id")
        g.depth -= 1
        return fn

    def action_call(self: Compiler, node: Tree, scope: Scope, actions: list[Any]
                    ) -> tuple[str, tuple[int, ...]]:
        if node.data == "call":
            callee, args = kids(node)
        else:
            callee, args = node, None
        return self.action_call_parts(kids(callee)[0] if callee.data == "name_ref" else callee,
                                      args, scope, actions, node)

    def action_call_parts(self: Compiler, name_node: Any, args: Any, scope: Scope,
                          actions: list[Any], node: Any) -> tuple[str, tuple[int, ...]]:
        an = ident(name_node)
        self.check_table_action(an, node, [a[0] for a in actions])
        sym = scope.lookup(an)
        assert sym is not None
        decl = sym.info[0]
        plist = self.param_types(kids(decl)[2])
        arglist = [a for a in kids(args) if a is not None] if args is not None else []
        ndir = sum(1 for _n, d, _t in plist if d)
        if ndir and len(arglist) == len(plist):
            arglist = arglist[ndir:]  # the directional ones are bound by the actions list
        plist = plist[ndir:]
        self.check_action_data(an, node, plist, arglist)
        values = []
        for a, (_pn, _d, pt) in zip(arglist, plist, strict=True):
            v = self.coerce(self.expr(a, scope), pt, a, "action argument")
            values.append(self.check_constant(v, a, "action argument must be constant",
                                              "action"))
        return an, tuple(values)

    def entry_match(self: Compiler, k: KeyModel, s: Tree, scope: Scope) -> FieldMatch | None:
        t = BitT(k.bitwidth)
        if s.data in ("ks_dontcare", "ks_default"):
            return None
        if s.data == "ks_mask":
            v, m = (self.coerce(self.expr(x, scope), t, x, "entry").const for x in kids(s))
            assert v is not None and m is not None
            kind = "ternary" if k.match_kind != "lpm" else "lpm"
            if kind == "lpm":
                plen = bin(m).count("1")
                return FieldMatch(field_id=k.field_id, kind="lpm", value=v & m, prefix_len=plen)
            return FieldMatch(field_id=k.field_id, kind="ternary", value=v & m, mask=m)
        if s.data == "ks_range":
            lo, hi = (self.coerce(self.expr(x, scope), t, x, "entry").const for x in kids(s))
            return FieldMatch(field_id=k.field_id, kind="range", value=lo or 0, high=hi)
        v = self.check_constant(self.coerce(self.expr(kids(s)[0], scope), t, s, "entry"), s,
                                "entry key must be constant", "table entries")
        full = (1 << k.bitwidth) - 1
        if k.match_kind == "ternary":
            return FieldMatch(field_id=k.field_id, kind="ternary", value=v, mask=full)
        if k.match_kind == "lpm":
            return FieldMatch(field_id=k.field_id, kind="lpm", value=v, prefix_len=k.bitwidth)
        if k.match_kind == "range":
            return FieldMatch(field_id=k.field_id, kind="range", value=v, high=v)
        return FieldMatch(field_id=k.field_id, kind=k.match_kind, value=v)  # type: ignore[arg-type]

    def table_apply(self: Compiler, sym: Sym, m: str, args: list[Any], scope: Scope,
                    node: Any) -> Val:
        model = self.check_table_apply(sym, m, args, node)
        self.applied_tables.add(sym.code)
        cparams = ", ".join(scope.find_pyparams())
        v = Val(f"{sym.code}(P, {cparams}, L)", VoidT())
        v.info_table = {a.rsplit(".", 1)[-1]: a for a, _ in model.actions}  # type: ignore[attr-defined]
        for a, _ in model.actions:
            v.info_table.setdefault(a, a)  # type: ignore[attr-defined]
        # local action names as the program spells them
        for n, s in scope.all_actions():
            v.info_table[n] = s.info[1]  # type: ignore[attr-defined]
        return v
