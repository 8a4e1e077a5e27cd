"""The one error type of the P4Runtime server: a gRPC status code and a message for the client."""

from __future__ import annotations

import grpc

from p4sim.errors import (
    AlreadyExistsError,
    EntryError,
    InvalidEntryError,
    NotFoundError,
    TableFullError,
)


class P4RuntimeError(Exception):
    """A request (or one update of a batch) failed with ``code``; ``message`` goes to the client."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


def invalid(message: str) -> P4RuntimeError:
    return P4RuntimeError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> P4RuntimeError:
    return P4RuntimeError(grpc.StatusCode.NOT_FOUND, message)


def denied(message: str) -> P4RuntimeError:
    return P4RuntimeError(grpc.StatusCode.PERMISSION_DENIED, message)


def unimplemented(message: str) -> P4RuntimeError:
    return P4RuntimeError(grpc.StatusCode.UNIMPLEMENTED, message)


# How the runtime state's errors map to P4Runtime status codes (the one mapping table).
_ENTRY_ERROR_CODES: tuple[tuple[type[EntryError], grpc.StatusCode], ...] = (
    (AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (TableFullError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (InvalidEntryError, grpc.StatusCode.INVALID_ARGUMENT),
)


def from_entry_error(error: EntryError) -> P4RuntimeError:
    """The P4Runtime error for a refusal of the runtime state."""
    for kind, code in _ENTRY_ERROR_CODES:
        if isinstance(error, kind):
            return P4RuntimeError(code, str(error))
    return P4RuntimeError(grpc.StatusCode.UNKNOWN, str(error))
