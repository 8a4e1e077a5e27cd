"""A null crypto worker for the benchmark: the worker's own nanomsg port (`NanomsgPort`, with the
same nng thread limits the entry point sets), but every frame goes straight back with no shim
parsing and no ESP. Its CPU per frame is the floor that Python plus nng put under any worker on
this port I/O.

Usage (started by run.py): python bench/crypto/nn_echo.py URL
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from crypto_worker.ports.nanomsg import NanomsgPort, limit_nng_threads  # noqa: E402


def main() -> None:
    limit_nng_threads()
    port = NanomsgPort(sys.argv[1], 64)
    running = True

    def stop(*_: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    while running:
        frames = port.recv_batch(64)
        if frames:
            port.send_batch(frames)
    port.close()


if __name__ == "__main__":
    main()
