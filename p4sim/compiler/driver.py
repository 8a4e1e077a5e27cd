"""The compiler's driver: one `Compiler` per program, and the order of its work.

`Compiler` holds everything one compilation learns (types, symbols, the model for the P4Info,
the generated text) and is assembled from the parts in this package, one job each. `run` records
the declarations, finds `V1Switch(...) main`, then generates the classes, the parser and the five
controls in that order, compiles the text once and assigns the P4Info ids.
"""

from __future__ import annotations

from typing import Any

from lark import Token, Tree

from p4sim import bmv2_rules
from p4sim.compiled import CompiledProgram
from p4sim.compiler.calls import Calls
from p4sim.compiler.checker import Checker, Typed
from p4sim.compiler.checker_rules import CheckerRules
from p4sim.compiler.classes import GeneratedClasses
from p4sim.compiler.constfold import ConstantFolding
from p4sim.compiler.controls import Controls
from p4sim.compiler.declarations import Declarations
from p4sim.compiler.expressions import Expressions
from p4sim.compiler.externs import Externs
from p4sim.compiler.parsers import Parsers
from p4sim.compiler.pysource import Gen
from p4sim.compiler.statements import Statements
from p4sim.compiler.symbols import ExternDecl, Scope, Sym
from p4sim.compiler.tables import Tables
from p4sim.errors import (
    P4Error,
)
from p4sim.ids import IdAllocator
from p4sim.model import ProgramModel
from p4sim.p4types import P4Type, StructT, VoidT
from p4sim.preprocess import Preprocessed


class Compiler(Declarations, ConstantFolding, Checker, CheckerRules, GeneratedClasses, Parsers,
               Controls, Tables, Statements, Expressions, Calls, Externs):
    """One compilation of one program."""

    def __init__(self, tree: Tree, pre: Preprocessed) -> None:
        self.tree: Tree = tree
        self.pre: Preprocessed = pre
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
        self.gen: Gen = Gen()
        self.model: ProgramModel = ProgramModel()
        self.header_classes: dict[str, str] = {}
        self.header_decls: dict[str, Tree] = {}  # header type -> its declaration (for errors)
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
        self.in_function: bool = False  # compiling a program-level function (no `exit` there)
        self.direct_calls: dict[int, str] = {}  # `Sub.apply()` call site -> its instance
        # the `for` loops around the statement being compiled: (update steps, their scope)
        self.loops: list[tuple[list[Any], Scope]] = []
        # the checker's side table: id(expression node) -> (the node, what the checker learnt)
        self.typed: dict[int, tuple[Any, Typed]] = {}

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

    def run(self) -> CompiledProgram:
        for decl in self.tree.children:
            self.declare(decl)
        self.compile_main(self.check_main(self.globals.get("main")))
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

    def compile_main(self, blocks: list[str]) -> None:
        """The pipeline `V1Switch(...)` names (`blocks`, checked by `check_main`)."""
        parser_name, *control_names = blocks
        pdecl = self.parsers[parser_name]
        self.hdr_type, self.meta_type = self.check_pipeline_types(pdecl)
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


def compile_program(tree: Tree, pre: Preprocessed) -> CompiledProgram:
    """Check and compile a parsed program."""
    bmv2_rules.check(tree, pre)  # what p4c-bm2-ss refuses, refused first with its reasons
    comp = Compiler(tree, pre)
    result = comp.run()
    return result
