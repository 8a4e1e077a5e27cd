"""The one codec: IPv4 as the API decided, MACs, IPv6, keys, hex.

Run just this file: .venv/bin/python -m pytest tests/tunnelctl/test_codec.py -q
"""

from __future__ import annotations

import pytest

from tunnelctl import wire_values
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb


def test_ipv4_matches_the_decided_wire_value() -> None:
    # /work/shared/api/README.md: 11.0.0.2 arrives as 33554443 = 0x0200000B.
    assert wire_values.encode_ipv4("11.0.0.2") == 33554443
    assert wire_values.decode_ipv4(33554443) == "11.0.0.2"


def test_ipv4_wire_bytes_are_network_order() -> None:
    wire = pb.IPV4Pair(sourceIp=wire_values.encode_ipv4("11.0.0.2")).SerializeToString()
    # field 1, wire type 5 (fixed32) = tag 0x0d, then the four address bytes in network order.
    assert wire == bytes([0x0D, 11, 0, 0, 2])


@pytest.mark.parametrize("address", ["0.0.0.0", "1.2.3.4", "255.255.255.255", "192.168.10.1"])
def test_ipv4_round_trips(address: str) -> None:
    assert wire_values.decode_ipv4(wire_values.encode_ipv4(address)) == address


@pytest.mark.parametrize("bad", ["11.0.0", "11.0.0.256", "eleven", "", "1.2.3.4/24"])
def test_ipv4_rejects_non_addresses(bad: str) -> None:
    with pytest.raises(wire_values.CodecError, match="dotted IPv4"):
        wire_values.encode_ipv4(bad)


@pytest.mark.parametrize("text", ["10:20:30:40:50:60", "10-20-30-40-50-60", "102030405060"])
def test_mac_forms(text: str) -> None:
    assert wire_values.encode_mac(text) == bytes([0x10, 0x20, 0x30, 0x40, 0x50, 0x60])


def test_mac_decodes_raw_and_reference_hex_text() -> None:
    assert wire_values.decode_mac(bytes.fromhex("605040302010")) == "60:50:40:30:20:10"
    assert wire_values.decode_mac(b"605040302010") == "60:50:40:30:20:10"


@pytest.mark.parametrize("bad", ["10:20:30:40:50", "10:20:30:40:50:6g", "10:20-30:40:50:60",
                                 "1020304050607"])
def test_mac_rejects_malformed(bad: str) -> None:
    with pytest.raises(wire_values.CodecError, match="MAC"):
        wire_values.encode_mac(bad)


def test_ipv6_round_trip_and_hex_text() -> None:
    packed = wire_values.encode_ipv6("2001:db8::1")
    assert len(packed) == 16
    assert wire_values.decode_ipv6(packed) == "2001:db8::1"
    assert wire_values.decode_ipv6(packed.hex().encode()) == "2001:db8::1"
    with pytest.raises(wire_values.CodecError, match="IPv6"):
        wire_values.encode_ipv6("2001:db8::zz")


def test_key_hex_to_bytes_and_errors_never_echo_the_key() -> None:
    assert wire_values.encode_key("00" * 36) == bytes(36)
    secret = "ab" * 31 + "zz"
    with pytest.raises(wire_values.CodecError) as raised:
        wire_values.encode_key(secret)
    assert secret not in str(raised.value)
    assert "ab" not in str(raised.value)
    assert wire_values.redact_key(bytes(36)) == "<secret len=36>"


def test_hex_data() -> None:
    assert wire_values.encode_hex("10203040") == bytes([0x10, 0x20, 0x30, 0x40])
    assert wire_values.encode_hex("0x10 20") == bytes([0x10, 0x20])
    assert wire_values.decode_hex(b"\x10\x20") == "1020"
    with pytest.raises(wire_values.CodecError):
        wire_values.encode_hex("123")


def test_unquoted_yaml_mac_gets_a_hint() -> None:
    import yaml

    parsed = yaml.safe_load("mac: 10:20:30:40:50:50")["mac"]
    assert isinstance(parsed, int)  # YAML 1.1 base-60: the trap the hint is about
    with pytest.raises(wire_values.CodecError, match="in quotes"):
        wire_values.encode_mac(parsed)
