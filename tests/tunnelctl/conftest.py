"""Fixtures for the tunnelctl tests: one real controller per module (see tc_support)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tc_support import Controller, start_controller, stop


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    state_dir = tmp_path_factory.mktemp("controller") / "state"
    process, running = start_controller(state_dir)
    try:
        ready = running.cli("health", "--wait", "30")
        if ready.status != 0:
            pytest.fail(f"controller not ready: {ready.err}\n{running.log.read_text()}")
        yield running
    finally:
        stop(process)


@pytest.fixture
def server(controller: Controller) -> Iterator[Controller]:
    """The shared controller, emptied after each test so tests do not see each other's tunnels."""
    yield controller
    leftover = controller.cli("delete", "--all")
    assert leftover.status == 0, leftover.err
