"""``tunnel-offload-controller`` / ``python -m controller``: parse settings, log, serve."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from controller.sealing import SealingError
from controller.server import serve
from controller.settings import parse_settings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    settings = parse_settings(argv)
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
