"""The P4Runtime client of the tests: one primary finsy ``Switch`` behind a synchronous facade.

Every test that programs the switch itself (the PTF suites in ptf_tests/dataplane and
ptf_tests/smoke, the pytest suite tests/p4src against an in-process p4sim server) goes through
this class, so they all speak P4Runtime the way the controller does (finsy: arbitration, pipeline
push, names resolved against the P4Info with "did you mean" errors, values encoded from ints,
address strings, ``(value, mask)`` and ``"prefix/len"``). It works against p4sim and BMv2's
simple_switch_grpc alike.

PTF tests are plain unittest code and finsy is asyncio, so the ``Switch`` lives on an event loop
in a background thread and each method waits for its coroutine there.

Import it as ``ptf_tests.p4rt_test_client`` (PTF's ``--pypath`` and ``python -m pytest`` both put
the repository root on sys.path).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import finsy as fy
from finsy.proto import p4i

T = TypeVar("T")

CALL_TIMEOUT = 30.0  # seconds one facade call may take (finsy's own RPC timeout is 10 s)
ELECTION_ID = 10  # finsy's default; a later client of the same switch bids what it needs


class P4RuntimeTestClient:
    """A primary P4Runtime connection to one device, with the pipeline pushed on connect.

    ``device_config`` is the p4_device_config: p4c's BMv2 JSON on BMv2; on p4sim empty means "the
    program `p4sim run` was started with". Connecting always pushes the pipeline
    (VERIFY_AND_COMMIT: every table empty, every counter at 0), whatever the switch ran before.
    ``p4info`` is a P4Info text file or the message itself (finsy's P4Schema takes both).
    """

    def __init__(self, address: str, *, p4info: Path | p4i.P4Info, device_id: int = 1,
                 device_config: bytes = b"", election_id: int = ELECTION_ID) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="p4rt-test-client",
                                        daemon=True)
        self._thread.start()
        options = fy.SwitchOptions(
            p4info=p4info,  # type: ignore[arg-type]  # annotated Path, passed on to P4Schema
            p4blob=device_config, device_id=device_id, initial_election_id=election_id,
            p4force=True)
        self._switch = fy.Switch("switch-under-test", address, options)
        try:
            self._call(self._switch.__aenter__())
        except BaseException:
            self._stop_loop()
            raise
        if not self._switch.is_primary:
            self.close()
            raise RuntimeError(f"not primary on {address} device {device_id}: "
                               f"primary election id is {self._switch.primary_id}")

    @property
    def schema(self) -> fy.P4Schema:
        """The P4Info as finsy indexes it (tables, actions, counters by name)."""
        return self._switch.p4info

    def close(self) -> None:
        """Close the stream and stop the background loop."""
        try:
            self._call(self._switch.__aexit__(None, None, None))
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CALL_TIMEOUT)
        self._loop.close()

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(CALL_TIMEOUT)

    # -- pipeline --------------------------------------------------------------------------------

    def set_pipeline(self) -> None:
        """VERIFY_AND_COMMIT the pipeline again: every table empties, every counter restarts at 0.

        finsy pushes the pipeline only during its handshake and has no public call for a later
        push, so this sends the request its handshake sends (``_set_pipeline_config_request``,
        which fills in device id and election id)."""
        switch = self._switch
        self._call(switch._set_pipeline_config_request(
            config=switch.p4info.get_pipeline_config()))

    # -- writes ----------------------------------------------------------------------------------

    def insert(self, entities: Iterable[Any]) -> None:
        """INSERT finsy entities, all in one WriteRequest."""
        self._call(self._switch.insert(list(entities)))

    def modify(self, entities: Iterable[Any]) -> None:
        """MODIFY finsy entities, all in one WriteRequest."""
        self._call(self._switch.modify(list(entities)))

    def delete(self, entities: Iterable[Any]) -> None:
        """DELETE finsy entities (or raw ``p4r.Entity`` read back), in one WriteRequest."""
        self._call(self._switch.delete(list(entities)))

    def add_entry(self, table: str, action: str, *, match: dict[str, Any] | None = None,
                  params: dict[str, Any] | None = None, priority: int = 0) -> fy.P4TableEntry:
        """Insert one entry of ``table``, matching ``match`` (key names to finsy values), with
        ``action`` and its ``params``; the entry, to read its direct counter or delete it."""
        entry = fy.P4TableEntry(table, match=fy.P4TableMatch(match or {}),
                                action=fy.P4TableAction(action, **(params or {})),
                                priority=priority)
        self.insert([entry])
        return entry

    def delete_all(self, table: str) -> None:
        """Delete every entry of ``table`` (one wildcard read, one WriteRequest)."""
        self._call(self._switch.delete_many([fy.P4TableEntry(table)]))

    # -- reads -----------------------------------------------------------------------------------

    def read(self, entities: Iterable[Any]) -> list[Any]:
        """One ReadRequest for ``entities`` (finsy entities, wildcards allowed); what the switch
        returned, decoded by finsy, in its order."""
        async def collect() -> list[Any]:
            # finsy's overloads of Switch.read are async generators its stubs type as coroutines
            found = self._switch.read(list(entities))
            return [entity async for entity in found]  # type: ignore[attr-defined]
        return self._call(collect())

    def counters(self, name: str, indexes: Sequence[int]) -> list[tuple[int, int]]:
        """(packets, bytes) of the cells ``indexes`` of indexed counter ``name``, in one
        ReadRequest; a count outside the counter's unit reads 0, as P4Runtime reports it."""
        cells = self.read(fy.P4CounterEntry(name, index=index) for index in indexes)
        by_index = {cell.index: (cell.packet_count, cell.byte_count) for cell in cells}
        return [by_index[index] for index in indexes]

    def counter(self, name: str, index: int) -> tuple[int, int]:
        """(packets, bytes) of one cell of indexed counter ``name``."""
        (cell,) = self.counters(name, [index])
        return cell

    def direct_counter(self, entry: fy.P4TableEntry) -> tuple[int, int]:
        """(packets, bytes) of the direct counter of table entry ``entry``."""
        key = fy.P4TableEntry(entry.table_id, match=entry.match, priority=entry.priority)
        (cell,) = self.read([fy.P4DirectCounterEntry(table_entry=key)])
        return cell.packet_count, cell.byte_count

