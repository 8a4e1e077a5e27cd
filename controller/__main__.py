"""``tunnel-offload-controller`` / ``python -m controller``: parse settings, log, serve."""

from __future__ import annotations

import asyncio
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
from process_tuning import tune_gc  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    settings = parse_settings(argv)
    tune_gc()  # process_tuning: fewer full collections
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
