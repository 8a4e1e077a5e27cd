"""Fixtures for the examples' tests: one real stack (tests/examples/stack.py) per module, and
the examples' SA keys written to 0600 key files, as a user would keep them.

Run: .venv/bin/python -m pytest tests/examples -q
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from examples_support import EXAMPLES
from stack import Stack


@pytest.fixture(autouse=True)
def private_user_dirs(tmp_path_factory: pytest.TempPathFactory,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing reads or writes the developer's ~/.config or ~/.local/state."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    for name in ("TUNNELOFFLOAD_STATE_DIR", "TUNNELCTL_STATE_DIR", "TUNNELCTL_SERVER",
                 "TUNNELCTL_METRICS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    running = Stack()
    try:
        running.start()
    except BaseException:
        running.close()
        raise
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def live(stack: Stack) -> Iterator[Stack]:
    """The module's stack, emptied after each test (tests never see each other's tunnels)."""
    yield stack
    leftover = stack.tunnelctl("delete", "--all")
    assert leftover.status == 0, leftover.err


def _sas(value: object) -> Iterator[tuple[int, str]]:
    if isinstance(value, dict):
        if "spi" in value and "encryptionKey" in value:
            yield int(value["spi"]), str(value["encryptionKey"])
        for item in value.values():
            yield from _sas(item)
    elif isinstance(value, list):
        for item in value:
            yield from _sas(item)


@pytest.fixture(scope="module")
def key_files(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """SPI -> a 0600 file holding that SA's key ‖ salt hex, for every SA of examples/*.yaml."""
    directory = tmp_path_factory.mktemp("keys")
    files = {}
    for example in sorted(EXAMPLES.glob("*.yaml")):
        for spi, key in _sas(yaml.safe_load(example.read_text())):
            path = directory / f"k{spi}.hex"
            path.touch(mode=0o600)
            path.write_text(key + "\n")
            files[spi] = path
    return files
