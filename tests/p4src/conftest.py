"""Fixtures for the p4src packet tests: a fresh switch per test, the program compiled once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The scapy packet builders are shared with the PTF tests (ptf_tests/dataplane/tunnel_packets.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "ptf_tests" / "dataplane"))

from tunnel_dataplane import TunnelDataplane  # noqa: E402


@pytest.fixture
def dp() -> TunnelDataplane:
    """A switch with empty tables and zero counters."""
    return TunnelDataplane()
