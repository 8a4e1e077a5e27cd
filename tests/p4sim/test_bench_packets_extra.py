"""bench-packets' --extra-tunnels: the tunnels it installs are valid API requests of the three
reference shapes, each on its own addresses and SPI, none on an address the measured frames
carry; the level list is checked.

Run just this: .venv/bin/python -m pytest tests/p4sim/test_bench_packets_extra.py -q
"""

from __future__ import annotations

import argparse
import ipaddress

import pytest

from bench.packets import run as bench
from tunnelctl.document import parse_requests
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

COUNT = 3000


def test_extra_tunnels_are_valid_distinct_and_off_the_measured_path() -> None:
    tunnels = [bench.extra_tunnel(n) for n in range(COUNT)]
    requests = parse_requests(tunnels, operation=pb._CREATE)
    kinds = tunnels
    assert sum("geneve" in t for t in kinds) == COUNT // 3
    assert sum("ipsecDec" in t.get("ipsecTunnel", {}) for t in kinds) == COUNT // 3
    assert sum("ipsecEnc" in t.get("ipsecTunnel", {}) for t in kinds) == COUNT // 3
    assert len({r.tunnelId for r in requests}) == COUNT
    assert min(r.tunnelId for r in requests) == bench.EXTRA_FIRST_ID  # cases use 60,001 on
    sources = [t["match_criteria"]["ipv4Match"]["sourceIp"] for t in tunnels]
    assert len(set(sources)) == COUNT
    extra_net = ipaddress.ip_network("100.64.0.0/10")
    for tunnel in tunnels:
        for address in tunnel["match_criteria"]["ipv4Match"].values():
            assert ipaddress.ip_network(address).prefixlen == 32
            assert ipaddress.ip_network(address).subnet_of(extra_net)
    spis = [sa["spi"] for t in tunnels if "ipsecDec" in t.get("ipsecTunnel", {})
            for sa in t["ipsecTunnel"]["ipsecDec"]["ipsecSAs"]]
    spis += [t["ipsecTunnel"]["ipsecEnc"]["ipsecSA"]["spi"] for t in tunnels
             if "ipsecEnc" in t.get("ipsecTunnel", {})]
    assert len(set(spis)) == len(spis) == 2 * COUNT // 3
    assert min(spis) > 9300  # the measured cases' SPIs are 9,100 … 9,2xx


def test_a_variant_is_the_same_tunnel_with_other_keys() -> None:
    for n in range(3):
        first, second = bench.extra_tunnel(n), bench.extra_tunnel(n, variant=1)
        assert first["match_criteria"] == second["match_criteria"]
        assert (first != second) == (n % 3 != 2)  # Geneve carries no key


def test_levels_are_ascending_counts() -> None:
    assert bench._levels("0,60000") == [0, 60000]
    assert bench._levels("5") == [5]
    for bad in ("60000,0", "-1", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            bench._levels(bad)
