"""Per-packet state the compiled program reads and writes.

One `Packet` lives for one pass through the pipeline (a recirculated or resubmitted packet gets a
new one). The generated code reaches everything through it: `P.hdr`, `P.meta` and `P.sm` are the
three v1model parameters, `P.data`/`P.off` the bytes and the parser cursor, `P.emitted` what the
deparser wrote.
"""

from __future__ import annotations

from typing import Any


class ParserFailure(Exception):  # noqa: N818 - a control-flow signal, not a bug report
    """Raised inside generated parser code to stop parsing with an error (e.g. PacketTooShort)."""

    def __init__(self, error_code: int) -> None:
        super().__init__(error_code)
        self.error_code = error_code


class P4AssertionFailure(Exception):  # noqa: N818 - named after the P4 extern
    """An `assert`/`assume` that failed: BMv2 stops the switch; p4sim drops the packet."""


class ExitSignal(Exception):  # noqa: N818 - a control-flow signal
    """Raised by `exit;`: ends the current top-level control block."""


class Packet:
    """Mutable per-pass packet context. What most passes never set (recirculate, clone,
    digests, trace, ...) is a class default until written, so a new Packet costs only the
    attributes every pass uses."""

    recirculate: int | None = None
    resubmit: int | None = None
    clone: tuple[int, int | None] | None = None  # (session, field list) once cloned
    meter_color = 0  # the color a table's direct meter gave the entry it hit
    truncate_to = 0  # truncate(n): transmit at most n bytes
    digests: list[tuple[int, tuple[int, ...]]] | None = None  # (digest id, values)
    trace: list[str] | None = None
    payload_start = 0

    def __init__(self, data: bytes, hdr: Any, meta: Any, sm: Any) -> None:
        self.data = data
        self.off = 0
        self.emitted: list[bytes] = []
        self.hdr = hdr
        self.meta = meta
        self.sm = sm
