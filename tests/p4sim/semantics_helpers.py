"""Helpers for the P4_16 semantics tests: run a small v1model program through p4sim.

Each semantics test writes one program around a shared skeleton (one header `h_t` of bytes
extracted from the frame, everything emitted), sends a frame and compares the bytes that come out.
"""

from __future__ import annotations

from pathlib import Path

from p4sim.program import Program, load_program
from p4sim.switch import Switch

PRELUDE = """#include <core.p4>
#include <v1model.p4>
"""

SKELETON = """
control V(inout headers_t hdr, inout meta_t meta) { apply { } }
control C(inout headers_t hdr, inout meta_t meta) { apply { } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""


_LOADED: dict[str, Program] = {}


def run(tmp_path: Path, program: str, frame: bytes, port: int = 1) -> list[tuple[int, bytes]]:
    """Load `program` (PRELUDE + text + SKELETON; each text once per session) and send `frame`
    on `port` of a fresh switch."""
    text = PRELUDE + program + SKELETON
    if text not in _LOADED:
        path = tmp_path / "semantics.p4"
        path.write_text(text)
        _LOADED[text] = load_program(path)
    return Switch(_LOADED[text]).process(port, frame)


def out_bytes(tmp_path: Path, program: str, frame: bytes) -> bytes:
    """The one frame the program transmits (it must transmit exactly one)."""
    result = run(tmp_path, program, frame)
    assert len(result) == 1, result
    return result[0][1]
