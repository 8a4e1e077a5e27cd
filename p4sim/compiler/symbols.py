"""What names and compiled expressions mean while compiling.

Every part of the compiler passes these around: a `Sym` is what a name denotes in a `Scope`
(a variable, constant, table, extern instance...), a `Val` is a compiled expression (its Python
code, P4 type and constant value), `BoundArgs` is a call laid out for copy-in/copy-out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from p4sim.p4types import P4Type, VoidT

if TYPE_CHECKING:
    from p4sim.compiler.driver import Compiler


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
