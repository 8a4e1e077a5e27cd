"""P4Info generation (work in progress)."""

from __future__ import annotations

from typing import Any

from finsy.proto import p4i


def build_p4info(model: Any) -> p4i.P4Info:
    """The P4Info for a compiled program model."""
    raise NotImplementedError
