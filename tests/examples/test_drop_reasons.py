"""Drops by reason on a real stack: the switch's (route miss, parser errors by kind) and the
crypto worker's (bad ICV, replay) provoked with examples/send_traffic.py and raw frames, then
read twice — the controller's metrics endpoint scraped by a real HTTP client and parsed with
prometheus-client's parser, and `tunnelctl stats --reasons`, which reads that endpoint.

Run: .venv/bin/python -m pytest tests/examples/test_drop_reasons.py -q
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pynng
import pytest
from examples_support import EXAMPLES
from prometheus_client.parser import text_string_to_metric_families
from scapy.layers.l2 import Ether
from stack import Stack

from p4sim.ports.nn_protocol import MsgType, encode_frame

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(live: Stack) -> Samples:
    with urllib.request.urlopen(live.metrics_url, timeout=10) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def moved(before: Samples, after: Samples) -> dict[tuple[str, tuple[tuple[str, str], ...]], int]:
    """The drop samples that changed, by how much."""
    return {key: int(value - before.get(key, 0)) for key, value in after.items()
            if key[0] in ("tunneloffload_switch_drops_total",
                          "tunneloffload_switch_parser_errors_total",
                          "tunneloffload_worker_drops_total")
            and value != before.get(key, 0)}


def test_drops_by_reason_in_metrics_and_tunnelctl(live: Stack, key_files: dict[int, Path],
                                                  tmp_path: Path) -> None:
    created = live.tunnelctl("create", "-f", str(EXAMPLES / "4-fan-out.yaml"))
    assert created.status == 0, created.err
    before = scrape(live)
    # Every reason the P4 source names is exported, 0 included (so rate() works from the start).
    assert ("tunneloffload_switch_drops_total", (("reason", "route_miss"),)) in before
    assert ("tunneloffload_switch_parser_errors_total",
            (("error", "packet_too_short"),)) in before

    # Switch: two IPv6 packets no route covers (examples/routes.txt routes 2001:db8::/32 only).
    missed = live.send_traffic("--src", "2001:db9::1", "--dst", "2001:db9::2", "--count", "2",
                               "--listen", "0.5")
    assert missed.status == 0 and "0 frame(s) came out" in missed.out, missed.out
    # Switch: an IPv4 frame cut off in its IP header (parser error PacketTooShort).
    truncated = bytes(Ether(dst="02:00:00:00:00:aa", src="02:00:00:00:0c:01", type=0x0800))
    with pynng.Pair0(dial=live.packet_url, block_on_dial=True) as port:
        port.send(encode_frame(MsgType.PACKET_IN, 0, truncated + bytes(10)))
    # Worker: ESP under tunnel 40000's SPI with the wrong key (bad ICV) x2, then a replay.
    wrong = tmp_path / "wrong.hex"
    wrong.write_text("11" * 36)
    esp = ["--src", "15.0.0.2", "--dst", "15.0.0.1", "--esp", "80000", "--nat-t",
           "--tunnel-src", "2.2.2.2", "--tunnel-dst", "3.3.3.3"]
    bad = live.send_traffic(*esp, "--key-file", str(wrong), "--seq", "1", "--count", "2",
                            "--listen", "0.5")
    assert bad.status == 0 and "0 frame(s) came out" in bad.out, bad.out
    for expect in ("1", "0"):   # seq 7 goes through once; the second copy is a replay
        sent = live.send_traffic(*esp, "--key-file", str(key_files[80000]), "--seq", "7",
                                 "--count", "1", "--expect", expect, "--listen", "1")
        assert f"{expect} frame(s) came out" in sent.out, sent.out

    after = scrape(live)
    assert moved(before, after) == {
        ("tunneloffload_switch_drops_total", (("reason", "route_miss"),)): 2,
        ("tunneloffload_switch_drops_total", (("reason", "parser_error"),)): 1,
        ("tunneloffload_switch_parser_errors_total", (("error", "packet_too_short"),)): 1,
        ("tunneloffload_worker_drops_total", (("reason", "icv_failure"), ("tunnel", "40000"))): 2,
        ("tunneloffload_worker_drops_total", (("reason", "replay"), ("tunnel", "40000"))): 1,
    }

    # tunnelctl reads the same endpoint (--metrics HOST:PORT, as given to --metrics-addr).
    address = live.metrics_url.removeprefix("http://").removesuffix("/metrics")
    shown = live.tunnelctl("stats", "--reasons", "40000", "--metrics", address)
    assert shown.status == 0, shown.err
    lines = [line.split() for line in shown.out.splitlines()]
    assert lines[0] == ["SOURCE", "TUNNEL", "REASON", "PACKETS"]
    rows = {(row[0], row[1], " ".join(row[2:-1])): int(row[-1]) for row in lines[1:]}
    assert rows[("worker", "40000", "icv_failure")] == 2
    assert rows[("worker", "40000", "replay")] == 1
    assert rows[("switch", "-", "route_miss")] >= 2
    assert rows[("switch", "-", "parser_error: packet_too_short")] >= 1
    assert all(packets > 0 for packets in rows.values())   # the table shows what moved
    as_json = live.tunnelctl("stats", "--reasons", "-o", "json", "--metrics", live.metrics_url)
    assert as_json.status == 0, as_json.err
    data = json.loads(as_json.out)
    assert data["switch"]["route_miss"] == rows[("switch", "-", "route_miss")]
    assert {"tunnelId": 40000, "reason": "replay", "packets": 1} in data["worker"]


def test_stats_reasons_errors_are_one_line(live: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """No endpoint configured: exit 2 naming the flag; nothing listening: exit 3; the config
    file and (before it) the environment variable are sources of the address."""
    missing = live.tunnelctl("stats", "--reasons")
    assert missing.status == 2 and "--metrics HOST:PORT" in missing.err, missing.err
    assert len(missing.err.splitlines()) == 1
    closed = live.tunnelctl("--timeout", "2", "stats", "--reasons", "--metrics", "127.0.0.1:1")
    assert closed.status == 3 and "--metrics-addr" in closed.err, closed.err
    assert len(closed.err.splitlines()) == 1
    import os

    config = Path(os.environ["XDG_CONFIG_HOME"]) / "tunneloffload" / "tunnelctl.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"metrics: {live.metrics_url}\n")
    from_config = live.tunnelctl("stats", "--reasons")
    assert from_config.status == 0, from_config.err
    config.write_text("metrics: 127.0.0.1:1\n")
    monkeypatch.setenv("TUNNELCTL_METRICS", live.metrics_url)   # the environment comes first
    from_env = live.tunnelctl("stats", "--reasons")
    assert from_env.status == 0, from_env.err


def test_reason_names_come_from_the_p4_source(tmp_path: Path) -> None:
    """Every DROP_* / PARSER_ERROR_* constant of defines.p4 names its counter cell (DROP_NONE is
    not a drop); without the source, reasons are numbers."""
    import re

    from controller.drop_reasons import load_drop_reason_names
    from controller.settings import DEFAULT_P4INFO

    names = load_drop_reason_names(DEFAULT_P4INFO)
    defines = (DEFAULT_P4INFO.parent / "include" / "defines.p4").read_text()
    drops = dict(re.findall(r"const drop_reason_t DROP_(\w+)\s*=\s*(\d+);", defines))
    assert names.drops == {int(v): k.lower() for k, v in drops.items() if k != "NONE"}
    assert names.drop(5) == "route_miss" and names.parser_error(1) == "packet_too_short"
    bare = load_drop_reason_names(tmp_path / "elsewhere.p4info.txtpb")
    assert bare.drops == {} and bare.drop(5) == "reason_5"
