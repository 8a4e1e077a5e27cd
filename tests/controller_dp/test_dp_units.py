"""Offline checks: names resolved against the P4Info, sizes, the routes file, allocation."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest
from dp_support import P4INFO

from controller.allocation import Allocation, allocate
from controller.capabilities import capabilities_for_pipeline
from controller.crypto_client import worker_ciphers
from controller.keys import SaKey
from controller.model import (
    Cipher,
    IpsecDecrypt,
    Match,
    NextAction,
    SecurityAssociation,
    Tunnel,
    TunnelMode,
)
from controller.pipeline import Pipeline, PipelineMismatch
from controller.routes import RoutesFileError, parse_routes
from controller.settings import parse_settings

REPO = Path(__file__).resolve().parents[2]


def test_sizes_and_capabilities_come_from_the_p4info() -> None:
    sizes = Pipeline.load(P4INFO).sizes
    assert (sizes.max_tunnels, sizes.max_sas) == (65535, 65535)
    assert (sizes.max_geneve_options, sizes.max_geneve_option_data, sizes.max_passes) == (
        4, 16, 8)
    assert sizes.tunnel_rules == 131072
    caps = capabilities_for_pipeline(sizes, ciphers=worker_ciphers())
    assert caps.ciphers == frozenset(Cipher) and caps.tunnel_modes == frozenset(TunnelMode)
    assert capabilities_for_pipeline(sizes, ciphers=frozenset()).tunnel_modes == frozenset()


@pytest.mark.parametrize(("old", "new", "message"), [
    ('name: "TunnelIngress.classifier.tunnel_rules"', 'name: "TunnelIngress.classifier.rules"',
     "no table 'TunnelIngress.classifier.tunnel_rules'; did you mean "
     "'TunnelIngress.classifier.rules'?"),
    ('name: "esp_spi"', 'name: "spi_esp"', "no match field in "
     "TunnelIngress.classifier.tunnel_rules: 'esp_spi'"),
    ('name: "TunnelIngress.counters.tunnel_in"', 'name: "TunnelIngress.counters.tun_in"',
     "no counter 'TunnelIngress.counters.tunnel_in'; did you mean"),
    ('annotations: "@max_passes(8)"', 'annotations: "@passes(8)"',
     "no annotation on TunnelIngress.classifier.tunnel_rules: 'max_passes'"),
    ('name: "TunnelIngress.counters.tunnel_out_delta.bits"',
     'name: "TunnelIngress.counters.tunnel_out_delta.cells"',
     "no counter 'TunnelIngress.counters.tunnel_out_delta.bits'; did you mean"),
    ('  size: 589824\n', '  size: 16000\n', "cells; the length deltas of 65536 tunnels need "
     "the same whole number of cells per tunnel"),
    ('    unit: BOTH\n', '    unit: PACKETS\n', "counts PACKETS; the tunnel figures need "
     "packets and bytes"),
])
def test_p4info_drift_is_a_clear_start_up_error(tmp_path: Path, old: str, new: str,
                                                message: str) -> None:
    text = P4INFO.read_text()
    assert old in text
    drifted = tmp_path / "drifted.p4info.txtpb"
    drifted.write_text(text.replace(old, new, 1))
    with pytest.raises(PipelineMismatch, match=message.replace("(", r"\(").replace(
            ")", r"\)").replace("?", r"\?")):
        Pipeline.load(drifted)


def test_tunnel_header_codes_match_defines_p4() -> None:
    from controller import pipeline
    defines = (REPO / "p4src" / "include" / "defines.p4").read_text()
    for name in ("ESP", "GENEVE", "VXLAN"):
        value = getattr(pipeline, f"TUNNEL_HEADER_{name}")
        assert f"TUNNEL_HEADER_{name}" in defines
        line = next(line for line in defines.splitlines()
                    if f"TUNNEL_HEADER_{name} " in line and "const" in line)
        assert line.rstrip(";").split("=")[1].strip().rstrip(";") == str(value)


def test_length_delta_sizes_come_from_the_p4info_as_sizes_p4_spells_them() -> None:
    sizes = (REPO / "p4src" / "include" / "sizes.p4").read_text()
    pipeline = Pipeline.load(P4INFO)
    assert f"#define LENGTH_DELTA_BITS {pipeline.delta_bits}\n" in sizes
    assert f"#define LENGTH_DELTA_OFFSET {1 << (pipeline.delta_bits - 1)}\n" in sizes
    cells = (pipeline.sizes.max_tunnels + 1) * pipeline.delta_bits
    assert f"#define TUNNEL_DELTA_CELLS {cells}\n" in sizes


class _Cells(dict):  # type: ignore[type-arg]
    """(counter, index) -> (packets, bytes), read as a counter snapshot is."""

    def get(self, cell, default=0, /):  # type: ignore[no-untyped-def, override]
        return super().get(cell, (default, default))[0]

    def get_bytes(self, cell, default=0, /):  # type: ignore[no-untyped-def]
        return super().get(cell, (default, default))[1]


def test_out_bytes_are_the_pass_bytes_corrected_by_the_delta_cells() -> None:
    """Frames of 60, 1514 and 9018 bytes entering the pass, emitted 150 bytes longer, 16 and
    154 bytes shorter, through tunnel index 3: each delta + 256 adds one to its set bits'
    cells; in bytes are the counted bytes as they are."""
    pipeline = Pipeline.load(P4INFO)
    bits = pipeline.delta_bits
    cells = pipeline.counter_cells(3)
    assert len(cells) == 4 + 2 * bits and len(set(cells)) == len(cells)
    in_name, out_name = "TunnelIngress.counters.tunnel_in", "TunnelIngress.counters.tunnel_out"
    delta = "TunnelIngress.counters.tunnel_out_delta.bits"
    frames = [(60, 210), (1514, 1498), (9018, 8864)]
    counts = _Cells({(in_name, 3): (3, 60 + 1514 + 9018),
                     (out_name, 3): (3, 60 + 1514 + 9018)})
    for passed, emitted in frames:
        offset = emitted - passed + (1 << (bits - 1))
        for bit in range(bits):
            if offset >> bit & 1:
                key = (delta, 3 * bits + bit)
                counts[key] = (counts.get(key) + 1, 0)
    counts[(delta, 2 * bits + 5)] = (99, 0)   # another tunnel's cell is not ours
    figures = pipeline.tunnel_figures(3, counts)
    assert figures[in_name] == (3, 60 + 1514 + 9018)
    assert figures[out_name] == (3, 210 + 1498 + 8864)
    assert figures["TunnelIngress.counters.tunnel_drop_out"] == (0, 0)
    assert all(cell in cells for cell in counts if cell[1] != 2 * bits + 5)


def test_routes_file_parses_and_names_bad_lines() -> None:
    routes = parse_routes("# c\n10.0.0.0/8 2 02:00:00:00:00:01 02:00:00:00:01:02\n\n"
                          "::/0 5 02:00:00:00:00:01 02:00:00:00:01:05  # default v6\n")
    assert [(str(r.address), r.length, r.port) for r in routes] == [
        ("10.0.0.0", 8, 2), ("::", 0, 5)]
    assert routes[0].dst_mac == bytes.fromhex("020000000102")
    for text, error in [
        ("10.0.0.1/8 2 02:00:00:00:00:01 02:00:00:00:01:02", "routes:1: prefix '10.0.0.1/8'"),
        ("10.0.0.0/8 600 02:00:00:00:00:01 02:00:00:00:01:02", "routes:1: port '600'"),
        ("10.0.0.0/8 2 02:00:00:00:00 02:00:00:00:01:02", "is not a MAC address"),
        ("10.0.0.0/8 2", "routes:1: 2 fields"),
        ("10.0.0.0/8 1 02:00:00:00:00:01 02:00:00:00:01:02\n"
         "10.0.0.0/8 2 02:00:00:00:00:01 02:00:00:00:01:02", "routes:2: prefix 10.0.0.0/8 is "
                                                               "listed twice"),
    ]:
        with pytest.raises(RoutesFileError, match=error):
            parse_routes(text)


def _decrypt(tunnel_id: int, *spis: int) -> Tunnel:
    sas = tuple(SecurityAssociation(spi=spi, secret=SaKey(key=bytes([spi % 250 + 1]) * 32,
                                                           salt=b"\0" * 4)) for spi in spis)
    return Tunnel(tunnel_id=tunnel_id, match=Match(), next_action=NextAction.FORWARD,
                  body=IpsecDecrypt(mode=TunnelMode.TRANSPORT, cipher=Cipher.AES256_GCM64,
                                    sas=sas))


def test_allocation_keeps_indices_and_never_reuses_a_live_sa_index() -> None:
    others = {7: Allocation(tunnel_index=1, sa_pairs=((700, 1),))}
    first = allocate(_decrypt(9, 780), previous=None, keep_spis=[], others=others,
                     max_tunnels=1023, max_sas=2047)
    assert first == Allocation(tunnel_index=2, sa_pairs=((780, 2),))
    # Rekey: the kept SA keeps its index, the new one skips the old tunnel's indices.
    second = allocate(_decrypt(9, 780, 781), previous=first, keep_spis=[780],
                      others={**others, 9: first}, max_tunnels=1023, max_sas=2047)
    assert second == Allocation(tunnel_index=2, sa_pairs=((780, 2), (781, 3)))


def test_data_plane_flags() -> None:
    settings = parse_settings(["--switch-addr", "10.0.0.1:9559", "--device-id", "3",
                               "--p4info", "x.txtpb", "--p4-device-config", "d.json",
                               "--crypto-worker-socket", "/run/w.sock", "--routes", "r.txt"])
    assert (settings.data_plane, settings.switch_addr, settings.device_id) == (
        "p4runtime", "10.0.0.1:9559", 3)
    assert settings.p4info == Path("x.txtpb") and settings.routes == Path("r.txt")
    assert parse_settings(["--data-plane", "detached"]).data_plane == "detached"
    with pytest.raises(SystemExit):
        parse_settings(["--device-id", "0"])


def test_rule_priorities_are_unique_per_tunnel() -> None:
    pipe = Pipeline.load(P4INFO)
    match = {"ip_version": 4, "ipv4_src": (int(IPv4Address("10.0.0.0")), 0xFF000000)}
    assert pipe.priority(match, 1) > pipe.priority(match, 2)
    assert pipe.priority({"prev_tunnel": 5}, 1023) > pipe.priority(match, 1)
    longer = {"ip_version": 4, "ipv4_src": (int(IPv4Address("10.1.0.0")), 0xFFFF0000)}
    assert pipe.priority(longer, 1023) > pipe.priority(match, 1)
    assert pipe.priority({}, 1023) >= 1


def test_counter_baselines_fold_resets_and_a_new_tunnel_starts_from_zero() -> None:
    from controller.counter_baselines import CounterBaselines
    from controller.dataplane import TunnelCounters

    class Book:
        def __init__(self) -> None:
            self.rows: dict = {}

        def load_baselines(self) -> dict:
            return dict(self.rows)

        def save_baselines(self, rows) -> None:  # type: ignore[no-untyped-def]
            for tunnel_id, row in rows.items():
                if row is None:
                    self.rows.pop(tunnel_id, None)
                else:
                    self.rows[tunnel_id] = row

    book = Book()
    baselines = CounterBaselines(book)
    assert baselines.observe({1: TunnelCounters(in_packets=10, in_bytes=900)})[1].in_packets == 10
    # The source reset (10 -> 2): the API goes on from 10.
    assert baselines.observe({1: TunnelCounters(in_packets=2, in_bytes=180)})[1] == \
        TunnelCounters(in_packets=12, in_bytes=1080)
    # A restart the reading cannot see (already past the last reading): fold() says so.
    baselines.fold([1])
    assert baselines.observe({1: TunnelCounters(in_packets=5, in_bytes=450)})[1] == \
        TunnelCounters(in_packets=17, in_bytes=1530)
    # Persisted: a new controller carries on.
    again = CounterBaselines(book)
    assert again.observe({1: TunnelCounters(in_packets=6, in_bytes=540)})[1].in_packets == 18
    again.forget(1)  # deleted, index reused by a new tunnel
    assert again.observe({1: TunnelCounters(in_packets=1)})[1] == TunnelCounters(in_packets=1)
