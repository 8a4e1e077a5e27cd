"""get/list output fed back to create -f / update -f, and create --atomic (issue 14 item 3),
against a real controller (see tc_support).

Run just this file: .venv/bin/python -m pytest tests/tunnelctl/test_round_trip.py -q
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import yaml
from tc_support import REPO, Controller

EXAMPLE = REPO / "examples" / "3-rematch-chain.yaml"  # 30000 ipsec-encrypt, 30001 geneve


def _geneve_pair(tmp_path: Path, *, second_vni: int = 702) -> Path:
    """Two Geneve tunnels (no keys: a read shows all of a Geneve tunnel), 30001 and 30002."""
    (_, geneve) = yaml.safe_load(EXAMPLE.read_text())["tunnels"]
    other = copy.deepcopy(geneve)
    other["tunnelId"] = 30002
    other["match_criteria"]["ipv4Match"]["sourceIp"] = "14.0.0.3/32"
    other["geneve"]["geneveEncap"]["vni"] = second_vni
    path = tmp_path / "pair.yaml"
    path.write_text(yaml.safe_dump({"tunnels": [geneve, other]}))
    return path


def test_get_yaml_is_accepted_by_update(server: Controller, tmp_path: Path) -> None:
    assert server.cli("create", "-f", str(_geneve_pair(tmp_path))).status == 0
    before = server.tunnels()
    got = server.cli("get", "30001", "30002", "-o", "yaml")
    assert got.status == 0, got.err
    path = tmp_path / "got.yaml"
    path.write_text(got.out)

    updated = server.cli("update", "-f", str(path))
    assert updated.status == 0, updated.err
    assert updated.out == ("updated tunnels[0] tunnel 30001 (geneve-encap)\n"
                           "updated tunnels[1] tunnel 30002 (geneve-encap)\n")
    assert updated.err == "".join(
        f"note: tunnels[{i}]: get/list output: sending its ipTunnel, ignoring the read-only "
        "tunnelCounters\n" for i in (0, 1))
    assert server.tunnels() == before


def test_keys_missing_from_a_read_are_pointed_out(server: Controller, tmp_path: Path) -> None:
    assert server.cli("create", "-f", str(EXAMPLE)).status == 0
    got = server.cli("get", "30000", "-o", "yaml")
    path = tmp_path / "encrypt.yaml"
    path.write_text(got.out)
    result = server.cli("update", "--dry-run", "-f", str(path))
    assert result.err == ("note: tunnels[0]: get/list output: sending its ipTunnel, ignoring the "
                          "read-only tunnelCounters (reads never show keys: add each SA's "
                          "encryptionKey before sending)\n")


def test_list_json_is_accepted_by_create(server: Controller, tmp_path: Path) -> None:
    assert server.cli("create", "-f", str(_geneve_pair(tmp_path))).status == 0
    listed = server.cli("list", "-o", "json")
    assert listed.status == 0, listed.err
    before = server.tunnels()
    assert server.cli("delete", "--all").status == 0
    path = tmp_path / "listed.json"
    path.write_text(listed.out)
    json.loads(listed.out)  # strict JSON, read as such because of the suffix

    created = server.cli("create", "-f", str(path))
    assert created.status == 0, created.err
    assert server.tunnels() == before


def test_ip_tunnel_beside_request_fields_is_explained(server: Controller,
                                                       tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text("- {tunnelId: 5, nextAction: FORWARD, ipTunnel: {tunnelId: 5}}\n")
    result = server.cli("create", "-f", str(path))
    assert result.status == 2
    assert "did you mean" not in result.err
    assert result.err == ("error: tunnels[0].ipTunnel: 'ipTunnel' wraps a tunnel only in "
                          "get/list output (beside tunnelId, tunnelCounters, error), not beside "
                          "nextAction; write the tunnel's fields directly\n")


def test_atomic_create_undoes_what_it_created(server: Controller, tmp_path: Path) -> None:
    path = _geneve_pair(tmp_path, second_vni=1 << 24)  # the server refuses a VNI over 24 bits
    plain = server.cli("create", "-f", str(path))
    assert plain.status == 1
    assert sorted(server.tunnels()) == [30001]  # without --atomic: the first one stays
    assert server.cli("delete", "--all").status == 0

    atomic = server.cli("create", "--atomic", "-f", str(path))
    assert atomic.status == 1
    assert "error: tunnels[1] tunnel 30002" in atomic.err
    assert atomic.err.endswith("atomic: the file was not applied; deleted the tunnel(s) this "
                               "command created: 30001\n")
    assert server.tunnels() == {}
    rerun = server.cli("create", "--atomic", "-f", str(path))  # no "already exists"
    assert "already exists" not in rerun.err
