"""Fixtures for the tunnelctl tests: one real controller per module (see tc_support)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tc_support import Controller, start_controller, stop


@pytest.fixture(autouse=True)
def private_user_dirs(tmp_path_factory: pytest.TempPathFactory,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the developer's ~/.config or ~/.local/state (tunnelctl's config
    file, make run's record and the controller's default state directory live there)."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    for name in ("TUNNELOFFLOAD_STATE_DIR", "TUNNELCTL_STATE_DIR", "TUNNELCTL_SERVER",
                 "TUNNELCTL_METRICS"):
        monkeypatch.delenv(name, raising=False)


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
