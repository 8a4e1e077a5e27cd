"""Loading a P4_16 v1model program: preprocess, parse, check, compile — once.

`load_program` runs the whole front end and returns an immutable `Program`: the generated P4Info
and the program compiled into Python functions (see `p4sim.compiler`), ready for any number of
`Switch` instances. Every problem in the source raises a `p4sim.errors.P4Error` subclass whose
str() is ``file:line:column: error: message``.

P4Info messages are `finsy.proto.p4i.P4Info` (the same `p4.config.v1.P4Info` message type); the
`p4runtime` wheel's own `p4info_pb2` module does not import under the pinned protobuf 6.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from finsy.proto import p4i
from google.protobuf import text_format

from p4sim.compiled import CompiledProgram
from p4sim.compiler import compile_program
from p4sim.p4c_warnings import P4Warning, find_warnings
from p4sim.p4info import build_p4info
from p4sim.preprocess import preprocess
from p4sim.syntax import parse_source


@dataclass(frozen=True, kw_only=True)
class Program:
    """A checked and compiled program. Immutable; share it between switches."""

    source_path: Path
    p4info: p4i.P4Info
    compiled: CompiledProgram
    warnings: tuple[P4Warning, ...] = ()  # what p4c-bm2-ss would warn about (p4c_warnings)

    def p4info_text(self) -> str:
        """The P4Info as text proto, the format `p4c --p4runtime-files x.txt` writes."""
        return text_format.MessageToString(self.p4info)


def load_program(
    path: str | os.PathLike[str],
    *,
    defines: Mapping[str, str] | None = None,
    include_dirs: tuple[str | os.PathLike[str], ...] = (),
) -> Program:
    """Preprocess, parse, check and compile the P4 program at `path`.

    `defines` work like `-DNAME=value` on the p4c command line. Raises `P4Error` (with
    file:line:column) for anything p4sim cannot run, including constructs outside its subset.
    """
    source = Path(path)
    pre = preprocess(source, defines=defines, include_dirs=tuple(Path(d) for d in include_dirs))
    tree = parse_source(pre)
    compiled = compile_program(tree, pre)
    return Program(source_path=source, p4info=build_p4info(compiled.model), compiled=compiled,
                   warnings=tuple(find_warnings(tree, pre)))
