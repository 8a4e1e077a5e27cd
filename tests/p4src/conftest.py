"""Fixtures for the p4src packet tests: a fresh switch per test, the program compiled once."""

from __future__ import annotations

import pytest
from tunnel_dataplane import TunnelDataplane

# Addresses used across the tests.
HOST_MAC = "02:00:00:00:00:01"
SWITCH_MAC = "02:00:00:00:00:fe"
NEXT_HOP_MAC = "02:00:00:00:0a:01"
ROUTER_MAC = "02:00:00:00:00:aa"


@pytest.fixture
def dp() -> TunnelDataplane:
    """A switch with empty tables and zero counters."""
    return TunnelDataplane()
