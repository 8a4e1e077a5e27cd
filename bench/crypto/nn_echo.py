"""A null crypto worker for the benchmark: the same nanomsg socket set-up as the worker, but it
sends every frame straight back (PACKET_OUT in, PACKET_IN out) with no shim parsing and no ESP.
Its CPU per frame is the floor that Python plus pynng put under any worker on this port I/O.

Usage (started by run.py): python bench/crypto/nn_echo.py URL
"""

from __future__ import annotations

import signal
import struct
import sys

import pynng

HEADER = struct.Struct("<iii")


def main() -> None:
    url = sys.argv[1]
    socket = pynng.Pair0(recv_timeout=100, send_timeout=1000, recv_buffer_size=1024,
                         send_buffer_size=1024)
    socket.dial(url, block=False)
    running = True

    def stop(*_: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    while running:
        try:
            message = socket.recv()
        except pynng.Timeout:
            continue
        kind, port, more = HEADER.unpack_from(message)
        if kind == 4:
            socket.send(HEADER.pack(3, port, more) + message[HEADER.size :])
    socket.close()


if __name__ == "__main__":
    main()
