"""The data-plane seam: the one narrow interface through which validated changes reach the switch.

The service calls :meth:`DataPlane.apply_batch` with a batch of validated requests (each the
complete tunnel before and after the change) and learns, per change and in order, whether it
was applied, refused as the request's own fault (:class:`controller.errors.RequestError`) or
not applied because the data plane is unavailable (:class:`DataPlaneUnavailable`: that change
and every later one of the batch). Each change is all-or-nothing; the service commits exactly
the applied ones. :meth:`DataPlane.apply` is the batch of one. The default
implementation is :class:`controller.p4runtime_dataplane.P4RuntimeDataPlane` (switch tables over
P4Runtime + crypto worker SAs); :class:`DetachedDataPlane` (``--data-plane detached``) programs
nothing and reports zero counters, and says so at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from controller.errors import RequestError
from controller.model import Operation, Tunnel

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TunnelChange:
    """One validated change: CREATE has only ``after``, DELETE only ``before``, UPDATE both."""

    operation: Operation
    before: Tunnel | None
    after: Tunnel | None

    @property
    def tunnel_id(self) -> int:
        """The id of the tunnel the change is about."""
        tunnel = self.after if self.after is not None else self.before
        assert tunnel is not None
        return tunnel.tunnel_id

    def inverse(self) -> TunnelChange:
        """The change that undoes this one (used when the store cannot commit)."""
        operation = {
            Operation.CREATE: Operation.DELETE,
            Operation.DELETE: Operation.CREATE,
            Operation.UPDATE: Operation.UPDATE,
        }[self.operation]
        return TunnelChange(operation=operation, before=self.after, after=self.before)


@dataclass(frozen=True, kw_only=True)
class TunnelCounters:
    """Per-tunnel counters (the API's ``counters``), read from the data plane."""

    in_packets: int = 0
    out_packets: int = 0
    in_bytes: int = 0
    out_bytes: int = 0
    in_packets_drops: int = 0
    out_packets_drops: int = 0
    in_bytes_drops: int = 0
    out_bytes_drops: int = 0


ZERO_COUNTERS = TunnelCounters()


class SparseCounters(Mapping[int, TunnelCounters]):
    """The counters of `tunnel_ids` where only the non-zero ones are held (``nonzero``, which
    may hold other tunnels too): a page of a stats pass costs what its counted tunnels cost,
    and a reader that knows this (read_messages.stats_responses) skips the zero ones."""

    def __init__(self, tunnel_ids: Sequence[int], nonzero: Mapping[int, TunnelCounters]) -> None:
        self._ids = tunnel_ids
        self._keys = frozenset(tunnel_ids)
        self.nonzero = nonzero

    def __getitem__(self, tunnel_id: int) -> TunnelCounters:
        if tunnel_id not in self._keys:
            raise KeyError(tunnel_id)
        return self.nonzero.get(tunnel_id, ZERO_COUNTERS)

    def __iter__(self) -> Iterator[int]:
        return iter(dict.fromkeys(self._ids))

    def __len__(self) -> int:
        return len(self._keys)


class DataPlaneUnavailable(Exception):
    """The data plane could not apply a change or read counters (device fault, no connection)."""


class DataPlane(Protocol):
    """What the service needs from a data plane; implementations must be all-or-nothing per
    :meth:`apply` call (undo their own partial writes before raising)."""

    name: str

    async def apply(self, change: TunnelChange) -> None:
        """Program one change; raise :class:`DataPlaneUnavailable` if it could not be applied."""
        ...

    async def apply_batch(self, changes: Sequence[TunnelChange]) -> list[Exception | None]:
        """Program changes in order (module doc): per change None (applied) or why not."""
        ...

    async def read_counters(self, tunnel_ids: Iterable[int]) -> Mapping[int, TunnelCounters]:
        """Counters for each id; raise :class:`DataPlaneUnavailable` when they cannot be read."""
        ...


async def apply_each(apply: Callable[[TunnelChange], Awaitable[None]],
                     changes: Sequence[TunnelChange]) -> list[Exception | None]:
    """:meth:`DataPlane.apply_batch` for a data plane that applies one change at a time: stops
    at the first :class:`DataPlaneUnavailable` (the later changes are not tried)."""
    results: list[Exception | None] = []
    for position, change in enumerate(changes):
        try:
            await apply(change)
        except RequestError as error:
            results.append(error)
            continue
        except DataPlaneUnavailable as fault:
            results += [fault] * (len(changes) - position)
            break
        results.append(None)
    return results


class DetachedDataPlane:
    """``--data-plane detached``: nothing is programmed, counters are 0 (API-only use and tests).

    Not a simulation: it keeps no state and invents no traffic. The server logs this at start-up
    and docs/api.md explains it.
    """

    name = "detached"

    async def apply(self, change: TunnelChange) -> None:
        log.debug("detached data plane: %s tunnel %s not programmed", change.operation.name,
                  change.tunnel_id)

    async def apply_batch(self, changes: Sequence[TunnelChange]) -> list[Exception | None]:
        return [None] * len(changes)

    async def read_counters(self, tunnel_ids: Iterable[int]) -> Mapping[int, TunnelCounters]:
        return SparseCounters(list(tunnel_ids), {})
