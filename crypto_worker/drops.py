"""Why a packet was dropped, and the exception that carries the reason out of the ESP code."""

from __future__ import annotations

import enum


class DropReason(enum.Enum):
    """Every reason the worker drops a frame; the values are the proto's `DropReason` names."""

    ICV_FAILURE = "DROP_REASON_ICV_FAILURE"
    REPLAY = "DROP_REASON_REPLAY"
    UNKNOWN_SA = "DROP_REASON_UNKNOWN_SA"
    SPI_MISMATCH = "DROP_REASON_SPI_MISMATCH"
    MALFORMED = "DROP_REASON_MALFORMED"
    SEQUENCE_EXHAUSTED = "DROP_REASON_SEQUENCE_EXHAUSTED"
    SA_MISMATCH = "DROP_REASON_SA_MISMATCH"
    DUMMY_PACKET = "DROP_REASON_DUMMY_PACKET"
    OVERSIZE = "DROP_REASON_OVERSIZE"
    INTERNAL = "DROP_REASON_INTERNAL"
    STATE_UNAVAILABLE = "DROP_REASON_STATE_UNAVAILABLE"


class PacketDropped(Exception):
    """Raised inside the ESP transforms; the processor counts it and sends nothing back."""

    def __init__(self, reason: DropReason, detail: str) -> None:
        super().__init__(f"{reason.name}: {detail}")
        self.reason = reason
        self.detail = detail
