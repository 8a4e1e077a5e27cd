"""The message format of BMv2's nanomsg packet-in socket (``--packet-in``), as PTF speaks it.

Every message starts with three little-endian 32-bit signed integers ``(type, port, more)``;
``more`` is the frame length for frames, the status for a port-status change and the info type
for an info request/reply. A frame message carries the frame after the header. An info reply
adds one more integer, the info status. This module only encodes and decodes; it owns no socket.

PTF's ``DataPlanePacketSourceNN`` and BMv2's ``PacketInDevMgrImp`` disagree on the numbers of the
port status values (PTF: UP=0, DOWN=1; BMv2: DOWN=0, UP=1). We follow BMv2, the switch side.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

HEADER = struct.Struct("<iii")
INFO_STATUS = struct.Struct("<i")


class MsgType(enum.IntEnum):
    """Message types, numbered as in BMv2 and PTF."""

    PORT_ADD = 0
    PORT_REMOVE = 1
    PORT_SET_STATUS = 2
    PACKET_IN = 3  # a frame entering the switch (client -> switch)
    PACKET_OUT = 4  # a frame leaving the switch (switch -> client)
    INFO_REQ = 5
    INFO_REP = 6


class PortStatus(enum.IntEnum):
    """Port status values as BMv2 numbers them (PTF numbers them the other way round)."""

    DOWN = 0
    UP = 1


class InfoStatus(enum.IntEnum):
    SUCCESS = 0
    NOT_SUPPORTED = 1


class NnProtocolError(ValueError):
    """A message that does not follow the packet-in format."""


@dataclass(frozen=True, kw_only=True, slots=True)
class NnMessage:
    """One decoded message: its type, port, the ``more`` field and, for frames, the frame."""

    kind: MsgType
    port: int
    more: int
    payload: bytes = b""


def decode(message: bytes) -> NnMessage:
    """Decode one message; raise NnProtocolError naming what is wrong with it."""
    if len(message) < HEADER.size:
        raise NnProtocolError(
            f"message of {len(message)} bytes is shorter than the {HEADER.size}-byte header"
        )
    raw_type, port, more = HEADER.unpack_from(message)
    try:
        kind = MsgType(raw_type)
    except ValueError:
        raise NnProtocolError(f"unknown message type {raw_type}") from None
    payload = bytes(message[HEADER.size :])
    if kind in (MsgType.PACKET_IN, MsgType.PACKET_OUT) and len(payload) != more:
        raise NnProtocolError(
            f"{kind.name} for port {port} declares length {more} but carries {len(payload)} bytes"
        )
    return NnMessage(kind=kind, port=port, more=more, payload=payload)


def encode_frame(kind: MsgType, port: int, frame: bytes) -> bytes:
    """A PACKET_IN (towards the switch) or PACKET_OUT (from the switch) message."""
    return HEADER.pack(int(kind), port, len(frame)) + frame


def encode_port_message(kind: MsgType, port: int, more: int = 0) -> bytes:
    """A PORT_ADD, PORT_REMOVE, PORT_SET_STATUS or INFO_REQ message (header only)."""
    return HEADER.pack(int(kind), port, more)


def encode_info_reply(port: int, info_type: int, status: InfoStatus) -> bytes:
    """The reply to an INFO_REQ: the request header with type INFO_REP, then the status."""
    return HEADER.pack(int(MsgType.INFO_REP), port, info_type) + INFO_STATUS.pack(int(status))
