"""Turns one message from the crypto port into the message to send back, or into a drop.

Parses the shim, finds the SA by sa_index, runs the ESP transform, counts the result. A dropped
frame returns None: the switch never sees a failed packet (docs/dataplane.md, `status`).
"""

from __future__ import annotations

import logging

from crypto_worker.drops import DropReason, PacketDropped
from crypto_worker.esp import decrypt_frame, encrypt_frame
from crypto_worker.sa_table import SaTable
from crypto_worker.shim import SHIM_BYTES, ShimError, ShimOp, parse_shim, shim_with_next_header

log = logging.getLogger(__name__)


class FrameProcessor:
    """Applies ESP to shim-wrapped frames using the SAs in `table`."""

    def __init__(self, table: SaTable) -> None:
        self._table = table

    def process(self, message: bytes) -> bytes | None:
        """Returns `shim | frame` to send back, or None when the frame was dropped and counted."""
        try:
            shim = parse_shim(message)
        except ShimError as error:
            self._table.count_unattributed(DropReason.MALFORMED)
            log.debug("drop: %s", error)
            return None
        sa = self._table.get(shim.sa_index)
        if sa is None:
            self._table.count_unknown(shim.sa_index)
            log.debug("drop: sa_index %s unknown", shim.sa_index)
            return None
        frame = message[SHIM_BYTES:]
        counters = sa.counters
        try:
            if shim.op is ShimOp.ENCRYPT:
                out_frame = encrypt_frame(sa, shim, frame)
                raw_shim = message[:SHIM_BYTES]
            else:
                out_frame, next_header = decrypt_frame(sa, shim, frame)
                raw_shim = shim_with_next_header(message, next_header)
        except PacketDropped as drop:
            counters.count_drop(drop.reason)
            log.debug("drop: %s", drop)
            return None
        counters.packets += 1
        counters.bytes += len(out_frame)
        return raw_shim + out_frame

    def process_batch(self, messages: list[bytes]) -> list[bytes]:
        """Processes a batch in order; the result holds only the frames to send back."""
        out = []
        for message in messages:
            result = self.process(message)
            if result is not None:
                out.append(result)
        return out
