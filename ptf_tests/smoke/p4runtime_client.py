"""A minimal synchronous P4Runtime client for PTF tests (PTF tests are plain unittest code).

Opens the StreamChannel, becomes primary, sets the pipeline, writes and reads entities by name
against the P4Info. Works with p4sim and BMv2's simple_switch_grpc alike.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import grpc
from google.protobuf import text_format

from p4sim.p4runtime.proto import p4i, p4r, p4r_grpc

ELECTION_ID = 10
TIMEOUT = 10.0


def encode(value: int) -> bytes:
    """Canonical P4Runtime byte string."""
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


class P4RuntimeClient:
    def __init__(self, address: str, device_id: int, p4info_path: str) -> None:
        self.device_id = device_id
        self.p4info = text_format.Parse(Path(p4info_path).read_text(), p4i.P4Info())
        self._channel = grpc.insecure_channel(address)
        grpc.channel_ready_future(self._channel).result(timeout=TIMEOUT)
        self.stub = p4r_grpc.P4RuntimeStub(self._channel)
        self._requests: queue.SimpleQueue[p4r.StreamMessageRequest | None] = queue.SimpleQueue()
        self._responses: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._stream = self.stub.StreamChannel(iter(self._requests.get, None))
        threading.Thread(target=self._read_stream, daemon=True).start()
        self._become_primary()

    def _read_stream(self) -> None:
        try:
            for response in self._stream:
                self._responses.put(response)
        except grpc.RpcError as error:
            self._responses.put(error)

    def _become_primary(self) -> None:
        update = p4r.MasterArbitrationUpdate(device_id=self.device_id)
        update.election_id.low = ELECTION_ID
        self._requests.put(p4r.StreamMessageRequest(arbitration=update))
        reply = self._responses.get(timeout=TIMEOUT)
        if isinstance(reply, grpc.RpcError):
            raise reply
        if reply.arbitration.status.code != 0:
            raise RuntimeError(f"not primary: {reply.arbitration.status}")

    def close(self) -> None:
        self._requests.put(None)
        self._stream.cancel()
        self._channel.close()

    # -- pipeline ---------------------------------------------------------------------------

    def set_pipeline(self, device_config: bytes = b"") -> None:
        request = p4r.SetForwardingPipelineConfigRequest(
            device_id=self.device_id,
            action=p4r.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT,
            config=p4r.ForwardingPipelineConfig(p4info=self.p4info,
                                                p4_device_config=device_config))
        request.election_id.low = ELECTION_ID
        self.stub.SetForwardingPipelineConfig(request)

    # -- names ------------------------------------------------------------------------------

    def _find(self, items, name: str):  # type: ignore[no-untyped-def]
        for item in items:
            if name in (item.preamble.name, item.preamble.alias):
                return item
        raise KeyError(f"no {name!r} in the P4Info")

    def table_entry(self, table: str, match: dict[str, tuple], action: str,
                    params: dict[str, int]) -> p4r.TableEntry:
        """``match`` maps field name to ("lpm", value, prefix_len) or ("exact", value)."""
        info = self._find(self.p4info.tables, table)
        entry = p4r.TableEntry(table_id=info.preamble.id)
        for field in info.match_fields:
            if field.name not in match:
                continue
            kind, value, *rest = match[field.name]
            one = entry.match.add(field_id=field.id)
            if kind == "lpm":
                one.lpm.value = encode(value)
                one.lpm.prefix_len = rest[0]
            else:
                one.exact.value = encode(value)
        action_info = self._find(self.p4info.actions, action)
        entry.action.action.action_id = action_info.preamble.id
        for param in action_info.params:
            entry.action.action.params.add(param_id=param.id, value=encode(params[param.name]))
        return entry

    # -- write / read -----------------------------------------------------------------------

    def write(self, kind: int, *entities: p4r.Entity) -> None:
        request = p4r.WriteRequest(device_id=self.device_id,
                                   updates=[p4r.Update(type=kind, entity=e) for e in entities])
        request.election_id.low = ELECTION_ID
        self.stub.Write(request)

    def insert(self, entry: p4r.TableEntry) -> None:
        self.write(p4r.Update.INSERT, p4r.Entity(table_entry=entry))

    def read(self, entity: p4r.Entity) -> list[p4r.Entity]:
        found: list[p4r.Entity] = []
        for response in self.stub.Read(p4r.ReadRequest(device_id=self.device_id,
                                                       entities=[entity])):
            found.extend(response.entities)
        return found

    def delete_all(self, table: str) -> None:
        info = self._find(self.p4info.tables, table)
        found = self.read(p4r.Entity(table_entry=p4r.TableEntry(table_id=info.preamble.id)))
        if found:
            self.write(p4r.Update.DELETE, *found)

    def counter(self, name: str, index: int) -> tuple[int, int]:
        info = self._find(self.p4info.counters, name)
        [cell] = self.read(p4r.Entity(counter_entry=p4r.CounterEntry(
            counter_id=info.preamble.id, index=p4r.Index(index=index))))
        return cell.counter_entry.data.packet_count, cell.counter_entry.data.byte_count

    def direct_counter(self, entry: p4r.TableEntry) -> tuple[int, int]:
        [cell] = self.read(p4r.Entity(direct_counter_entry=p4r.DirectCounterEntry(
            table_entry=p4r.TableEntry(table_id=entry.table_id, match=entry.match,
                                       priority=entry.priority))))
        data = cell.direct_counter_entry.data
        return data.packet_count, data.byte_count
