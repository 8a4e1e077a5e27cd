"""The tunnels as a stream's earlier requests leave them, with the lookups validation needs.

Validation asks, per request, who owns a decrypt SPI and which tunnels chain from a tunnel.
Answering by scanning every tunnel made a stream quadratic (a decrypt CREATE looked at every
other tunnel), and so did the lowest free tunnel id a CREATE with tunnelId 0 gets (counting up
from 1 per request: 500,500 membership tests for 1,000 such CREATEs). :class:`TunnelIndex` keeps
those answers for a set of tunnels, updated per change;
the store keeps one for the committed tunnels, and :class:`TunnelView` lays a stream's accepted
changes over it without copying anything, so validating a request costs the same with 10 or
65,536 tunnels and a stream costs time linear in its length.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from controller.model import IpsecDecrypt, Tunnel


def decrypt_spis(tunnel: Tunnel | None) -> tuple[int, ...]:
    """The inbound SPIs a tunnel owns (decrypt tunnels only)."""
    if tunnel is not None and isinstance(tunnel.body, IpsecDecrypt):
        return tuple(sa.spi for sa in tunnel.body.sas)
    return ()


class TunnelIndex:
    """Decrypt SPI → owning tunnel, tunnel → tunnels chaining from it, the SA count, and
    ``free_from``: a tunnel id at or below the lowest one not in use (every id below it is in
    use) — lowered by a delete below it, raised by :meth:`TunnelView.lowest_free_id` as it
    finds ids in use, so a scan never walks the same used ids twice."""

    def __init__(self, tunnels: Mapping[int, Tunnel] | None = None) -> None:
        self.spi_owner: dict[int, int] = {}
        self.children: dict[int, set[int]] = {}
        self.sa_count = 0
        self.free_from = 1
        for tunnel in (tunnels or {}).values():
            self.move(None, tunnel)

    def move(self, before: Tunnel | None, after: Tunnel | None) -> None:
        """One tunnel changes from ``before`` to ``after`` (None: absent)."""
        if before is not None:
            self.sa_count -= len(before.security_associations)
            if after is None and before.tunnel_id < self.free_from:
                self.free_from = before.tunnel_id
            for spi in decrypt_spis(before):
                if self.spi_owner.get(spi) == before.tunnel_id:
                    del self.spi_owner[spi]
            parent = before.match.previous_tunnel
            if parent is not None:
                kids = self.children.get(parent)
                if kids is not None:
                    kids.discard(before.tunnel_id)
                    if not kids:
                        del self.children[parent]
        if after is not None:
            self.sa_count += len(after.security_associations)
            for spi in decrypt_spis(after):
                self.spi_owner[spi] = after.tunnel_id
            parent = after.match.previous_tunnel
            if parent is not None:
                self.children.setdefault(parent, set()).add(after.tunnel_id)


class TunnelView(Mapping[int, Tunnel]):
    """``base`` (with its :class:`TunnelIndex`) plus the changes set on this view."""

    def __init__(self, base: Mapping[int, Tunnel], index: TunnelIndex) -> None:
        self._base = base
        self._base_index = index
        self._changed: dict[int, Tunnel | None] = {}  # tunnel id -> tunnel, None = deleted
        self._local = TunnelIndex()  # the changed tunnels' own entries
        self._len = len(base)
        self.sa_count = index.sa_count
        self._free_from = index.free_from  # every id below it is in use in this view

    # ---- Mapping ----------------------------------------------------------------------

    def __getitem__(self, tunnel_id: int) -> Tunnel:
        if tunnel_id in self._changed:
            tunnel = self._changed[tunnel_id]
            if tunnel is None:
                raise KeyError(tunnel_id)
            return tunnel
        return self._base[tunnel_id]

    def __contains__(self, tunnel_id: object) -> bool:
        if tunnel_id in self._changed:
            return self._changed[tunnel_id] is not None  # type: ignore[index]
        return tunnel_id in self._base

    def __iter__(self) -> Iterator[int]:
        for tunnel_id in self._base:
            if tunnel_id not in self._changed:
                yield tunnel_id
        for tunnel_id, tunnel in self._changed.items():
            if tunnel is not None:
                yield tunnel_id

    def __len__(self) -> int:
        return self._len

    # ---- changes ----------------------------------------------------------------------

    def set(self, tunnel_id: int, tunnel: Tunnel | None) -> None:
        """The tunnel is now ``tunnel`` (None: deleted)."""
        before = self.get(tunnel_id)
        self._len += (tunnel is not None) - (before is not None)
        self.sa_count += (len(tunnel.security_associations) if tunnel is not None else 0) - (
            len(before.security_associations) if before is not None else 0)
        self._local.move(self._changed.get(tunnel_id), tunnel)
        self._changed[tunnel_id] = tunnel
        if tunnel is None and tunnel_id < self._free_from:
            self._free_from = tunnel_id

    # ---- lookups ----------------------------------------------------------------------

    def lowest_free_id(self) -> int:
        """The lowest tunnel id (from 1) not in use here: a scan from the lowest id that may
        be free, which also moves the base index's bound past the ids it finds in the base (a
        fact about the base alone), so the ids in use are walked once, not once per request."""
        candidate = self._free_from
        base = self._base_index
        while candidate in self:
            if base.free_from == candidate and candidate not in self._changed:
                base.free_from = candidate + 1
            candidate += 1
        self._free_from = candidate
        return candidate

    def spi_owner(self, spi: int) -> int | None:
        """The decrypt tunnel owning inbound ``spi``, if any."""
        owner = self._local.spi_owner.get(spi)
        if owner is not None:
            return owner
        owner = self._base_index.spi_owner.get(spi)
        if owner is None or owner in self._changed:
            return None  # that tunnel changed here: its SPIs are in _local if it still has them
        return owner

    def dependents(self, tunnel_id: int) -> list[int]:
        """The tunnels whose match chains from ``tunnel_id``, ascending."""
        kids = {kid for kid in self._base_index.children.get(tunnel_id, ())
                if kid not in self._changed}
        kids |= self._local.children.get(tunnel_id, set())
        return sorted(kids)
