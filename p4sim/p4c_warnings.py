"""The warnings p4c-bm2-ss gives for a program, found on p4sim's syntax tree.

A data-plane program should compile clean with the real compiler, and an editor needs the place:
each warning is ``file:line:column: [--Wwarn=KIND] warning: text``, the tag and text p4c uses.
Three kinds, each a simplified but sound-enough form of p4c's own analysis:

- ``unused``: a constant, an extern instance or an action parameter nothing refers to
  (p4c's RemoveUnusedDeclarations); ``@noWarn("unused")`` silences it, as in p4c. Declarations
  in the bundled core.p4/v1model.p4 are never reported.
- ``invalid-header``: a field of a header read or written where the header may have been made
  invalid. As in p4c (which checks the program after inlining), a control of the V1Switch
  package starts with every header "as it came" (not reported); ``h.setInvalid()`` makes ``h``
  maybe invalid until ``h.setValid()``, a whole-header copy carries its source's state, and
  ``if (h.isValid())`` (also through ``&&``, ``||``, ``!``, ``?:`` and ``else``) makes it valid in
  the guarded part; after an if or a table, a header is maybe invalid if it is on any path.
  Nested controls are followed where they are applied, actions where their table is applied or
  where they are called. Parsers, header stacks and unions are not checked (never reported).
- ``unsupported``: ``transition reject`` written explicitly (BMv2 has no reject state).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lark import Token, Tree

from p4sim.preprocess import Preprocessed
from p4sim.tree import ident, kids, norm

_HEADER_METHODS = {"isValid", "setValid", "setInvalid", "minSizeInBits", "minSizeInBytes"}


@dataclass(frozen=True, kw_only=True)
class P4Warning:
    """One warning, printed as p4c prints it (with our file:line:column in front)."""

    file: str
    line: int
    column: int
    kind: str  # p4c's -W name: unused, invalid-header, unsupported
    message: str

    def __str__(self) -> str:
        return (f"{self.file}:{self.line}:{self.column}: [--Wwarn={self.kind}] warning: "
                f"{self.message}")


def find_warnings(tree: Tree, pre: Preprocessed) -> list[P4Warning]:
    """Every warning for the program, in source order."""
    found = _Finder(tree, pre)
    found.unused()
    found.explicit_rejects()
    found.invalid_headers()
    unique = {(w.file, w.line, w.column, w.message): w for w in found.warnings}
    return sorted(unique.values(), key=lambda w: (w.file, w.line, w.column))


@dataclass
class _Finder:
    tree: Tree
    pre: Preprocessed
    warnings: list[P4Warning] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.headers = {ident(kids(d)[1]) for d in self.tree.children if d.data == "header_decl"}
        self.structs: dict[str, dict[str, str]] = {}
        self.typedefs: dict[str, str] = {}
        for decl in self.tree.children:
            if decl.data in ("struct_decl", "header_union_decl"):
                fields = {ident(kids(f)[2]): _type_name(kids(f)[1]) for f in kids(decl)[2:]
                          if isinstance(f, Tree) and f.data == "struct_field"}
                self.structs[ident(kids(decl)[1])] = fields if decl.data == "struct_decl" else {}
            elif decl.data == "typedef_decl":
                self.typedefs[ident(kids(decl)[2])] = _type_name(kids(decl)[1])
        self.global_actions = {ident(kids(d)[1]): d for d in self.tree.children
                               if d.data == "action_decl"}
        self.controls = {ident(kids(d)[1]): d for d in self.tree.children
                         if d.data == "control_decl"}

    # -- helpers ---------------------------------------------------------------------------------

    def warn(self, node: Any, kind: str, message: str) -> None:
        line, column = _position(node)
        file, origin_line = self.pre.origin(line)
        if _is_system(file):
            return
        self.warnings.append(P4Warning(file=file, line=origin_line, column=column, kind=kind,
                                       message=message))

    def resolve(self, name: str) -> str:
        while name in self.typedefs:
            name = self.typedefs[name]
        return name

    # -- unused ----------------------------------------------------------------------------------

    def unused(self) -> None:
        uses: dict[str, int] = {}
        for token in self.tree.scan_values(lambda v: isinstance(v, Token)):
            uses[str(token)] = uses.get(str(token), 0) + 1
        for node in self.tree.iter_subtrees():
            if node.data == "const_decl":
                anns, name_node = kids(node)[0], kids(node)[2]
            elif node.data == "instantiation" and not _is_main(node):
                anns, name_node = kids(node)[0], kids(node)[3]
            else:
                continue
            name = ident(name_node)
            if uses.get(name, 0) <= 1 and not _no_warn(anns):
                self.warn(name_node, "unused", f"'{name}' is unused")
        for action in self.tree.iter_subtrees():
            if action.data != "action_decl":
                continue
            _anns, _name, params, body = kids(action)
            body_names = {str(t) for t in body.scan_values(lambda v: isinstance(v, Token))}
            for param in kids(params):
                if not isinstance(param, Tree):
                    continue
                pname_node = kids(param)[3]
                if ident(pname_node) not in body_names and not _no_warn(kids(param)[0]):
                    self.warn(pname_node, "unused", f"'{ident(pname_node)}' is unused")

    # -- explicit reject -------------------------------------------------------------------------

    def explicit_rejects(self) -> None:
        for node in self.tree.iter_subtrees():
            if node.data == "transition":
                target = kids(node)[0]
            elif node.data == "select_case":
                target = kids(node)[1]
            else:
                continue
            if isinstance(target, Tree) and target.data == "name" and ident(target) == "reject":
                self.warn(target, "unsupported",
                          "Explicit transition to reject not supported on this target")

    # -- potentially invalid headers -------------------------------------------------------------

    def invalid_headers(self) -> None:
        for decl in self.tree.children:
            if decl.data == "instantiation" and _is_main(decl):
                for arg in kids(kids(decl)[2]):
                    if isinstance(arg, Tree) and arg.data == "constructor":
                        control = self.controls.get(str(kids(arg)[0]))
                        if control is not None:
                            _Control(self, control, {}).block_of_apply(frozenset())


class _Control:
    """The walk through one control's apply block, tracking headers that may be invalid."""

    def __init__(self, finder: _Finder, decl: Tree, rename: dict[str, str]) -> None:
        self.f = finder
        parts = kids(decl)
        self.vars: dict[str, str] = {}
        self.rename = rename  # parameter -> the caller's path it stands for (inlining)
        for param in kids(parts[2]):
            if isinstance(param, Tree):
                self.vars[ident(kids(param)[3])] = _type_name(kids(param)[2])
        self.tables: dict[str, Tree] = {}
        self.instances: dict[str, str] = {}
        self.actions: dict[str, Tree] = dict(finder.global_actions)
        for local in parts[4:-1]:
            if not isinstance(local, Tree):
                continue
            if local.data == "table_decl":
                self.tables[ident(kids(local)[1])] = local
            elif local.data == "action_decl":
                self.actions[ident(kids(local)[1])] = local
            elif local.data == "instantiation":
                self.instances[ident(kids(local)[3])] = _type_name(kids(local)[1])
        self.apply_block = parts[-1]

    def block_of_apply(self, invalid: frozenset[str]) -> frozenset[str]:
        return self.block(self.apply_block, invalid)

    # the type of an expression, when it is a path through structs and headers
    def header_path(self, node: Any) -> tuple[str, str] | None:
        """(path text in the outermost control's names, type name) for `a.b.c` paths."""
        node = norm(node)
        if not isinstance(node, Tree):
            return None
        if node.data == "name_ref":
            name = ident(kids(node)[0])
            if name not in self.vars:
                return None
            return self.rename.get(name, name), self.f.resolve(self.vars[name])
        if node.data == "member":
            base = self.header_path(kids(node)[0])
            if base is None:
                return None
            path, type_name = base
            member = ident(kids(node)[1])
            member_type = self.f.structs.get(type_name, {}).get(member)
            if member_type is None:
                return None
            return f"{path}.{member}", self.f.resolve(member_type)
        return None

    def is_header(self, node: Any) -> str | None:
        found = self.header_path(node)
        if found is not None and found[1] in self.f.headers:
            return found[0]
        return None

    # conditions: headers known valid when the condition is true / false
    def valid_if_true(self, cond: Any) -> frozenset[str]:
        cond = norm(cond)
        if not isinstance(cond, Tree):
            return frozenset()
        if cond.data == "call":
            target = kids(cond)[0]
            if isinstance(target, Tree) and target.data == "member" \
                    and ident(kids(target)[1]) == "isValid":
                header = self.is_header(kids(target)[0])
                if header:
                    return frozenset({header})
        if cond.data == "land":
            left, right = kids(cond)
            return self.valid_if_true(left) | self.valid_if_true(right)
        if cond.data == "lnot":
            return self.valid_if_false(kids(cond)[0])
        return frozenset()

    def valid_if_false(self, cond: Any) -> frozenset[str]:
        cond = norm(cond)
        if not isinstance(cond, Tree):
            return frozenset()
        if cond.data == "lor":
            left, right = kids(cond)
            return self.valid_if_false(left) | self.valid_if_false(right)
        if cond.data == "lnot":
            return self.valid_if_true(kids(cond)[0])
        return frozenset()

    # expressions: report accesses, follow tables applied inside them
    def expr(self, node: Any, invalid: frozenset[str]) -> frozenset[str]:
        """Check an expression; returns the state after it (a table applied inside)."""
        node = norm(node)
        if not isinstance(node, Tree):
            return invalid
        if node.data in ("land", "lor"):
            left, right = kids(node)
            after = self.expr(left, invalid)
            known = self.valid_if_true(left) if node.data == "land" else self.valid_if_false(left)
            return after | self.expr(right, after - known)
        if node.data == "cond":
            test, yes, no = kids(node)
            after = self.expr(test, invalid)
            return (self.expr(yes, after - self.valid_if_true(test))
                    | self.expr(no, after - self.valid_if_false(test)))
        if node.data == "call":
            target = kids(node)[0]
            if isinstance(target, Tree) and target.data == "member":
                method = ident(kids(target)[1])
                if method in _HEADER_METHODS and self.is_header(kids(target)[0]):
                    return invalid
                table = self.table_of(kids(target)[0]) if method == "apply" else None
                if table is not None:
                    return self.apply_table(table, invalid)
            for arg in kids(node)[1:]:
                invalid = self.expr(arg, invalid)
            return invalid
        if node.data == "member":
            header = self.is_header(kids(node)[0])
            if header is not None:
                if header in invalid:
                    self.f.warn(node, "invalid-header",
                                f"accessing a field of a potentially invalid header {header}")
                return invalid
        for child in kids(node):
            invalid = self.expr(child, invalid)
        return invalid

    def table_of(self, node: Any) -> Tree | None:
        node = norm(node)
        if isinstance(node, Tree) and node.data == "call":
            target = kids(node)[0]
            if isinstance(target, Tree) and target.data == "member" \
                    and ident(kids(target)[1]) == "apply":
                return self.table_of(kids(target)[0])
        if isinstance(node, Tree) and node.data == "name_ref":
            return self.tables.get(ident(kids(node)[0]))
        return None

    def apply_table(self, table: Tree, invalid: frozenset[str]) -> frozenset[str]:
        result = invalid
        for prop in kids(table)[2:]:
            if not isinstance(prop, Tree):
                continue
            if prop.data == "key_prop":
                for element in kids(prop):
                    self.expr(kids(element)[0], invalid)
            elif prop.data == "actions_prop":
                for ref in kids(prop):
                    action = self.actions.get(ident(kids(ref)[1]))
                    if action is not None:
                        result = result | self.block(kids(action)[3], invalid)
        return result

    def apply_control(self, type_name: str, args: Any,
                      invalid: frozenset[str]) -> frozenset[str]:
        decl = self.f.controls.get(type_name)
        if decl is None:
            return invalid
        params = [ident(kids(p)[3]) for p in kids(kids(decl)[2]) if isinstance(p, Tree)]
        values = [a for a in kids(args)] if isinstance(args, Tree) else []
        rename = {}
        for param, value in zip(params, values, strict=False):
            found = self.header_path(value)
            if found is not None:
                rename[param] = found[0]
        return _Control(self.f, decl, rename).block_of_apply(invalid)

    # statements
    def block(self, node: Any, invalid: frozenset[str]) -> frozenset[str]:
        for statement in kids(node):
            if isinstance(statement, Tree):
                invalid = self.statement(statement, invalid)
        return invalid

    def statement(self, node: Tree, invalid: frozenset[str]) -> frozenset[str]:
        kind = node.data
        if kind == "block":
            return self.block(node, invalid)
        if kind == "annotations":
            return invalid
        if kind == "assignment":
            target, value = kids(node)
            invalid = self.expr(value, invalid)
            header = self.is_header(target)
            if header is not None:  # a whole header: as valid as what is copied into it
                source = self.is_header(value)
                return invalid | {header} if source in invalid else invalid - {header}
            self.expr(target, invalid)
            return invalid
        if kind == "call_statement":
            target, args = kids(node)
            target = norm(target)
            if isinstance(target, Tree) and target.data == "member":
                method = ident(kids(target)[1])
                header = self.is_header(kids(target)[0])
                if header is not None and method == "setValid":
                    return invalid - {header}
                if header is not None and method == "setInvalid":
                    return invalid | {header}
                if method == "apply":
                    table = self.table_of(kids(target)[0])
                    if table is not None:
                        return self.apply_table(table, invalid)
                    base = kids(target)[0]
                    if isinstance(base, Tree) and base.data == "name_ref":
                        instance = self.instances.get(ident(kids(base)[0]))
                        if instance is not None:
                            return self.apply_control(instance, args, invalid)
            for arg in kids(args) if isinstance(args, Tree) else ():
                invalid = self.expr(arg, invalid)
            if isinstance(target, Tree) and target.data == "name_ref":
                action = self.actions.get(ident(kids(target)[0]))
                if action is not None:
                    return self.block(kids(action)[3], invalid)
            return invalid
        if kind == "if_statement":
            cond, yes, no = kids(node)
            invalid = self.expr(cond, invalid)
            then_state = self.statement(yes, invalid - self.valid_if_true(cond))
            else_start = invalid - self.valid_if_false(cond)
            else_state = self.statement(no, else_start) if isinstance(no, Tree) else else_start
            return then_state | else_state
        if kind == "switch_statement":
            subject, *cases = kids(node)
            invalid = self.expr(subject, invalid)
            result = invalid
            for case in cases:
                if isinstance(case, Tree) and case.data == "switch_case":
                    result = result | self.block(kids(case)[1], invalid)
            return result
        for child in kids(node):  # var_decl, const_decl, return value, ...
            if isinstance(child, Tree) and child.data not in ("annotations", "any_name"):
                self.expr(child, invalid)
        return invalid


def _type_name(node: Any) -> str:
    if isinstance(node, Token):
        return str(node)
    if isinstance(node, Tree) and node.data == "named_type":
        return str(node.children[0])
    return ""  # bit<>, stacks, specialised types: not a header path


def _position(node: Any) -> tuple[int, int]:
    if isinstance(node, Token):
        return node.line or 1, node.column or 1
    return node.meta.line, node.meta.column


def _is_system(file: str) -> bool:
    return "/p4include/" in file.replace("\\", "/") or file.startswith("<")


def _is_main(node: Tree) -> bool:
    return _type_name(kids(node)[1]) == "V1Switch"


def _no_warn(annotations: Any) -> bool:
    if not isinstance(annotations, Tree):
        return False
    return any(ident(kids(a)[0]) == "noWarn" and "unused" in str(a) for a in kids(annotations)
               if isinstance(a, Tree))


def format_all(warnings: Iterable[P4Warning]) -> Iterator[str]:
    """Lines as `p4sim check` prints them."""
    for warning in warnings:
        yield str(warning)
