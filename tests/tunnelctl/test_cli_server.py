"""tunnelctl against a real controller over TLS: exit codes, output, and the server's state
(read back with a plain gRPC stub) after every command.

Run just this file: .venv/bin/python -m pytest tests/tunnelctl/test_cli_server.py -q
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from tc_support import REPO, Controller, other_self_signed_cert

from tunnelctl import wire_values
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

EXAMPLES = REPO / "examples"
NEW_KEY = "ab" * 36
EXAMPLE_IDS = {
    "1-ipsec-geneve.yaml": [10000, 10001, 10002, 10003],
    "2-four-tunnel-chain.yaml": [20000, 20001, 20002, 20003],
    "3-rematch-chain.yaml": [30000, 30001],
    "4-fan-out.yaml": [40000, 40001, 40002],
}


def _create_example(server: Controller, name: str) -> None:
    result = server.cli("create", "-f", str(EXAMPLES / name))
    assert result.status == 0, result.err


def test_capabilities(server: Controller) -> None:
    result = server.cli("capabilities")
    assert result.status == 0, result.err
    shown = yaml.safe_load(result.out)
    assert shown["geneveCapabilities"]["numberGeneveOptionsSupported"] >= 1
    assert "TUNNEL_NAT_TRAVERSAL" in shown["ipsecCapabilities"]["tunnelTypeSupported"]


def test_every_example_is_accepted_and_stored_as_written(server: Controller) -> None:
    for name, ids in EXAMPLE_IDS.items():
        result = server.cli("create", "-f", str(EXAMPLES / name))
        assert result.status == 0, result.err
        assert result.err == ""
        assert result.out.splitlines() == [
            line for line in result.out.splitlines() if line.startswith("created tunnels[")]
        assert [int(line.split()[3]) for line in result.out.splitlines()] == ids
    stored = server.tunnels()
    assert sorted(stored) == sorted(i for ids in EXAMPLE_IDS.values() for i in ids)
    # The encoding the API decided: 11.0.0.2 is 33554443 on the wire and in the server.
    assert stored[10000].match_criteria.ipv4Match.destinationIp == 33554443
    source = stored[10003].ipsecTunnel.ipsecEnc.ipv4_tunnel.sourceIp
    assert wire_values.decode_ipv4(source) == "11.0.0.2"
    assert stored[10001].geneve.geneveEncap.innerMacPair.sourceMac == bytes.fromhex(
        "102030405060")
    assert stored[20003].match_criteria.tunnelId == 20002  # and no SPI (examples/2-...yaml)
    assert not stored[20003].match_criteria.HasField("ipsecMatch")
    assert stored[40002].match_criteria.tunnelId == 40000


def test_rejected_tunnel_is_one_line_with_field_and_reason(server: Controller,
                                                           tmp_path: Path) -> None:
    _create_example(server, "3-rematch-chain.yaml")
    before = server.tunnels()
    path = tmp_path / "bad.yaml"
    path.write_text(
        "tunnels:\n"
        "  - {tunnelId: 50000, match_criteria: {tunnelId: 777}, nextAction: FORWARD,\n"
        "     geneve: {geneveEncap: {outerIpv4Pair: {sourceIp: 1.1.1.1, destinationIp: 2.2.2.2},"
        " vni: 5}}}\n"
        "  - {tunnelId: 50001, match_criteria: {ipv4Match: {sourceIp: 1.2.3.4}},\n"
        "     nextAction: FORWARD, geneve: {geneveEncap: {outerIpv4Pair: {sourceIp: 1.1.1.1,"
        " destinationIp: 2.2.2.2}, vni: 16777216}}}\n")
    result = server.cli("create", "-f", str(path))
    assert result.status == 1
    lines = result.err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("error: tunnels[0] tunnel 50000 (geneve-encap): ")
    assert "match_criteria.tunnelId" in lines[0] and "777" in lines[0]
    assert "[invalidTunnelId]" in lines[0]
    assert lines[1].startswith("error: tunnels[1] tunnel 50001 (geneve-encap): ")
    assert "vni" in lines[1] and "16777216" in lines[1]
    assert server.tunnels().keys() == before.keys()


def test_bad_file_is_refused_before_anything_is_sent(server: Controller, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("tunnels:\n  - {tunnelId: 7, nextAction: FORWARDD}\n")
    result = server.cli("create", "-f", str(path))
    assert result.status == 2
    assert result.err == ("error: tunnels[0].nextAction: unknown ACTION 'FORWARDD'; did you "
                          "mean 'FORWARD'?; one of NONE, FORWARD, RECIRCULATE\n")
    assert server.tunnels() == {}


def test_get_list_and_stats(server: Controller) -> None:
    _create_example(server, "4-fan-out.yaml")
    result = server.cli("get", "40000", "99")
    assert result.status == 1
    assert result.err == "error: tunnel 99: tunnelId 99 does not exist [NOT_FOUND]\n"
    shown = yaml.safe_load(result.out)
    assert shown["tunnelId"] == 40000
    dec = shown["ipTunnel"]["ipsecTunnel"]["ipsecDec"]
    assert dec["tunnelType"] == "TUNNEL_NAT_TRAVERSAL"
    assert dec["ipsecSAs"][0]["spi"] == 80000
    assert "ffe870e7" not in result.out  # the example's key is never echoed

    listing = server.cli("list")
    assert listing.status == 0
    rows = listing.out.splitlines()
    assert rows[0].split() == ["ID", "KIND", "MATCH", "NEXT", "DETAILS"]
    assert rows[2].split()[:4] == ["40001", "geneve-encap", "after", "40000,"]
    assert "15.0.0.2/32->15.0.0.1/32" in rows[2]

    stats = server.cli("stats")
    assert stats.status == 0
    table = [line.split() for line in stats.out.splitlines()]
    assert table[0] == ["ID", "IN_PKTS", "IN_BYTES", "OUT_PKTS", "OUT_BYTES", "IN_DROPS",
                        "OUT_DROPS"]
    assert [row[0] for row in table[1:]] == ["40000", "40001", "40002"]

    watch = server.cli("stats", "40001", "--watch", "0.01", "--count", "2")
    assert watch.status == 0
    assert watch.out.count("every 0.01s") == 2
    refreshes = [line.split() for line in watch.out.splitlines() if line.startswith("40001 ")]
    assert refreshes[0][-2:] == ["-", "-"]  # nothing to compare with yet
    assert refreshes[1][-2:] == ["0.0", "0.0"]  # packets/s since the first refresh


def test_update_from_a_file(server: Controller, tmp_path: Path) -> None:
    _create_example(server, "3-rematch-chain.yaml")
    path = tmp_path / "update.yaml"
    path.write_text(
        "tunnelId: 30001\n"
        "match_criteria: {ipv4Match: {sourceIp: 14.0.0.2, destinationIp: 14.0.0.1}}\n"
        "nextAction: RECIRCULATE\n"
        "geneve: {geneveEncap: {outerIpv4Pair: {sourceIp: 9.9.9.9, destinationIp: 10.10.10.10},"
        " vni: 702}}\n")
    result = server.cli("update", "-f", str(path))
    assert result.status == 0, result.err
    assert result.out == "updated tunnels[0] tunnel 30001 (geneve-encap)\n"
    stored = server.tunnels()[30001]
    assert stored.geneve.geneveEncap.vni == 702
    assert stored.nextAction == pb.RECIRCULATE


def test_rekey_encrypt_swaps_the_sa(server: Controller) -> None:
    _create_example(server, "1-ipsec-geneve.yaml")
    result = server.cli("rekey", "10003", "--new-spi", "4590", "--new-key", NEW_KEY)
    assert result.status == 0, result.err
    assert result.out == "rekeyed (encrypt SA now spi 4590) tunnel 10003 (ipsec-encrypt)\n"
    enc = server.tunnels()[10003].ipsecTunnel.ipsecEnc
    assert enc.ipsecSA.spi == 4590
    assert enc.tunnelType == pb.TUNNEL_NAT_TRAVERSAL  # kept by the UPDATE


def test_rekey_decrypt_is_make_before_break(server: Controller, tmp_path: Path) -> None:
    _create_example(server, "1-ipsec-geneve.yaml")
    key_file = tmp_path / "key"
    key_file.write_text(NEW_KEY + "\n")
    added = server.cli("rekey", "10000", "--new-spi", "1030", "--new-key-file", str(key_file),
                       "--keep-old")
    assert added.status == 0, added.err
    assert "retire later with: tunnelctl rekey 10000 --retire-spi 780" in added.out
    spis = [sa.spi for sa in server.tunnels()[10000].ipsecTunnel.ipsecDec.ipsecSAs]
    assert sorted(spis) == [780, 1030]  # both live: nothing is lost while the peer switches

    retired = server.cli("rekey", "10000", "--retire-spi", "780")
    assert retired.status == 0, retired.err
    assert [sa.spi for sa in server.tunnels()[10000].ipsecTunnel.ipsecDec.ipsecSAs] == [1030]


def test_rekey_decrypt_with_grace_period(server: Controller) -> None:
    _create_example(server, "4-fan-out.yaml")
    result = server.cli("rekey", "40000", "--new-spi", "80001", "--new-key", NEW_KEY,
                        "--grace", "0.05")
    assert result.status == 0, result.err
    assert result.out.splitlines() == [
        "added decrypt SA spi 80001 to tunnel 40000 (ipsec-decrypt)",
        "grace period 0.05s before retiring spi 80000",
        "retired decrypt SA spi 80000 of tunnel 40000",
    ]
    assert [sa.spi for sa in server.tunnels()[40000].ipsecTunnel.ipsecDec.ipsecSAs] == [80001]


def test_rekey_refusals(server: Controller) -> None:
    _create_example(server, "3-rematch-chain.yaml")
    wrong_kind = server.cli("rekey", "30001", "--new-spi", "5", "--new-key", NEW_KEY)
    assert wrong_kind.status == 2
    assert "tunnel 30001 is geneve-encap, not an IPsec tunnel" in wrong_kind.err
    bad_key = server.cli("rekey", "30000", "--new-spi", "50001", "--new-key", NEW_KEY[:-1])
    assert bad_key.status == 2 and NEW_KEY[:-1] not in bad_key.err
    short_key = server.cli("rekey", "30000", "--new-spi", "50001", "--new-key", "ab" * 8)
    assert short_key.status == 1
    # invalidKey is IPSecError 0, which proto3 cannot tell from "unset": the line names the field.
    assert short_key.err.startswith(
        "error: tunnel 30000 (ipsec-encrypt): ipsecTunnel.ipsecEnc.ipsecSA.encryptionKey: ")
    assert "abab" not in short_key.err
    assert server.tunnels()[30000].ipsecTunnel.ipsecEnc.ipsecSA.spi == 50000


def test_delete_refuses_a_parent_then_deletes_children_first(server: Controller) -> None:
    _create_example(server, "2-four-tunnel-chain.yaml")
    parent = server.cli("delete", "20000")
    assert parent.status == 1
    assert parent.err.startswith("error: tunnel 20000: ")
    assert "20001" in parent.err
    assert 20000 in server.tunnels()

    by_file = server.cli("delete", "-f", str(EXAMPLES / "2-four-tunnel-chain.yaml"))
    assert by_file.status == 0, by_file.err
    assert by_file.out.splitlines() == [f"deleted tunnel {i}" for i in (20003, 20002, 20001,
                                                                          20000)]
    assert server.tunnels() == {}


def test_graph_of_the_server_matches_the_graph_of_the_file(server: Controller) -> None:
    _create_example(server, "3-rematch-chain.yaml")
    for fmt in ("text", "dot", "mermaid"):
        live = server.cli("graph", "--format", fmt)
        offline = server.cli("graph", "--format", fmt, "-f",
                             str(EXAMPLES / "3-rematch-chain.yaml"))
        assert live.status == offline.status == 0
        assert live.out == offline.out
    assert "t30000 -> t30001" in server.cli("graph", "--format", "dot").out


def test_tls_failures_are_one_line_and_exit_3(server: Controller, tmp_path: Path) -> None:
    missing = server.cli("--state-dir", str(tmp_path), "list")
    assert missing.status == 3
    assert missing.err.startswith(f"error: cannot read the trusted CA certificate {tmp_path}")
    plaintext = server.cli("--insecure", "--timeout", "2", "list")
    assert plaintext.status == 3
    assert plaintext.err.startswith(f"error: cannot reach the controller at {server.address}")
    other_ca = tmp_path / "other.crt"
    other_ca.write_bytes(other_self_signed_cert())
    untrusted = server.cli("--ca", str(other_ca), "--timeout", "2", "list")
    assert untrusted.status == 3
    assert len(untrusted.err.splitlines()) == 1


def test_console_entry_point_exit_status(server: Controller) -> None:
    """The real process: `python -m tunnelctl` returns the documented exit statuses."""
    base = [sys.executable, "-m", "tunnelctl", "--server", server.address, "--state-dir",
            str(server.state_dir)]
    ok = subprocess.run([*base, "health"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert (ok.returncode, ok.stdout) == (0, "SERVING\n")
    missing = subprocess.run([*base, "get", "123"], cwd=REPO, capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 1
    usage = subprocess.run([*base, "get"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2


def test_list_pages_and_machine_readable_output(server: Controller) -> None:
    _create_example(server, "2-four-tunnel-chain.yaml")
    paged = server.cli("list", "--page-size", "3", "-o", "json")
    assert paged.status == 0, paged.err
    shown = json.loads(paged.out)
    assert [item["tunnelId"] for item in shown] == [20000, 20001, 20002, 20003]
    assert shown[1]["ipTunnel"]["match_criteria"] == {"tunnelId": 20000, "geneveMatch": {}}
    stats = server.cli("stats", "--page-size", "1", "-o", "yaml")
    assert stats.status == 0
    assert [item["tunnelId"] for item in yaml.safe_load(stats.out)] == [20000, 20001, 20002,
                                                                        20003]


def test_installed_console_script(server: Controller) -> None:
    """pyproject's [project.scripts] entry: `tunnelctl` in the virtual environment's bin."""
    script = Path(sys.executable).parent / "tunnelctl"
    result = subprocess.run([str(script), "--server", server.address, "--state-dir",
                             str(server.state_dir), "graph"], capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "(no tunnels)\n", "")


def test_delete_takes_one_way_of_naming_tunnels(server: Controller) -> None:
    _create_example(server, "3-rematch-chain.yaml")
    both = server.cli("delete", "30000", "--all")
    assert both.status == 2
    assert both.err == "error: delete: give tunnel ids, -f FILE or --all, not more than one\n"
    assert sorted(server.tunnels()) == [30000, 30001]
    everything = server.cli("delete", "--all")
    assert everything.status == 0, everything.err
    assert sorted(everything.out.splitlines()) == ["deleted tunnel 30000", "deleted tunnel 30001"]
    assert server.tunnels() == {}
    assert server.cli("delete", "--all").out == "no tunnels to delete\n"


def test_rekey_arguments_are_checked_before_anything_is_sent(server: Controller) -> None:
    _create_example(server, "1-ipsec-geneve.yaml")
    no_spi = server.cli("rekey", "10000", "--new-key", NEW_KEY)
    assert (no_spi.status, no_spi.err) == (
        2, "error: --new-spi: the new SPI is required (or use --retire-spi)\n")
    mixed = server.cli("rekey", "10000", "--retire-spi", "780", "--new-spi", "1030")
    assert mixed.status == 2 and "step of its own" in mixed.err
    negative = server.cli("rekey", "10000", "--new-spi", "1030", "--new-key", NEW_KEY,
                          "--grace", "-1")
    assert negative.status == 2
    unknown = server.cli("rekey", "424242", "--new-spi", "1030", "--new-key", NEW_KEY)
    assert (unknown.status, unknown.err) == (
        1, "error: tunnel 424242: tunnelId 424242 does not exist [NOT_FOUND]\n")
    assert [sa.spi for sa in server.tunnels()[10000].ipsecTunnel.ipsecDec.ipsecSAs] == [780]
