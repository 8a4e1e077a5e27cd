"""Fixtures for p4sim core tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def write_p4(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a P4 snippet to a file and return its path."""

    def _write(text: str, name: str = "prog.p4") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write
