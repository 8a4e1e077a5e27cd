"""Checks a parsed P4 program and compiles it into Python source, executed once per device.

The front end resolves every name, checks widths and argument counts, and generates one Python
function per parser state, action, table and control. The generated module is compiled with
`compile()` once per program; `CompiledProgram.instantiate` runs it against one device's
`RuntimeState`, so a packet runs straight-line Python with no tree walking.

Conventions in the generated code: `P` is the `Packet`; struct and header fields are attributes
`f_<name>`, `_v` is a header's validity bit; tables, counters and registers are globals bound at
instantiation (`_T_*`, `_C_*`, `_R_*`), action ids are globals `_A_*`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lark import Token, Tree

from p4sim import bmv2_rules
from p4sim.compiled import CompiledProgram
from p4sim.errors import (
    ArgumentCountError,
    DuplicateDeclarationError,
    P4Error,
    P4TypeError,
    UnknownNameError,
    UnsupportedConstructError,
)
from p4sim.ids import IdAllocator
from p4sim.model import (
    ActionModel,
    ControllerHeaderModel,
    CounterModel,
    DigestModel,
    KeyModel,
    MeterModel,
    ProgramModel,
    RegisterModel,
    TableModel,
)
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
    StructLikeT,
    StructT,
    TypeParamT,
    VarbitT,
    VoidT,
    bit_width,
)
from p4sim.preprocess import Preprocessed
from p4sim.runtime import FieldMatch
from p4sim.tree import ident, kids, norm, norm_expr, py, source_text

_UNSUPPORTED_DECLS = {
    "value_set_decl": "value_set", "newtype_decl": "type (new type) declaration",
}
# `a op= b` is `a = a op b` (P4_16 1.2.4, "Assignment statement"): the expression rule it becomes
_COMPOUND_OPS = {
    "+=": "add", "-=": "sub", "*=": "mul", "/=": "div", "%=": "mod", "<<=": "shl", ">>=": "shr",
    "&=": "band", "|=": "bor", "^=": "bxor", "|+|=": "sadd", "|-|=": "ssub",
}
_UNSUPPORTED_EXTERN_CALLS = {
    "resubmit": "resubmit (deprecated; use resubmit_preserving_field_list)",
    "recirculate": "recirculate (deprecated; use recirculate_preserving_field_list)",
    "clone3": "clone3",
}


@dataclass
class Val:
    """A compiled expression: Python code, its P4 type, its value when constant."""

    code: str
    type: P4Type
    const: int | None = None
    node: Any = None  # the header/stack/struct value kind for members


@dataclass
class Sym:
    """What a name means in a scope."""

    kind: str  # var, const, action, table, extern, control_inst, packet_in, packet_out
    type: P4Type = field(default_factory=VoidT)
    code: str = ""
    value: int | None = None
    info: Any = None
    bindings: dict[str, P4Type] = field(default_factory=dict)  # extern type parameters


@dataclass
class ExternDecl:
    """An extern type from <core.p4>/<v1model.p4> (or the program): its type parameters,
    method arities and signatures, constructor arities."""

    name: str
    methods: dict[str, set[int]]
    ctor_arities: set[int]
    type_params: tuple[str, ...] = ()
    signatures: dict[str, list[list[tuple[str, str, P4Type]]]] = field(default_factory=dict)


@dataclass
class BoundArgs:
    """Arguments of one call laid out for copy-in/copy-out: statements before the call, the
    argument expressions, and what to copy back ("copy", target, temporary) or ("scalar",
    target node, "") in parameter order."""

    pre: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    copy_out: list[tuple[str, Any, str]] = field(default_factory=list)


@dataclass
class Instance:
    """A control instance being compiled: its qualified name and what the code calls."""

    qname: str
    pyname: str
    params: list[tuple[str, str, P4Type]]  # (p4 name, direction, type)
    returns: bool = False  # out/inout scalars: returns (values..., exited)


class Gen:
    """Python source with indentation."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0
        self.counter = 0

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    def tmp(self, stem: str = "t") -> str:
        self.counter += 1
        return f"_{stem}{self.counter}"

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


class Compiler:
    """One compilation of one program."""

    def __init__(self, tree: Tree, pre: Preprocessed) -> None:
        self.tree = tree
        self.pre = pre
        self.types: dict[str, P4Type] = {}
        self.globals: dict[str, Sym] = {}
        self.errors: list[str] = []
        self.match_kinds: list[str] = []
        self.externs: dict[str, ExternDecl] = {}
        self.extern_funcs: dict[str, set[int]] = {}
        self.extern_sigs: dict[str, list[list[tuple[str, str, P4Type]]]] = {}
        self.parsers: dict[str, Tree] = {}
        self.controls: dict[str, Tree] = {}
        self.global_actions: dict[str, Tree] = {}
        self.gen = Gen()
        self.model = ProgramModel()
        self.header_classes: dict[str, str] = {}
        self.struct_classes: dict[str, str] = {}
        self.field_lists: dict[int, list[tuple[str, ...]]] = {}
        self.blocks: dict[str, str] = {}
        self.meta_type: StructT | None = None
        self.hdr_type: StructT | None = None
        self.used_actions: set[str] = set()
        self.applied_tables: set[str] = set()
        # inside a function or an action with out/inout scalars: (return type, the Python
        # names returned after the value, whether a value leads the returned tuple)
        self.function_frame: tuple[P4Type, list[str], bool] = (VoidT(), [], True)
        self.in_function = False  # compiling a program-level function (no `exit` there)
        self.direct_calls: dict[int, str] = {}  # `Sub.apply()` call site -> its instance
        # the `for` loops around the statement being compiled: (update steps, their scope)
        self.loops: list[tuple[list[Any], Scope]] = []

    # -- errors ----------------------------------------------------------------------------------

    def where(self, node: Any) -> tuple[str, int, int]:
        line = col = 0
        if isinstance(node, Token):
            line, col = node.line or 0, node.column or 0
        elif isinstance(node, Tree) and not node.meta.empty:
            line, col = node.meta.line, node.meta.column
        file, oline = self.pre.origin(line or 1)
        return file, oline, col or 1

    def fail(self, cls: type[P4Error], node: Any, message: str, construct: str) -> P4Error:
        file, line, col = self.where(node)
        return cls(message, file=file, line=line, column=col, construct=str(construct))

    # -- top level -------------------------------------------------------------------------------

    def run(self) -> CompiledProgram:
        for decl in self.tree.children:
            self.declare(decl)
        main = self.globals.get("main")
        if main is None or main.kind != "package_inst":
            raise self.fail(UnknownNameError, self.tree, "no `V1Switch(...) main;` instance",
                            "package")
        self.compile_main(main.info)
        source = self.gen.text()
        code = compile(source, f"<p4sim:{self.pre.files[0] if self.pre.files else 'program'}>",
                       "exec")
        # like p4c's front end, actions nothing refers to do not reach the P4Info
        self.model.actions = {n: a for n, a in self.model.actions.items()
                              if n in self.used_actions}
        IdAllocator(self.model).assign()
        return CompiledProgram(model=self.model, source=source, code=code,
                               field_lists=self.field_lists, blocks=self.blocks,
                               header_classes=dict(self.header_classes))

    def dup(self, scope: dict[str, Any], name: str, node: Any, what: str) -> None:
        if name in scope:
            raise self.fail(DuplicateDeclarationError, node,
                            f"duplicate declaration of {what} '{name}'", what)

    def declare(self, decl: Tree) -> None:
        kind = decl.data
        if kind in _UNSUPPORTED_DECLS:
            raise self.fail(UnsupportedConstructError, decl,
                            f"{_UNSUPPORTED_DECLS[kind]} is not supported by p4sim",
                            _UNSUPPORTED_DECLS[kind])
        if kind == "empty_decl":
            return
        if kind == "function_decl":
            ann, proto, body = kids(decl)
            if proto.data == "lookahead_proto" or kids(proto)[2] is not None:
                raise self.fail(UnsupportedConstructError, decl,
                                "generic function declarations are not supported", "function")
            name = ident(kids(proto)[1])
            self.dup(self.globals, name, decl, "function")
            self.globals[name] = Sym("function", info=decl)
            return
        if kind == "header_union_decl":
            ann, name_node, *fields = kids(decl)
            name = ident(name_node)
            self.dup(self.types, name, name_node, "type")
            members: list[FieldT] = []
            for f in fields:
                fann, ftype, fname = kids(f)
                t = self.resolve_type(ftype)
                if not isinstance(t, HeaderT):
                    raise self.fail(P4TypeError, ftype, f"header_union member '{ident(fname)}' "
                                    f"must be a header, not {t.show()}", "header_union")
                if any(m.name == ident(fname) for m in members):
                    raise self.fail(DuplicateDeclarationError, fname,
                                    f"duplicate declaration of field '{ident(fname)}'", "field")
                members.append(FieldT(ident(fname), t, self.annotations(fann)))
            self.types[name] = HeaderUnionT(name, tuple(members), self.annotations(ann))
            return
        if kind in ("header_decl", "struct_decl"):
            ann, name_node, *fields = kids(decl)
            name = ident(name_node)
            self.dup(self.types, name, name_node, "type")
            flist = []
            seen: set[str] = set()
            for f in fields:
                fann, ftype, fname = kids(f)
                n = ident(fname)
                self.dup(dict.fromkeys(seen), n, fname, "field")
                seen.add(n)
                t = self.resolve_type(ftype)
                if kind == "header_decl" and not isinstance(t, BitT | VarbitT | BoolT):
                    if isinstance(t, StructT):
                        raise self.fail(UnsupportedConstructError, ftype,
                                        f"header field '{n}': structs inside headers are not "
                                        "supported", "header")
                    if not (isinstance(t, EnumT) and t.underlying):
                        raise self.fail(P4TypeError, ftype,
                                        f"header field '{n}' must be bit<W>, int<W>, bool, a "
                                        f"serializable enum or varbit, not {t.show()}", "header")
                flist.append(FieldT(n, t, self.annotations(fann)))
            cls = HeaderT if kind == "header_decl" else StructT
            t = cls(name, tuple(flist), self.annotations(ann))
            if isinstance(t, HeaderT):
                if t.fixed_width() % 8 or any(
                        isinstance(f.type, VarbitT) and f is not flist[-1] for f in flist):
                    raise self.fail(UnsupportedConstructError, decl,
                                    f"header '{name}': p4sim needs a whole number of bytes and "
                                    "varbit only as the last field", "header layout")
            self.types[name] = t
            return
        if kind == "typedef_decl":
            ann, tnode, name_node = kids(decl)
            name = ident(name_node)
            self.dup(self.types, name, name_node, "type")
            self.types[name] = self.resolve_type(tnode)
            return
        if kind == "enum_decl":
            ann, name_node, names = kids(decl)
            name = ident(name_node)
            self.dup(self.types, name, name_node, "type")
            self.types[name] = EnumT(name, tuple(ident(n) for n in kids(names)))
            return
        if kind == "ser_enum_decl":
            ann, bt, name_node, *rest = [c for c in kids(decl) if c is not None]
            name = ident(name_node)
            self.dup(self.types, name, name_node, "type")
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
                if ident(n) in self.errors:
                    raise self.fail(DuplicateDeclarationError, n,
                                    f"duplicate declaration of error '{ident(n)}'", "error")
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
            self.dup(self.global_actions, name, decl, "action")
            self.global_actions[name] = decl
            return
        if kind == "parser_decl":
            name = ident(kids(decl)[1])
            self.dup(self.parsers, name, decl, "parser")
            self.parsers[name] = decl
            self.types.setdefault(name, ExternT(name))
            return
        if kind == "control_decl":
            name = ident(kids(decl)[1])
            self.dup(self.controls, name, decl, "control")
            self.controls[name] = decl
            self.types.setdefault(name, ExternT(name))
            return
        if kind in ("parser_type_decl", "control_type_decl", "package_decl"):
            self.types.setdefault(ident(kids(decl)[1]), ExternT(ident(kids(decl)[1])))
            return
        if kind == "instantiation":
            ann, tnode, args, name_node = kids(decl)
            name = ident(name_node)
            self.dup(self.globals, name, name_node, "instance")
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

    def proto_shape(self, proto: Tree) -> tuple[str, int]:
        parts = kids(proto)
        if proto.data == "lookahead_proto":
            return "lookahead", 0
        params = parts[3]
        return ident(parts[1]), len([p for p in kids(params) if p is not None])

    def annotations(self, ann: Tree | None) -> tuple[tuple[str, tuple[object, ...]], ...]:
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

    def declare_const(self, decl: Tree, scope: dict[str, Sym]) -> None:
        ann, tnode, name_node, expr = kids(decl)
        name = ident(name_node)
        self.dup(scope, name, name_node, "constant")
        t = self.resolve_type(tnode)
        value = self.const_eval(expr)
        if isinstance(t, BitT):
            value &= (1 << t.width) - 1
        scope[name] = Sym("const", t, repr(value), value)

    # -- types -----------------------------------------------------------------------------------

    def resolve_type(self, t: Any) -> P4Type:
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
            if not isinstance(elem, HeaderT | HeaderUnionT):
                raise self.fail(P4TypeError, t, f"stack of {elem.show()}: stack elements are "
                                "headers or header unions", "header stack")
            return StackT(elem, self.const_eval(kids(t)[1]))
        if d == "tuple_type":
            return ListT(tuple(self.resolve_type(x) for x in kids(kids(t)[0])))
        raise self.fail(UnsupportedConstructError, t, f"type {d} is not supported", d)

    def size_value(self, node: Any) -> int:
        if node.data == "size_int":
            return self.parse_int(node.children[0])[0]
        if node.data == "size_name":
            sym = self.globals.get(str(node.children[0]))
            if sym is None or sym.value is None:
                raise self.fail(UnknownNameError, node,
                                f"unknown constant '{node.children[0]}' in a width", "type")
            return sym.value
        return self.const_eval(kids(node)[0])

    def parse_int(self, tok: Token) -> tuple[int, BitT | None]:
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

    def const_eval(self, node: Any) -> int:
        v = self.expr(node, Scope(self, None, {}))
        if v.const is None:
            raise self.fail(P4TypeError, node, "expression is not a compile-time constant",
                            "constant")
        return v.const

    # -- program layout --------------------------------------------------------------------------

    def compile_main(self, decl: Tree) -> None:
        ann, tnode, args, name_node = kids(decl)
        pkg = ident(tnode.children[0]) if isinstance(tnode, Tree) else str(tnode)
        if pkg != "V1Switch":
            raise self.fail(UnsupportedConstructError, decl,
                            f"package {pkg}: p4sim runs the v1model V1Switch only", "package")
        blocks = [a for a in kids(args) if a is not None]
        if len(blocks) != 6:
            raise self.fail(ArgumentCountError, args,
                            f"V1Switch takes 6 arguments, got {len(blocks)}", "package")
        names = []
        for b in blocks:
            if b.data != "constructor":
                raise self.fail(P4TypeError, b, "V1Switch arguments must be instances like P()",
                                "package")
            names.append(str(kids(b)[0]))
        parser_name, *control_names = names
        if parser_name not in self.parsers:
            raise self.fail(UnknownNameError, blocks[0], f"unknown parser '{parser_name}'",
                            "package")
        for b, n in zip(blocks[1:], control_names, strict=True):
            if n not in self.controls:
                raise self.fail(UnknownNameError, b, f"unknown control '{n}'", "package")
        pdecl = self.parsers[parser_name]
        ptypes = self.param_types(kids(pdecl)[2])
        self.hdr_type = ptypes[1][2] if isinstance(ptypes[1][2], StructT) else None
        self.meta_type = ptypes[2][2] if isinstance(ptypes[2][2], StructT) else None
        if self.hdr_type is None or self.meta_type is None:
            raise self.fail(P4TypeError, pdecl, "parser headers and metadata must be structs",
                            "parser")
        self.model.headers_type = self.hdr_type.name
        self.model.metadata_type = self.meta_type.name
        self.gen_type_classes()
        self.collect_controller_headers()
        self.compile_parser(pdecl)
        roles = ["verify", "ingress", "egress", "compute", "deparse"]
        for role, cname in zip(roles, control_names, strict=True):
            inst = self.compile_control(self.controls[cname], cname)
            self.blocks[role] = inst.pyname
        self.collect_field_lists()

    def param_types(self, params: Tree) -> list[tuple[str, str, P4Type]]:
        out = []
        for p in kids(params):
            if p is None:
                continue
            ann, direction, tnode, name_node, default = kids(p) + [None] * (5 - len(kids(p)))
            d = direction.data[2:] if direction is not None else ""
            out.append((ident(name_node), d, self.resolve_type(tnode)))
        return out

    # -- generated classes -------------------------------------------------------------------------

    def gen_type_classes(self) -> None:
        g = self.gen
        g.emit("# generated by p4sim from the P4 source; do not edit")
        g.emit("class ParserReject(Exception):  # a sub-parser's `reject`: the parse ends")
        g.emit("    pass")
        g.emit("def sub_parser_reject(*_args):")
        g.emit("    raise ParserReject()")
        for t in self.types.values():
            if isinstance(t, HeaderT):
                self.gen_header_class(t)
        done: set[str] = set()
        for t in list(self.types.values()):
            if isinstance(t, StructT | HeaderUnionT):
                self.gen_struct_class(t, done)

    def gen_header_class(self, t: HeaderT) -> None:
        g = self.gen
        cls = f"H_{py(t.name)}"
        self.header_classes[t.name] = cls
        slots = ["_v"]
        for f in t.fields:
            slots.append(f"f_{f.name}")
            if isinstance(f.type, VarbitT):
                slots.append(f"w_{f.name}")
        g.emit(f"class {cls}:")
        g.depth += 1
        g.emit(f"__slots__ = {tuple(slots)!r}")
        g.emit("def __init__(self):")
        g.emit("    " + "; ".join(f"self.{s} = {'False' if s == '_v' else '0'}" for s in slots))
        g.depth -= 1
        # extract: fixed part, then the varbit (if any) of `vbits` bits
        fixed = [f for f in t.fields if not isinstance(f.type, VarbitT)]
        varbit = next((f for f in t.fields if isinstance(f.type, VarbitT)), None)
        nbytes = t.fixed_width() // 8
        too_short = self.error_code("PacketTooShort")
        g.emit(f"def X_{py(t.name)}(P, h{', vbits' if varbit else ''}):")
        g.depth += 1
        g.emit(f"o = P.off; e = o + {nbytes}")
        if varbit:
            # BMv2's order (src/bm_sim/parser.cpp, extract_VL): a length that is not a whole
            # number of bytes is ParserInvalidArgument, then too few bytes left is
            # PacketTooShort, then more than the varbit's maximum is HeaderTooShort
            hts = self.error_code("HeaderTooShort")
            bad = self.error_code("ParserInvalidArgument")
            assert isinstance(varbit.type, VarbitT)
            g.emit(f"if vbits % 8: raise ParserFailure({bad})")
            g.emit("ve = e + vbits // 8")
            g.emit(f"if ve > len(P.data): raise ParserFailure({too_short})")
            g.emit(f"if vbits > {varbit.type.max_width}: raise ParserFailure({hts})")
        else:
            g.emit(f"if e > len(P.data): raise ParserFailure({too_short})")
        g.emit("v = int.from_bytes(P.data[o:e], 'big')")
        shift = t.fixed_width()
        for f in fixed:
            w = bit_width(f.type)
            shift -= w
            g.emit(f"h.f_{f.name} = (v >> {shift}) & {(1 << w) - 1:#x}")
        if varbit:
            g.emit(f"h.f_{varbit.name} = int.from_bytes(P.data[e:ve], 'big')")
            g.emit(f"h.w_{varbit.name} = vbits")
            g.emit("P.off = ve")
        else:
            g.emit("P.off = e")
        g.emit("h._v = True")
        g.depth -= 1
        # emit
        g.emit(f"def E_{py(t.name)}(h):")
        g.depth += 1
        parts = []
        shift = t.fixed_width()
        for f in fixed:
            w = bit_width(f.type)
            shift -= w
            parts.append(f"(h.f_{f.name} << {shift})" if shift else f"h.f_{f.name}")
        body = " | ".join(parts) if parts else "0"
        if varbit:
            g.emit(f"return ({body}).to_bytes({nbytes}, 'big') + "
                   f"h.f_{varbit.name}.to_bytes(h.w_{varbit.name} // 8, 'big')")
        else:
            g.emit(f"return ({body}).to_bytes({nbytes}, 'big')")
        g.depth -= 1

    def gen_struct_class(self, t: StructT | HeaderUnionT, done: set[str]) -> None:
        if t.name in done:
            return
        done.add(t.name)
        for f in t.fields:
            if isinstance(f.type, StructT | HeaderUnionT):
                self.gen_struct_class(f.type, done)
        g = self.gen
        cls = f"S_{py(t.name)}"
        self.struct_classes[t.name] = cls
        g.emit(f"class {cls}:")
        g.depth += 1
        g.emit(f"__slots__ = {tuple('f_' + f.name for f in t.fields)!r}")
        g.emit("def __init__(self):")
        inits = [f"self.f_{f.name} = {self.new_value(f.type)}" for f in t.fields]
        g.emit("    " + ("; ".join(inits) if inits else "pass"))
        g.depth -= 1

    def new_value(self, t: P4Type) -> str:
        if isinstance(t, HeaderT):
            return f"H_{py(t.name)}()"
        if isinstance(t, StructT | HeaderUnionT):
            return f"S_{py(t.name)}()"
        if isinstance(t, StackT):
            return f"HeaderStack([{self.new_value(t.elem)} for _ in range({t.size})])"
        if isinstance(t, BoolT):
            return "False"
        return "0"

    def error_code(self, name: str) -> int:
        return self.errors.index(name)

    def collect_controller_headers(self) -> None:
        for t in self.types.values():
            if isinstance(t, HeaderT):
                ch = self.ann_get(t.annotations, "controller_header")
                if ch:
                    fields = []
                    for i, f in enumerate(t.fields, 1):
                        fields.append((i, f.name, bit_width(f.type)))
                    self.model.controller_headers.append(ControllerHeaderModel(
                        name=str(ch[0]), header_type=t.name, fields=tuple(fields)))

    def collect_field_lists(self) -> None:
        assert self.meta_type is not None

        def walk(t: StructLikeT, path: tuple[str, ...]) -> None:
            for f in t.fields:
                if isinstance(f.type, StructT):
                    walk(f.type, path + (f.name,))
                    continue
                lists = self.ann_get(f.annotations, "field_list")
                for idx in lists or ():
                    if isinstance(idx, int):
                        self.field_lists.setdefault(idx, []).append(path + (f.name,))

        walk(self.meta_type, ())

    # -- parser ----------------------------------------------------------------------------------

    def compile_parser(self, decl: Tree) -> None:
        """The v1model parser: `parser_<name>(P)` runs the states from `start` and turns a
        ParserFailure into `parser_error` (v1model goes on to ingress)."""
        params = kids(decl)[2]
        plist = self.param_types(params)
        if len(plist) != 4:
            raise self.fail(ArgumentCountError, params,
                            f"v1model parser takes 4 parameters, got {len(plist)}", "parser")
        self.blocks["parse"] = self.parser_states(decl, ident(kids(decl)[1]), plist, top=True)

    def parser_states(self, decl: Tree, qname: str, plist: list[tuple[str, str, P4Type]],
                      top: bool) -> str:
        """One parser (the top-level one or a sub-parser instance `qname`): a Python function
        per state and a driver returning the driver's name. A sub-parser's driver takes its
        parameters but the packet_in, runs until `accept`, and lets a ParserFailure (or its
        `reject`, ParserReject) end the whole parse, as p4c's inlining of sub-parsers does."""
        ann, name_node, params, ctor, *body = kids(decl)
        name = ident(name_node)
        if ctor is not None and [c for c in kids(ctor) if c is not None]:
            raise self.fail(UnsupportedConstructError, ctor, f"parser {name}: constructor "
                            "parameters are not supported", "parser constructor parameters")
        states = [b for b in body if isinstance(b, Tree) and b.data == "parser_state"]
        locals_ = [b for b in body if isinstance(b, Tree) and b.data != "parser_state"]
        scope = Scope(self, None, {})
        codes: list[str] = []
        for pname, d, ptype in plist:
            if isinstance(ptype, ExternT) and ptype.name == "packet_in":
                scope.names[pname] = Sym("packet_in", ExternT("packet_in"), "P")
                continue
            code = ("hdr", "meta", "sm")[len(codes)] if top else f"p_{py(pname)}"
            scope.names[pname] = Sym("var", ptype, code, info="in" if d == "in" else None)
            codes.append(code)
        args = "".join(c + ", " for c in codes)
        state_names: dict[str, str] = {}
        for st in states:
            sname = ident(kids(st)[1])
            self.dup(state_names, sname, st, "state")
            state_names[sname] = f"ps_{py(qname)}_{py(sname)}"
        if "start" not in state_names:
            raise self.fail(UnknownNameError, decl, f"parser {name} has no state 'start'",
                            "parser")
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
                vann, tnode, vname, vinit = kids(loc)
                t = self.resolve_type(tnode)
                n = ident(vname)
                self.dup(pscope.names, n, vname, "variable")
                pscope.names[n] = Sym("var", t, f"L.v_{py(n)}")
                init_lines.append((f"L.v_{py(n)}", t, vinit, pscope))
            elif loc.data == "instantiation" and self.sub_parser_type(loc) is not None:
                n = ident(kids(loc)[3])
                self.dup(pscope.names, n, loc, "instance")
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
        g.emit(f"L = PL_{py(qname)}()" if init_lines else "L = None  # no parser-level variables")
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

    def sub_parser_type(self, loc: Tree) -> str | None:
        """The parser type an instantiation inside a parser names (`Sub() sub;`), if any."""
        tnode = kids(loc)[1]
        tname = str(tnode.children[0]) if tnode.data in ("named_type",
                                                          "specialized_type") else ""
        return tname if tname in self.parsers else None

    def sub_parser_instance(self, loc: Tree, qname: str) -> Sym:
        """`Sub() sub;` in a parser: Sub compiled for this instance, called by `sub.apply`."""
        iann, tnode, iargs, iname = kids(loc)
        tname = self.sub_parser_type(loc)
        assert tname is not None
        if [a for a in kids(iargs) if a is not None]:
            raise self.fail(UnsupportedConstructError, iargs, f"parser {tname}: constructor "
                            "arguments are not supported", "parser constructor parameters")
        sub_q = f"{qname}.{ident(iname)}"
        decl = self.parsers[tname]
        plist = self.param_types(kids(decl)[2])
        driver = self.parser_states(decl, sub_q, plist, top=False)
        return Sym("parser_inst", info=(tname, plist, driver))

    def parser_apply(self, sym: Sym, m: str, args: list[Any], scope: Scope, node: Any) -> Val:
        """`sub.apply(pkt, ...)` in a parser state: the sub-parser runs on the same packet and
        cursor. Arguments follow the calling convention (in place unless two overlap; then
        copied in, and copied out when the sub-parser accepts)."""
        tname, plist, driver = sym.info
        if m != "apply":
            raise self.fail(UnknownNameError, node, f"parser has no method '{m}'", "parser")
        self.check_args(args, {len(plist)}, node, f"{tname}.apply")
        args = self.order_arguments(args, plist, node, f"{tname}.apply")
        rest_args, rest_params = [], []
        for a, p in zip(args, plist, strict=True):
            if isinstance(p[2], ExternT) and p[2].name == "packet_in":
                v = self.expr(a, scope)
                if v.node is None or v.node.kind != "packet_in":
                    raise self.fail(P4TypeError, a, f"{tname}.apply: argument '{p[0]}' must be "
                                    "the packet_in", "parser apply")
                continue
            rest_args.append(a)
            rest_params.append(p)
        copy = self.arguments_overlap(rest_args, rest_params, scope)
        bound = self.bind_arguments(f"{tname}.apply", rest_args, rest_params, scope, copy)
        call = f"{driver}(P{''.join(', ' + c for c in bound.codes)})"
        return Val("\n".join(bound.pre + [call] + self.copy_out_lines(bound, "", 0, scope)),
                   VoidT())

    def transition(self, t: Tree, scope: Scope) -> None:
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
            if len(sets) != len(keys):
                if not (len(sets) == 1 and sets[0].data in ("ks_default", "ks_dontcare")):
                    raise self.fail(P4TypeError, ks,
                                    f"select has {len(keys)} keys, this case {len(sets)}",
                                    "select")
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

    def keyset_cond(self, s: Tree, key: str, ktype: P4Type, scope: Scope) -> str:
        if s.data == "ks_mask":
            v, m = (self.coerce(self.expr(x, scope), ktype, x, "select") for x in kids(s))
            return f"({key} & {m.code}) == ({v.code} & {m.code})"
        if s.data == "ks_range":
            lo, hi = (self.coerce(self.expr(x, scope), ktype, x, "select") for x in kids(s))
            return f"{lo.code} <= {key} <= {hi.code}"
        v = self.coerce(self.expr(kids(s)[0], scope), ktype, s, "select")
        return f"{key} == {v.code}"

    def state_target(self, node: Any, scope: Scope) -> str:
        name = ident(node)
        states = scope.find_states()
        if name == "accept":
            return "None"
        if name == "reject":
            return states.get("reject", "None")  # a sub-parser's reject ends the whole parse
        if name not in states:
            raise self.fail(UnknownNameError, node, f"unknown parser state '{name}'", "transition")
        return states[name]

    # -- controls --------------------------------------------------------------------------------

    def compile_control(self, decl: Tree, qname: str) -> Instance:
        ann, name_node, params, ctor, *rest = kids(decl)
        *locals_, apply_block = rest
        plist = self.param_types(params)
        inst = Instance(qname=qname, pyname=f"ctl_{py(qname)}", params=plist)
        scope = Scope(self, None, {})
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
                vann, tnode, vname, vinit = kids(loc)
                t = self.resolve_type(tnode)
                n = ident(vname)
                self.dup(cscope.names, n, vname, "variable")
                cscope.names[n] = Sym("var", t, f"L.v_{py(n)}")
                init_lines.append((f"L.v_{py(n)}", t, vinit, cscope))
            elif d == "action_decl":
                n = ident(kids(loc)[1])
                self.dup(cscope.names, n, loc, "action")
                anns = self.annotations(kids(loc)[0])
                cscope.names[n] = Sym("action", info=(loc, self.qualify(qname, n, anns), anns))
            elif d == "table_decl":
                n = ident(kids(loc)[1])
                self.dup(cscope.names, n, loc, "table")
                cscope.names[n] = Sym("table", info=loc)
            elif d == "instantiation":
                iann, tnode, args, iname = kids(loc)
                n = ident(iname)
                self.dup(cscope.names, n, iname, "instance")
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
        for _loc, n in sub_controls:
            tname, sub_q = cscope.names[n].info
            sub = self.compile_control(self.controls[tname], sub_q)
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

    def direct_invocations_in(self, apply_block: Tree, cscope: Scope, qname: str
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

    def qualify(self, prefix: str, name: str, anns: tuple[tuple[str, tuple[object, ...]], ...]
                ) -> str:
        override = self.ann_get(anns, "name")
        if override:
            n = str(override[0])
            if n.startswith("."):
                return n[1:]
            name = n
        return f"{prefix}.{name}" if prefix else name

    def instantiate_extern(self, loc: Tree, qname: str, n: str, tname: str, tnode: Tree,
                           args: Tree, scope: Scope) -> Sym:
        anns = self.annotations(kids(loc)[0])
        full = self.qualify(qname, n, anns)
        arglist = [a for a in kids(args) if a is not None]
        ext = self.externs.get(tname)
        if ext is None:
            raise self.fail(UnknownNameError, tnode, f"unknown extern type '{tname}'",
                            "instantiation")
        if len(arglist) not in ext.ctor_arities:
            raise self.fail(ArgumentCountError, args,
                            f"{tname} takes {sorted(ext.ctor_arities)} constructor arguments, "
                            f"got {len(arglist)}", "instantiation")
        pyname = py(full)
        explicit_id = self.ann_get(anns, "id")
        bindings: dict[str, P4Type] = {}
        if tnode.data == "specialized_type":
            targ_nodes = kids(kids(tnode)[1])
            if len(targ_nodes) != len(ext.type_params):
                raise self.fail(P4TypeError, tnode,
                                f"{tname} takes {len(ext.type_params)} type arguments, got "
                                f"{len(targ_nodes)} (v1model's API depends on V1MODEL_VERSION)",
                                "instantiation")
            bindings = {p: self.resolve_type(a)
                        for p, a in zip(ext.type_params, targ_nodes, strict=True)}
        sym = self._extern_sym(loc, tname, tnode, arglist, full, pyname, explicit_id, scope)
        sym.bindings = bindings
        return sym

    def _extern_sym(self, loc: Tree, tname: str, tnode: Tree, arglist: list[Any], full: str,
                    pyname: str, explicit_id: tuple[object, ...] | None, scope: Scope) -> Sym:
        if tname == "counter":
            size = self.const_eval(arglist[0])
            unit = self.counter_unit(arglist[1], scope)
            self.model.counters.append(CounterModel(name=full, size=size, unit=unit,
                                                    explicit_id=_int_or_none(explicit_id)))
            return Sym("extern", ExternT("counter"), f"_C_{pyname}", info=full)
        if tname == "direct_counter":
            unit = self.counter_unit(arglist[0], scope)
            self.model.direct_counters.append(CounterModel(
                name=full, size=0, unit=unit, explicit_id=_int_or_none(explicit_id)))
            return Sym("extern", ExternT("direct_counter"), f"_DC_{pyname}", info=full)
        if tname == "register":
            targs = kids(kids(tnode)[1]) if tnode.data == "specialized_type" else []
            if not targs:
                raise self.fail(P4TypeError, tnode, "register needs a type: register<bit<W>>",
                                "register")
            vt = self.resolve_type(targs[0])
            if not isinstance(vt, BitT):
                raise self.fail(UnsupportedConstructError, tnode,
                                f"register<{vt.show()}>: p4sim supports bit<W> registers",
                                "register")
            size = self.const_eval(arglist[0])
            it = self.resolve_type(targs[1]) if len(targs) > 1 else BitT(32)
            self.model.registers.append(RegisterModel(name=full, size=size, bitwidth=vt.width,
                                                      explicit_id=_int_or_none(explicit_id)))
            return Sym("extern", ExternT("register"), f"_R_{pyname}", info=(full, vt, it))
        if tname == "meter":
            size = self.const_eval(arglist[0])
            unit = self.meter_unit(arglist[1], scope)
            self.model.meters.append(MeterModel(name=full, size=size, unit=unit,
                                                explicit_id=_int_or_none(explicit_id)))
            return Sym("extern", ExternT("meter"), f"_M_{pyname}", info=full)
        if tname == "direct_meter":
            unit = self.meter_unit(arglist[0], scope)
            self.model.direct_meters.append(MeterModel(name=full, size=0, unit=unit,
                                                       explicit_id=_int_or_none(explicit_id)))
            return Sym("extern", ExternT("direct_meter"), f"_DM_{pyname}", info=full)
        raise self.fail(UnsupportedConstructError, loc, f"extern {tname} is not supported",
                        tname)

    def meter_unit(self, node: Any, scope: Scope) -> str:
        v = self.expr(node, scope)
        if not isinstance(v.type, EnumT) or v.type.name != "MeterType" or v.const is None:
            raise self.fail(P4TypeError, node, "expected a MeterType", "meter")
        return ["PACKETS", "BYTES"][v.const]

    def counter_unit(self, node: Any, scope: Scope) -> str:
        v = self.expr(node, scope)
        if not isinstance(v.type, EnumT) or v.type.name != "CounterType" or v.const is None:
            raise self.fail(P4TypeError, node, "expected a CounterType", "counter")
        return ["PACKETS", "BYTES", "BOTH"][v.const]

    def compile_action(self, sym: Sym, scope: Scope, qname: str, cparams: str) -> str:
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
            self.dup(ascope.names, pname, params, "parameter")
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
                name=full, params=tuple(pinfo), explicit_id=_int_or_none(self.ann_get(anns, "id")),
                annotations=anns)
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

    def action_with_copy_out(self, body: Tree, scope: Scope, outs: list[str]) -> None:
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

    def compile_table(self, decl: Tree, scope: Scope, qname: str, cparams: str) -> str:
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
                    kind = ident(kind_node)
                    if kind not in ("exact", "ternary", "lpm", "range", "optional"):
                        if kind in self.match_kinds:
                            raise self.fail(UnsupportedConstructError, kind_node,
                                            f"match kind '{kind}' is not supported", "table key")
                        raise self.fail(UnknownNameError, kind_node,
                                        f"unknown match kind '{kind}'", "table key")
                    width = bit_width(v.type)
                    if isinstance(v.type, ErrorT):
                        raise self.fail(UnsupportedConstructError, expr_node,
                                        "table key of type error (its P4Runtime width is not "
                                        "modelled)", "error table key")
                    if width == 0:
                        raise self.fail(P4TypeError, expr_node,
                                        f"table key of type {v.type.show()} has no bit width",
                                        "table key")
                    kanns = self.annotations(kann)
                    nm = self.ann_get(kanns, "name")
                    name = str(nm[0]) if nm else source_text(expr_node)
                    keys.append(KeyModel(field_id=i, name=name, bitwidth=width, match_kind=kind))
                    key_codes.append(f"int({v.code})" if isinstance(v.type, BoolT) else v.code)
            elif d == "actions_prop":
                for ar in kids(p):
                    aann, aname, aargs = kids(ar)
                    an = ident(aname)
                    sym = scope.lookup(an)
                    if sym is None or sym.kind != "action":
                        raise self.fail(UnknownNameError, aname, f"unknown action '{an}'",
                                        "table actions")
                    if any(a[0] == an for a in actions):
                        raise self.fail(DuplicateDeclarationError, aname,
                                        f"action '{an}' listed twice", "table actions")
                    plist = self.param_types(kids(sym.info[0])[2])
                    ndir = sum(1 for _n, d, _t in plist if d)
                    given = [a for a in kids(aargs) if a is not None] if aargs is not None else []
                    if ndir or given:
                        if len(given) != ndir:
                            raise self.fail(ArgumentCountError, ar, f"action '{an}' in a table "
                                            f"binds its {ndir} directional parameters, got "
                                            f"{len(given)} arguments", "table actions")
                        bound_actions[an] = (sym, given, plist[:ndir], ar)
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
                    sym = scope.lookup(ident(kids(pexpr)[0])) if pexpr.data == "name_ref" else None
                    if sym is None or sym.type != ExternT("direct_counter"):
                        raise self.fail(P4TypeError, pexpr, "counters = needs a direct_counter",
                                        "table")
                    direct_counter = sym.info
                elif pn == "meters":
                    sym = scope.lookup(ident(kids(pexpr)[0])) if pexpr.data == "name_ref" else None
                    if sym is None or sym.type != ExternT("direct_meter"):
                        raise self.fail(P4TypeError, pexpr, "meters = needs a direct_meter",
                                        "table")
                    direct_meter = sym.info
                elif pn == "support_timeout":
                    flag = self.expr(pexpr, scope)
                    if not isinstance(flag.type, BoolT) or flag.const is None:
                        raise self.fail(P4TypeError, pexpr, "support_timeout must be true or "
                                        "false", "table property")
                    if flag.const:
                        raise self.fail(UnsupportedConstructError, p,
                                        "support_timeout = true (entry idle timeouts) is not "
                                        "supported", "table property")
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
            if "NoAction" not in {a[0] for a in actions}:
                scope_na = scope.lookup("NoAction")
                if scope_na is None:
                    raise self.fail(UnknownNameError, decl, "no NoAction", "table")
            default_call = ("NoAction", ())
            na = scope.lookup("NoAction")
            assert na is not None
            if all(a[0] != "NoAction" for a in actions):
                actions.append(("NoAction", na.info[1], (("defaultonly", ()), ("hidden", ()))))
                self.used_actions.add(na.info[1])
        entries = []
        for idx, en in enumerate(entries_nodes):
            eann, ks, ename, eargs = kids(en)
            sets = kids(ks) if ks.data == "tuple_keyset" else [kids(ks)[0]]
            if len(sets) != len(keys):
                raise self.fail(P4TypeError, ks,
                                f"entry has {len(sets)} key values, table has {len(keys)} keys",
                                "table entries")
            matches = []
            for k, s in zip(keys, sets, strict=True):
                m = self.entry_match(k, s, scope)
                if m is not None:
                    matches.append(m)
            call = self.action_call_parts(ename, eargs, scope, actions, en)
            prio_ann = self.ann_get(self.annotations(eann), "priority")
            priority = (prio_ann[0] if prio_ann and isinstance(prio_ann[0], int)
                        else len(entries_nodes) - idx)
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
            explicit_id=_int_or_none(self.ann_get(anns, "id"))))
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

    def action_call(self, node: Tree, scope: Scope, actions: list[Any]
                    ) -> tuple[str, tuple[int, ...]]:
        if node.data == "call":
            callee, args = kids(node)
        else:
            callee, args = node, None
        return self.action_call_parts(kids(callee)[0] if callee.data == "name_ref" else callee,
                                      args, scope, actions, node)

    def action_call_parts(self, name_node: Any, args: Any, scope: Scope, actions: list[Any],
                          node: Any) -> tuple[str, tuple[int, ...]]:
        an = ident(name_node)
        if all(a[0] != an for a in actions):
            raise self.fail(UnknownNameError, node,
                            f"action '{an}' is not in the table's actions", "default_action")
        sym = scope.lookup(an)
        assert sym is not None
        decl = sym.info[0]
        plist = self.param_types(kids(decl)[2])
        arglist = [a for a in kids(args) if a is not None] if args is not None else []
        ndir = sum(1 for _n, d, _t in plist if d)
        if ndir and len(arglist) == len(plist):
            arglist = arglist[ndir:]  # the directional ones are bound by the actions list
        plist = plist[ndir:]
        if len(arglist) != len(plist):
            raise self.fail(ArgumentCountError, node,
                            f"action {an} takes {len(plist)} arguments, got {len(arglist)}",
                            "action call")
        values = []
        for a, (_pn, _d, pt) in zip(arglist, plist, strict=True):
            v = self.coerce(self.expr(a, scope), pt, a, "action argument")
            if v.const is None:
                raise self.fail(P4TypeError, a, "action argument must be constant", "action")
            values.append(v.const)
        return an, tuple(values)

    def entry_match(self, k: KeyModel, s: Tree, scope: Scope) -> FieldMatch | None:
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
        v = self.coerce(self.expr(kids(s)[0], scope), t, s, "entry").const
        if v is None:
            raise self.fail(P4TypeError, s, "entry key must be constant", "table entries")
        full = (1 << k.bitwidth) - 1
        if k.match_kind == "ternary":
            return FieldMatch(field_id=k.field_id, kind="ternary", value=v, mask=full)
        if k.match_kind == "lpm":
            return FieldMatch(field_id=k.field_id, kind="lpm", value=v, prefix_len=k.bitwidth)
        if k.match_kind == "range":
            return FieldMatch(field_id=k.field_id, kind="range", value=v, high=v)
        return FieldMatch(field_id=k.field_id, kind=k.match_kind, value=v)  # type: ignore[arg-type]

    # -- statements ------------------------------------------------------------------------------

    def block(self, node: Tree, scope: Scope, ctx: str) -> None:
        inner = Scope(self, scope, {})
        for st in kids(node)[1:]:
            self.statement(st, inner, ctx)

    def statement(self, st: Tree, scope: Scope, ctx: str) -> None:
        g = self.gen
        d = st.data
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
            c = self.expr(cond, scope)
            if not isinstance(c.type, BoolT):
                raise self.fail(P4TypeError, cond, f"if condition is {c.type.show()}, not bool",
                                "if")
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
            n = ident(vname)
            self.dup(scope.names, n, vname, "variable")
            code = g.tmp("v_" + py(n) + "_")
            if vinit is not None:
                self.initialize(code, t, vinit, scope)
            else:
                g.emit(f"{code} = {self.new_value(t)}")
            scope.names[n] = Sym("var", t, code)
        elif d == "const_decl":
            self.declare_const(st, scope.names)
        elif d == "exit_statement":
            if ctx == "parser":
                raise self.fail(P4TypeError, st, "exit is not allowed in a parser", "exit")
            if self.in_function:
                raise self.fail(P4TypeError, st, "exit is not allowed in a function", "exit")
            g.emit("raise ExitSignal()")
        elif d == "for_statement":
            self.for_loop(st, scope, ctx)
        elif d == "for_in_statement":
            raise self.fail(UnsupportedConstructError, st, "`for (x in ...)` loops are not "
                            "supported (the three-part `for (init; cond; update)` is)",
                            "for-in loop")
        elif d in ("break_statement", "continue_statement"):
            word = d.split("_")[0]
            if not self.loops:
                raise self.fail(P4TypeError, st, f"{word} outside a for loop", word)
            if word == "continue":
                updates, uscope = self.loops[-1]
                for u in updates:  # the update runs before the next test, as in C
                    self.statement(u, uscope, ctx)
            g.emit(word)
        elif d == "lookahead_statement":
            # `pkt.lookahead<T>();`: only the PacketTooShort check has an effect
            base, tnode = kids(st)
            v = self.e_lookahead_call(Tree("lookahead_call", [norm(base), tnode], st.meta),
                                      scope)
            g.emit(v.code)
        elif d == "return_statement":
            if ctx == "parser":
                raise self.fail(P4TypeError, st, "return is not allowed in a parser", "return")
            if ctx == "function":
                ret_type, outs, leading = self.function_frame
                if not isinstance(ret_type, VoidT):
                    raise self.fail(P4TypeError, st, "return without a value in a function "
                                    f"returning {ret_type.show()}", "return")
                if not outs:
                    g.emit("return")
                elif leading:
                    g.emit("return (None" + "".join(f", {o}" for o in outs) + ",)")
                else:
                    g.emit(f"return ({', '.join(outs)},)")
            else:
                g.emit("return")
        elif d == "return_value_statement":
            if ctx != "function":
                raise self.fail(P4TypeError, st, "return with a value outside a function",
                                "return")
            ret_type, outs, _leading = self.function_frame
            if isinstance(ret_type, VoidT):
                raise self.fail(P4TypeError, st, "return with a value in a void function",
                                "return")
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

    def for_loop(self, st: Tree, scope: Scope, ctx: str) -> None:
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
            c = self.expr(cond, fscope)
            if not isinstance(c.type, BoolT):
                raise self.fail(P4TypeError, cond, f"for condition is {c.type.show()}, not "
                                "bool", "for loop")
            g.emit(f"if not {c.code}: break")
        steps = kids(updates) if updates is not None else []
        self.loops.append((steps, fscope))
        self.statement(body, Scope(self, fscope, {}), ctx)
        self.loops.pop()
        for step in steps:
            self.statement(step, fscope, ctx)
        g.emit("pass")
        g.depth -= 1

    def switch(self, st: Tree, scope: Scope, ctx: str) -> None:
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
            v = self.expr(e, scope)
            if not isinstance(v.type, BitT | EnumT) or (
                    isinstance(v.type, EnumT) and v.type.underlying is None):
                raise self.fail(UnsupportedConstructError, expr_node,
                                f"switch over {v.type.show()}: p4sim switches over action_run, "
                                "bit<W> and serializable enums", "switch")
            value_type = v.type
            g.emit(f"{r} = {v.code}")
        pending: list[str] = []
        first = True
        seen: set[object] = set()
        for case in cases:
            label = kids(case)[0]
            is_default = label.data == "default_label"
            if not is_default:
                if table_actions is not None:
                    if label.data != "name_ref":
                        raise self.fail(P4TypeError, label, "switch on action_run needs action "
                                        "names as labels", "switch")
                    key: object = ident(kids(label)[0])
                    q = table_actions.get(str(key))
                    if q is None:
                        raise self.fail(UnknownNameError, label,
                                        f"'{key}' is not an action of the table", "switch")
                    code = f"_A_{py(q)}"
                else:
                    assert value_type is not None
                    lv = self.coerce(self.expr(label, scope), value_type, label, "switch")
                    if lv.const is None:
                        raise self.fail(P4TypeError, label, "switch labels must be constants",
                                        "switch")
                    key = lv.const
                    code = repr(lv.const)
                if key in seen:
                    raise self.fail(DuplicateDeclarationError, label,
                                    f"duplicate switch label '{source_text(label)}'", "switch")
                seen.add(key)
                pending.append(code)
            if case.data == "fallthrough_case":
                if is_default:
                    raise self.fail(P4TypeError, label, "default cannot fall through", "switch")
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

    def slice_store(self, lhs: Tree, value_code: str, scope: Scope) -> tuple[str, int]:
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

    def store(self, target_node: Any, value_code: str, scope: Scope) -> str:
        """Python code storing an already-checked value into an lvalue (slices included)."""
        target_node = norm_expr(target_node)
        if target_node.data == "slice":
            return self.slice_store(target_node, value_code, scope)[0]
        return f"{self.expr(target_node, scope).code} = {value_code}"

    def assign(self, lhs: Tree, rhs: Any, scope: Scope, node: Any) -> None:
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
            if src.type != target.type:
                raise self.fail(P4TypeError, node, f"cannot assign {src.type.show()} to "
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

    def assign_list(self, target: str, t: HeaderT | StructT, rhs: Any, scope: Scope,
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
                if src.type != f.type:
                    raise self.fail(P4TypeError, value, f"cannot use {src.type.show()} as "
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

    def literal_fields(self, t: HeaderT | StructT, node: Any) -> list[Any]:
        """The expressions of a list `{a, b}` (in field order) or structure expression
        `{x = a, y = b}` (by name, every field exactly once: P4_16 "Structure-valued
        expressions") for the fields of `t`, in declaration order."""
        node = norm_expr(node)
        if node.data == "list_expr":
            items = kids(node)[0]
            values = kids(items) if items is not None else []
            if len(values) != len(t.fields):
                raise self.fail(P4TypeError, node, f"{t.show()} has {len(t.fields)} fields, "
                                f"the list {len(values)}", "assignment")
            return values
        given: dict[str, Any] = {}
        for pair in kids(node):
            if pair is None:
                continue
            name_node, value = kids(pair)
            name = ident(name_node)
            if t.field(name) is None:
                raise self.fail(UnknownNameError, name_node, f"{t.show()} has no field "
                                f"'{name}'", "structure expression")
            if name in given:
                raise self.fail(DuplicateDeclarationError, name_node, f"field '{name}' given "
                                "twice", "structure expression")
            given[name] = value
        missing = [f.name for f in t.fields if f.name not in given]
        if missing:
            raise self.fail(P4TypeError, node, f"structure expression for {t.show()} misses "
                            f"{', '.join(missing)}", "structure expression")
        return [given[f.name] for f in t.fields]

    def struct_value(self, t: HeaderT | StructT, node: Any, scope: Scope) -> str:
        """A temporary holding the header or struct a `{...}` expression describes (emitted
        before the statement that uses it)."""
        tmp = self.gen.tmp("lit")
        self.gen.emit(f"{tmp} = {self.new_value(t)}")
        self.assign_list(tmp, t, node, scope, t.show())
        return tmp

    def initialize(self, target: str, t: P4Type, init: Any, scope: Scope) -> None:
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
            if v.type != t:
                raise self.fail(P4TypeError, init, f"cannot initialize {t.show()} with "
                                f"{v.type.show()}", "initializer")
            g.emit(f"{target} = copy_of({v.code})")
            return
        v = self.coerce(v, t, init, "initializer")
        g.emit(f"{target} = {v.code}")

    def union_stack_next(self, target: Any, scope: Scope) -> tuple[str, HeaderUnionT] | None:
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

    def union_siblings_off(self, member_node: Any, scope: Scope) -> str:
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

    def check_lvalue(self, node: Tree, scope: Scope) -> None:
        root = node
        while root.data in ("member", "index", "slice"):
            root = kids(root)[0]
        if root.data in ("name_ref", "type_member"):
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

    def coerce(self, v: Val, t: P4Type, node: Any, construct: str, what: str = "") -> Val:
        """Check that `v` can be used where `t` is expected (literals adapt)."""
        if isinstance(t, TypeParamT):
            return v
        if isinstance(v.type, InfIntT):
            if isinstance(t, BitT):
                value = v.const & ((1 << t.width) - 1) if v.const is not None else None
                mask = (1 << t.width) - 1
                code = repr(value) if value is not None else f"(({v.code}) & {mask:#x})"
                return Val(code, t, value)
            if isinstance(t, InfIntT):
                return v
        if v.type == t:
            return v
        if isinstance(t, EnumT) and isinstance(v.type, EnumT) and t.name == v.type.name:
            return v
        if isinstance(v.type, EnumT) and v.type.underlying is not None and v.type.underlying == t:
            return Val(v.code, t, v.const)  # a serializable enum where its type is expected
        target = f" to {what}" if what else ""
        raise self.fail(P4TypeError, node, f"cannot use {v.type.show()} as {t.show()}{target}"
                        " without a cast", construct)

    # -- expressions -----------------------------------------------------------------------------

    def expr(self, node: Any, scope: Scope) -> Val:
        node = norm_expr(node)
        d = node.data
        method = getattr(self, f"e_{d}", None)
        if method is None:
            raise self.fail(UnsupportedConstructError, node, f"expression {d} is not supported",
                            d)
        return method(node, scope)  # type: ignore[no-any-return]

    def e_int_lit(self, node: Tree, scope: Scope) -> Val:
        tok = node.children[0]
        assert isinstance(tok, Token)
        v, t = self.parse_int(tok)
        return Val(repr(v), t or InfIntT(), v)

    def e_true_lit(self, node: Tree, scope: Scope) -> Val:
        return Val("True", BoolT(), 1)

    def e_false_lit(self, node: Tree, scope: Scope) -> Val:
        return Val("False", BoolT(), 0)

    def e_string_lit(self, node: Tree, scope: Scope) -> Val:
        return Val(repr(str(node.children[0])[1:-1]), StringT())

    def e_name_ref(self, node: Tree, scope: Scope) -> Val:
        name = ident(kids(node)[0])
        sym = scope.lookup(name)
        if sym is None:
            raise self.fail(UnknownNameError, node, f"unknown name '{name}'", "expression")
        if sym.kind == "const":
            return Val(sym.code, sym.type, sym.value)
        if sym.kind == "var":
            return Val(sym.code, sym.type)
        return Val(sym.code, sym.type, node=sym)

    def e_dot_name_ref(self, node: Tree, scope: Scope) -> Val:
        name = ident(kids(node)[0])
        sym = self.globals.get(name)
        if sym is None:
            raise self.fail(UnknownNameError, node, f"unknown name '.{name}'", "expression")
        return Val(sym.code, sym.type, sym.value)

    def e_type_member(self, node: Tree, scope: Scope) -> Val:
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

    def e_error_member(self, node: Tree, scope: Scope) -> Val:
        m = ident(kids(node)[0])
        if m not in self.errors:
            raise self.fail(UnknownNameError, node, f"unknown error '{m}'", "error")
        code = self.errors.index(m)
        return Val(repr(code), ErrorT(), code)

    def e_member(self, node: Tree, scope: Scope) -> Val:
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

    def e_index(self, node: Tree, scope: Scope) -> Val:
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

    def slice_bounds(self, b: Val, hi: Any, lo: Any, node: Any) -> tuple[int, int]:
        if not isinstance(b.type, BitT):
            raise self.fail(P4TypeError, node, f"cannot slice {b.type.show()}", "slice")
        h = self.const_eval(hi)
        low = self.const_eval(lo)
        if not 0 <= low <= h < b.type.width:
            raise self.fail(P4TypeError, node, f"slice [{h}:{low}] out of range for "
                            f"{b.type.show()}", "slice")
        return h, low

    def e_slice(self, node: Tree, scope: Scope) -> Val:
        base, hi, lo = kids(node)
        b = self.expr(base, scope)
        h, low = self.slice_bounds(b, hi, lo, node)
        w = h - low + 1
        const = (b.const >> low) & ((1 << w) - 1) if b.const is not None else None
        return Val(f"(({b.code} >> {low}) & {(1 << w) - 1:#x})", BitT(w), const)

    def e_call(self, node: Tree, scope: Scope) -> Val:
        callee, args = kids(node)
        v = self.call(norm_expr(callee), args, scope, node, statement=False)
        if v is None or isinstance(v.type, VoidT):
            raise self.fail(P4TypeError, node, "call has no value", "call")
        return v

    def e_lookahead_call(self, node: Tree, scope: Scope) -> Val:
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

    def e_constructor(self, node: Tree, scope: Scope) -> Val:
        raise self.fail(UnsupportedConstructError, node,
                        "constructor calls in expressions are not supported", "constructor")

    def e_list_expr(self, node: Tree, scope: Scope) -> Val:
        items = kids(node)[0]
        vals = [self.expr(e, scope) for e in (kids(items) if items is not None else [])]
        return Val("(" + "".join(v.code + ", " for v in vals) + ")", ListT(
            tuple(v.type for v in vals)), node=vals)

    def e_cast(self, node: Tree, scope: Scope) -> Val:
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

    def _unify(self, a: Val, b: Val, node: Any, op: str) -> tuple[Val, Val, P4Type]:
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

    def _arith(self, node: Tree, scope: Scope, op: str, pyop: str) -> Val:
        x, y = kids(node)
        a, b, t = self._unify(self.expr(x, scope), self.expr(y, scope), node, op)
        if isinstance(t, InfIntT):
            c = _fold(pyop, a.const, b.const)
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
            folded = _fold(pyop, a.const, b.const)
            const = folded & m if folded is not None else None
        if const is not None:
            return Val(repr(const), t, const)
        if pyop in ("&", "|", "^"):
            return Val(f"({a.code} {pyop} {b.code})", t)
        if pyop in ("//", "%"):
            # a zero divisor at run time gives 0 rather than stopping the switch
            return Val(f"((({a.code} {pyop} {b.code}) if {b.code} else 0) & {m:#x})", t)
        return Val(f"(({a.code} {pyop} {b.code}) & {m:#x})", t)

    def e_add(self, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "+", "+")

    def e_sub(self, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "-", "-")

    def e_mul(self, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "*", "*")

    def e_div(self, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "/", "//")

    def e_mod(self, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "%", "%")

    def e_band(self, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "&", "&")

    def e_bor(self, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "|", "|")

    def e_bxor(self, n: Tree, s: Scope) -> Val:
        return self._arith(n, s, "^", "^")

    def _sat(self, node: Tree, scope: Scope, op: str) -> Val:
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

    def e_sadd(self, n: Tree, s: Scope) -> Val:
        return self._sat(n, s, "|+|")

    def e_ssub(self, n: Tree, s: Scope) -> Val:
        return self._sat(n, s, "|-|")

    def e_concat(self, node: Tree, scope: Scope) -> Val:
        x, y = kids(node)
        a, b = self.expr(x, scope), self.expr(y, scope)
        if not isinstance(a.type, BitT) or not isinstance(b.type, BitT):
            raise self.fail(P4TypeError, node, f"++ needs bit<W> operands, got {a.type.show()} "
                            f"and {b.type.show()}", "concatenation")
        t = BitT(a.type.width + b.type.width, a.type.signed)
        return Val(f"(({a.code} << {b.type.width}) | {b.code})", t)

    def _shift(self, node: Tree, scope: Scope, left: bool) -> Val:
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

    def e_shl(self, n: Tree, s: Scope) -> Val:
        return self._shift(n, s, True)

    def e_shr(self, n: Tree, s: Scope) -> Val:
        return self._shift(n, s, False)

    def _compare(self, node: Tree, scope: Scope, op: str) -> Val:
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

    def varbit_value(self, v: Val) -> str:
        """A varbit field compared as (value, current width): P4_16 makes two varbits equal
        when they have the same width and the same bits."""
        m = re.fullmatch(r"(.+)\.f_(\w+)", v.code)
        if m is None:
            raise self.fail(UnsupportedConstructError, None, "comparison of this varbit "
                            "expression", "comparison")
        return f"({v.code}, {m.group(1)}.w_{m.group(2)})"

    def e_eq(self, n: Tree, s: Scope) -> Val:
        return self._compare(n, s, "==")

    def e_ne(self, n: Tree, s: Scope) -> Val:
        return self._compare(n, s, "!=")

    def e_lt(self, n: Tree, s: Scope) -> Val:
        return self._compare(n, s, "<")

    def e_gt(self, n: Tree, s: Scope) -> Val:
        return self._compare(n, s, ">")

    def e_le(self, n: Tree, s: Scope) -> Val:
        return self._compare(n, s, "<=")

    def e_ge(self, n: Tree, s: Scope) -> Val:
        return self._compare(n, s, ">=")

    def _logic(self, node: Tree, scope: Scope, op: str) -> Val:
        x, y = kids(node)
        a, b = self.expr(x, scope), self.expr(y, scope)
        for v, n in ((a, x), (b, y)):
            if not isinstance(v.type, BoolT):
                raise self.fail(P4TypeError, n, f"operator {op} needs bool, got {v.type.show()}",
                                "expression")
        return Val(f"({a.code} {'and' if op == '&&' else 'or'} {b.code})", BoolT())

    def e_land(self, n: Tree, s: Scope) -> Val:
        return self._logic(n, s, "&&")

    def e_lor(self, n: Tree, s: Scope) -> Val:
        return self._logic(n, s, "||")

    def e_lnot(self, node: Tree, scope: Scope) -> Val:
        v = self.expr(kids(node)[0], scope)
        if not isinstance(v.type, BoolT):
            raise self.fail(P4TypeError, node, f"! needs bool, got {v.type.show()}", "expression")
        return Val(f"(not {v.code})", BoolT())

    def e_bnot(self, node: Tree, scope: Scope) -> Val:
        v = self.expr(kids(node)[0], scope)
        if not isinstance(v.type, BitT):
            raise self.fail(P4TypeError, node, f"~ needs bit<W>, got {v.type.show()}",
                            "expression")
        m = (1 << v.type.width) - 1
        return Val(f"({v.code} ^ {m:#x})", v.type,
                   v.const ^ m if v.const is not None else None)

    def e_neg(self, node: Tree, scope: Scope) -> Val:
        v = self.expr(kids(node)[0], scope)
        if isinstance(v.type, InfIntT) and v.const is not None:
            return Val(repr(-v.const), v.type, -v.const)
        if not isinstance(v.type, BitT):
            raise self.fail(P4TypeError, node, f"- needs a number, got {v.type.show()}",
                            "expression")
        m = (1 << v.type.width) - 1
        return Val(f"((-{v.code}) & {m:#x})", v.type)

    def e_cond(self, node: Tree, scope: Scope) -> Val:
        c, x, y = kids(node)
        cv = self.expr(c, scope)
        if not isinstance(cv.type, BoolT):
            raise self.fail(P4TypeError, c, f"?: condition is {cv.type.show()}, not bool", "?:")
        a, b, t = self._unify(self.expr(x, scope), self.expr(y, scope), node, "?:")
        if isinstance(t, InfIntT):
            raise self.fail(P4TypeError, node, "?: with two untyped int literals needs a width",
                            "?:")
        return Val(f"({a.code} if {cv.code} else {b.code})", t)

    # -- calls -----------------------------------------------------------------------------------

    def check_args(self, args: list[Any], counts: set[int], node: Any, what: str) -> None:
        if len(args) not in counts:
            want = " or ".join(str(c) for c in sorted(counts))
            raise self.fail(ArgumentCountError, node,
                            f"{what} takes {want} arguments, got {len(args)}", "call")

    def call(self, callee: Tree, args_node: Any, scope: Scope, node: Any, statement: bool
             ) -> Val | None:
        callee = norm_expr(callee)
        args = [a for a in kids(args_node) if a is not None] if args_node is not None else []
        if callee.data == "member":
            base_node, mnode = kids(callee)
            m = ident(mnode)
            base_node = norm_expr(base_node)
            if base_node.data == "name_ref":
                sym = scope.lookup(ident(kids(base_node)[0]))
                if sym is None and id(node) in self.direct_calls:
                    sym = scope.lookup(self.direct_calls[id(node)])
                if sym is None:
                    raise self.fail(UnknownNameError, base_node,
                                    f"unknown name '{ident(kids(base_node)[0])}'", "call")
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
            raise self.fail(UnknownNameError, mnode, f"{b.type.show()} has no method '{m}'",
                            "call")
        if callee.data != "name_ref":
            raise self.fail(UnsupportedConstructError, node, "call of this expression", "call")
        name = ident(kids(callee)[0])
        sym = scope.lookup(name)
        if sym is not None and sym.kind == "action":
            return self.direct_action_call(sym, args, scope, node)
        if sym is not None and sym.kind == "function":
            return self.function_call(name, sym, args, scope, node, statement)
        if name in _UNSUPPORTED_EXTERN_CALLS:
            raise self.fail(UnsupportedConstructError, node,
                            f"{_UNSUPPORTED_EXTERN_CALLS[name]} is not supported by p4sim", name)
        if name not in self.extern_funcs:
            raise self.fail(UnknownNameError, callee, f"unknown function '{name}'", "call")
        self.check_args(args, self.extern_funcs[name], node, name)
        self.check_extern_arguments(name, args, scope)
        return self.extern_function(name, args, scope, node)

    def check_extern_arguments(self, name: str, args: list[Any], scope: Scope) -> None:
        """Check an extern function call against its declaration."""
        self.check_signature(name, self.extern_sigs.get(name, []), args, scope, {})

    def check_signature(self, name: str, sigs: list[list[tuple[str, str, P4Type]]],
                        args: list[Any], scope: Scope, bindings: dict[str, P4Type]) -> None:
        """Check arguments against the declaration in <core.p4>/<v1model.p4>: declared types
        (type parameters bound by the instance, e.g. register<bit<32>>'s T; unbound ones accept
        anything) and writable arguments for out/inout."""
        for sig in sigs:
            if len(sig) != len(args):
                continue
            for arg, (pname, direction, ptype) in zip(args, sig, strict=True):
                if direction in ("out", "inout"):
                    self.check_lvalue(norm_expr(arg), scope)
                if isinstance(ptype, TypeParamT):
                    bound = bindings.get(ptype.name)
                    if bound is None:
                        continue
                    ptype = bound
                value = self.expr(arg, scope)
                if isinstance(ptype, StructLikeT) and value.type != ptype:
                    raise self.fail(P4TypeError, arg, f"{name}: argument '{pname}' must be "
                                    f"{ptype.show()}, got {value.type.show()}", "call")
                self.coerce(value, ptype, arg, "call", what=f"{name}'s parameter '{pname}'")
            return

    def compile_function(self, name: str, sym: Sym) -> tuple[str, P4Type, list[Any]]:
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

    def function_call(self, name: str, sym: Sym, args: list[Any], scope: Scope, node: Any,
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

    def call_in_expression(self, name: str, call: str, bound: BoundArgs, r: str, scope: Scope,
                           node: Any) -> str:
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

    def direct_action_call(self, sym: Sym, args: list[Any], scope: Scope, node: Any) -> Val:
        """A direct action call (all its parameters bound here)."""
        decl, full, anns = sym.info
        self.model.directly_called.add(full)  # p4c binds (removes) all its parameters
        plist = self.param_types(kids(decl)[2])
        aname = ident(kids(decl)[1])
        self.check_args(args, {len(plist)}, node, f"action {aname}")
        args = self.order_arguments(args, plist, node, f"action {aname}")
        return Val("\n".join(self.action_call_lines(sym, args, plist, scope, node, "")), VoidT())

    def action_call_lines(self, sym: Sym, args: list[Any], plist: list[tuple[str, str, P4Type]],
                          scope: Scope, node: Any, extra: str) -> list[str]:
        """Statements calling an action with `args` for its first parameters (`extra` passes
        the rest: a table's action data). An action also sees its control's parameters and
        variables, so header and struct arguments are always copied in (and out, for
        out/inout), as P4_16's "Calling convention" says: a write to `hdr` inside the action is
        overwritten by the copy-out of an inout argument bound to it."""
        decl, full, anns = sym.info
        aname = ident(kids(decl)[1])
        bound = self.bind_arguments(f"action {aname}", args, plist, scope, copy=True)
        fn = scope.compiled_action(aname)
        self.used_actions.add(full)
        if fn is None:
            raise self.fail(UnsupportedConstructError, node,
                            "calling an action from another action", "action call")
        cparams = ", ".join(scope.find_pyparams())
        call = f"{fn}(P, {cparams}, L{''.join(', ' + v for v in bound.codes)}{extra})"
        if not any(d in ("out", "inout") for _n, d, _t in plist):
            return bound.pre + [call]
        r = self.gen.tmp("ar")
        scalars = sum(1 for kind, *_ in bound.copy_out if kind in ("scalar", "skip"))
        return (bound.pre + [f"{r} = {call}"] + self.copy_out_lines(bound, r, 0, scope)
                + [f"if {r}[{scalars}]: raise ExitSignal()"])

    def bind_arguments(self, what: str, args: list[Any], plist: list[tuple[str, str, P4Type]],
                       scope: Scope, copy: bool) -> BoundArgs:
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
            if d in ("out", "inout"):
                self.check_lvalue(norm_expr(a), scope)
            if isinstance(pt, StructLikeT | StackT):
                if v.type != pt:
                    raise self.fail(P4TypeError, a, f"{what}: argument '{pname}' must be "
                                    f"{pt.show()}, got {v.type.show()}", "call")
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

    def order_arguments(self, args: list[Any], plist: list[tuple[str, str, P4Type]],
                        node: Any, what: str) -> list[Any]:
        """Arguments in parameter order: positional as written, or all named (`f(x = 1)`,
        P4_16 "Calling convention"), each parameter exactly once."""
        named = [a for a in args if isinstance(a, Tree) and a.data == "named_arg"]
        if not named:
            return args
        if len(named) != len(args):
            raise self.fail(P4TypeError, node, f"{what}: arguments must be all named or all "
                            "positional", "named arguments")
        by_name: dict[str, Any] = {}
        names = [p[0] for p in plist]
        for a in named:
            name_node, value = kids(a)
            name = ident(name_node)
            if name not in names:
                raise self.fail(UnknownNameError, name_node, f"{what} has no parameter "
                                f"'{name}'", "named arguments")
            if name in by_name:
                raise self.fail(DuplicateDeclarationError, name_node, f"argument '{name}' "
                                "given twice", "named arguments")
            by_name[name] = value
        missing = [n for n in names if n not in by_name]
        if missing:
            raise self.fail(ArgumentCountError, node, f"{what}: no argument for "
                            f"{', '.join(missing)}", "named arguments")
        return [by_name[n] for n in names]

    def dont_care_argument(self, a: Tree, pname: str, d: str, pt: P4Type, bound: BoundArgs,
                           what: str) -> None:
        """`_` for an out or inout parameter (P4_16 "Don't care" arguments, as p4c's
        DontcareArgs pass lowers it): a fresh temporary whose value is thrown away."""
        if d not in ("out", "inout"):
            raise self.fail(P4TypeError, a, f"{what}: `_` for parameter '{pname}', which is "
                            f"not out or inout", "don't-care argument")
        if isinstance(pt, StructLikeT | StackT):
            bound.codes.append(self.new_value(pt))
            return
        bound.codes.append("False" if isinstance(pt, BoolT) else "0")
        bound.copy_out.append(("skip", None, ""))

    def copy_out_lines(self, bound: BoundArgs, result: str, first: int, scope: Scope
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

    def arguments_overlap(self, args: list[Any], plist: list[tuple[str, str, P4Type]],
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

    def arg_path(self, node: Any, scope: Scope) -> tuple[str, ...] | None:
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

    def table_apply(self, sym: Sym, m: str, args: list[Any], scope: Scope, node: Any) -> Val:
        if m != "apply":
            raise self.fail(UnknownNameError, node, f"table has no method '{m}'", "table")
        self.check_args(args, {0}, node, "apply")
        if not sym.code:
            raise self.fail(UnsupportedConstructError, node, "table applied from an action",
                            "table apply")
        model = next(t for t in self.model.tables if sym.code == f"tbl_{py(t.name)}")
        if sym.code in self.applied_tables:
            raise self.fail(UnsupportedConstructError, node,
                            f"table {model.name} is applied more than once; p4c's BMv2 back end "
                            "rejects that (\"requires a cycle\"), use one apply or a copy of "
                            "the table", "table apply")
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

    def control_apply(self, sym: Sym, m: str, args: list[Any], scope: Scope, node: Any) -> Val:
        """`c.apply(...)` of a control instance. A control reaches nothing of the caller's but
        its arguments, so they are passed in place unless two overlap; then they are copied in
        and copied back even when the control exits (P4_16 "Calling convention")."""
        tname, sub_q, inst = sym.info
        if m != "apply":
            raise self.fail(UnknownNameError, node, f"control has no method '{m}'", "control")
        self.check_args(args, {len(inst.params)}, node, f"{tname}.apply")
        args = self.order_arguments(args, inst.params, node, f"{tname}.apply")
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

    def packet_method(self, kind: str, m: str, args: list[Any], scope: Scope, node: Any) -> Val:
        if kind == "packet_in":
            if m == "extract":
                self.check_args(args, {1, 2}, node, "extract")
                target = norm_expr(args[0])
                v = self.expr(target, scope)
                if not isinstance(v.type, HeaderT):
                    raise self.fail(P4TypeError, args[0],
                                    f"extract needs a header, got {v.type.show()}", "extract")
                fn = f"X_{py(v.type.name)}"
                has_varbit = any(isinstance(f.type, VarbitT) for f in v.type.fields)
                if has_varbit != (len(args) == 2):
                    raise self.fail(ArgumentCountError, node,
                                    "extract of a header with a varbit takes 2 arguments, "
                                    "otherwise 1", "extract")
                extra = ""
                if len(args) == 2:
                    bits = self.expr(args[1], scope)
                    if not isinstance(bits.type, BitT | InfIntT):
                        raise self.fail(P4TypeError, args[1], "extract size must be bit<32>",
                                        "extract")
                    extra = f", {bits.code}"
                if target.data == "member" and ident(kids(target)[1]) == "next":
                    stack = self.expr(kids(target)[0], scope)
                    return Val(f"{fn}(P, {v.code}{extra}); {stack.code}.nxt += 1", VoidT())
                union_next = self.union_stack_next(target, scope)
                if union_next is not None:
                    # `us.next.x`: extract into the next union's member x, invalidate the other
                    # members, then push (BMv2's ParserOpExtractUnionStack)
                    stack_code, elem = union_next
                    u = self.gen.tmp("u")
                    member = ident(kids(target)[1])
                    off = "".join(f"; {u}.f_{f.name}._v = False" for f in elem.fields
                                  if f.name != member)
                    oob = self.error_code("StackOutOfBounds")
                    return Val(f"{u} = stack_next({stack_code}, {oob}); "
                               f"{fn}(P, {u}.f_{member}{extra}){off}; {stack_code}.nxt += 1",
                               VoidT())
                return Val(f"{fn}(P, {v.code}{extra}){self.union_siblings_off(target, scope)}",
                           VoidT())
            if m == "advance":
                self.check_args(args, {1}, node, "advance")
                v = self.coerce(self.expr(args[0], scope), BitT(32), args[0], "advance")
                err = self.error_code("PacketTooShort")
                if v.const is not None and v.const % 8 == 0:
                    return Val(f"advance(P, {v.code}, {err})", VoidT())
                # BMv2 (src/bm_sim/parser.cpp, ParserOpAdvance): a bit count that is not a whole
                # number of bytes is ParserInvalidArgument
                count = self.gen.tmp("adv")
                bad = self.error_code("ParserInvalidArgument")
                return Val(f"{count} = {v.code}\nif {count} % 8: raise ParserFailure({bad})\n"
                           f"advance(P, {count}, {err})", VoidT())
            raise self.fail(UnsupportedConstructError, node, f"packet_in.{m} is not supported",
                            f"packet_in.{m}")
        if m == "emit":
            self.check_args(args, {1}, node, "emit")
            v = self.expr(args[0], scope)
            return Val("; ".join(self.emit_code(v, args[0])) or "pass", VoidT())
        raise self.fail(UnknownNameError, node, f"packet_out has no method '{m}'", "packet_out")

    def emit_code(self, v: Val, node: Any) -> list[str]:
        t = v.type
        if isinstance(t, HeaderT):
            return [f"(P.emitted.append(E_{py(t.name)}({v.code})) if {v.code}._v else None)"]
        if isinstance(t, StackT):
            if isinstance(t.elem, HeaderUnionT):  # each union's valid member, in order
                members = ", ".join(f"(u.f_{f.name}, E_{py(f.type.show())})"
                                    for f in t.elem.fields)
                return [f"[P.emitted.append(e(h)) for u in {v.code}.a for h, e in ({members},) "
                        "if h._v]"]
            return [f"[P.emitted.append(E_{py(t.elem.name)}(h)) for h in {v.code}.a if h._v]"]
        if isinstance(t, StructT | HeaderUnionT):
            out = []
            for f in t.fields:
                out += self.emit_code(Val(f"{v.code}.f_{f.name}", f.type), node)
            return out
        raise self.fail(P4TypeError, node, f"cannot emit {t.show()}", "emit")

    def extern_method(self, sym: Sym, m: str, args: list[Any], scope: Scope, node: Any,
                      statement: bool) -> Val:
        ext = self.externs[sym.type.name]  # type: ignore[attr-defined]
        if m not in ext.methods:
            raise self.fail(UnknownNameError, node, f"{ext.name} has no method '{m}'", "call")
        self.check_args(args, ext.methods[m], node, f"{ext.name}.{m}")
        self.check_signature(f"{ext.name}.{m}", ext.signatures.get(m, []), args, scope,
                             sym.bindings)
        name = sym.type.name  # type: ignore[attr-defined]
        if name == "counter" and m == "count":
            i = self.expr(args[0], scope)
            return Val(f"{sym.code}.count({i.code}, len(P.data))", VoidT())
        if name == "direct_counter":
            return Val("pass", VoidT())  # counted on every hit of its table, as BMv2 does
        if name == "meter" and m == "execute_meter":
            i = self.expr(args[0], scope)
            target = self.expr(norm_expr(args[1]), scope)
            if not isinstance(target.type, BitT) or target.type.width < 2:
                raise self.fail(P4TypeError, args[1], "execute_meter needs a bit<W> result "
                                "with W >= 2", "meter")
            return Val(f"{target.code} = {sym.code}.execute({i.code}, len(P.data))", VoidT())
        if name == "direct_meter" and m == "read":
            target = self.expr(norm_expr(args[0]), scope)
            if not isinstance(target.type, BitT) or target.type.width < 2:
                raise self.fail(P4TypeError, args[0], "direct_meter.read needs a bit<W> result "
                                "with W >= 2", "meter")
            return Val(f"{target.code} = P.meter_color", VoidT())
        if name == "register":
            full, vt, it = sym.info
            if m == "write":
                i = self.expr(args[0], scope)
                v = self.coerce(self.expr(args[1], scope), vt, args[1], "register write")
                return Val(f"reg_write({sym.code}, {i.code}, {v.code})", VoidT())
            if len(args) == 2:
                out = norm_expr(args[0])
                target = self.expr(out, scope)
                self.coerce(Val("", vt), target.type, args[0], "register read")
                i = self.expr(args[1], scope)
                return Val(f"{target.code} = reg_read({sym.code}, {i.code})", VoidT())
            i = self.expr(args[0], scope)
            return Val(f"reg_read({sym.code}, {i.code})", vt)
        raise self.fail(UnsupportedConstructError, node, f"{name}.{m} is not supported",
                        f"{name}.{m}")

    def extern_function(self, name: str, args: list[Any], scope: Scope, node: Any) -> Val:
        if name == "mark_to_drop":
            sm_code = self.expr(args[0], scope).code if args else "P.sm"  # () is deprecated
            return Val(f"{sm_code}.f_egress_spec = 511; {sm_code}.f_mcast_grp = 0", VoidT())
        if name == "verify":
            if not scope.find_states():
                raise self.fail(P4TypeError, node, "verify can only be called in a parser",
                                "verify")
            c = self.expr(args[0], scope)
            e = self.expr(args[1], scope)
            if not isinstance(c.type, BoolT) or not isinstance(e.type, ErrorT):
                raise self.fail(P4TypeError, node, "verify(bool, error)", "verify")
            return Val(f"if not {c.code}: raise ParserFailure({e.code})", VoidT())
        if name == "digest":
            self.coerce(self.expr(args[0], scope), BitT(32), args[0], "digest")
            data = self.expr(args[1], scope)
            if not isinstance(data.type, StructT) or not all(
                    isinstance(f.type, BitT | BoolT) for f in data.type.fields):
                raise self.fail(UnsupportedConstructError, args[1],
                                "digest data must be a struct of bit<W>/bool fields (its type "
                                "names the digest in the P4Info)", "digest")
            st = data.type
            if all(d.name != st.name for d in self.model.digests):
                self.model.digests.append(DigestModel(
                    name=st.name, fields=tuple((f.name, bit_width(f.type)) for f in st.fields)))
            values = "".join(
                f"int({data.code}.f_{f.name}), " if isinstance(f.type, BoolT)
                else f"{data.code}.f_{f.name}, " for f in st.fields)
            return Val(f"emit_digest(P, _DG_{py(st.name)}, ({values}))", VoidT())
        if name == "truncate":
            length = self.expr(args[0], scope)
            return Val(f"P.truncate_to = {length.code}", VoidT())
        if name in ("assert", "assume"):
            cond = self.expr(args[0], scope)
            file, line, _col = self.where(node)
            where = f"{name} failed at {file}:{line}"
            return Val(f"if not {cond.code}: raise P4AssertionFailure({where!r})", VoidT())
        if name in ("clone", "clone_preserving_field_list"):
            session = self.expr(args[1], scope)
            index = self.const_eval(args[2]) if len(args) == 3 else None
            return Val(f"P.clone = ({session.code}, {index!r})", VoidT())
        if name in ("recirculate_preserving_field_list", "resubmit_preserving_field_list"):
            idx = self.const_eval(args[0])
            attr = "recirculate" if name.startswith("recirculate") else "resubmit"
            return Val(f"P.{attr} = {idx}", VoidT())
        if name == "log_msg":
            fmt = self.expr(args[0], scope)
            if len(args) == 1:
                return Val(f"log_message({fmt.code})", VoidT())
            data = self.expr(args[1], scope)
            return Val(f"log_message({fmt.code}, {data.code})", VoidT())
        if name == "random":
            self.check_lvalue(norm_expr(args[0]), scope)
            target = self.expr(norm_expr(args[0]), scope)
            lo = self.coerce(self.expr(args[1], scope), target.type, args[1], "random")
            hi = self.coerce(self.expr(args[2], scope), target.type, args[2], "random")
            return Val(f"{target.code} = random_between({lo.code}, {hi.code})", VoidT())
        if name == "hash":
            self.check_lvalue(norm_expr(args[0]), scope)
            target = self.expr(norm_expr(args[0]), scope)
            algo = self.algo(args[1], scope)
            base = self.expr(args[2], scope)
            hash_data = self.data_bytes(args[3], scope)
            mx = self.expr(args[4], scope)
            w = bit_width(target.type)
            return Val(f"{target.code} = hash_result({algo!r}, {base.code}, {hash_data}, "
                       f"{mx.code}, {w})", VoidT())
        if name in ("verify_checksum", "update_checksum", "update_checksum_with_payload",
                    "verify_checksum_with_payload"):
            cond = self.expr(args[0], scope)
            if not isinstance(cond.type, BoolT):
                raise self.fail(P4TypeError, args[0], f"{name}: condition must be bool", name)
            data_code = self.data_bytes(args[1], scope)
            target = self.expr(norm_expr(args[2]), scope)
            algo = self.algo(args[3], scope)
            w = bit_width(target.type)
            if name.endswith("_with_payload"):
                # the payload: every byte the parser did not extract
                data_code = f"({data_code} + P.data[P.off:])"
            value = (f"{algo}({data_code})" if algo in ("csum16", "crc16", "crc32")
                     else f"compute_hash({algo!r}, {data_code}, {w})")
            if name.startswith("verify_"):
                return Val(f"if {cond.code} and {value} != {target.code}: "
                           "P.sm.f_checksum_error = 1", VoidT())
            self.check_lvalue(norm_expr(args[2]), scope)
            if w < {"csum16": 16, "crc16": 16, "crc32": 32}.get(algo, 0):
                value = f"({value} & {(1 << w) - 1:#x})"  # BMv2 keeps the field's low bits
            return Val(f"if {cond.code}: {target.code} = {value}", VoidT())
        raise self.fail(UnsupportedConstructError, node, f"{name} is not supported", name)

    def algo(self, node: Any, scope: Scope) -> str:
        v = self.expr(node, scope)
        if not isinstance(v.type, EnumT) or v.type.name != "HashAlgorithm" or v.const is None:
            raise self.fail(P4TypeError, node, "expected a HashAlgorithm", "hash")
        a = v.type.members[v.const]
        if a not in ("crc16", "crc32", "csum16", "identity", "xor16", "random"):
            raise self.fail(UnsupportedConstructError, node,
                            f"HashAlgorithm.{a} is not supported", "hash")
        return a

    def data_bytes(self, node: Any, scope: Scope) -> str:
        v = self.expr(node, scope)
        items = v.node if isinstance(v.type, ListT) else [v]
        parts = []
        varbits = False
        for item in items:
            t = item.type
            if isinstance(t, HeaderT):
                parts.append(f"E_{py(t.name)}({item.code})")
                continue
            if isinstance(t, VarbitT):
                # a varbit field counts with its current width: (value, width) read at run time
                parts.append(f"{self.varbit_value(item)}")
                varbits = True
                continue
            w = bit_width(t)
            if w == 0:
                raise self.fail(P4TypeError, node, f"cannot hash a {t.show()}", "hash data")
            parts.append(f"({item.code}, {w})")
        if varbits and all(p.startswith("(") for p in parts):
            return f"pack_bits([{', '.join(parts)}])"
        # headers are already bytes; fields are packed bit by bit, inline when byte-aligned
        if all(p.startswith("(") for p in parts):
            widths = [bit_width(item.type) for item in items]
            total = sum(widths)
            if total % 8 == 0:
                terms = []
                shift = total
                for item, w in zip(items, widths, strict=True):
                    shift -= w
                    code = f"int({item.code})" if isinstance(item.type, BoolT) else item.code
                    terms.append(f"({code} << {shift})" if shift else code)
                return f"({' | '.join(terms)}).to_bytes({total // 8}, 'big')"
            return f"pack_bits([{', '.join(parts)}])"
        if all(p.startswith("E_") for p in parts):
            return " + ".join(parts)
        raise self.fail(UnsupportedConstructError, node,
                        "hash/checksum data mixing whole headers and fields", "hash data")


def _int_or_none(values: tuple[object, ...] | None) -> int | None:
    if values and isinstance(values[0], int):
        return values[0]
    return None


def _fold(op: str, a: int | None, b: int | None) -> int | None:
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


class Scope:
    """A lexical scope; `lookup` walks outwards, then the program's globals."""

    def __init__(self, comp: Compiler, parent: Scope | None, names: dict[str, Sym]) -> None:
        self.comp = comp
        self.parent = parent
        self.names = names
        self.states: dict[str, str] | None = None
        self.ctl: Instance | None = None
        self.pyparams: list[str] | None = None
        self.compiled_actions: dict[str, str] | None = None

    def lookup(self, name: str) -> Sym | None:
        s: Scope | None = self
        while s is not None:
            if name in s.names:
                return s.names[name]
            s = s.parent
        return self.comp.globals.get(name)

    def find_states(self) -> dict[str, str]:
        s: Scope | None = self
        while s is not None:
            if s.states is not None:
                return s.states
            s = s.parent
        return {}

    def find_pyparams(self) -> list[str]:
        s: Scope | None = self
        while s is not None:
            if s.pyparams is not None:
                return s.pyparams
            s = s.parent
        return []

    def compiled_action(self, name: str) -> str | None:
        s: Scope | None = self
        while s is not None:
            if s.compiled_actions is not None:
                return s.compiled_actions.get(name)
            s = s.parent
        return None

    def all_actions(self) -> Iterator[tuple[str, Sym]]:
        s: Scope | None = self
        while s is not None:
            for n, sym in s.names.items():
                if sym.kind == "action":
                    yield n, sym
            s = s.parent


def compile_program(tree: Tree, pre: Preprocessed) -> CompiledProgram:
    """Check and compile a parsed program."""
    bmv2_rules.check(tree, pre)  # what p4c-bm2-ss refuses, refused first with its reasons
    comp = Compiler(tree, pre)
    result = comp.run()
    return result
