"""``tunnel-offload-controller`` / ``python -m controller``: parse settings, log, serve."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from collections.abc import Sequence

# gRPC's C core logs every failed TLS handshake at INFO on stderr, one line per attempt; the
# controller says what is wrong in one ERROR line (controller/p4rt/connection.py) instead. Read
# by gRPC when it is first imported, so set before controller.server imports it.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from controller.sealing import SealingError  # noqa: E402
from controller.server import serve  # noqa: E402
from controller.settings import parse_settings  # noqa: E402

# The cyclic GC's thresholds for a long-running server that holds many long-lived objects
# (docs/operations.md "Capacity and speed"): with the default (700, 10, 10) a stream of 20,000
# CREATEs spent 1.9 s of the controller's 11.6 s CPU and 2.2 s of p4sim's 6.4 s in collections,
# nearly all full ones walking every tunnel's objects; with these, 0.14 s and 0.16 s. Cyclic
# garbage is still collected, after 50,000 allocations (young) and 10 million (full).
GC_THRESHOLDS = (50_000, 20, 10)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    settings = parse_settings(argv)
    gc.set_threshold(*GC_THRESHOLDS)
    logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.log_wire:
        logging.getLogger("controller.wire").setLevel(logging.DEBUG)
    try:
        asyncio.run(serve(settings))
    except (OSError, ValueError, RuntimeError, SealingError) as error:
        logging.getLogger("controller").error("cannot start: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
