"""Typed request errors and the one table that maps them onto the API's error enums.

Validation raises :class:`RequestError` with an internal :class:`ErrorCode`, the field path (in
v1alpha1 names) and a message naming the bad value. The servicer turns it into the wire ``Error``
through :data:`API_ERRORS`; nothing else spells API enum numbers for errors.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import grpc


class ErrorCode(enum.Enum):
    """What went wrong with one request, independent of any API version."""

    MISSING_FIELD = "missing-field"
    INVALID_FIELD = "invalid-field"
    UNKNOWN_TUNNEL = "unknown-tunnel"
    DUPLICATE_TUNNEL = "duplicate-tunnel"
    TUNNEL_IN_USE = "tunnel-in-use"
    UNSUPPORTED_MATCH = "unsupported-match"
    UNSUPPORTED_TUNNEL = "unsupported-tunnel"
    INVALID_KEY = "invalid-key"
    UNSUPPORTED_CIPHER = "unsupported-cipher"
    UNSUPPORTED_MODE = "unsupported-mode"
    IPSEC_FIELD = "ipsec-field"
    GENEVE_OPTION = "geneve-option"
    TOO_MANY_OPTIONS = "too-many-options"
    GENEVE_FIELD = "geneve-field"
    TABLE_FULL = "table-full"
    DATAPLANE_UNAVAILABLE = "dataplane-unavailable"


class RequestError(Exception):
    """One request is invalid or could not be applied; ``str()`` is the client-facing text."""

    def __init__(self, code: ErrorCode, field: str, message: str) -> None:
        self.code = code
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


@dataclass(frozen=True, kw_only=True)
class ApiError:
    """Where an error goes on the wire: the ``tunnelAdditionError`` field and its enum number."""

    category: str  # "matchError" | "tunnelError" | "ipsecError" | "geneveError"
    value: int


# MatchError: missingFields=0, invalidTunnelId=1, invalidCapabilities=2, invalidField=3
# TunnelError: notSupportedTunnel=0
# IPSecError: invalidKey=0, nonSupportedEncryption=1, nonSupportedTunnelType=2, IPSecmissingFields=3
# GeneveError: invalidOption=0, tooManyOptions=1, invalidGeneveField=2
API_ERRORS: dict[ErrorCode, ApiError] = {
    ErrorCode.MISSING_FIELD: ApiError(category="matchError", value=0),
    ErrorCode.UNKNOWN_TUNNEL: ApiError(category="matchError", value=1),
    ErrorCode.DUPLICATE_TUNNEL: ApiError(category="matchError", value=1),
    ErrorCode.TUNNEL_IN_USE: ApiError(category="matchError", value=1),
    ErrorCode.UNSUPPORTED_MATCH: ApiError(category="matchError", value=2),
    ErrorCode.INVALID_FIELD: ApiError(category="matchError", value=3),
    ErrorCode.UNSUPPORTED_TUNNEL: ApiError(category="tunnelError", value=0),
    ErrorCode.TABLE_FULL: ApiError(category="tunnelError", value=0),
    ErrorCode.DATAPLANE_UNAVAILABLE: ApiError(category="tunnelError", value=0),
    ErrorCode.INVALID_KEY: ApiError(category="ipsecError", value=0),
    ErrorCode.UNSUPPORTED_CIPHER: ApiError(category="ipsecError", value=1),
    ErrorCode.UNSUPPORTED_MODE: ApiError(category="ipsecError", value=2),
    ErrorCode.IPSEC_FIELD: ApiError(category="ipsecError", value=3),
    ErrorCode.GENEVE_OPTION: ApiError(category="geneveError", value=0),
    ErrorCode.TOO_MANY_OPTIONS: ApiError(category="geneveError", value=1),
    ErrorCode.GENEVE_FIELD: ApiError(category="geneveError", value=2),
}


class NotFound(Exception):
    """A read named a tunnel id that does not exist (gRPC NOT_FOUND)."""


class InvalidArgument(Exception):
    """A unary request is malformed as a whole (gRPC INVALID_ARGUMENT)."""


# Exceptions the servicer turns into a gRPC status; anything else becomes INTERNAL with a
# reference id (traceback in the server log, never sent to the client).
GRPC_STATUS: dict[type[Exception], grpc.StatusCode] = {
    NotFound: grpc.StatusCode.NOT_FOUND,
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
}
