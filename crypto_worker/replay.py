"""Anti-replay on receive: the sliding window of RFC 4303 §3.4.3 and Appendix A (ESN).

The check happens before the ICV is verified (cheap rejection of duplicates and old packets) and
the window moves only after the ICV verified, as §3.4.3 requires, so a forged packet can never
advance it.
"""

from __future__ import annotations

_LOW32 = 0xFFFFFFFF

DEFAULT_WINDOW = 64
MAX_WINDOW = 4096


class ReplayWindow:
    """The window of one inbound SA: the highest authenticated sequence number and a bitmap."""

    __slots__ = ("_size", "_esn", "_top", "_bitmap", "_mask")

    def __init__(self, *, size: int, esn: bool) -> None:
        if not 1 <= size <= MAX_WINDOW:
            raise ValueError(f"replay_window: {size}, must be 1 … {MAX_WINDOW}")
        self._size = size
        self._esn = esn
        self._top = 0  # highest authenticated sequence number (64 bits with ESN); 0 = none yet
        self._bitmap = 0  # bit i set = sequence number top - i was received
        self._mask = (1 << size) - 1

    @property
    def size(self) -> int:
        return self._size

    @property
    def top(self) -> int:
        return self._top

    def refuse_up_to(self, mark: int) -> None:
        """A resumed SA: every sequence number at or below the durable high-water mark counts
        as received, so none of them is accepted again after a restart."""
        self._top = mark
        self._bitmap = self._mask

    def full_sequence(self, low32: int) -> int:
        """The 64-bit sequence number of a received low half (RFC 4303 A2.1).

        Without ESN the packet carries the whole number. With ESN the high half is inferred from
        where the low half falls relative to the window.
        """
        if not self._esn:
            return low32
        top_low = self._top & _LOW32
        top_high = self._top >> 32
        bottom_low = (top_low - self._size + 1) & _LOW32
        if top_low >= self._size - 1:  # Case A: the window lies within one 2^32 subspace
            high = top_high if low32 >= bottom_low else top_high + 1
        else:  # Case B: the window spans two subspaces
            high = top_high - 1 if low32 >= bottom_low else top_high
        if high < 0:  # near the start the "previous subspace" does not exist: only 0 is possible
            high = 0
        return (high << 32) | low32

    def is_fresh(self, sequence: int) -> bool:
        """True when `sequence` is new and inside (or right of) the window; no state change."""
        if sequence <= 0:
            return False
        if sequence > self._top:
            return True
        offset = self._top - sequence
        if offset >= self._size:
            return False
        return not (self._bitmap >> offset) & 1

    def accept(self, sequence: int) -> None:
        """Records an authenticated packet's sequence number, sliding the window if needed."""
        if sequence > self._top:
            shift = sequence - self._top
            self._bitmap = ((self._bitmap << shift) | 1) & self._mask if shift < self._size else 1
            self._top = sequence
        else:
            self._bitmap |= 1 << (self._top - sequence)
