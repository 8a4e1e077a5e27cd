"""Bulk reads of the per-tunnel counter arrays, shared by every stats call for a short while.

A stats page used to read the counter arrays per page, and finsy decoded each cell into an
entity object (issue 12: 25 % of the controller's time). Here:

* :class:`CounterArrayReader` is the one component that reads counters (stats, the clean-index
  scan at reconnect, the metrics endpoint's drop counters). It reads named indexed counters over
  its own gRPC channel to the switch (reads need no primary role; the same TLS files as the
  primary channel), takes the ReadResponses as bytes and keeps packet and byte counts per
  counter in ``array('Q')`` — no entity object per cell. It reads the given cells by index
  (requests of at most ``CELLS_PER_REQUEST`` entities) or, when that would be more than
  ``WHOLE_READ_SHARE`` of the arrays, each array whole in one request. Decoding compares the
  bytes with :class:`ZeroCells`, the canonical protobuf encoding of every cell at zero (a
  server writes the same bytes for a zero cell: protobuf's encoding of these messages is
  deterministic), in blocks; only elements that differ are parsed, by their own counter id
  and index, so the cost is a memory compare per cell plus a parse per counted cell, for any
  server;
* :class:`CounterPoller` hands out the latest :class:`CounterSnapshot` while it is younger than
  ``max_age`` (default 1 s, the controller's ``--counter-max-age``) after its read ended — so a
  figure is at most ``max_age`` plus one read's duration old — and nothing was programmed
  since it began (a CREATE or DELETE resets cells, so a snapshot from before it must not be
  served); concurrent callers share one read in flight. Nothing is read while nobody asks.

It returns raw data-plane counts; turning cells into the API's figures (and any baselines) stays
with the data plane that owns the allocations.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from finsy.proto import p4r

from controller.settings import DEFAULT_MAX_AGE
from controller.tls import SwitchChannelTls
from p4rt_wire import ZeroCells, read_varint

# Arrays are read whole when the cells asked for are more than this share of them: by index a
# cell costs about 15 µs (an entity each way), whole a zero cell about 0.07 µs (measured,
# docs/operations.md "Capacity and speed").
WHOLE_READ_SHARE = 1 / 256
CELLS_PER_REQUEST = 32_768  # by-index entities per ReadRequest (about 0.5 MB; servers take 4 MiB)


class CounterReadFailed(Exception):
    """The switch did not answer the counter read (message names the switch and the code)."""


@dataclass(frozen=True, kw_only=True)
class CounterSnapshot:
    """Packet and byte counts per counter name and index, read between ``started`` and
    ``taken_at`` (``time.monotonic``, the read's end); ``counted`` names, per counter, the
    indices whose cells are not zero (the decoder parsed those; every other cell is 0), so a
    consumer's work follows the counted cells, not the arrays' size. ``extra`` carries what the
    read function added (the worker's drops per SA index), ``generation`` the reader's
    programming generation when the read began (the data plane's: which changes it may
    predate)."""

    started: float
    taken_at: float
    packets: Mapping[str, array]
    octets: Mapping[str, array] = field(default_factory=dict)
    counted: Mapping[str, set[int]] = field(default_factory=dict)
    extra: Mapping[int, int] = field(default_factory=dict)
    generation: int = 0

    def get(self, cell: tuple[str, int], default: int = 0, /) -> int:
        """The packet count of (counter name, index), as ``Pipeline.tunnel_figures`` reads."""
        cells = self.packets.get(cell[0])
        if cells is None or not 0 <= cell[1] < len(cells):
            return default
        return cells[cell[1]]

    def get_bytes(self, cell: tuple[str, int], default: int = 0, /) -> int:
        """The byte count of (counter name, index)."""
        cells = self.octets.get(cell[0])
        if cells is None or not 0 <= cell[1] < len(cells):
            return default
        return cells[cell[1]]


DECODE_BLOCK = 256  # cells compared at once with the zero encoding


class _Decoder:
    """Fills packet and byte arrays from concatenated ReadResponse bytes."""

    def __init__(self, by_id: Mapping[int, tuple[array, array | None, set[int]]]) -> None:
        self._by_id = by_id

    def element(self, data: bytes, position: int) -> tuple[int, int, int]:
        """Parse the element at `position`: (counter id, index, next position)."""
        if data[position] != _ENTITIES_TAG:
            raise CounterReadFailed(f"unexpected field tag {data[position]} in a ReadResponse")
        length, start = read_varint(data, position + 1)
        entry = p4r.Entity.FromString(data[start:start + length]).counter_entry
        index = entry.index.index
        found = self._by_id.get(entry.counter_id)
        if found is not None and 0 <= index < len(found[0]):
            packets, octets, counted = found
            packets[index] = entry.data.packet_count
            if octets is not None:
                octets[index] = entry.data.byte_count
            if entry.data.packet_count or (octets is not None and entry.data.byte_count):
                counted.add(index)
        return entry.counter_id, index, start + length

    def decode(self, data: bytes, runs: Sequence[tuple[int, ZeroCells, int, int]]) -> None:
        """`runs`: the (counter id, zero cells, first index, stop) the request asked for, in
        request order. Zero blocks are skipped by comparison; anything else is parsed; if the
        server answered in another order, every element is parsed."""
        position = 0
        for counter_id, zero, start, stop in runs:
            blob = zero.blob
            index = start
            while index < stop:
                last = min(stop, index + DECODE_BLOCK)
                a, b = zero.offset(index), zero.offset(last)
                if data[position:position + b - a] == blob[a:b]:
                    position += b - a
                    index = last
                    continue
                while index < last:
                    a, b = zero.offset(index), zero.offset(index + 1)
                    if data[position:position + b - a] == blob[a:b]:
                        position += b - a
                    else:
                        if position >= len(data):
                            raise CounterReadFailed("the switch answered fewer counter cells "
                                                    "than asked")
                        got_id, got_index, position = self.element(data, position)
                        if (got_id, got_index) != (counter_id, index):
                            self._everything(data)
                            return
                    index += 1
        if position != len(data):
            self._everything(data)

    def _everything(self, data: bytes) -> None:
        position = 0
        while position < len(data):
            _, _, position = self.element(data, position)


_ENTITIES_TAG = p4r.ReadResponse.DESCRIPTOR.fields_by_name["entities"].number << 3 | 2


class CounterArrayReader:
    """Reads indexed counters (name → (P4Info id, size)): whole, or the cells asked for."""

    def __init__(self, *, address: str, device_id: int,
                 counters: Mapping[str, tuple[int, int]], timeout: float = 60.0,
                 tls: SwitchChannelTls | None = None,
                 with_bytes: Iterable[str] = ()) -> None:
        self._address = address
        self._tls = tls
        self._device_id = device_id
        self._counters = dict(counters)
        self._with_bytes = set(with_bytes)
        self._zero: dict[str, ZeroCells] = {}
        self._timeout = timeout
        self._channel: grpc.aio.Channel | None = None

    def _zero_cells(self, name: str) -> ZeroCells:
        found = self._zero.get(name)
        if found is None:
            counter_id, size = self._counters[name]
            found = self._zero[name] = ZeroCells(counter_id, size)
        return found

    def _plan(self, cells: Sequence[tuple[str, int]] | None
              ) -> list[tuple[list[p4r.Entity], list[tuple[int, ZeroCells, int, int]]]]:
        """(entities, expected runs) per ReadRequest."""
        total = sum(size for _, size in self._counters.values())
        if cells is None or len(cells) > WHOLE_READ_SHARE * total:
            return [([p4r.Entity(counter_entry=p4r.CounterEntry(counter_id=counter_id))
                      for counter_id, _ in self._counters.values()],
                     [(counter_id, self._zero_cells(name), 0, size)
                      for name, (counter_id, size) in self._counters.items()])]
        ordered = sorted(set(cells))
        plans = []
        for first in range(0, len(ordered), CELLS_PER_REQUEST):
            chunk = ordered[first:first + CELLS_PER_REQUEST]
            entities = []
            runs: list[tuple[int, ZeroCells, int, int]] = []
            for name, index in chunk:
                counter_id = self._counters[name][0]
                entities.append(p4r.Entity(counter_entry=p4r.CounterEntry(
                    counter_id=counter_id, index=p4r.Index(index=index))))
                if runs and runs[-1][0] == counter_id and runs[-1][3] == index:
                    runs[-1] = (*runs[-1][:3], index + 1)
                else:
                    runs.append((counter_id, self._zero_cells(name), index, index + 1))
            plans.append((entities, runs))
        return plans

    async def read(self, cells: Sequence[tuple[str, int]] | None = None) -> CounterSnapshot:
        """The counts of `cells` ((counter name, index); None: every cell), cells not read
        counting 0."""
        plans = self._plan(cells)
        if self._channel is None:
            options = [("grpc.max_receive_message_length", 64 << 20)]
            if self._tls is None:
                self._channel = grpc.aio.insecure_channel(self._address, options=options)
            else:  # files re-read per channel, as the primary channel does at each reconnect
                self._channel = grpc.aio.secure_channel(
                    self._address, self._tls.credentials().to_client_credentials(), options=options)
        read = self._channel.unary_stream("/p4.v1.P4Runtime/Read",
                                          request_serializer=p4r.ReadRequest.SerializeToString,
                                          response_deserializer=None)
        packets = {name: array("Q", bytes(8 * size))
                   for name, (_, size) in self._counters.items()}
        octets = {name: array("Q", bytes(8 * size))
                  for name, (_, size) in self._counters.items() if name in self._with_bytes}
        counted: dict[str, set[int]] = {name: set() for name in self._counters}
        decoder = _Decoder({counter_id: (packets[name], octets.get(name), counted[name])
                            for name, (counter_id, _) in self._counters.items()})
        started = time.monotonic()
        try:
            for entities, runs in plans:
                request = p4r.ReadRequest(device_id=self._device_id, entities=entities)
                blobs = [blob async for blob in read(request, timeout=self._timeout)]
                decoder.decode(b"".join(blobs), runs)
        except grpc.aio.AioRpcError as error:
            raise CounterReadFailed(f"switch {self._address}: counter read failed: "
                                    f"{error.code().name} {error.details()}") from None
        return CounterSnapshot(started=started, taken_at=time.monotonic(), packets=packets,
                               octets=octets, counted=counted)

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

    def fresh(self) -> CounterSnapshot | None:
        """The cached snapshot if it may still be served, without reading."""
        latest = self._latest
        if latest is not None and self._clock() - latest.taken_at <= self.max_age:
            return latest
        return None

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
