# mypy: disable-error-code="misc"
# (each part is a mixin of `Compiler`; its methods say so with `self: Compiler`,
# which mypy reports under `misc` because the host class is not a protocol)
"""The checker's rules for everything around expressions: declarations, statements, calls,
extern uses, tables, parsers and controls.

`checker` types expressions; this module holds every other rule a program must follow, each a
`check_*` function the code that lays the construct out calls before it writes anything. A rule
reads the tree and the types, raises one precise error (P4TypeError, UnknownNameError,
DuplicateDeclarationError, ArgumentCountError, UnsupportedConstructError) at the offending
node's file:line:column, and changes nothing, so the emit modules (`statements`, `calls`,
`externs`, `tables`, `parsers`, `controls`) only lay out code. A rule is called right before
its construct is laid out (an argument's rule after the arguments before it), so the error a
program with several defects reports is the first one in the order of compilation.

What stays in the emit modules: the last branch of a dispatch over grammar rules (a construct
no branch lays out: "statement X is not supported") and refusals that depend on the Python the
layout would write (`calls.call_in_expression`, `expressions.varbit_value`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lark import Tree

from p4sim.compiler.checker import Typed
from p4sim.compiler.symbols import ExternDecl, Scope, Sym, Val
from p4sim.errors import (
    ArgumentCountError,
    DuplicateDeclarationError,
    P4TypeError,
    UnknownNameError,
    UnsupportedConstructError,
)
from p4sim.model import KeyModel
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
    P4Type,
    StackT,
    StructLikeT,
    StructT,
    TypeParamT,
    VarbitT,
    VoidT,
    bit_width,
)
from p4sim.tree import ident, kids, norm_expr, py, source_text

if TYPE_CHECKING:
    from p4sim.compiler.driver import Compiler


# declarations p4sim refuses, with the construct's name
_UNSUPPORTED_DECLS = {
    "value_set_decl": "value_set", "newtype_decl": "type (new type) declaration",
}
# v1model's deprecated field-list primitives: run only with an empty list (`calls.call`)
FIELD_LIST_CALLS = {
    "resubmit": "resubmit (deprecated; use resubmit_preserving_field_list)",
    "recirculate": "recirculate (deprecated; use recirculate_preserving_field_list)",
    "clone3": "clone3",
}
# ... and which argument is the field list
FIELD_LIST_ARG = {"resubmit": 0, "recirculate": 0, "clone3": 2}
_MATCH_KINDS = ("exact", "ternary", "lpm", "range", "optional")


class CheckerRules:
    """The rules of declarations, statements, calls, externs, tables, parsers and controls (a
    part of `Compiler`)."""

    # --- declarations and types

    def check_unique(self: Compiler, scope: dict[str, Any], name: str, node: Any, what: str
                     ) -> None:
        """`name` is not declared yet in `scope` (types, a block's names, fields, states)."""
        if name in scope:
            raise self.fail(DuplicateDeclarationError, node,
                            f"duplicate declaration of {what} '{name}'", what)

    def check_declaration(self: Compiler, decl: Tree) -> None:
        """A program-level declaration p4sim can record: no value_set, no `type` (new type),
        no generic function."""
        kind = decl.data
        if kind in _UNSUPPORTED_DECLS:
            raise self.fail(UnsupportedConstructError, decl,
                            f"{_UNSUPPORTED_DECLS[kind]} is not supported by p4sim",
                            _UNSUPPORTED_DECLS[kind])
        if kind == "function_decl":
            proto = kids(decl)[1]
            if proto.data == "lookahead_proto" or kids(proto)[2] is not None:
                raise self.fail(UnsupportedConstructError, decl,
                                "generic function declarations are not supported", "function")

    def check_union_member(self: Compiler, ftype: Any, fname: Any, t: P4Type,
                           members: list[FieldT]) -> None:
        """A header_union member: a header, named once."""
        if not isinstance(t, HeaderT):
            raise self.fail(P4TypeError, ftype, f"header_union member '{ident(fname)}' "
                            f"must be a header, not {t.show()}", "header_union")
        if any(m.name == ident(fname) for m in members):
            raise self.fail(DuplicateDeclarationError, fname,
                            f"duplicate declaration of field '{ident(fname)}'", "field")

    def check_header_field(self: Compiler, ftype: Any, name: str, t: P4Type) -> None:
        """A header field: bit<W>, int<W>, bool, a serializable enum or varbit (a struct
        inside a header is refused as p4sim's own limit)."""
        if isinstance(t, BitT | VarbitT | BoolT):
            return
        if isinstance(t, StructT):
            raise self.fail(UnsupportedConstructError, ftype,
                            f"header field '{name}': structs inside headers are not "
                            "supported", "header")
        if not (isinstance(t, EnumT) and t.underlying):
            raise self.fail(P4TypeError, ftype,
                            f"header field '{name}' must be bit<W>, int<W>, bool, a "
                            f"serializable enum or varbit, not {t.show()}", "header")

    def check_header_layout(self: Compiler, decl: Tree, t: HeaderT) -> None:
        """A varbit only as a header's last field (p4sim's extract and emit need that). A header
        of W bits, W not a multiple of 8, is refused where it is instantiated
        (`check_instance_type`), as p4c-bm2-ss does; declaring one is fine."""
        if any(isinstance(f.type, VarbitT) and f is not t.fields[-1] for f in t.fields):
            raise self.fail(UnsupportedConstructError, decl,
                            f"header '{t.name}': p4sim needs varbit only as the last "
                            "field", "header layout")

    def check_new_error(self: Compiler, node: Any) -> None:
        """An `error { ... }` member not declared before."""
        if ident(node) in self.errors:
            raise self.fail(DuplicateDeclarationError, node,
                            f"duplicate declaration of error '{ident(node)}'", "error")

    def check_stack_element(self: Compiler, elem: P4Type, node: Any) -> None:
        """`T[n]`: T is a header or a header union."""
        if not isinstance(elem, HeaderT | HeaderUnionT):
            raise self.fail(P4TypeError, node, f"stack of {elem.show()}: stack elements are "
                            "headers or header unions", "header stack")

    def check_main(self: Compiler, main: Sym | None) -> list[str]:
        """`V1Switch(P(), VC(), I(), E(), CC(), D()) main;`: the six blocks' names, each a
        parser or control of the program."""
        if main is None or main.kind != "package_inst":
            raise self.fail(UnknownNameError, self.tree, "no `V1Switch(...) main;` instance",
                            "package")
        decl = main.info
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
        if names[0] not in self.parsers:
            raise self.fail(UnknownNameError, blocks[0], f"unknown parser '{names[0]}'",
                            "package")
        for b, n in zip(blocks[1:], names[1:], strict=True):
            if n not in self.controls:
                raise self.fail(UnknownNameError, b, f"unknown control '{n}'", "package")
        return names

    def check_pipeline_types(self: Compiler, pdecl: Tree) -> tuple[StructT, StructT]:
        """The headers and metadata the pipeline carries (the parser's second and third
        parameters): structs, each instance of a header laid out as p4c's BMv2 back end
        accepts (`check_instance_type`)."""
        ptypes = self.param_types(kids(pdecl)[2])
        hdr, meta = ptypes[1][2], ptypes[2][2]
        if not isinstance(hdr, StructT) or not isinstance(meta, StructT):
            raise self.fail(P4TypeError, pdecl, "parser headers and metadata must be structs",
                            "parser")
        self.check_instance_type(hdr, kids(pdecl)[2])
        self.check_instance_type(meta, kids(pdecl)[2])
        return hdr, meta

    # --- statements

    def check_statement(self: Compiler, st: Tree, ctx: str) -> None:
        """Where a statement may stand: `exit` not in a parser or a function, `break` and
        `continue` inside a `for`, `return` with a value only in a non-void function and
        without one not in a parser or a non-void function; `for (x in ...)` is refused."""
        d = st.data
        if d == "exit_statement":
            if ctx == "parser":
                raise self.fail(P4TypeError, st, "exit is not allowed in a parser", "exit")
            if self.in_function:
                raise self.fail(P4TypeError, st, "exit is not allowed in a function", "exit")
        elif d == "for_in_statement":
            raise self.fail(UnsupportedConstructError, st, "`for (x in ...)` loops are not "
                            "supported (the three-part `for (init; cond; update)` is)",
                            "for-in loop")
        elif d in ("break_statement", "continue_statement"):
            word = d.split("_")[0]
            if not self.loops:
                raise self.fail(P4TypeError, st, f"{word} outside a for loop", word)
        elif d == "return_statement":
            if ctx == "parser":
                raise self.fail(P4TypeError, st, "return is not allowed in a parser", "return")
            ret_type = self.function_frame[0]
            if ctx == "function" and not isinstance(ret_type, VoidT):
                raise self.fail(P4TypeError, st, "return without a value in a function "
                                f"returning {ret_type.show()}", "return")
        elif d == "return_value_statement":
            if ctx != "function":
                raise self.fail(P4TypeError, st, "return with a value outside a function",
                                "return")
            if isinstance(self.function_frame[0], VoidT):
                raise self.fail(P4TypeError, st, "return with a value in a void function",
                                "return")

    def check_switch_case(self: Compiler, case: Tree, table_actions: dict[str, str] | None,
                          value_type: P4Type | None, scope: Scope, seen: set[object]
                          ) -> object | None:
        """One case of a `switch`: the key its label stands for (an action's name when
        switching on `action_run`, else the label's constant), recorded in `seen`; None for
        `default`, which cannot fall through. A label is given once."""
        label = kids(case)[0]
        if label.data == "default_label":
            if case.data == "fallthrough_case":
                raise self.fail(P4TypeError, label, "default cannot fall through", "switch")
            return None
        if table_actions is not None:
            if label.data != "name_ref":
                raise self.fail(P4TypeError, label, "switch on action_run needs action "
                                "names as labels", "switch")
            key: object = ident(kids(label)[0])
            if table_actions.get(str(key)) is None:
                raise self.fail(UnknownNameError, label,
                                f"'{key}' is not an action of the table", "switch")
        else:
            assert value_type is not None
            key = self.check_switch_label(label, value_type, scope)
        if key in seen:
            raise self.fail(DuplicateDeclarationError, label,
                            f"duplicate switch label '{source_text(label)}'", "switch")
        seen.add(key)
        return key

    def literal_fields(self: Compiler, t: HeaderT | StructT, node: Any) -> list[Any]:
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
        given = self.check_named([kids(pair) for pair in kids(node) if pair is not None],
                                 [f.name for f in t.fields], f"{t.show()} has no field",
                                 "field", "structure expression")
        missing = [f.name for f in t.fields if f.name not in given]
        if missing:
            raise self.fail(P4TypeError, node, f"structure expression for {t.show()} misses "
                            f"{', '.join(missing)}", "structure expression")
        return [given[f.name] for f in t.fields]

    def check_named(self: Compiler, pairs: list[Any], names: list[str], unknown: str,
                    item: str, construct: str) -> dict[str, Any]:
        """`name = value` pairs (a structure expression's fields, named arguments): each a
        known name, given once; the values by name."""
        given: dict[str, Any] = {}
        for name_node, value in pairs:
            name = ident(name_node)
            if name not in names:
                raise self.fail(UnknownNameError, name_node, f"{unknown} '{name}'", construct)
            if name in given:
                raise self.fail(DuplicateDeclarationError, name_node,
                                f"{item} '{name}' given twice", construct)
            given[name] = value
        return given

    def check_constant(self: Compiler, v: Typed | Val, node: Any, message: str, construct: str
                       ) -> int:
        """A value that must be known at compile time (a const entry's key or action data)."""
        if v.const is None:
            raise self.fail(P4TypeError, node, message, construct)
        return v.const

    # --- calls

    def check_args(self: Compiler, args: list[Any], counts: set[int], node: Any, what: str) -> None:
        """A call has one of the argument counts its callee takes."""
        if len(args) not in counts:
            want = " or ".join(str(c) for c in sorted(counts))
            raise self.fail(ArgumentCountError, node,
                            f"{what} takes {want} arguments, got {len(args)}", "call")

    def order_arguments(self: Compiler, args: list[Any], plist: list[tuple[str, str, P4Type]],
                        node: Any, what: str) -> list[Any]:
        """Arguments in parameter order: positional as written, or all named (`f(x = 1)`,
        P4_16 "Calling convention"), each parameter exactly once."""
        named = [a for a in args if isinstance(a, Tree) and a.data == "named_arg"]
        if not named:
            return args
        if len(named) != len(args):
            raise self.fail(P4TypeError, node, f"{what}: arguments must be all named or all "
                            "positional", "named arguments")
        names = [p[0] for p in plist]
        by_name = self.check_named([kids(a) for a in named], names,
                                   f"{what} has no parameter", "argument", "named arguments")
        missing = [n for n in names if n not in by_name]
        if missing:
            raise self.fail(ArgumentCountError, node, f"{what}: no argument for "
                            f"{', '.join(missing)}", "named arguments")
        return [by_name[n] for n in names]

    def check_argument(self: Compiler, what: str, a: Any, v: Typed | Val, pname: str, d: str,
                       pt: P4Type, scope: Scope) -> None:
        """One argument of a function, action, control or parser call against its parameter:
        an out/inout one writable, a header/struct/union/stack one of the parameter's type, a
        scalar one usable as the parameter's type (an `out` one is only written)."""
        if d in ("out", "inout"):
            self.check_lvalue(norm_expr(a), scope, pname)
        if isinstance(pt, StructLikeT | StackT):
            self.check_same_type(v, pt, a, f"{what}: argument '{pname}' must be "
                                 f"{pt.show()}, got {v.type.show()}", "call")
        elif d != "out" and not isinstance(pt, TypeParamT):
            self.coerce_type(Typed(v.type, v.const), pt, a, "argument",
                             what=f"{what}'s parameter '{pname}'")

    def check_action_callable(self: Compiler, scope: Scope, aname: str, node: Any) -> str:
        """An action is called directly from a control's apply block or a table, not from
        another action (p4sim compiles each action once, for its control); its function."""
        fn = scope.compiled_action(aname)
        if fn is None:
            raise self.fail(UnsupportedConstructError, node,
                            "calling an action from another action", "action call")
        return fn

    def check_dont_care(self: Compiler, a: Tree, pname: str, d: str, what: str) -> None:
        """`_` only for an out or inout parameter (P4_16 "Don't care" arguments)."""
        if d not in ("out", "inout"):
            raise self.fail(P4TypeError, a, f"{what}: `_` for parameter '{pname}', which is "
                            f"not out or inout", "don't-care argument")

    def check_extern_function(self: Compiler, name: str, callee: Any) -> None:
        """`name(...)` names an extern function (or a deprecated field-list primitive)."""
        if name not in self.extern_funcs and name not in FIELD_LIST_CALLS:
            raise self.fail(UnknownNameError, callee, f"unknown function '{name}'", "call")

    def check_field_list_call(self: Compiler, name: str, args: list[Any], node: Any) -> None:
        """`resubmit(...)`, `recirculate(...)`, `clone3(...)`: run only with an empty field
        list (p4sim has no lists of fields to preserve there)."""
        pos = FIELD_LIST_ARG[name]
        self.check_args(args, {pos + 1}, node, name)
        data = norm_expr(args[pos]) if len(args) > pos else None
        if not (isinstance(data, Tree) and data.data == "list_expr"
                and not [k for k in kids(data) if k is not None]):
            raise self.fail(UnsupportedConstructError, node,
                            f"{FIELD_LIST_CALLS[name]} with a non-empty field "
                            "list is not supported by p4sim", name)

    def check_signature(self: Compiler, name: str, sigs: list[list[tuple[str, str, P4Type]]],
                        args: list[Any], scope: Scope, bindings: dict[str, P4Type]) -> None:
        """Check arguments against the declaration in <core.p4>/<v1model.p4>: declared types
        (type parameters bound by the instance, e.g. register<bit<32>>'s T; unbound ones accept
        anything) and writable arguments for out/inout."""
        for sig in sigs:
            if len(sig) != len(args):
                continue
            for arg, (pname, direction, ptype) in zip(args, sig, strict=True):
                if direction in ("out", "inout"):
                    self.check_lvalue(norm_expr(arg), scope, pname)
                if isinstance(ptype, TypeParamT):
                    bound = bindings.get(ptype.name)
                    if bound is None:
                        continue
                    ptype = bound
                value = self.check_expr(arg, scope)
                if isinstance(ptype, StructLikeT):
                    self.check_same_type(value, ptype, arg, f"{name}: argument '{pname}' must "
                                         f"be {ptype.show()}, got {value.type.show()}", "call")
                self.coerce_type(value, ptype, arg, "call", what=f"{name}'s parameter '{pname}'")
            return

    # --- externs

    def check_extern_instance(self: Compiler, tname: str, tnode: Tree, args: Tree,
                              arglist: list[Any]) -> ExternDecl:
        """`T(...) name;` of an extern type: a known type, one of its constructors' argument
        counts, as many type arguments as it has type parameters."""
        ext = self.externs.get(tname)
        if ext is None:
            raise self.fail(UnknownNameError, tnode, f"unknown extern type '{tname}'",
                            "instantiation")
        if len(arglist) not in ext.ctor_arities:
            raise self.fail(ArgumentCountError, args,
                            f"{tname} takes {sorted(ext.ctor_arities)} constructor arguments, "
                            f"got {len(arglist)}", "instantiation")
        if tnode.data == "specialized_type":
            targ_nodes = kids(kids(tnode)[1])
            if len(targ_nodes) != len(ext.type_params):
                raise self.fail(P4TypeError, tnode,
                                f"{tname} takes {len(ext.type_params)} type arguments, got "
                                f"{len(targ_nodes)} (v1model's API depends on V1MODEL_VERSION)",
                                "instantiation")
        return ext

    def register_value_type(self: Compiler, tnode: Tree) -> BitT:
        """The T of `register<T>`: given, and a bit<W> (p4sim's registers hold bit<W>)."""
        targs = kids(kids(tnode)[1]) if tnode.data == "specialized_type" else []
        if not targs:
            raise self.fail(P4TypeError, tnode, "register needs a type: register<bit<W>>",
                            "register")
        vt = self.resolve_type(targs[0])
        if not isinstance(vt, BitT):
            raise self.fail(UnsupportedConstructError, tnode,
                            f"register<{vt.show()}>: p4sim supports bit<W> registers",
                            "register")
        return vt

    def check_enum_constant(self: Compiler, node: Any, scope: Scope, enum: str, construct: str
                            ) -> tuple[EnumT, int]:
        """A constant member of a v1model enum (`CounterType.packets`, `HashAlgorithm.crc32`):
        the enum and the member's index."""
        v = self.check_expr(node, scope)
        if not isinstance(v.type, EnumT) or v.type.name != enum or v.const is None:
            raise self.fail(P4TypeError, node, f"expected a {enum}", construct)
        return v.type, v.const

    def check_hash_algorithm(self: Compiler, node: Any, scope: Scope) -> str:
        """A `HashAlgorithm` p4sim computes: its name."""
        t, index = self.check_enum_constant(node, scope, "HashAlgorithm", "hash")
        a = t.members[index]
        if a not in ("crc16", "crc32", "csum16", "identity", "xor16", "random"):
            raise self.fail(UnsupportedConstructError, node,
                            f"HashAlgorithm.{a} is not supported", "hash")
        return a

    def check_packet_method(self: Compiler, kind: str, m: str, node: Any) -> None:
        """`packet_in` has `extract` and `advance` here, `packet_out` has `emit`."""
        if kind == "packet_in" and m not in ("extract", "advance"):
            raise self.fail(UnsupportedConstructError, node, f"packet_in.{m} is not supported",
                            f"packet_in.{m}")
        if kind == "packet_out" and m != "emit":
            raise self.fail(UnknownNameError, node, f"packet_out has no method '{m}'",
                            "packet_out")

    def check_extract(self: Compiler, args: list[Any], node: Any, scope: Scope) -> HeaderT:
        """`pkt.extract(h)` / `pkt.extract(h, bits)`: into a header, with a size exactly when
        the header has a varbit; the header's type."""
        self.check_args(args, {1, 2}, node, "extract")
        v = self.check_expr(norm_expr(args[0]), scope)
        if not isinstance(v.type, HeaderT):
            raise self.fail(P4TypeError, args[0],
                            f"extract needs a header, got {v.type.show()}", "extract")
        has_varbit = any(isinstance(f.type, VarbitT) for f in v.type.fields)
        if has_varbit != (len(args) == 2):
            raise self.fail(ArgumentCountError, node,
                            "extract of a header with a varbit takes 2 arguments, "
                            "otherwise 1", "extract")
        if len(args) == 2:
            bits = self.check_expr(args[1], scope)
            if not isinstance(bits.type, BitT | InfIntT):
                raise self.fail(P4TypeError, args[1], "extract size must be bit<32>",
                                "extract")
        return v.type

    def check_emit_type(self: Compiler, t: P4Type, node: Any) -> None:
        """`pkt.emit(x)`: x a header, a header stack, or a struct or union of those."""
        if isinstance(t, HeaderT | StackT):
            return
        if isinstance(t, StructT | HeaderUnionT):
            for f in t.fields:
                self.check_emit_type(f.type, node)
            return
        raise self.fail(P4TypeError, node, f"cannot emit {t.show()}", "emit")

    def check_extern_call(self: Compiler, sym: Sym, m: str, args: list[Any], scope: Scope,
                          node: Any) -> ExternDecl:
        """`inst.m(...)` of an extern instance: a method of its type, called with arguments
        that fit one of its declarations."""
        ext = self.externs[sym.type.name]  # type: ignore[attr-defined]
        if m not in ext.methods:
            raise self.fail(UnknownNameError, node, f"{ext.name} has no method '{m}'", "call")
        self.check_args(args, ext.methods[m], node, f"{ext.name}.{m}")
        self.check_signature(f"{ext.name}.{m}", ext.signatures.get(m, []), args, scope,
                             sym.bindings)
        return ext

    def check_meter_result(self: Compiler, target: Typed | Val, node: Any, what: str) -> None:
        """Where a meter writes its color: a bit<W> with W >= 2 (GREEN, YELLOW, RED)."""
        if not isinstance(target.type, BitT) or target.type.width < 2:
            raise self.fail(P4TypeError, node, f"{what} needs a bit<W> result with W >= 2",
                            "meter")

    def check_verify(self: Compiler, args: list[Any], scope: Scope, node: Any) -> None:
        """`verify(bool, error)`, in a parser."""
        if not scope.find_states():
            raise self.fail(P4TypeError, node, "verify can only be called in a parser",
                            "verify")
        c = self.check_expr(args[0], scope)
        e = self.check_expr(args[1], scope)
        if not isinstance(c.type, BoolT) or not isinstance(e.type, ErrorT):
            raise self.fail(P4TypeError, node, "verify(bool, error)", "verify")

    def check_digest_data(self: Compiler, t: P4Type, node: Any) -> StructT:
        """`digest(receiver, data)`: data a struct of bit<W>/bool fields (its type names the
        digest in the P4Info)."""
        if not isinstance(t, StructT) or not all(
                isinstance(f.type, BitT | BoolT) for f in t.fields):
            raise self.fail(UnsupportedConstructError, node,
                            "digest data must be a struct of bit<W>/bool fields (its type "
                            "names the digest in the P4Info)", "digest")
        return t

    def check_checksum_condition(self: Compiler, name: str, node: Any, scope: Scope) -> None:
        """The first argument of `verify_checksum` and its kin: a bool."""
        if not isinstance(self.check_expr(node, scope).type, BoolT):
            raise self.fail(P4TypeError, node, f"{name}: condition must be bool", name)

    def check_hash_data(self: Compiler, node: Any, items: list[Any]) -> None:
        """Hash or checksum data: fields with a bit width (varbits included) or whole headers,
        not both."""
        for item in items:
            if not isinstance(item.type, HeaderT | VarbitT) and bit_width(item.type) == 0:
                raise self.fail(P4TypeError, node, f"cannot hash a {item.type.show()}",
                                "hash data")
        headers = [isinstance(item.type, HeaderT) for item in items]
        if any(headers) and not all(headers):
            raise self.fail(UnsupportedConstructError, node,
                            "hash/checksum data mixing whole headers and fields", "hash data")

    # --- tables

    def check_table_key(self: Compiler, key_type: P4Type, expr_node: Any, kind_node: Any
                        ) -> int:
        """A table key: a match kind p4sim implements, a type with a bit width; the width."""
        kind = ident(kind_node)
        if kind not in _MATCH_KINDS:
            if kind in self.match_kinds:
                raise self.fail(UnsupportedConstructError, kind_node,
                                f"match kind '{kind}' is not supported", "table key")
            raise self.fail(UnknownNameError, kind_node,
                            f"unknown match kind '{kind}'", "table key")
        if isinstance(key_type, StructLikeT | StackT):  # p4c TypeInference::postorder(KeyElement)
            kind = ("header " if isinstance(key_type, HeaderT) else
                    "header_union " if isinstance(key_type, HeaderUnionT) else
                    "struct " if isinstance(key_type, StructT) else "")
            raise self.fail(P4TypeError, expr_node,
                            f"Key {source_text(expr_node)} field type must be a scalar type; it "
                            f"cannot be {kind}{key_type.show()}", "table key")
        width = bit_width(key_type)
        if isinstance(key_type, ErrorT):
            raise self.fail(UnsupportedConstructError, expr_node,
                            "table key of type error (its P4Runtime width is not "
                            "modelled)", "error table key")
        if width == 0:
            raise self.fail(P4TypeError, expr_node,
                            f"table key of type {key_type.show()} has no bit width",
                            "table key")
        return width

    def check_listed_action(self: Compiler, ar: Tree, scope: Scope, listed: list[str]
                            ) -> tuple[Sym, list[Any], list[tuple[str, str, P4Type]]]:
        """An entry of a table's `actions = { ... }`: an action in scope, listed once, with
        its directional parameters all bound or none; the action, the arguments given and
        its directional parameters."""
        aann, aname, aargs = kids(ar)
        an = ident(aname)
        sym = scope.lookup(an)
        if sym is None or sym.kind != "action":
            raise self.fail(UnknownNameError, aname, f"unknown action '{an}'", "table actions")
        if an in listed:
            raise self.fail(DuplicateDeclarationError, aname,
                            f"action '{an}' listed twice", "table actions")
        plist = self.param_types(kids(sym.info[0])[2])
        ndir = sum(1 for _n, d, _t in plist if d)
        given = [a for a in kids(aargs) if a is not None] if aargs is not None else []
        if (ndir or given) and len(given) != ndir:
            raise self.fail(ArgumentCountError, ar, f"action '{an}' in a table "
                            f"binds its {ndir} directional parameters, got "
                            f"{len(given)} arguments", "table actions")
        return sym, given, plist[:ndir]

    def check_direct_extern(self: Compiler, pexpr: Any, scope: Scope, extern: str, prop: str
                            ) -> Any:
        """`counters = c` / `meters = m`: a direct_counter / direct_meter instance; its
        control-plane name."""
        sym = scope.lookup(ident(kids(pexpr)[0])) if pexpr.data == "name_ref" else None
        if sym is None or sym.type != ExternT(extern):
            raise self.fail(P4TypeError, pexpr, f"{prop} = needs a {extern}", "table")
        return sym.info

    def check_support_timeout(self: Compiler, p: Tree, pexpr: Any, scope: Scope) -> None:
        """`support_timeout = false` (p4sim keeps no entry idle times)."""
        flag = self.check_expr(pexpr, scope)
        if not isinstance(flag.type, BoolT) or flag.const is None:
            raise self.fail(P4TypeError, pexpr, "support_timeout must be true or "
                            "false", "table property")
        if flag.const:
            raise self.fail(UnsupportedConstructError, p,
                            "support_timeout = true (entry idle timeouts) is not "
                            "supported", "table property")

    def check_no_action(self: Compiler, decl: Tree, scope: Scope, listed: list[str]) -> None:
        """A table without `default_action` defaults to NoAction, which must exist."""
        if "NoAction" not in listed and scope.lookup("NoAction") is None:
            raise self.fail(UnknownNameError, decl, "no NoAction", "table")

    def check_entry_priority(self: Compiler, en: Tree) -> int | None:
        """A const entry's `@priority(n)`, if any: one non-negative integer."""
        eann, _, _, _, tail_ann = kids(en)
        prio_ann = self.ann_get(self.annotations(eann) + self.annotations(tail_ann),
                                "priority")
        value = prio_ann[0] if prio_ann and len(prio_ann) == 1 else None
        if prio_ann and not (isinstance(value, int) and value >= 0):
            raise self.fail(P4TypeError, en, "@priority needs one non-negative integer",
                            "table entries")
        return value if isinstance(value, int) else None

    def check_entry_keys(self: Compiler, ks: Tree, sets: list[Any], keys: list[KeyModel]
                         ) -> None:
        """A const entry gives one key value per table key."""
        if len(sets) != len(keys):
            raise self.fail(P4TypeError, ks,
                            f"entry has {len(sets)} key values, table has {len(keys)} keys",
                            "table entries")

    def check_table_action(self: Compiler, an: str, node: Any, listed: list[str]) -> None:
        """A table's default action or a const entry's action is one of the table's actions."""
        if an not in listed:
            raise self.fail(UnknownNameError, node,
                            f"action '{an}' is not in the table's actions", "default_action")

    def check_action_data(self: Compiler, an: str, node: Any, plist: list[Any],
                          arglist: list[Any]) -> None:
        """... with one argument per action-data parameter (its directionless ones)."""
        if len(arglist) != len(plist):
            raise self.fail(ArgumentCountError, node,
                            f"action {an} takes {len(plist)} arguments, got {len(arglist)}",
                            "action call")

    def check_table_apply(self: Compiler, sym: Sym, m: str, args: list[Any], node: Any) -> Any:
        """`t.apply()`: no arguments, from a control's apply block (not an action), once per
        table (p4c's BMv2 back end refuses a second apply); the table's model."""
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
        return model

    # --- parsers and controls

    def check_v1model_parser(self: Compiler, params: Tree, plist: list[Any]) -> None:
        """v1model's parser takes (packet_in, headers, metadata, standard_metadata)."""
        if len(plist) != 4:
            raise self.fail(ArgumentCountError, params,
                            f"v1model parser takes 4 parameters, got {len(plist)}", "parser")

    def check_parser_constructor(self: Compiler, decl: Tree) -> None:
        """A parser without constructor parameters."""
        ann, name_node, params, ctor, *body = kids(decl)
        if ctor is not None and [c for c in kids(ctor) if c is not None]:
            raise self.fail(UnsupportedConstructError, ctor, f"parser {ident(name_node)}: "
                            "constructor parameters are not supported",
                            "parser constructor parameters")

    def check_start_state(self: Compiler, decl: Tree, state_names: dict[str, str]) -> None:
        """A parser has a `start` state."""
        if "start" not in state_names:
            raise self.fail(UnknownNameError, decl, f"parser {ident(kids(decl)[1])} has no "
                            "state 'start'", "parser")

    def check_sub_parser_instance(self: Compiler, iargs: Tree, tname: str) -> None:
        """`Sub() sub;` in a parser: no constructor arguments."""
        if [a for a in kids(iargs) if a is not None]:
            raise self.fail(UnsupportedConstructError, iargs, f"parser {tname}: constructor "
                            "arguments are not supported", "parser constructor parameters")

    def check_block_apply(self: Compiler, kind: str, m: str, args: list[Any],
                          plist: list[tuple[str, str, P4Type]], tname: str, node: Any
                          ) -> list[Any]:
        """`sub.apply(...)` of a parser or control instance: the method is `apply`, with one
        argument per parameter; the arguments in parameter order."""
        if m != "apply":
            raise self.fail(UnknownNameError, node, f"{kind} has no method '{m}'", kind)
        self.check_args(args, {len(plist)}, node, f"{tname}.apply")
        return self.order_arguments(args, plist, node, f"{tname}.apply")

    def check_packet_in_argument(self: Compiler, a: Any, pname: str, tname: str, scope: Scope
                                 ) -> None:
        """A sub-parser's packet_in parameter gets the parser's own packet_in."""
        node = norm_expr(a)
        t = self.check_expr(node, scope)
        if node.data != "name_ref" or t.sym is None or t.sym.kind != "packet_in":
            raise self.fail(P4TypeError, a, f"{tname}.apply: argument '{pname}' must be "
                            "the packet_in", "parser apply")

    def check_select_case(self: Compiler, ks: Tree, sets: list[Any], nkeys: int) -> None:
        """A `select` case has one keyset per key, or one `default` / `_`."""
        if len(sets) != nkeys:
            if not (len(sets) == 1 and sets[0].data in ("ks_default", "ks_dontcare")):
                raise self.fail(P4TypeError, ks,
                                f"select has {nkeys} keys, this case {len(sets)}",
                                "select")

    def check_state(self: Compiler, node: Any, states: dict[str, str]) -> None:
        """A transition's target: `accept`, `reject` or a state of the parser."""
        name = ident(node)
        if name not in ("accept", "reject") and name not in states:
            raise self.fail(UnknownNameError, node, f"unknown parser state '{name}'", "transition")

    def check_control_constructor(self: Compiler, decl: Tree, ctor_args: dict[str, Sym]
                                  ) -> None:
        """A control's constructor parameters are bound to control instances (`ctor_args`)."""
        ann, name_node, params, ctor, *rest = kids(decl)
        for cname, _d, _ctype in self.ctor_param_types(ctor):
            if cname not in ctor_args:
                raise self.fail(UnsupportedConstructError, ctor, f"control {ident(name_node)}: "
                                f"constructor parameter '{cname}' is supported only as a "
                                "control bound to a control instance", "control constructor "
                                "parameters")

    def check_control_ctor_args(self: Compiler, loc: Tree, tname: str, given: list[Any],
                                names: list[str], cscope: Scope) -> list[Sym]:
        """`C2(c1) c2;`: one argument per constructor parameter of C2, each a control instance
        declared before it in the same control; those instances."""
        if len(given) != len(names):
            raise self.fail(UnsupportedConstructError if names else ArgumentCountError, loc,
                            f"control {tname} takes {len(names)} constructor arguments, got "
                            f"{len(given)}", "control constructor parameters")
        out = []
        for pname, a in zip(names, given, strict=True):
            node = norm_expr(a)
            sym = (cscope.names.get(ident(kids(node)[0])) if node.data == "name_ref"
                   else None)
            if sym is None or sym.kind != "control_inst" or len(sym.info) != 3:
                raise self.fail(UnsupportedConstructError, a, f"control {tname}: constructor "
                                f"argument for '{pname}' must be a control instance declared "
                                "before it", "control constructor parameters")
            out.append(sym)
        return out
