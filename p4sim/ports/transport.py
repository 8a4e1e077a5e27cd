"""What the dataplane needs from anything that carries frames in and out of switch ports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

# Called by a transport for every frame that enters the switch: (ingress port, frame).
Deliver = Callable[[int, bytes], None]


class Transport(Protocol):
    """One endpoint carrying the frames of one port or of many (a nanomsg socket, an interface)."""

    name: str

    def start(self, deliver: Deliver) -> None:
        """Begin receiving; hand every received frame to ``deliver``."""

    def send(self, port: int, frame: bytes) -> None:
        """Send one frame that leaves the switch on ``port``."""

    def close(self) -> None:
        """Stop receiving and release the endpoint; idempotent."""
