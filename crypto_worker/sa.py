"""Security associations: the frozen configuration, the keys, and the per-SA runtime state."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crypto_worker.aead import EspAead
from crypto_worker.ciphers import CipherSuite
from crypto_worker.drops import DropReason, PacketDropped
from crypto_worker.replay import ReplayWindow
from crypto_worker.secret import Secret
from crypto_worker.shim import FLAG_NAT_T, FLAG_TUNNEL_MODE, ShimOp

if TYPE_CHECKING:
    from crypto_worker.reservation import Reservation

MAX_SEQUENCE_32 = 0xFFFFFFFF
MAX_SEQUENCE_64 = 0xFFFFFFFFFFFFFFFF


def max_sequence(config: SaConfig) -> int:
    return MAX_SEQUENCE_64 if config.esn else MAX_SEQUENCE_32


class Direction(enum.Enum):
    ENCRYPT = "encrypt"
    DECRYPT = "decrypt"


class EspMode(enum.Enum):
    TRANSPORT = "transport"
    TUNNEL = "tunnel"


@dataclass(frozen=True, kw_only=True, slots=True)
class SaConfig:
    """What the controller says about one SA; everything but the keys."""

    sa_index: int
    spi: int
    direction: Direction
    suite: CipherSuite
    mode: EspMode
    nat_traversal: bool
    esn: bool
    replay_window: int


@dataclass(frozen=True, kw_only=True, slots=True)
class SaKeys:
    """The key material of one SA: AES key and salt, both wrapped."""

    key: Secret
    salt: Secret


@dataclass(frozen=True, kw_only=True)
class CounterSnapshot:
    """A copy of one SA's counters, taken for a read."""

    sa_index: int
    packets: int
    bytes: int
    drops: dict[DropReason, int] = field(default_factory=dict)


class SaCounters:
    """Packets and bytes the SA transformed, and its drops by reason.

    Written only by the packet thread; reads take a snapshot (plain int reads are atomic under
    the GIL, so a snapshot is consistent per field).
    """

    __slots__ = ("packets", "bytes", "drops")

    def __init__(self) -> None:
        self.packets = 0
        self.bytes = 0
        self.drops: dict[DropReason, int] = {}

    def count_drop(self, reason: DropReason) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1

    def snapshot(self, sa_index: int) -> CounterSnapshot:
        return CounterSnapshot(
            sa_index=sa_index, packets=self.packets, bytes=self.bytes, drops=dict(self.drops)
        )


class SecurityAssociation:
    """One live SA: its config, its AEAD and its state (next sequence number or replay window)."""

    __slots__ = (
        "config",
        "aead",
        "counters",
        "shim_signature",
        "spi_bytes",
        "_next_sequence",
        "_max_sequence",
        "replay",
        "reservation",
    )

    def __init__(
        self,
        config: SaConfig,
        keys: SaKeys,
        reservation: Reservation,
        *,
        start_after: int = 0,
    ) -> None:
        """`reservation` holds the durable limit; `start_after` is where a resumed SA takes
        over: outbound, the first sequence number is start_after + 1; inbound, everything at or
        below start_after is refused as a replay."""
        self.config = config
        self.aead = EspAead(config.suite, keys.key, keys.salt)
        self.counters = SaCounters()
        # (op, flags) every shim for this SA must carry; one tuple compare per packet.
        self.shim_signature = (
            ShimOp.ENCRYPT if config.direction is Direction.ENCRYPT else ShimOp.DECRYPT,
            (FLAG_TUNNEL_MODE if config.mode is EspMode.TUNNEL else 0)
            | (FLAG_NAT_T if config.nat_traversal else 0),
        )
        self.spi_bytes = config.spi.to_bytes(4, "big")
        self._next_sequence = start_after + 1
        self._max_sequence = max_sequence(config)
        self.reservation = reservation
        self.replay: ReplayWindow | None = None
        if config.direction is Direction.DECRYPT:
            self.replay = ReplayWindow(size=config.replay_window, esn=config.esn)
            if start_after:
                self.replay.refuse_up_to(start_after)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"<SA index={c.sa_index} spi=0x{c.spi:08x} {c.direction.value} {c.suite.label} "
            f"{c.mode.value}{' nat-t' if c.nat_traversal else ''}>"
        )

    @property
    def next_sequence(self) -> int:
        """The sequence number the next outbound packet gets (for reads; 0 when inbound)."""
        return self._next_sequence if self.config.direction is Direction.ENCRYPT else 0

    def take_sequence(self) -> int:
        """Allocates the next outbound sequence number; never cycles (RFC 4303 §3.3.3)."""
        sequence = self._next_sequence
        if sequence > self.reservation.refill_at:  # refill_at <= the maximum: one compare
            if sequence > self._max_sequence:
                raise PacketDropped(
                    DropReason.SEQUENCE_EXHAUSTED,
                    f"sa_index {self.config.sa_index}: sequence number space exhausted",
                )
            self.reservation.reach(sequence)  # durable before use; may raise PacketDropped
        self._next_sequence = sequence + 1
        return sequence

    def set_next_sequence_for_test(self, sequence: int) -> None:
        """Moves the counter (exhaustion tests only: 2^32 packets cannot be sent in a test)."""
        self._next_sequence = sequence
