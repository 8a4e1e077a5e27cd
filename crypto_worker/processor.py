"""Turns one message from the crypto port into the message to send back, or into a drop.

Parses the shim, finds the SA by sa_index, runs the ESP transform, counts the result. A dropped
frame returns None: the switch never sees a failed packet (docs/dataplane.md, `status`).

No frame can stop the worker: an exception the transforms did not foresee (a bug) drops that one
frame, counts it as INTERNAL (on its SA when known), logs the traceback at ERROR (at most once per
`_ERROR_LOG_INTERVAL` seconds, with the count of those not logged, so a flood of bad frames cannot
flood the log) and the next frame is processed as usual.
"""

from __future__ import annotations

import logging
import time

from crypto_worker.drops import DropReason, PacketDropped
from crypto_worker.esp import DEFAULT_MTU, decrypt_frame, encrypt_frame
from crypto_worker.sa_table import SaTable
from crypto_worker.shim import SHIM_BYTES, ShimError, ShimOp, parse_shim, shim_with_next_header

log = logging.getLogger(__name__)

_ERROR_LOG_INTERVAL = 10.0


class FrameProcessor:
    """Applies ESP to shim-wrapped frames using the SAs in `table`; results bounded by `mtu`."""

    def __init__(self, table: SaTable, *, mtu: int = DEFAULT_MTU) -> None:
        self._table = table
        self._mtu = mtu
        self._next_error_log = 0.0
        self._errors_not_logged = 0

    def process(self, message: bytes) -> bytes | None:
        """Returns `shim | frame` to send back, or None when the frame was dropped and counted."""
        out = self.process_batch([message])
        return out[0] if out else None

    def process_batch(self, messages: list[bytes]) -> list[bytes]:
        """Processes a batch in order; the result holds only the frames to send back.

        One loop with the per-frame steps written out and everything it calls bound once per
        batch: a Python call per frame saved is a measurable share of its cost
        (docs/crypto-worker.md, Speed)."""
        out: list[bytes] = []
        append = out.append
        table = self._table
        get = table.get
        mtu = self._mtu
        encrypt = ShimOp.ENCRYPT
        for message in messages:
            try:
                try:
                    shim = parse_shim(message)
                except ShimError as error:
                    table.count_unattributed(DropReason.MALFORMED)
                    log.debug("drop: %s", error)
                    continue
                sa = get(shim.sa_index)
                if sa is None:
                    table.count_unknown(shim.sa_index)
                    log.debug("drop: sa_index %s unknown", shim.sa_index)
                    continue
                try:
                    if shim.op is encrypt:
                        # The shim comes back unchanged, joined with the frame in one copy.
                        reply = encrypt_frame(sa, shim, message[SHIM_BYTES:], mtu,
                                              prefix=message[:SHIM_BYTES])
                    else:
                        frame, next_header = decrypt_frame(sa, shim, message[SHIM_BYTES:], mtu)
                        reply = shim_with_next_header(message, next_header) + frame
                except PacketDropped as drop:
                    table.count_drop(sa, drop.reason)
                    log.debug("drop: %s", drop)
                    continue
                counters = sa.counters
                counters.packets += 1
                counters.bytes += len(reply) - SHIM_BYTES
                append(reply)
            except Exception as error:  # noqa: BLE001 - one bad frame must never stop the loop
                self._count_internal(message, error)
        return out

    def _count_internal(self, message: bytes, error: Exception) -> None:
        sa = None
        try:
            sa = self._table.get(parse_shim(message).sa_index)
        except Exception:  # noqa: BLE001 - the shim itself may be what failed
            pass
        if sa is not None:
            self._table.count_drop(sa, DropReason.INTERNAL)
        else:
            self._table.count_unattributed(DropReason.INTERNAL)
        now = time.monotonic()
        if now < self._next_error_log:
            self._errors_not_logged += 1
            return
        self._next_error_log = now + _ERROR_LOG_INTERVAL
        log.error(
            "internal error on a %s-byte frame (sa %r); dropped and counted as INTERNAL "
            "(%s more not logged since the last report)",
            len(message), sa, self._errors_not_logged, exc_info=error,
        )
        self._errors_not_logged = 0
