"""What the dataplane needs from anything that carries frames in and out of switch ports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

# Called by a transport with every frame it received in one wake-up, in arrival order:
# [(ingress port, frame), ...]. One call per wake-up, not per frame: the dataplane queues the
# whole list at once, so a burst costs one queue operation and one thread hand-over.
Deliver = Callable[[list[tuple[int, bytes]]], None]


class Transport(Protocol):
    """One endpoint carrying the frames of one port or of many (a nanomsg socket, an interface)."""

    name: str

    def start(self, deliver: Deliver) -> None:
        """Begin receiving; hand the frames of each wake-up to ``deliver``."""

    def send(self, port: int, frame: bytes) -> None:
        """Send one frame that leaves the switch on ``port``."""

    def send_batch(self, frames: Sequence[tuple[int, bytes]]) -> None:
        """Send frames that leave the switch, [(port, frame), ...], in order."""

    def close(self) -> None:
        """Stop receiving and release the endpoint; idempotent."""
