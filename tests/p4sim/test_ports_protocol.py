"""The BMv2 packet-in message format.

Run: .venv/bin/python -m pytest tests/p4sim/test_ports_protocol.py -q
"""

import struct

import pytest
from ptf.dataplane import DataPlanePacketSourceNN

from p4sim.ports.nn_protocol import (
    InfoStatus,
    MsgType,
    NnProtocolError,
    decode,
    encode_frame,
    encode_info_reply,
    encode_port_message,
)


def test_message_types_are_numbered_as_ptf_numbers_them():
    for kind in MsgType:
        assert getattr(DataPlanePacketSourceNN, f"MSG_TYPE_{kind.name}") == kind.value


def test_frame_message_is_header_then_frame():
    raw = encode_frame(MsgType.PACKET_OUT, 7, b"\x01\x02\x03")
    assert raw == struct.pack("<iii", 4, 7, 3) + b"\x01\x02\x03"
    message = decode(raw)
    assert (message.kind, message.port, message.more, message.payload) == (
        MsgType.PACKET_OUT,
        7,
        3,
        b"\x01\x02\x03",
    )


def test_info_reply_copies_the_request_header_and_appends_the_status():
    assert encode_info_reply(3, 1, InfoStatus.NOT_SUPPORTED) == struct.pack("<iiii", 6, 3, 1, 1)


def test_port_message_has_no_body():
    assert encode_port_message(MsgType.PORT_SET_STATUS, 2, 1) == struct.pack("<iii", 2, 2, 1)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\x00\x00", "shorter than the 12-byte header"),
        (struct.pack("<iii", 9, 0, 0), "unknown message type 9"),
        (struct.pack("<iii", 3, 1, 5) + b"abc", "declares length 5 but carries 3 bytes"),
    ],
)
def test_malformed_messages_are_refused_with_the_reason(raw, expected):
    with pytest.raises(NnProtocolError, match=expected):
        decode(raw)
