"""Unit tests of the server's pure parts: byte strings, P4Info diff, device configs, arbiter.

Run: .venv/bin/python -m pytest tests/p4sim/p4runtime/test_p4rt_units.py -q
"""

from __future__ import annotations

import json

import grpc
import pytest

from p4sim.p4runtime.arbitration import Arbiter
from p4sim.p4runtime.bytestrings import decode_uint, encode_uint
from p4sim.p4runtime.device_config import make_device_config, parse_device_config
from p4sim.p4runtime.entities import _decode_one, decode_matches
from p4sim.p4runtime.errors import P4RuntimeError
from p4sim.p4runtime.p4info_diff import first_difference
from p4sim.p4runtime.proto import p4i, p4r, rpc_code
from p4sim.p4runtime.schema import FieldInfo, TableInfo
from tests.p4sim.p4runtime.fake_switch import fake_p4info


@pytest.mark.parametrize(("raw", "width", "value"), [
    (b"\x63", 8, 99), (b"\x00\x63", 16, 99), (b"\x00\x00\x63", 12, 99), (b"\x0f\xff", 12, 4095),
    (b"\x00", 1, 0), (b"\x00\x00\x00", 9, 0),
])
def test_accepted_byte_strings(raw, width, value):
    assert decode_uint(raw, width, "f") == value


@pytest.mark.parametrize(("raw", "width"), [(b"\x10\x00", 12), (b"\x02", 1), (b"\x01\x00", 8)])
def test_too_wide_byte_strings_name_the_field(raw, width):
    with pytest.raises(P4RuntimeError) as caught:
        decode_uint(raw, width, "table 't' field 'f'")
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"table 't' field 'f': value 0x{raw.hex()} does not fit in {width} bits" == \
        caught.value.message


def test_encoding_is_canonical():
    assert [encode_uint(v) for v in (0, 1, 255, 256, 0x0A010000)] == [
        b"\x00", b"\x01", b"\xff", b"\x01\x00", b"\x0a\x01\x00\x00"]


def test_p4info_diff_pairs_entities_by_id():
    a = fake_p4info()
    b = p4i.P4Info()
    b.CopyFrom(a)
    b.tables.reverse()
    assert first_difference(a, b) is None
    b.actions[1].params.add(id=9, name="extra", bitwidth=1)
    assert first_difference(a, b) == "actions[MyIngress.drop].params: expected 0 items, got 1"
    del b.tables[0]
    assert first_difference(a, b).startswith("tables[")


def test_device_config_round_trip_and_refusals(tmp_path):
    program = tmp_path / "prog.p4"
    program.write_text("// p4")
    named = parse_device_config(make_device_config(program, defines={"A": "1"}))
    assert (named.program, dict(named.defines)) == (program, {"A": "1"})
    carried = parse_device_config(make_device_config(program, embed=True))
    assert carried.program.read_text() == "// p4" and carried.program != program
    for raw, text in ((b"\xff", "not a p4sim device config"),
                      (json.dumps({"format": "bmv2"}).encode(), "format is 'bmv2'"),
                      (json.dumps({"format": "p4sim/1", "program": "/nope.p4"}).encode(),
                       "is not a file on the switch"),
                      (json.dumps({"format": "p4sim/1", "main": "a.p4",
                                   "files": {"a.p4": "", "../x.p4": ""}}).encode(),
                       "must be a relative path")):
        with pytest.raises(P4RuntimeError, match=text):
            parse_device_config(raw)


def _update(election_id=None, role=""):
    message = p4r.MasterArbitrationUpdate(device_id=1)
    if election_id is not None:
        message.election_id.low = election_id
    if role:
        message.role.name = role
    return message


def test_arbiter_downgrade_and_observers():
    arbiter = Arbiter(1)
    high, notes = arbiter.update(None, _update(20))
    assert [n.status.code for _, n in notes] == [rpc_code.OK]
    watcher, notes = arbiter.update(None, _update(None))  # no election id: never primary
    assert [(c is watcher, n.status.code) for c, n in notes] == [(True, rpc_code.ALREADY_EXISTS)]
    _, notes = arbiter.update(high, _update(5))  # the primary downgrades itself
    assert {n.status.code for _, n in notes} == {rpc_code.NOT_FOUND}
    assert len(notes) == 2 and not arbiter.is_primary("", 5) and not arbiter.is_primary("", 20)
    with pytest.raises(P4RuntimeError) as caught:
        arbiter.update(high, _update(5, role="other"))
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION


def test_counter_data_reports_only_what_the_unit_counts():
    from p4sim.p4runtime.reader import counter_data

    spec = p4i.CounterSpec
    assert (counter_data(spec.PACKETS, 3, 90).byte_count, counter_data(spec.PACKETS, 3, 90)
            .packet_count) == (0, 3)
    assert counter_data(spec.BYTES, 3, 90).packet_count == 0
    both = counter_data(spec.BOTH, 3, 90)
    assert (both.packet_count, both.byte_count) == (3, 90)


_TABLE = TableInfo(id=1, name="t", match_fields=(
    FieldInfo(id=1, name="e", bitwidth=12, match_kind="exact"),
    FieldInfo(id=2, name="m", bitwidth=8, match_kind="ternary")),
    action_scopes={}, const_default_action_id=0, is_const=False, size=8, direct_counter_id=0)


def _exact(raw: bytes) -> p4r.FieldMatch:
    return p4r.FieldMatch(field_id=1, exact=p4r.FieldMatch.Exact(value=raw))


def _ternary(value: bytes, mask: bytes) -> p4r.FieldMatch:
    return p4r.FieldMatch(field_id=2, ternary=p4r.FieldMatch.Ternary(value=value, mask=mask))


@pytest.mark.parametrize("fields", [
    [_exact(b"")], [_exact(b"\x10\x00")], [_exact(b"\x01"), _ternary(b"", b"\xff")],
    [_exact(b"\x01"), _ternary(b"\x01", b"")], [_exact(b"\x01"), _ternary(b"\x01\x00", b"\xff")],
    [_exact(b"\x01"), _ternary(b"\x01", b"\x01\x00")],
    [_exact(b"\x01"), _ternary(b"\x00", b"\x00")],
    [_exact(b"\x01"), _ternary(b"\x03", b"\x01")], [_ternary(b"\x01", b"\x01")],
], ids=["exact-empty", "exact-too-wide", "value-empty", "mask-empty", "value-too-wide",
        "mask-too-wide", "mask-zero", "outside-mask", "exact-missing"])
def test_inline_match_decoding_refuses_as_the_reference_does(fields):
    """decode_matches decodes well-formed exact and ternary fields inline: a malformed one
    must fail with _decode_one's own code and words (or the missing-field error)."""
    with pytest.raises(P4RuntimeError) as caught:
        decode_matches(_TABLE, fields)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    reference = None
    for field in fields:
        info = _TABLE.field(field.field_id)
        assert info is not None
        try:
            _decode_one(_TABLE, info.name, info.id, info.bitwidth, info.match_kind, field)
        except P4RuntimeError as error:
            reference = error.message
            break
    assert caught.value.message == (reference or "table 't': exact field 'e' is missing")


def test_inline_match_decoding_keeps_values_and_shares_masks():
    first = decode_matches(_TABLE, [_exact(b"\x00\x05"), _ternary(b"\x01", b"\x0f")])
    second = decode_matches(_TABLE, [_ternary(b"\x02", b"\x0f"), _exact(b"\x06")])
    assert [(m.field_id, m.kind, m.value, m.mask) for m in first] == [
        (1, "exact", 5, None), (2, "ternary", 1, 15)]
    assert second[0].mask is first[1].mask  # one int per distinct mask
