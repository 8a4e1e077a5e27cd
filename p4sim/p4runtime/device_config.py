"""The ``p4_device_config`` p4sim accepts: a small JSON document that names or carries the P4
program, so SetForwardingPipelineConfig can load it.

    {"format": "p4sim/1", "program": "/abs/or/relative/main.p4", "defines": {"X": "1"}}
    {"format": "p4sim/1", "main": "main.p4", "files": {"main.p4": "...", "include/a.p4": "..."}}

A relative ``program`` path is resolved against the server's working directory. Carried files
are written to a private temporary directory and loaded from there. An empty device config means
"the program given on the command line", when there is one.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from p4sim.p4runtime.errors import invalid

FORMAT = "p4sim/1"


@dataclass(frozen=True, kw_only=True)
class DeviceConfig:
    """Where the program is (a path, possibly in a temporary directory) and its defines."""

    program: Path
    defines: Mapping[str, str] = field(default_factory=dict)
    keep_alive: object = None  # the TemporaryDirectory of carried files, if any


def make_device_config(program: str | Path, *, defines: Mapping[str, str] | None = None,
                       embed: bool = False) -> bytes:
    """A device config naming ``program`` or, with ``embed``, carrying its directory's .p4 files."""
    path = Path(program)
    doc: dict[str, object] = {"format": FORMAT}
    if embed:
        root = path.resolve().parent
        files = {str(p.relative_to(root)): p.read_text()
                 for p in sorted(root.rglob("*.p4"))}
        doc.update(main=path.name, files=files)
    else:
        doc["program"] = str(path)
    if defines:
        doc["defines"] = dict(defines)
    return json.dumps(doc, indent=1, sort_keys=True).encode()


def parse_device_config(raw: bytes) -> DeviceConfig:
    """Read a device config; INVALID_ARGUMENT naming what is wrong."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise invalid("p4_device_config is not a p4sim device config (JSON with "
                      f"\"format\": \"{FORMAT}\"); a BMv2 JSON or p4c output cannot run here"
                      ) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise invalid(f"p4_device_config format is {found!r}, expected {FORMAT!r}")
    defines = doc.get("defines", {})
    if not isinstance(defines, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in defines.items()):
        raise invalid("p4_device_config defines must map names to strings")
    if "program" in doc:
        program = doc["program"]
        if not isinstance(program, str) or not program:
            raise invalid("p4_device_config program must be a non-empty path")
        path = Path(program)
        if not path.is_file():
            raise invalid(f"p4_device_config program {program!r} is not a file on the switch")
        return DeviceConfig(program=path, defines=defines)
    return _carried(doc, defines)


def _carried(doc: dict, defines: dict[str, str]) -> DeviceConfig:
    files, main = doc.get("files"), doc.get("main")
    if not isinstance(files, dict) or not isinstance(main, str) or main not in files:
        raise invalid("p4_device_config needs \"program\", or \"files\" with \"main\" among them")
    temp = tempfile.TemporaryDirectory(prefix="p4sim-program-")
    root = Path(temp.name)
    for name, text in files.items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts or not isinstance(text, str):
            temp.cleanup()
            raise invalid(f"p4_device_config file name {name!r} must be a relative path "
                          "inside the program directory, with text content")
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return DeviceConfig(program=root / main, defines=defines, keep_alive=temp)
