"""The types the front end checks and the code generator lays out."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class P4Type:
    """Base of all p4sim types."""

    def show(self) -> str:
        """The type as P4 source spells it."""
        return type(self).__name__


@dataclass(frozen=True)
class BitT(P4Type):
    width: int
    signed: bool = False

    def show(self) -> str:
        return f"{'int' if self.signed else 'bit'}<{self.width}>"


@dataclass(frozen=True)
class InfIntT(P4Type):
    """An integer literal without a width (`int`): adapts to the other operand."""

    def show(self) -> str:
        return "int"


@dataclass(frozen=True)
class BoolT(P4Type):
    def show(self) -> str:
        return "bool"


@dataclass(frozen=True)
class ErrorT(P4Type):
    def show(self) -> str:
        return "error"


@dataclass(frozen=True)
class StringT(P4Type):
    def show(self) -> str:
        return "string"


@dataclass(frozen=True)
class VoidT(P4Type):
    def show(self) -> str:
        return "void"


@dataclass(frozen=True)
class MatchKindT(P4Type):
    def show(self) -> str:
        return "match_kind"


@dataclass(frozen=True)
class VarbitT(P4Type):
    max_width: int

    def show(self) -> str:
        return f"varbit<{self.max_width}>"


@dataclass(frozen=True)
class FieldT:
    name: str
    type: P4Type
    annotations: tuple[tuple[str, tuple[object, ...]], ...] = ()


@dataclass(frozen=True)
class StructLikeT(P4Type):
    name: str
    fields: tuple[FieldT, ...] = field(compare=False)
    annotations: tuple[tuple[str, tuple[object, ...]], ...] = field(default=(), compare=False)

    def show(self) -> str:
        return self.name

    def field(self, name: str) -> FieldT | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None


@dataclass(frozen=True)
class HeaderT(StructLikeT):
    def fixed_width(self) -> int:
        """Bits of every field but the varbit (bool 1 bit, serializable enums their type's)."""
        return sum(bit_width(f.type) for f in self.fields if not isinstance(f.type, VarbitT))


@dataclass(frozen=True)
class StructT(StructLikeT):
    pass


@dataclass(frozen=True)
class HeaderUnionT(StructLikeT):
    """A header_union: headers of which at most one is valid."""


@dataclass(frozen=True)
class StackT(P4Type):
    elem: HeaderT | HeaderUnionT
    size: int

    def show(self) -> str:
        return f"{self.elem.name}[{self.size}]"


@dataclass(frozen=True)
class EnumT(P4Type):
    name: str
    members: tuple[str, ...] = field(compare=False)
    underlying: BitT | None = field(default=None, compare=False)
    values: tuple[int, ...] = field(default=(), compare=False)

    def show(self) -> str:
        return self.name


@dataclass(frozen=True)
class ListT(P4Type):
    """A `{a, b, ...}` list expression (checksum and hash data, select keys)."""

    elems: tuple[P4Type, ...]

    def show(self) -> str:
        return "tuple<" + ", ".join(e.show() for e in self.elems) + ">"


@dataclass(frozen=True)
class TypeParamT(P4Type):
    """A generic parameter of an extern declaration: accepts any type."""

    name: str

    def show(self) -> str:
        return self.name


@dataclass(frozen=True)
class ExternT(P4Type):
    name: str

    def show(self) -> str:
        return self.name


def bit_width(t: P4Type) -> int:
    """Width in bits of a fixed-width scalar (bool counts 1); 0 if none."""
    if isinstance(t, BitT):
        return t.width
    if isinstance(t, BoolT):
        return 1
    if isinstance(t, EnumT) and t.underlying is not None:
        return t.underlying.width
    if isinstance(t, HeaderT):
        return t.fixed_width()
    if isinstance(t, StructT):
        return sum(bit_width(f.type) for f in t.fields)
    return 0
