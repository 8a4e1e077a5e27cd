"""Fixtures for the p4src packet tests: a switch with a fresh pipeline per test, programmed over
P4Runtime (tunnel_dataplane.py); the program is compiled and the servers started once."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The scapy packet builders are shared with the PTF tests (ptf_tests/dataplane/tunnel_packets.py),
# and so is the P4Runtime client (ptf_tests/p4rt_test_client.py, imported from the repository
# root as ptf_tests.p4rt_test_client).
sys.path.insert(0, str(REPO / "ptf_tests" / "dataplane"))
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tunnel_dataplane import TunnelDataplane, close_pool, release_all  # noqa: E402


@pytest.fixture(scope="session")
def _switch_pool() -> Iterator[None]:
    """Stops the pooled p4sim servers and their clients when the session ends."""
    yield
    close_pool()


@pytest.fixture
def dp(_switch_pool: None) -> Iterator[TunnelDataplane]:
    """A switch with empty tables and zero counters; it, and any other `TunnelDataplane` the
    test made, go back to the pool when the test ends."""
    yield TunnelDataplane()
    release_all()
