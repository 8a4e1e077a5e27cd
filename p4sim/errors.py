"""Errors raised by p4sim.

Two families: `P4Error` for problems in the P4 source (found once, when the program is loaded,
always with file:line:column so an editor can jump there), and `EntryError` for control-plane
writes that would leave the runtime state inconsistent (the P4Runtime server maps them to gRPC
status codes).
"""

from __future__ import annotations


class P4Error(Exception):
    """A front-end error: the source cannot be run as written.

    `str(error)` is ``"file:line:column: error: message"``, the format compilers use.
    `construct` names the P4 construct involved (e.g. ``"assignment"``, ``"table"``).
    """

    kind = "error"

    def __init__(
        self, message: str, *, file: str, line: int, column: int = 1, construct: str = ""
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.construct = construct
        super().__init__(f"{file}:{line}:{column}: error: {message}")


class P4SyntaxError(P4Error):
    """The text does not parse (unexpected token or character)."""


class PreprocessorError(P4Error):
    """A `#` directive is malformed, unbalanced or names a missing file."""


class UnknownNameError(P4Error):
    """A name is used that no declaration in scope defines."""


class DuplicateDeclarationError(P4Error):
    """Two declarations of the same name in one scope."""


class P4TypeError(P4Error):
    """Types or widths do not agree (assignment without a cast, slice out of range, ...)."""


class ArgumentCountError(P4Error):
    """A call passes the wrong number of arguments."""


class UnsupportedConstructError(P4Error):
    """Valid P4 that p4sim does not implement; refused instead of silently ignored."""


class EntryError(Exception):
    """A control-plane write that cannot be applied; state is left unchanged."""


class AlreadyExistsError(EntryError):
    """An entry with the same key is already in the table."""


class NotFoundError(EntryError):
    """No entry with this key (or no such table/action/index)."""


class TableFullError(EntryError):
    """The table already holds `size` entries."""


class InvalidEntryError(EntryError):
    """The entry does not fit the table (key arity, match kind, action, argument count)."""
