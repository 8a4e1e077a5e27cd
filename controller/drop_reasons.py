"""Names of the switch's drop reasons, read from the P4 source beside the P4Info.

The switch counts every drop in ``drop_reasons[DROP_*]`` and breaks parser errors down in
``parser_errors[PARSER_ERROR_*]`` (p4src/include/counters.p4). The P4Info gives those counters'
ids and sizes but not what each index means; the ``const`` declarations of
p4src/include/defines.p4 do, so the names are read from there (never retyped in Python) and an
index the source does not name is reported as ``reason_<n>``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["DropReasonNames", "load_drop_reason_names"]

DEFINES = Path("include") / "defines.p4"   # relative to the directory of the P4Info
_CONST = re.compile(r"^\s*const\s+[\w<>]+\s+(DROP_\w+|PARSER_ERROR_\w+)\s*=\s*(\d+)\s*;", re.M)
NO_DROP = "DROP_NONE"


@dataclass(frozen=True, kw_only=True)
class DropReasonNames:
    """Index → lower-case name (``5`` → ``route_miss``) of each counter's cells."""

    drops: dict[int, str] = field(default_factory=dict)
    parser_errors: dict[int, str] = field(default_factory=dict)

    def drop(self, index: int) -> str:
        return self.drops.get(index, f"reason_{index}")

    def parser_error(self, index: int) -> str:
        return self.parser_errors.get(index, f"reason_{index}")


def parse_drop_reason_names(text: str) -> DropReasonNames:
    """The DROP_* and PARSER_ERROR_* constants of defines.p4 (DROP_NONE is not a drop)."""
    drops: dict[int, str] = {}
    parser_errors: dict[int, str] = {}
    for name, value in _CONST.findall(text):
        if name == NO_DROP or name.endswith("_COUNT"):
            continue
        if name.startswith("PARSER_ERROR_"):
            parser_errors[int(value)] = name.removeprefix("PARSER_ERROR_").lower()
        else:
            drops[int(value)] = name.removeprefix("DROP_").lower()
    return DropReasonNames(drops=drops, parser_errors=parser_errors)


def load_drop_reason_names(p4info_path: Path) -> DropReasonNames:
    """The names for the P4Info at ``p4info_path`` (its program's include/defines.p4); numbers
    only, with a warning, when that source is not there."""
    path = p4info_path.parent / DEFINES
    try:
        return parse_drop_reason_names(path.read_text())
    except OSError as error:
        log.warning("drop reasons: cannot read %s (%s); reasons are reported by number",
                    path, error.strerror or error)
        return DropReasonNames()
