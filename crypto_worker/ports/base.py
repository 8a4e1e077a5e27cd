"""What the packet loop needs from a port: read a batch, write a batch, close."""

from __future__ import annotations

from typing import Protocol


class CryptoPortIo(Protocol):
    """One crypto port; every message is `shim | Ethernet frame`."""

    def recv_batch(self, max_frames: int) -> list[bytes]:
        """Waits up to the port's poll interval for a frame, then takes whatever else is queued
        (at most `max_frames` in all) without waiting; [] when nothing arrived."""
        ...

    def send_batch(self, frames: list[bytes]) -> None:
        """Sends the frames back to the switch on the crypto port, in order."""
        ...

    def close(self) -> None: ...
