"""Tunnel files: shapes, YAML and JSON, duplicate keys, operations; the shipped examples.

Run just this file: .venv/bin/python -m pytest tests/tunnelctl/test_document.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunnelctl import wire_values
from tunnelctl.document import load_documents, parse_requests, tunnels_from_text
from tunnelctl.readable import InputError
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_three_shapes_and_multiple_documents() -> None:
    text = ("tunnels:\n  - {tunnelId: 1}\n  - {tunnelId: 2}\n---\n"
            "- {tunnelId: 3}\n---\ntunnelId: 4\n")
    assert [t["tunnelId"] for t in tunnels_from_text(text)] == [1, 2, 3, 4]


def test_json_file(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"tunnels": [{"tunnelId": 9, "nextAction": "FORWARD"}]}))
    [request] = parse_requests(load_documents(str(path)), operation=pb._CREATE)
    assert (request.tunnelId, request.operation, request.nextAction) == (9, pb._CREATE,
                                                                         pb.FORWARD)


@pytest.mark.parametrize("text", ["tunnels:\n  - {tunnelId: 1, tunnelId: 2}\n",
                                  "tunnelId: 1\ntunnelId: 2\n"])
def test_duplicate_yaml_keys_are_refused(text: str) -> None:
    with pytest.raises(InputError, match="duplicate key 'tunnelId'"):
        tunnels_from_text(text)


def test_duplicate_json_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"tunnelId": 1, "tunnelId": 2}')
    with pytest.raises(InputError, match="duplicate key 'tunnelId'"):
        load_documents(str(path))


@pytest.mark.parametrize(("text", "message"), [
    ("", "holds no tunnels"),
    ("tunnels: {tunnelId: 1}\n", "expected a list"),
    ("tunnels: []\nextra: 1\n", "unknown top-level key"),
    ("42\n", "expected a tunnel"),
    ("tunnels: [\n", "not valid YAML"),
])
def test_malformed_files(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        tunnels_from_text(text)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_documents(str(tmp_path / "absent.yaml"))


def test_operation_other_than_the_command_is_refused() -> None:
    tunnels = [{"tunnelId": 1}, {"tunnelId": 2, "operation": "_DELETE"}]
    with pytest.raises(InputError) as raised:
        parse_requests(tunnels, operation=pb._CREATE)
    assert raised.value.path == "tunnels[1].operation"


def test_examples_hold_the_reference_scenarios() -> None:
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert [path.name for path in files] == ["1-ipsec-geneve.yaml", "2-four-tunnel-chain.yaml",
                                             "3-rematch-chain.yaml", "4-fan-out.yaml"]
    by_file = {path.name: parse_requests(load_documents(str(path)), operation=pb._CREATE)
               for path in files}
    ids = {name: [request.tunnelId for request in requests]
           for name, requests in by_file.items()}
    assert ids == {"1-ipsec-geneve.yaml": [10000, 10001, 10002, 10003],
                   "2-four-tunnel-chain.yaml": [20000, 20001, 20002, 20003],
                   "3-rematch-chain.yaml": [30000, 30001],
                   "4-fan-out.yaml": [40000, 40001, 40002]}
    first = by_file["1-ipsec-geneve.yaml"]
    assert first[0].ipsecTunnel.ipsecDec.tunnelType == pb.TRANSPORT_NAT_TRAVERSAL
    assert first[0].match_criteria.ipv4Match.destinationIp == 33554443  # 11.0.0.2
    assert first[1].match_criteria.tunnelId == 10000 and first[1].nextAction == pb.FORWARD
    assert first[3].ipsecTunnel.ipsecEnc.tunnelType == pb.TUNNEL_NAT_TRAVERSAL
    chain = by_file["2-four-tunnel-chain.yaml"]
    assert [r.match_criteria.tunnelId for r in chain] == [0, 20000, 20001, 20002]
    assert not chain[3].match_criteria.HasField("ipsecMatch")  # previous tunnel only
    rematch = by_file["3-rematch-chain.yaml"]
    outer = rematch[0].ipsecTunnel.ipsecEnc.ipv4_tunnel
    assert rematch[1].match_criteria.ipv4Match.sourceIp == outer.sourceIp
    assert rematch[1].match_criteria.tunnelId == 0
    fan = by_file["4-fan-out.yaml"]
    assert {wire_values.decode_ipv4(r.match_criteria.ipv4Match.sourceIp) for r in fan[1:]} == {
        "15.0.0.2", "16.0.0.2"}
    for requests in by_file.values():
        assert all(request.nextAction != pb.NONE for request in requests)
