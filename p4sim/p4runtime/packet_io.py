"""PacketIn and PacketOut metadata <-> the ``{metadata id: value}`` dicts of ``Switch``."""

from __future__ import annotations

from p4sim.p4runtime.bytestrings import decode_uint, encode_uint
from p4sim.p4runtime.errors import invalid
from p4sim.p4runtime.proto import p4r
from p4sim.p4runtime.schema import Schema


def packet_in_message(payload: bytes, metadata: dict[int, int]) -> p4r.StreamMessageResponse:
    return p4r.StreamMessageResponse(packet=p4r.PacketIn(
        payload=payload,
        metadata=[p4r.PacketMetadata(metadata_id=i, value=encode_uint(v))
                  for i, v in sorted(metadata.items())],
    ))


def packet_out_metadata(schema: Schema, packet: p4r.PacketOut) -> dict[int, int]:
    """Exactly one value per ``packet_out`` metadata field of the P4Info, each fitting its width."""
    if not schema.packet_out:
        raise invalid("the program has no @controller_header(\"packet_out\") header")
    fields = {f.id: f for f in schema.packet_out}
    values: dict[int, int] = {}
    for item in packet.metadata:
        info = fields.get(item.metadata_id)
        if info is None:
            raise invalid(f"packet_out has no metadata field with id {item.metadata_id}")
        if item.metadata_id in values:
            raise invalid(f"packet_out metadata {info.name!r} given twice")
        values[item.metadata_id] = decode_uint(item.value, info.bitwidth,
                                               f"packet_out metadata {info.name!r}")
    missing = [f.name for f in schema.packet_out if f.id not in values]
    if missing:
        raise invalid(f"packet_out metadata {missing[0]!r} is missing")
    return values
