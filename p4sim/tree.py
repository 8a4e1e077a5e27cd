"""Helpers for walking p4sim's lark trees: children without grammar noise, identifiers, lvalues
as expressions, and expressions printed the way p4c names table keys."""

from __future__ import annotations

import keyword
import re
from typing import Any

from lark import Token, Tree

_HIDDEN_TOKENS = frozenset({"GT", "LT", "LOOKAHEAD_LT", "SHR_START"})
_NAME_ALIASES = {"n_apply": "apply", "n_key": "key", "n_actions": "actions",
                 "n_state": "state", "n_entries": "entries", "n_type": "type"}
def kids(t: Tree) -> list[Any]:
    """Children without the `<`/`>` tokens the grammar has to keep."""
    return [c for c in t.children if not (isinstance(c, Token) and c.type in _HIDDEN_TOKENS)]


def ident(t: Any) -> str:
    """The identifier spelled by a name/any_name/member_name node or token."""
    if isinstance(t, Token):
        return str(t)
    if t.data in _NAME_ALIASES:
        return _NAME_ALIASES[t.data]
    return ident(t.children[0])


def py(name: str) -> str:
    """A Python-safe identifier from a dotted P4 name."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return out + "_" if keyword.iskeyword(out) else out


_LV_MAP = {"lv_name": "name_ref", "lv_member": "member", "lv_index": "index", "lv_slice": "slice",
           "lv_type_member": "type_member"}


def norm(t: Any) -> Any:
    """Turn an lvalue tree into the equivalent expression tree."""
    if isinstance(t, Tree) and t.data in _LV_MAP:
        return Tree(_LV_MAP[t.data], [norm(c) for c in t.children], t.meta)
    return t


def norm_expr(t: Any) -> Any:
    return norm(t)


def source_text(t: Any) -> str:
    """An expression printed the way p4c names table keys (e.g. `hdr.ipv4.dstAddr`)."""
    t = norm(t)
    if isinstance(t, Token):
        return str(t)
    d = t.data
    k = kids(t)
    if d == "name_ref":
        return ident(k[0])
    if d == "member":
        return f"{source_text(k[0])}.{ident(k[1])}"
    if d == "index":
        return f"{source_text(k[0])}[{source_text(k[1])}]"
    if d == "slice":
        return f"{source_text(k[0])}[{source_text(k[1])}:{source_text(k[2])}]"
    if d == "int_lit":
        return str(t.children[0])
    if d == "call":
        return f"{source_text(k[0])}()"
    if d == "type_member":
        return f"{k[0]}.{ident(k[1])}"
    return d
