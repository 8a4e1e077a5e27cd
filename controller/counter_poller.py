"""Bulk reads of the per-tunnel counter arrays, shared by every stats call for a short while.

A stats page used to read the eight counter arrays whole (4 × 65,536 packet cells and
4 × 1,048,576 byte cells at the default sizes) per page, and finsy decoded each cell into an
entity object (issue 12: 25 % of the controller's time). Here:

* :class:`CounterArrayReader` reads named indexed counters over its own gRPC channel to the
  switch (reads need no primary role; the same TLS files as the primary channel) and keeps only
  the packet counts, per counter, in an ``array('Q')`` — no entity object per cell. It reads the
  given cells by index (requests of at most ``CELLS_PER_REQUEST`` entities) or, when that would
  be more than half the arrays, each array whole in one request: with 16 byte cells per tunnel
  the arrays hold 4.4 million cells, so by index is cheaper until nearly every tunnel index is
  in use;
* :class:`CounterPoller` hands out the latest :class:`CounterSnapshot` while it is younger than
  ``max_age`` (default 1 s) after its read ended — so a figure is at most ``max_age`` plus one
  read's duration old — and nothing was programmed
  since it began (a CREATE resets cells, so a snapshot from before it must not be served);
  concurrent callers share one read in flight. Nothing is read while nobody asks.

It returns raw data-plane counts; turning cells into the API's figures (and any baselines) stays
with the data plane that owns the allocations.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import grpc
from finsy.proto import p4r

from controller.tls import SwitchChannelTls

DEFAULT_MAX_AGE = 1.0  # seconds: how stale a stats page may be
CELLS_PER_REQUEST = 32_768  # by-index entities per ReadRequest (about 0.5 MB; servers take 4 MiB)


class CounterReadFailed(Exception):
    """The switch did not answer the counter read (message names the switch and the code)."""


@dataclass(frozen=True, kw_only=True)
class CounterSnapshot:
    """Packet counts per counter name and index, read between ``started`` and ``taken_at``
    (``time.monotonic``, the read's end)."""

    started: float
    taken_at: float
    packets: Mapping[str, array]

    def get(self, cell: tuple[str, int], default: int = 0, /) -> int:
        """The count of (counter name, index), as ``Pipeline.tunnel_figures`` reads cells."""
        cells = self.packets.get(cell[0])
        if cells is None or not 0 <= cell[1] < len(cells):
            return default
        return cells[cell[1]]


class CounterArrayReader:
    """Reads whole indexed counters (name → (P4Info id, size)) in one ReadRequest."""

    def __init__(self, *, address: str, device_id: int,
                 counters: Mapping[str, tuple[int, int]], timeout: float = 60.0,
                 tls: SwitchChannelTls | None = None) -> None:
        self._address = address
        self._tls = tls
        self._device_id = device_id
        self._counters = dict(counters)
        self._names = {counter_id: name for name, (counter_id, _) in self._counters.items()}
        self._timeout = timeout
        self._channel: grpc.aio.Channel | None = None

    async def read(self, cells: Sequence[tuple[str, int]] | None = None) -> CounterSnapshot:
        """The packet counts of `cells` ((counter name, index); None: every cell), cells not
        read counting 0."""
        total = sum(size for _, size in self._counters.values())
        if cells is None or len(cells) * 2 > total:
            requests = [[p4r.Entity(counter_entry=p4r.CounterEntry(counter_id=counter_id))
                         for counter_id, _ in self._counters.values()]]
        else:
            entities = [p4r.Entity(counter_entry=p4r.CounterEntry(
                counter_id=self._counters[name][0], index=p4r.Index(index=index)))
                for name, index in cells]
            requests = [entities[first:first + CELLS_PER_REQUEST]
                        for first in range(0, len(entities), CELLS_PER_REQUEST)]
        if self._channel is None:
            options = [("grpc.max_receive_message_length", 64 << 20)]
            if self._tls is None:
                self._channel = grpc.aio.insecure_channel(self._address, options=options)
            else:  # files re-read per channel, as the primary channel does at each reconnect
                self._channel = grpc.aio.secure_channel(
                    self._address, self._tls.credentials().to_client_credentials(), options=options)
        read = self._channel.unary_stream("/p4.v1.P4Runtime/Read",
                                          request_serializer=p4r.ReadRequest.SerializeToString,
                                          response_deserializer=p4r.ReadResponse.FromString)
        packets = {name: array("Q", bytes(8 * size))
                   for name, (_, size) in self._counters.items()}
        by_id = {counter_id: packets[name] for counter_id, name in self._names.items()}
        started = time.monotonic()
        try:
            for entities in requests:
                request = p4r.ReadRequest(device_id=self._device_id, entities=entities)
                async for response in read(request, timeout=self._timeout):
                    for entity in response.entities:
                        entry = entity.counter_entry
                        found = by_id.get(entry.counter_id)
                        if found is not None:
                            found[entry.index.index] = entry.data.packet_count
        except grpc.aio.AioRpcError as error:
            raise CounterReadFailed(f"switch {self._address}: counter read failed: "
                                    f"{error.code().name} {error.details()}") from None
        return CounterSnapshot(started=started, taken_at=time.monotonic(), packets=packets)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


class CounterPoller:
    """The latest snapshot while it is younger than ``max_age`` and nothing was programmed
    since (the data plane calls :meth:`invalidate` after every change)."""

    def __init__(self, read: Callable[[], Awaitable[CounterSnapshot]], *,
                 max_age: float = DEFAULT_MAX_AGE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self.max_age = max_age
        self._clock = clock
        self._latest: CounterSnapshot | None = None
        self._epoch = 0  # bumped by invalidate: a read begun before it is not cached
        self._in_flight: asyncio.Task[CounterSnapshot] | None = None
        self.reads = 0  # how many reads reached the switch (tests, metrics)

    async def snapshot(self) -> CounterSnapshot:
        """A snapshot that ended at most ``max_age`` ago and began after the last
        invalidation: the cached one, the one being read, or a new read."""
        latest = self._latest
        if latest is not None and self._clock() - latest.taken_at <= self.max_age:
            return latest
        task = self._in_flight
        if task is None:
            task = self._in_flight = asyncio.ensure_future(self._read_once(self._epoch))
        return await asyncio.shield(task)

    def invalidate(self) -> None:
        """Forget the cached snapshot and any read in flight (the next call reads anew)."""
        self._latest = None
        self._in_flight = None
        self._epoch += 1

    async def _read_once(self, epoch: int) -> CounterSnapshot:
        try:
            self.reads += 1
            snapshot = await self._read()
            if epoch == self._epoch:
                self._latest = snapshot
            return snapshot
        finally:
            if epoch == self._epoch:
                self._in_flight = None
