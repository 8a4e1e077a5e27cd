"""Compact data-plane indices for tunnels and SAs.

The API's tunnel ids are uint64 and client-chosen; the switch counts and chains by a compact
tunnel index (1 … max_tunnels) and the crypto worker addresses SAs by an SA index
(1 … max_sas). An :class:`Allocation` is persisted with its tunnel (the store's ``allocations``
table) so indices, and with them the switch's counters, survive a controller restart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controller.model import Tunnel


@dataclass(frozen=True, kw_only=True)
class Allocation:
    """One tunnel's tunnel index and its SAs' indices as (spi, sa_index) pairs."""

    tunnel_index: int
    sa_pairs: tuple[tuple[int, int], ...] = ()

    @property
    def sa_indexes(self) -> dict[int, int]:
        """SPI → SA index."""
        return dict(self.sa_pairs)


class IndexExhausted(Exception):
    """No free index (the capacity check should have prevented this)."""


def _lowest_free(used: set[int], maximum: int, what: str) -> int:
    for index in range(1, maximum + 1):
        if index not in used:
            used.add(index)
            return index
    raise IndexExhausted(f"no free {what} index (1 … {maximum} all in use)")


def allocate(tunnel: Tunnel, *, previous: Allocation | None, keep_spis: Iterable[int],
             others: Mapping[int, Allocation], max_tunnels: int, max_sas: int) -> Allocation:
    """The allocation of ``tunnel`` after a change.

    A tunnel keeps its index; SAs whose SPI is in ``keep_spis`` (unchanged SAs) keep theirs;
    new SAs get the lowest index that neither another tunnel nor this tunnel's previous
    allocation uses — so during a make-before-break change old and new SAs never share one.
    """
    used_tunnels = {allocation.tunnel_index for tunnel_id, allocation in others.items()
                    if tunnel_id != tunnel.tunnel_id}
    used_sas = {sa_index for tunnel_id, allocation in others.items()
                if tunnel_id != tunnel.tunnel_id for _, sa_index in allocation.sa_pairs}
    if previous is not None:
        tunnel_index = previous.tunnel_index
        used_sas |= {sa_index for _, sa_index in previous.sa_pairs}
    else:
        tunnel_index = _lowest_free(used_tunnels, max_tunnels, "tunnel")
    kept = previous.sa_indexes if previous is not None else {}
    keep = set(keep_spis)
    pairs = []
    for sa in tunnel.security_associations:
        if sa.spi in keep and sa.spi in kept:
            pairs.append((sa.spi, kept[sa.spi]))
        else:
            pairs.append((sa.spi, _lowest_free(used_sas, max_sas, "SA")))
    return Allocation(tunnel_index=tunnel_index, sa_pairs=tuple(pairs))
