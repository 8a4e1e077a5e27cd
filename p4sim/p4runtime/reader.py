"""Answers the entities of one ``ReadRequest`` from the runtime state: wildcards and filters as
the spec's "Wildcard Reads" section describes, values in canonical byte strings."""

from __future__ import annotations

from collections.abc import Iterator

from p4sim.p4runtime.bytestrings import encode_uint
from p4sim.p4runtime.counter_wire import counter_entities, entity_element
from p4sim.p4runtime.entities import (
    check_priority,
    decode_matches,
    encode_default_entry,
    encode_table_entry,
)
from p4sim.p4runtime.errors import invalid, unimplemented
from p4sim.p4runtime.proto import p4d, p4i, p4r
from p4sim.p4runtime.schema import Schema, TableInfo
from p4sim.p4runtime.writer import EntryMetadata
from p4sim.runtime import CounterState, RuntimeState, TableEntry

_NEVER_PRESENT = {
    "packet_replication_engine_entry": (),
    "action_profile_member": ("action_profile_id",),
    "action_profile_group": ("action_profile_id",),
    "meter_entry": ("meter_id",),
    "direct_meter_entry": (),
    "value_set_entry": ("value_set_id",),
    "digest_entry": ("digest_id",),
}


def counter_data(unit: int, packets: int, nbytes: int) -> p4r.CounterData:
    """Counter data with only what the counter's unit counts (both for UNSPECIFIED/BOTH)."""
    if unit == p4i.CounterSpec.PACKETS:
        nbytes = 0
    elif unit == p4i.CounterSpec.BYTES:
        packets = 0
    return p4r.CounterData(packet_count=packets, byte_count=nbytes)


def _names_an_object(entity: p4r.Entity, kind: str) -> bool:
    message = getattr(entity, kind)
    return any(getattr(message, field) for field in _NEVER_PRESENT[kind])


class EntityReader:
    """Reads entities; call under the switch lock so each answer is one consistent snapshot."""

    def __init__(self, schema: Schema, state: RuntimeState, metadata: EntryMetadata) -> None:
        self._schema = schema
        self._state = state
        self._metadata = metadata

    def read(self, entity: p4r.Entity) -> Iterator[p4r.Entity]:
        kind = entity.WhichOneof("entity")
        if kind == "table_entry":
            yield from self._table_entries(entity.table_entry)
        elif kind == "counter_entry":
            yield from self._counter_entries(entity.counter_entry)
        elif kind == "direct_counter_entry":
            yield from self._direct_counter_entries(entity.direct_counter_entry)
        elif kind == "register_entry":
            yield from self._register_entries(entity.register_entry)
        elif kind is None:
            raise invalid("read request entity has no type")
        elif kind in _NEVER_PRESENT:
            # p4sim has no multicast groups, clone sessions, action profiles, meters, value
            # sets or digests, so a read finds none (clients such as finsy's delete_all read
            # them all); a read naming one by id is refused.
            if _names_an_object(entity, kind):
                raise invalid(f"{kind}: p4sim has no such object")
        else:
            raise unimplemented(f"reading {kind} is not supported by p4sim")

    def read_elements(self, entity: p4r.Entity) -> Iterator[bytes]:
        """As `read`, each entity already encoded as a ``ReadResponse.entities`` element;
        indexed counters go cell by cell straight to bytes (counter_wire)."""
        if entity.WhichOneof("entity") != "counter_entry":
            for found in self.read(entity):
                yield entity_element(found)
            return
        query = entity.counter_entry
        infos = ([self._schema.counter(query.counter_id)] if query.counter_id
                 else list(self._schema.counters.values()))
        for info in infos:
            indices = self._indices(query, info.size, f"counter {info.name!r}")
            yield from counter_entities(self._state.counters[info.id], info.unit, indices)

    # -- tables ----------------------------------------------------------------------------

    def _table_entries(self, query: p4r.TableEntry) -> Iterator[p4r.Entity]:
        if query.table_id == 0:
            if len(query.match) or query.HasField("action") or query.priority:
                raise invalid("a read of all tables (table_id 0) cannot filter by match, "
                              "action or priority")
            tables = list(self._schema.tables.values())
        else:
            tables = [self._schema.table(query.table_id)]
        with_counters = query.HasField("counter_data")
        for info in tables:
            if query.is_default_action:
                yield from self._default_entry(info)
                continue
            for entry, message in self._matching(info, query):
                if with_counters and info.direct_counter_id:
                    message.counter_data.CopyFrom(counter_data(
                        self._schema.direct_counter_units[info.direct_counter_id],
                        *self._direct_counter(info).read(entry.key)))
                yield p4r.Entity(table_entry=message)

    def _default_entry(self, info: TableInfo) -> Iterator[p4r.Entity]:
        table = self._state.tables[info.id]
        yield p4r.Entity(table_entry=encode_default_entry(self._schema, info.id,
                                                          table.default_action))

    def _matching(self, info: TableInfo,
                  query: p4r.TableEntry) -> Iterator[tuple[TableEntry, p4r.TableEntry]]:
        table = self._state.tables[info.id]
        wanted_key = None
        if len(query.match):
            matches = decode_matches(info, query.match)
            check_priority(info, query.priority)
            wanted_key = (tuple(sorted(matches, key=lambda m: m.field_id)), query.priority)
        wanted_action = query.action.action.action_id if query.HasField("action") else 0
        for entry in table.entries():
            key = entry.key
            if wanted_key is not None and key != wanted_key:
                continue
            if query.priority and entry.priority != query.priority:
                continue
            if wanted_action and entry.action.action_id != wanted_action:
                continue
            metadata = self._metadata.get((info.id, key), b"")
            if query.metadata and metadata != query.metadata:
                continue
            yield entry, encode_table_entry(self._schema, entry, is_const=info.is_const,
                                            metadata=metadata)

    # -- counters and registers ------------------------------------------------------------

    def _counter_entries(self, query: p4r.CounterEntry) -> Iterator[p4r.Entity]:
        infos = ([self._schema.counter(query.counter_id)] if query.counter_id
                 else list(self._schema.counters.values()))
        for info in infos:
            counter = self._state.counters[info.id]
            for index in self._indices(query, info.size, f"counter {info.name!r}"):
                yield p4r.Entity(counter_entry=p4r.CounterEntry(
                    counter_id=info.id, index=p4r.Index(index=index),
                    data=counter_data(info.unit, *counter.read(index))))

    def _direct_counter_entries(self, query: p4r.DirectCounterEntry) -> Iterator[p4r.Entity]:
        selector = query.table_entry
        if selector.table_id == 0:
            tables = [t for t in self._schema.tables.values() if t.direct_counter_id]
        else:
            info = self._schema.table(selector.table_id)
            if not info.direct_counter_id:
                raise invalid(f"table {info.name!r} has no direct counter")
            tables = [info]
        for info in tables:
            counter = self._direct_counter(info)
            plain = p4r.TableEntry(table_id=info.id, match=selector.match,
                                   priority=selector.priority)
            for entry, message in self._matching(info, plain if selector.table_id else
                                                  p4r.TableEntry(table_id=info.id)):
                unit = self._schema.direct_counter_units[info.direct_counter_id]
                yield p4r.Entity(direct_counter_entry=p4r.DirectCounterEntry(
                    table_entry=message, data=counter_data(unit, *counter.read(entry.key))))

    def _register_entries(self, query: p4r.RegisterEntry) -> Iterator[p4r.Entity]:
        infos = ([self._schema.register(query.register_id)] if query.register_id
                 else list(self._schema.registers.values()))
        for info in infos:
            register = self._state.registers[info.id]
            for index in self._indices(query, info.size, f"register {info.name!r}"):
                yield p4r.Entity(register_entry=p4r.RegisterEntry(
                    register_id=info.id, index=p4r.Index(index=index),
                    data=p4d.P4Data(bitstring=encode_uint(register.read(index)))))

    def _direct_counter(self, info: TableInfo) -> CounterState:
        table = self._state.tables[info.id]
        counter = table.direct_counter or self._state.direct_counters.get(info.direct_counter_id)
        if counter is None:
            raise invalid(f"table {info.name!r} has no direct counter")
        return counter

    @staticmethod
    def _indices(query: p4r.CounterEntry | p4r.RegisterEntry, size: int, what: str) -> range:
        if not query.HasField("index"):
            return range(size)
        index = query.index.index
        if index < 0 or index >= size:
            raise invalid(f"{what}: index {index} outside 0..{size - 1}")
        return range(index, index + 1)
