"""Parsing preprocessed P4 text into a lark tree, with errors mapped back to file:line:column.

Like p4c's lexer, we tell type names from other identifiers before parsing: a first pass over the
text collects every name declared as a type (header, struct, enum, extern, parser, control,
package, typedef, type parameters), and the lexer emits those as TYPE_IDENTIFIER. That is what
lets an LALR grammar tell `(T) x` (a cast) from `(a) - x`, and `T x;` from `a(x);`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from p4sim.errors import P4SyntaxError
from p4sim.preprocess import Preprocessed

_GRAMMAR = Path(__file__).with_name("grammar.lark")

_TYPE_DECL = re.compile(
    r"\b(?:header|header_union|struct|enum(?:\s+bit\s*<\s*\w+\s*>)?|extern|parser|control|package)"
    r"\s+([A-Za-z_]\w*)\s*(?:<([^<>]*)>)?\s*[{(;]"
)
_TYPEDEF = re.compile(r"\b(?:typedef|type)\b[^;{}]*?\b([A-Za-z_]\w*)\s*;")
_METHOD_TYPE_PARAMS = re.compile(r"\b[A-Za-z_]\w*\s*<\s*([A-Z]\w*(?:\s*,\s*[A-Z]\w*)*)\s*>\s*\(")
_KEYWORDS = frozenset(
    "void bool bit int varbit error string tuple match_kind".split()
)


def collect_type_names(text: str) -> frozenset[str]:
    """Every identifier the program declares as a type (a p4c-style lexer symbol table)."""
    names: set[str] = set()
    for m in _TYPE_DECL.finditer(text):
        names.add(m.group(1))
        if m.group(2):
            names.update(p.strip() for p in m.group(2).split(",") if p.strip())
    for m in _TYPEDEF.finditer(text):
        names.add(m.group(1))
    for m in _METHOD_TYPE_PARAMS.finditer(text):
        names.update(p.strip() for p in m.group(1).split(","))
    return frozenset(names - _KEYWORDS)


_ENUM_DECL = re.compile(r"\benum\s+(?:bit\s*<\s*\w+\s*>\s+)?([A-Za-z_]\w*)")


class _ValueNamesPostLex:
    """Token post-processing with one token of lookahead: a type name directly followed by `.`
    is a value (a parameter or variable spelled like a type, e.g. `hdr.x` in a program that
    also declares `header hdr`) unless it names an enum, whose members are reached with `.`.
    p4c scopes its type names; this covers the common case without a scoped lexer."""

    always_accept = ()

    def __init__(self) -> None:
        self.enum_names: frozenset[str] = frozenset()

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        previous: Token | None = None
        for token in stream:
            if previous is not None:
                if (previous.type == "TYPE_IDENTIFIER" and token.type == "DOT"
                        and previous.value not in self.enum_names):
                    previous = Token.new_borrow_pos("NAME", previous.value, previous)
                yield previous
            previous = token
        if previous is not None:
            yield previous


_POSTLEX = _ValueNamesPostLex()


class _TypeNameLexer:
    """Lexer callback turning declared type names into TYPE_IDENTIFIER tokens.

    lark takes callbacks when the parser is built, so the set of names for the current parse is
    swapped in under a lock (`parse_source` is therefore safe to call from several threads).
    """

    def __init__(self) -> None:
        self.type_names: frozenset[str] = frozenset()
        self.lock = threading.Lock()

    def __call__(self, token: Token) -> Token:
        if token.value in self.type_names:
            return Token.new_borrow_pos("TYPE_IDENTIFIER", token.value, token)
        return token


_RETYPE = _TypeNameLexer()


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(
        _GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="basic",
        propagate_positions=True,
        maybe_placeholders=True,
        lexer_callbacks={"NAME": _RETYPE},
        postlex=_POSTLEX,
    )


def parse_source(pre: Preprocessed) -> Tree:
    """Parse preprocessed text; raise P4SyntaxError at the original file:line:column."""
    parser = _parser()
    try:
        with _RETYPE.lock:
            _RETYPE.type_names = collect_type_names(pre.text)
            _POSTLEX.enum_names = frozenset(_ENUM_DECL.findall(pre.text))
            return parser.parse(pre.text)
    except UnexpectedInput as exc:
        file, line = pre.origin(exc.line if exc.line and exc.line > 0 else 1)
        column = exc.column if exc.column and exc.column > 0 else 1
        if isinstance(exc, UnexpectedToken):
            token = exc.token
            what = "end of file" if token.type == "$END" else f"{token.value!r}"
            message = f"syntax error: unexpected {what}"
        elif isinstance(exc, UnexpectedCharacters):
            char = pre.text[exc.pos_in_stream] if exc.pos_in_stream is not None else "?"
            message = f"syntax error: unexpected character {char!r}"
        elif isinstance(exc, UnexpectedEOF):
            message = "syntax error: unexpected end of file"
        else:
            message = "syntax error"
        raise P4SyntaxError(message, file=file, line=line, column=column,
                            construct="syntax") from None
