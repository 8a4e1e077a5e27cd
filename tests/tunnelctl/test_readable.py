"""Readable form <-> ipTunnelRequest: field names, enum names, codecs, errors naming the field.

Run just this file: .venv/bin/python -m pytest tests/tunnelctl/test_readable.py -q
"""

from __future__ import annotations

import pytest

from tunnelctl import wire_values
from tunnelctl.readable import InputError, from_readable, to_readable
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff01020304"


def _request(data: dict) -> pb.ipTunnelRequest:
    return from_readable(data, pb.ipTunnelRequest(), "tunnels[0]")


def test_decrypt_tunnel_fields_land_on_the_wire_form() -> None:
    request = _request({
        "tunnelId": 10000,
        "match_criteria": {"ipv4Match": {"sourceIp": "11.0.0.1", "destinationIp": "11.0.0.2/24"}},
        "nextAction": "RECIRCULATE",
        "ipsecTunnel": {"ipsecDec": {
            "tunnelType": "TRANSPORT_NAT_TRAVERSAL", "encryptionType": "_aes128gcm96",
            "ipsecSAs": [{"spi": 780, "encryptionKey": KEY_HEX, "operation": "_CREATE"}]}},
    })
    match = request.match_criteria.ipv4Match
    assert (match.sourceIp, match.sourceIpPrefix) == (wire_values.encode_ipv4("11.0.0.1"), 32)
    assert (match.destinationIp, match.destinationIpPrefix) == (33554443, 24)
    assert request.nextAction == pb.RECIRCULATE
    dec = request.ipsecTunnel.ipsecDec
    assert dec.tunnelType == pb.TRANSPORT_NAT_TRAVERSAL
    assert dec.encryptionType == pb._aes128gcm96
    assert dec.ipsecSAs[0].encryptionKey == bytes.fromhex(KEY_HEX)
    assert dec.ipsecSAs[0].operation == pb._CREATE


def test_json_field_names_and_case_insensitive_enums_are_accepted() -> None:
    request = _request({"matchCriteria": {"tunnelId": 7}, "nextAction": "forward",
                        "geneve": {"geneveDecap": None}})
    assert request.match_criteria.tunnelId == 7
    assert request.nextAction == pb.FORWARD
    assert request.geneve.HasField("geneveDecap")


def test_geneve_encap_macs_and_option_data() -> None:
    request = _request({"geneve": {"geneveEncap": {
        "innerMacPair": {"sourceMac": "10:20:30:40:50:60", "destinationMac": "605040302010"},
        "geneveOption": [{"optionClass": 0x104, "type": 0x11, "length": 1, "data": "10203040"}],
    }}})
    encap = request.geneve.geneveEncap
    assert encap.innerMacPair.sourceMac == bytes.fromhex("102030405060")
    assert encap.innerMacPair.destinationMac == bytes.fromhex("605040302010")
    assert encap.geneveOption[0].data == bytes.fromhex("10203040")


def test_to_readable_round_trips_and_redacts_keys() -> None:
    data = {
        "tunnelId": 5,
        "match_criteria": {"ipv6Match": {"sourceIp": "2001:db8::1/64"}},
        "nextAction": "FORWARD",
        "ipsecTunnel": {"ipsecEnc": {
            "tunnelType": "TRANSPORT", "encryptionType": "_aes256gcm64",
            "ipsecSA": {"spi": 300, "encryptionKey": KEY_HEX}}},
    }
    shown = to_readable(_request(data))
    enc = shown["ipsecTunnel"]["ipsecEnc"]
    # Zero-valued enums with a meaning (TRANSPORT, _aes256gcm64) are shown, not dropped.
    assert enc["tunnelType"] == "TRANSPORT"
    assert enc["encryptionType"] == "_aes256gcm64"
    assert enc["ipsecSA"] == {"spi": 300, "encryptionKey": "<secret len=36>"}
    assert shown["match_criteria"] == {"ipv6Match": {"sourceIp": "2001:db8::1/64"}}
    assert KEY_HEX not in repr(shown)
    assert "operation" not in shown  # _NONE is "nothing" and left out


@pytest.mark.parametrize(
    ("data", "path", "reason"),
    [
        ({"tunnelid": 1}, "tunnels[0].tunnelid", "did you mean 'tunnelId'"),
        ({"nextAction": "FORWRD"}, "tunnels[0].nextAction", "did you mean 'FORWARD'"),
        ({"tunnelId": -1}, "tunnels[0].tunnelId", "out of range"),
        ({"tunnelId": True}, "tunnels[0].tunnelId", "expected an integer"),
        ({"match_criteria": {"ipv4Match": {"sourceIp": "11.0.0.300"}}},
         "tunnels[0].match_criteria.ipv4Match.sourceIp", "dotted IPv4"),
        ({"match_criteria": {"ipv4Match": {"sourceIp": "11.0.0.1/33"}}},
         "tunnels[0].match_criteria.ipv4Match.sourceIp", "prefix length"),
        ({"match_criteria": {"ipv4Match": {"sourceIp": "11.0.0.1/24", "sourceIpPrefix": 16}}},
         "tunnels[0].match_criteria.ipv4Match.sourceIpPrefix", "contradicts"),
        ({"geneve": {"geneveDecap": {}}, "nat": {}}, "tunnels[0].nat", "only one of"),
        ({"geneve": {"geneveEncap": {"geneveOption": {"type": 1}}}},
         "tunnels[0].geneve.geneveEncap.geneveOption", "expected a list"),
        ({"geneve": {"geneveEncap": {"geneveOption": [{"data": 10203040}]}}},
         "tunnels[0].geneve.geneveEncap.geneveOption[0].data", "quoted hex"),
        ({"geneve": {"geneveEncap": {"innerMacPair": {"sourceMac": "10:20:30"}}}},
         "tunnels[0].geneve.geneveEncap.innerMacPair.sourceMac", "MAC address"),
        ({"match_criteria": []}, "tunnels[0].match_criteria", "expected a mapping"),
    ],
)
def test_bad_input_names_the_field(data: dict, path: str, reason: str) -> None:
    with pytest.raises(InputError) as raised:
        _request(data)
    assert raised.value.path == path
    assert reason in raised.value.reason


def test_bad_key_error_never_contains_the_key() -> None:
    bad = KEY_HEX[:-1] + "g"
    with pytest.raises(InputError) as raised:
        _request({"ipsecTunnel": {"ipsecEnc": {"ipsecSA": {"encryptionKey": bad}}}})
    assert raised.value.path == "tunnels[0].ipsecTunnel.ipsecEnc.ipsecSA.encryptionKey"
    assert bad not in str(raised.value) and KEY_HEX[:16] not in str(raised.value)
