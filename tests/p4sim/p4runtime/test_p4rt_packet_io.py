"""PacketIn and PacketOut on the StreamChannel, metadata by P4Info id.

Run: .venv/bin/python -m pytest tests/p4sim/p4runtime/test_p4rt_packet_io.py -q
"""

from __future__ import annotations

import grpc
import pytest

from p4sim.p4runtime.proto import p4r
from tests.p4sim.p4runtime.fake_switch import CPU_PORT
from tests.p4sim.p4runtime.p4rt_helpers import CODE, INSERT, route, update, write

FRAME = b"\x0a\x09\x00\x01\x06" + b"to-the-controller"


@pytest.mark.bmv2
def test_frames_routed_to_the_cpu_port_reach_the_primary(stub, target, programmed, open_stream):
    ids = target.ids
    write(stub, target, update(INSERT, route(ids, b"\x0a\x09\x00\x00", 16,
                                             port=CPU_PORT.to_bytes(1, "big"))))
    backup = open_stream()
    backup.arbitrate(5)
    backup.next_arbitration()
    assert target.inject(3, FRAME) == []
    packet = programmed.next_of("packet")
    assert packet.payload == FRAME
    metadata = {m.metadata_id: m.value for m in packet.metadata}
    assert metadata[ids.packet_meta("packet_in", "ingress_port")] == b"\x03"
    assert backup.responses.empty()  # only the primary gets packets


def _packet_out(ids, port: bytes, *, pad: bytes | None = b"\x00") -> p4r.StreamMessageRequest:
    packet = p4r.PacketOut(payload=FRAME)
    packet.metadata.add(metadata_id=ids.packet_meta("packet_out", "egress_port"), value=port)
    if pad is not None:
        packet.metadata.add(metadata_id=ids.packet_meta("packet_out", "_pad"), value=pad)
    return p4r.StreamMessageRequest(packet=packet)


def test_packet_out_leaves_on_the_port_its_metadata_names(target, programmed):
    sent: list[tuple[int, bytes]] = []
    target.device.transmit = sent.extend
    programmed.send(_packet_out(target.ids, b"\x05"))
    programmed.send(_packet_out(target.ids, b"\x06"))
    programmed.arbitrate(10)  # the stream is handled in order: this answer follows both packets
    programmed.next_arbitration()
    assert sent == [(5, FRAME), (6, FRAME)]


@pytest.mark.parametrize(
    ("request_builder", "code", "text"),
    [
        (lambda ids: _packet_out(ids, b"\x05", pad=None), grpc.StatusCode.INVALID_ARGUMENT,
         "metadata '_pad' is missing"),
        (lambda ids: _packet_out(ids, b"\x02\x00"), grpc.StatusCode.INVALID_ARGUMENT,
         "does not fit in 9 bits"),
    ],
    ids=["missing-field", "too-wide"],
)
def test_bad_packet_out_metadata_is_a_stream_error(target, programmed, request_builder, code,
                                                   text):
    sent: list[tuple[int, bytes]] = []
    target.device.transmit = sent.extend
    programmed.send(request_builder(target.ids))
    error = programmed.next_of("error")
    assert error.canonical_code == CODE[code]
    assert text in error.message
    assert error.packet_out.packet_out.payload == FRAME
    assert sent == []


def test_only_the_primary_may_send_packets(target, programmed, open_stream):
    sent: list[tuple[int, bytes]] = []
    target.device.transmit = sent.extend
    backup = open_stream()
    backup.arbitrate(5)
    backup.next_arbitration()
    backup.send(_packet_out(target.ids, b"\x05"))
    error = backup.next_of("error")
    assert error.canonical_code == CODE[grpc.StatusCode.PERMISSION_DENIED]
    assert sent == []
