"""Loads the modules of examples/ (a directory of scripts, not a package) for the tests."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def load_example_module(name: str) -> ModuleType:
    """``examples/<name>.py`` imported as the scripts import each other (examples/ on the path)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)
