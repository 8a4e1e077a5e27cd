"""Applies the updates of one ``WriteRequest`` to the runtime state, with P4Runtime atomicity.

The caller holds the switch lock for the whole batch, so packets see the state before or after
the batch, never in between (every mode is data-plane atomic here). Each applied update records
how to undo itself; with ROLLBACK_ON_ERROR or DATAPLANE_ATOMIC the first failure undoes the
applied updates in reverse order, so the state is exactly as before the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import grpc

from p4sim.errors import EntryError
from p4sim.p4runtime.bytestrings import decode_uint
from p4sim.p4runtime.entities import DecodedEntry, decode_counter_data, decode_table_entry
from p4sim.p4runtime.errors import P4RuntimeError, denied, from_entry_error, invalid, unimplemented
from p4sim.p4runtime.proto import p4r
from p4sim.p4runtime.schema import Schema
from p4sim.runtime import CounterState, RegisterState, RuntimeState, TableState

logger = logging.getLogger(__name__)

Undo = Callable[[], None]
EntryMetadata = dict[tuple[int, object], bytes]  # (table id, entry key) -> TableEntry.metadata

INSERT, MODIFY, DELETE = p4r.Update.INSERT, p4r.Update.MODIFY, p4r.Update.DELETE


class BatchWriter:
    """Writes one batch; ``apply`` returns one error (or None) per update, in order."""

    def __init__(self, schema: Schema, state: RuntimeState, metadata: EntryMetadata) -> None:
        self._schema = schema
        self._state = state
        self._metadata = metadata

    def apply(self, updates: Sequence[p4r.Update], atomicity: int) -> list[P4RuntimeError | None]:
        rollback = atomicity in (p4r.WriteRequest.ROLLBACK_ON_ERROR,
                                 p4r.WriteRequest.DATAPLANE_ATOMIC)
        if atomicity not in (p4r.WriteRequest.CONTINUE_ON_ERROR,
                             p4r.WriteRequest.ROLLBACK_ON_ERROR,
                             p4r.WriteRequest.DATAPLANE_ATOMIC):
            raise invalid(f"unknown atomicity {atomicity}")
        results: list[P4RuntimeError | None] = []
        undo_log: list[Undo] = []
        for position, update in enumerate(updates):
            try:
                undo_log.extend(self._apply_one(update))
                results.append(None)
            except P4RuntimeError as error:
                results.append(error)
                if rollback:
                    self._roll_back(undo_log)
                    return _aborted_around(results, position, len(updates))
        return results

    def _roll_back(self, undo_log: list[Undo]) -> None:
        for undo in reversed(undo_log):
            undo()
        logger.info("write batch rolled back (%d changes undone)", len(undo_log))

    def _apply_one(self, update: p4r.Update) -> list[Undo]:
        if update.type not in (INSERT, MODIFY, DELETE):
            raise invalid(f"update type {update.type} is not INSERT, MODIFY or DELETE")
        kind = update.entity.WhichOneof("entity")
        if kind == "table_entry":
            return self._table_entry(update.type, update.entity.table_entry)
        if kind == "counter_entry":
            return self._counter_entry(update.type, update.entity.counter_entry)
        if kind == "direct_counter_entry":
            return self._direct_counter_entry(update.type, update.entity.direct_counter_entry)
        if kind == "register_entry":
            return self._register_entry(update.type, update.entity.register_entry)
        if kind is None:
            raise invalid("update has no entity")
        raise unimplemented(f"writing {kind} is not supported by p4sim")

    # -- table entries ---------------------------------------------------------------------

    def _table_entry(self, kind: int, message: p4r.TableEntry) -> list[Undo]:
        decoded = decode_table_entry(self._schema, message)
        table = self._table_state(decoded.table.id)
        if decoded.is_default:
            return self._default_entry(kind, decoded, table)
        if decoded.table.is_const and (kind != MODIFY or decoded.action is not None):
            raise denied(f"table {table.name!r} is const: its entries cannot be inserted, "
                         "deleted or given another action")
        if kind == INSERT:
            return self._insert(decoded, table)
        if kind == MODIFY:
            return self._modify(decoded, table)
        return self._delete(decoded, table)

    def _insert(self, decoded: DecodedEntry, table: TableState) -> list[Undo]:
        if decoded.action is None:
            raise invalid(f"table {table.name!r}: INSERT needs an action")
        counter = self._direct_counter_of(table, required=decoded.counter_data is not None)
        entry = decoded.runtime_entry()
        try:
            table.insert(entry)
        except EntryError as error:
            raise from_entry_error(error) from None
        key = entry.key
        if counter is not None and decoded.counter_data is not None:
            counter.write(key, *decoded.counter_data)
        self._set_metadata(table.table_id, key, decoded.metadata)

        def undo() -> None:
            table.delete(key)
            self._metadata.pop((table.table_id, key), None)

        return [undo]

    def _modify(self, decoded: DecodedEntry, table: TableState) -> list[Undo]:
        key = decoded.key
        old = table.get(key)
        if old is None:
            raise P4RuntimeError(grpc.StatusCode.NOT_FOUND,
                                 f"table {table.name!r}: no entry with this key")
        counter = self._direct_counter_of(table, required=decoded.counter_data is not None)
        if decoded.action is None and not decoded.table.is_const:
            raise invalid(f"table {table.name!r}: MODIFY needs an action")
        undo: list[Undo] = []
        if decoded.action is not None:
            try:
                table.modify(decoded.runtime_entry())
            except EntryError as error:
                raise from_entry_error(error) from None
            undo.append(lambda: table.modify(old))
            old_metadata = self._metadata.get((table.table_id, key), b"")
            self._set_metadata(table.table_id, key, decoded.metadata)
            undo.append(lambda: self._set_metadata(table.table_id, key, old_metadata))
        if counter is not None and decoded.counter_data is not None:
            undo.append(_write_cell(counter, key, decoded.counter_data))
        return undo

    def _delete(self, decoded: DecodedEntry, table: TableState) -> list[Undo]:
        key = decoded.key
        old = table.get(key)
        if old is None:
            raise P4RuntimeError(grpc.StatusCode.NOT_FOUND,
                                 f"table {table.name!r}: no entry with this key")
        counter = self._direct_counter_of(table, required=False)
        cell = counter.read(key) if counter is not None else None
        old_metadata = self._metadata.pop((table.table_id, key), b"")
        table.delete(key)

        def undo() -> None:
            table.insert(old)
            if counter is not None and cell is not None:
                counter.write(key, *cell)
            self._set_metadata(table.table_id, key, old_metadata)

        return [undo]

    def _default_entry(self, kind: int, decoded: DecodedEntry, table: TableState) -> list[Undo]:
        if kind != MODIFY:
            raise invalid(f"table {table.name!r}: the default entry can only be modified")
        if decoded.table.const_default_action_id or table.default_is_const:
            raise denied(f"table {table.name!r}: the default action is const")
        if decoded.counter_data is not None:
            raise unimplemented("direct counters of the default entry are not supported")
        old = table.default_action
        if decoded.action is None:
            table.reset_default()
        else:
            try:
                table.set_default(decoded.action)
            except EntryError as error:
                raise from_entry_error(error) from None

        def undo() -> None:
            table.default_action = old

        return [undo]

    # -- counters and registers ------------------------------------------------------------

    def _counter_entry(self, kind: int, message: p4r.CounterEntry) -> list[Undo]:
        if kind != MODIFY:
            raise invalid("counters can only be modified (INSERT and DELETE do not apply)")
        if message.counter_id == 0:
            raise invalid("a counter write needs a counter_id")
        info = self._schema.counter(message.counter_id)
        counter = self._state.counters.get(info.id)
        if counter is None:
            raise P4RuntimeError(grpc.StatusCode.INTERNAL, f"counter {info.name!r} has no state")
        data = (decode_counter_data(message.data, f"counter {info.name!r}")
                if message.HasField("data") else (0, 0))
        indices = self._indices(message, info.size, f"counter {info.name!r}")
        return [_write_cell(counter, index, data) for index in indices]

    def _direct_counter_entry(self, kind: int, message: p4r.DirectCounterEntry) -> list[Undo]:
        if kind != MODIFY:
            raise invalid("direct counters can only be modified (INSERT and DELETE do not apply)")
        if not message.HasField("table_entry"):
            raise invalid("a direct counter write needs its table_entry")
        decoded = decode_table_entry(self._schema, message.table_entry)
        if decoded.is_default:
            raise unimplemented("direct counters of the default entry are not supported")
        table = self._table_state(decoded.table.id)
        counter = self._direct_counter_of(table, required=True)
        assert counter is not None
        if table.get(decoded.key) is None:
            raise P4RuntimeError(grpc.StatusCode.NOT_FOUND,
                                 f"table {table.name!r}: no entry with this key")
        data = (decode_counter_data(message.data, f"direct counter of {table.name!r}")
                if message.HasField("data") else (0, 0))
        return [_write_cell(counter, decoded.key, data)]

    def _register_entry(self, kind: int, message: p4r.RegisterEntry) -> list[Undo]:
        if kind != MODIFY:
            raise invalid("registers can only be modified (INSERT and DELETE do not apply)")
        if message.register_id == 0:
            raise invalid("a register write needs a register_id")
        info = self._schema.register(message.register_id)
        register = self._state.registers.get(info.id)
        if register is None:
            raise P4RuntimeError(grpc.StatusCode.INTERNAL, f"register {info.name!r} has no state")
        what = f"register {info.name!r}"
        if message.data.WhichOneof("data") != "bitstring":
            raise invalid(f"{what}: data must be a bitstring")
        value = decode_uint(message.data.bitstring, info.bitwidth, what)
        undo: list[Undo] = []
        for index in self._indices(message, info.size, what):
            undo.append(_write_register(register, index, value))
        return undo

    # -- helpers ---------------------------------------------------------------------------

    def _indices(self, message: p4r.CounterEntry | p4r.RegisterEntry, size: int,
                 what: str) -> range:
        if not message.HasField("index"):
            return range(size)  # no index: every cell
        index = message.index.index
        if index < 0 or index >= size:
            raise invalid(f"{what}: index {index} outside 0..{size - 1}")
        return range(index, index + 1)

    def _table_state(self, table_id: int) -> TableState:
        table = self._state.tables.get(table_id)
        if table is None:
            raise P4RuntimeError(grpc.StatusCode.INTERNAL, f"table id {table_id} has no state")
        return table

    def _direct_counter_of(self, table: TableState, *, required: bool) -> CounterState | None:
        counter = table.direct_counter
        if counter is None:
            info = self._schema.tables[table.table_id]
            counter = self._state.direct_counters.get(info.direct_counter_id)
        if counter is None and required:
            raise invalid(f"table {table.name!r} has no direct counter")
        return counter

    def _set_metadata(self, table_id: int, key: object, metadata: bytes) -> None:
        if metadata:
            self._metadata[(table_id, key)] = metadata
        else:
            self._metadata.pop((table_id, key), None)


def _write_cell(counter: CounterState, index: object, data: tuple[int, int]) -> Undo:
    old = counter.read(index)
    counter.write(index, *data)
    return lambda: counter.write(index, *old)


def _write_register(register: RegisterState, index: int, value: int) -> Undo:
    old = register.read(index)
    register.write(index, value)
    return lambda: register.write(index, old)


def _aborted_around(results: list[P4RuntimeError | None], failed: int,
                    total: int) -> list[P4RuntimeError | None]:
    """After a rollback: the failed update keeps its error, every other one is ABORTED."""
    out: list[P4RuntimeError | None] = []
    for position in range(total):
        if position == failed:
            out.append(results[failed])
        elif position < failed:
            out.append(P4RuntimeError(grpc.StatusCode.ABORTED,
                                      f"rolled back because update {failed} failed"))
        else:
            out.append(P4RuntimeError(grpc.StatusCode.ABORTED,
                                      f"not applied because update {failed} failed"))
    return out
