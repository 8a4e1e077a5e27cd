# mypy: disable-error-code="misc"
# (each part is a mixin of `Compiler`; its methods say so with `self: Compiler`,
# which mypy reports under `misc` because the host class is not a protocol)
"""Top-level declarations: what each name in the program is, before any code exists.

`Compiler.run` first walks the program's declarations once, here: header, struct, union, enum,
typedef and error types become `p4sim.p4types` values; constants are folded; extern types and
functions from <core.p4>/<v1model.p4> are recorded with their signatures; parsers, controls and
actions are remembered for later, when `V1Switch(...)` says which ones run. Nothing is generated
yet, so a program whose types do not check fails before any Python is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lark import Tree

from p4sim.compiler.symbols import ExternDecl, Scope, Sym
from p4sim.errors import P4Error, UnsupportedConstructError
from p4sim.p4types import (
    BitT,
    BoolT,
    EnumT,
    ErrorT,
    ExternT,
    FieldT,
    HeaderT,
    HeaderUnionT,
    InfIntT,
    ListT,
    MatchKindT,
    P4Type,
    StackT,
    StringT,
    StructT,
    TypeParamT,
    VarbitT,
    VoidT,
)
from p4sim.tree import ident, kids

if TYPE_CHECKING:
    from p4sim.compiler.driver import Compiler


def annotation_int(values: tuple[object, ...] | None) -> int | None:
    if values and isinstance(values[0], int):
        return values[0]
    return None


class Declarations:
    """Recording declarations and resolving types (a part of `Compiler`)."""

    def declare(self: Compiler, decl: Tree) -> None:
        kind = decl.data
        self.check_declaration(decl)
        if kind == "empty_decl":
            return
        if kind == "function_decl":
            ann, proto, body = kids(decl)
            name = ident(kids(proto)[1])
            self.check_unique(self.globals, name, decl, "function")
            self.globals[name] = Sym("function", info=decl)
            return
        if kind == "header_union_decl":
            ann, name_node, *fields = kids(decl)
            name = ident(name_node)
            self.check_unique(self.types, name, name_node, "type")
            members: list[FieldT] = []
            for f in fields:
                fann, ftype, fname = kids(f)
                t = self.resolve_type(ftype)
                self.check_union_member(ftype, fname, t, members)
                assert isinstance(t, HeaderT)
                members.append(FieldT(ident(fname), t, self.annotations(fann)))
            self.types[name] = HeaderUnionT(name, tuple(members), self.annotations(ann))
            return
        if kind in ("header_decl", "struct_decl"):
            ann, name_node, *fields = kids(decl)
            name = ident(name_node)
            self.check_unique(self.types, name, name_node, "type")
            flist = []
            seen: set[str] = set()
            for f in fields:
                fann, ftype, fname = kids(f)
                n = ident(fname)
                self.check_unique(dict.fromkeys(seen), n, fname, "field")
                seen.add(n)
                t = self.resolve_type(ftype)
                if kind == "header_decl":
                    self.check_header_field(ftype, n, t)
                flist.append(FieldT(n, t, self.annotations(fann)))
            cls = HeaderT if kind == "header_decl" else StructT
            t = cls(name, tuple(flist), self.annotations(ann))
            if isinstance(t, HeaderT):
                self.check_header_layout(decl, t)
                self.header_decls[name] = decl
            self.types[name] = t
            return
        if kind == "typedef_decl":
            ann, tnode, name_node = kids(decl)
            name = ident(name_node)
            self.check_unique(self.types, name, name_node, "type")
            self.types[name] = self.resolve_type(tnode)
            return
        if kind == "enum_decl":
            ann, name_node, names = kids(decl)
            name = ident(name_node)
            self.check_unique(self.types, name, name_node, "type")
            self.types[name] = EnumT(name, tuple(ident(n) for n in kids(names)))
            return
        if kind == "ser_enum_decl":
            ann, bt, name_node, *rest = [c for c in kids(decl) if c is not None]
            name = ident(name_node)
            self.check_unique(self.types, name, name_node, "type")
            under = self.resolve_type(bt)
            assert isinstance(under, BitT)
            member_names: list[str] = []
            values: list[int] = []
            for m in rest:
                mname, mexpr = kids(m)
                member_names.append(ident(mname))
                values.append(self.const_eval(mexpr) & ((1 << under.width) - 1))
            self.types[name] = EnumT(name, tuple(member_names), under, tuple(values))
            return
        if kind == "error_decl":
            for n in kids(kids(decl)[0]):
                self.check_new_error(n)
                self.errors.append(ident(n))
            return
        if kind == "match_kind_decl":
            self.match_kinds.extend(ident(n) for n in kids(kids(decl)[0]))
            return
        if kind == "const_decl":
            self.declare_const(decl, self.globals)
            return
        if kind == "extern_decl":
            ann, tname, tparams, *methods = kids(decl)
            name = str(tname)
            type_params = tuple(
                str(kids(t)[0]) for t in kids(kids(tparams)[0])) if tparams is not None else ()
            ext = ExternDecl(name, {}, set(), type_params)
            for m in methods:
                if m.data == "constructor_proto":
                    _, _, params = kids(m)
                    ext.ctor_arities.add(len([p for p in kids(params) if p is not None]))
                else:
                    _, proto = kids(m)
                    mname, nparams = self.proto_shape(proto)
                    ext.methods.setdefault(mname, set()).add(nparams)
                    if proto.data != "lookahead_proto":
                        ext.signatures.setdefault(mname, []).append(
                            self.param_types(kids(proto)[3]))
            self.externs[name] = ext
            self.types[name] = ExternT(name)
            return
        if kind == "extern_function":
            ann, proto = kids(decl)
            fname, nparams = self.proto_shape(proto)
            self.extern_funcs.setdefault(fname, set()).add(nparams)
            if proto.data != "lookahead_proto":
                self.extern_sigs.setdefault(fname, []).append(self.param_types(kids(proto)[3]))
            return
        if kind == "action_decl":
            name = ident(kids(decl)[1])
            self.check_unique(self.global_actions, name, decl, "action")
            self.global_actions[name] = decl
            return
        if kind == "parser_decl":
            name = ident(kids(decl)[1])
            self.check_unique(self.parsers, name, decl, "parser")
            self.parsers[name] = decl
            self.types.setdefault(name, ExternT(name))
            return
        if kind == "control_decl":
            name = ident(kids(decl)[1])
            self.check_unique(self.controls, name, decl, "control")
            self.controls[name] = decl
            self.types.setdefault(name, ExternT(name))
            return
        if kind in ("parser_type_decl", "control_type_decl", "package_decl"):
            self.types.setdefault(ident(kids(decl)[1]), ExternT(ident(kids(decl)[1])))
            return
        if kind == "instantiation":
            ann, tnode, args, name_node = kids(decl)
            name = ident(name_node)
            self.check_unique(self.globals, name, name_node, "instance")
            tname = (str(tnode.children[0])
                     if tnode.data in ("named_type", "specialized_type") else "")
            if tname in self.externs:
                # a program-level extern instance (e.g. a register shared by controls): its
                # control-plane name is unqualified, as in p4c
                self.globals[name] = self.instantiate_extern(
                    decl, "", name, tname, tnode, args, Scope(self, None, {}))
            else:
                self.globals[name] = Sym("package_inst", info=decl)
            return
        raise self.fail(UnsupportedConstructError, decl, f"{kind} is not supported", kind)

    def proto_shape(self: Compiler, proto: Tree) -> tuple[str, int]:
        parts = kids(proto)
        if proto.data == "lookahead_proto":
            return "lookahead", 0
        params = parts[3]
        return ident(parts[1]), len([p for p in kids(params) if p is not None])

    def annotations(self: Compiler, ann: Tree | None) -> tuple[tuple[str, tuple[object, ...]], ...]:
        out = []
        if ann is None:
            return ()
        for a in kids(ann):
            parts = kids(a)
            name = ident(parts[0])
            values: list[object] = []
            if len(parts) > 1 and parts[1] is not None:
                for e in kids(parts[1]):
                    if e.data == "string_lit":
                        values.append(str(e.children[0])[1:-1])
                    else:
                        try:
                            values.append(self.const_eval(e))
                        except P4Error:
                            values.append(None)
            out.append((name, tuple(values)))
        return tuple(out)

    @staticmethod
    def ann_get(anns: tuple[tuple[str, tuple[object, ...]], ...], name: str
                ) -> tuple[object, ...] | None:
        for n, v in anns:
            if n == name:
                return v
        return None

    def declare_const(self: Compiler, decl: Tree, scope: dict[str, Sym]) -> None:
        ann, tnode, name_node, expr = kids(decl)
        name = ident(name_node)
        self.check_unique(scope, name, name_node, "constant")
        t = self.resolve_type(tnode)
        value = self.const_eval(expr)
        if isinstance(t, BitT):
            value &= (1 << t.width) - 1
        scope[name] = Sym("const", t, repr(value), value)

    def resolve_type(self: Compiler, t: Any) -> P4Type:
        d = t.data
        if d == "bit_type":
            size = kids(t)[0] if kids(t) else None
            return BitT(1 if size is None else self.size_value(size))
        if d == "int_type":
            return BitT(self.size_value(kids(t)[0]), signed=True)
        if d == "varbit_type":
            return VarbitT(self.size_value(kids(t)[0]))
        if d == "bool_type":
            return BoolT()
        if d == "error_type":
            return ErrorT()
        if d == "string_type":
            return StringT()
        if d == "match_kind_type":
            return MatchKindT()
        if d == "infint_type":
            return InfIntT()
        if d == "void_type":
            return VoidT()
        if d == "named_type":
            name = str(t.children[0])
            found = self.types.get(name)
            if found is None:
                return TypeParamT(name)
            return found
        if d == "specialized_type":
            name = str(kids(t)[0])
            return self.types.get(name, TypeParamT(name))
        if d == "stack_type":
            elem = self.resolve_type(kids(t)[0])
            self.check_stack_element(elem, t)
            assert isinstance(elem, HeaderT | HeaderUnionT)
            return StackT(elem, self.const_eval(kids(t)[1]))
        if d == "tuple_type":
            return ListT(tuple(self.resolve_type(x) for x in kids(kids(t)[0])))
        raise self.fail(UnsupportedConstructError, t, f"type {d} is not supported", d)

    def param_types(self: Compiler, params: Tree) -> list[tuple[str, str, P4Type]]:
        out = []
        for p in kids(params):
            if p is None:
                continue
            ann, direction, tnode, name_node, default = kids(p) + [None] * (5 - len(kids(p)))
            d = direction.data[2:] if direction is not None else ""
            out.append((ident(name_node), d, self.resolve_type(tnode)))
        return out
