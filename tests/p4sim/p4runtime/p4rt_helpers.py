"""Small builders for P4Runtime messages used by the conformance tests (names, not ids)."""

from __future__ import annotations

import grpc

from p4sim.p4runtime.proto import p4r, rpc_status
from tests.p4sim.p4runtime.p4rt_support import Ids, Target, election

INSERT, MODIFY, DELETE = p4r.Update.INSERT, p4r.Update.MODIFY, p4r.Update.DELETE


def update(kind: int, entity: p4r.Entity) -> p4r.Update:
    return p4r.Update(type=kind, entity=entity)


def route(ids: Ids, dst: bytes, prefix_len: int, *, port: bytes = b"\x02",
          dmac: bytes = b"\x0a\x00\x00\x00\x00\x01", action: str = "set_nhop") -> p4r.Entity:
    entry = p4r.TableEntry(table_id=ids.table("ipv4_lpm"))
    field = entry.match.add(field_id=ids.field("ipv4_lpm", "dst"))
    field.lpm.value = dst
    field.lpm.prefix_len = prefix_len
    entry.action.action.action_id = ids.action(action)
    if action == "set_nhop":
        entry.action.action.params.add(param_id=ids.param("set_nhop", "port"), value=port)
        entry.action.action.params.add(param_id=ids.param("set_nhop", "dmac"), value=dmac)
    return p4r.Entity(table_entry=entry)


def acl(ids: Ids, *, priority: int = 10, dst=(b"\x0a\x00\x00\x00", b"\xff\x00\x00\x00"),
        ports=(b"\x01", b"\x05"), proto: bytes | None = b"\x11", vrf: bytes = b"\x00",
        action: str = "drop") -> p4r.Entity:
    entry = p4r.TableEntry(table_id=ids.table("acl"), priority=priority)
    if dst is not None:
        field = entry.match.add(field_id=ids.field("acl", "dst"))
        field.ternary.value, field.ternary.mask = dst
    if ports is not None:
        field = entry.match.add(field_id=ids.field("acl", "port"))
        field.range.low, field.range.high = ports
    if proto is not None:
        entry.match.add(field_id=ids.field("acl", "proto")).optional.value = proto
    entry.match.add(field_id=ids.field("acl", "vrf")).exact.value = vrf
    entry.action.action.action_id = ids.action(action)
    return p4r.Entity(table_entry=entry)


def write(stub, target: Target, *updates: p4r.Update, atomicity: int = 0,
          election_id: int | None = 10, device_id: int | None = None, role: str = "") -> None:
    request = p4r.WriteRequest(device_id=target.device_id if device_id is None else device_id,
                               updates=list(updates), atomicity=atomicity, role=role)
    if election_id is not None:
        request.election_id.CopyFrom(election(election_id))
    stub.Write(request)


def write_errors(stub, target: Target, *updates: p4r.Update,
                 **kwargs: object) -> tuple[grpc.StatusCode, list[tuple[int, str]]]:
    """Write expecting failure: the top-level code and one (code, message) per update."""
    try:
        write(stub, target, *updates, **kwargs)  # type: ignore[arg-type]
    except grpc.RpcError as error:
        details: list[tuple[int, str]] = []
        for key, value in error.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                status = rpc_status.Status.FromString(value)
                for packed in status.details:
                    one = p4r.Error()
                    assert packed.Unpack(one), packed.type_url
                    details.append((one.canonical_code, one.message))
        return error.code(), details
    raise AssertionError("the write succeeded")


def code_of(stub, target: Target, *updates: p4r.Update, **kwargs: object) -> int:
    """The code of the single update of a failing one-update batch."""
    top, details = write_errors(stub, target, *updates, **kwargs)
    assert top == grpc.StatusCode.UNKNOWN and len(details) == 1, (top, details)
    return details[0][0]


def read(stub, target: Target, *entities: p4r.Entity) -> list[p4r.Entity]:
    found: list[p4r.Entity] = []
    for response in stub.Read(p4r.ReadRequest(device_id=target.device_id,
                                              entities=list(entities))):
        found.extend(response.entities)
    return found


def table_query(ids: Ids, table: str | None = None, **fields: object) -> p4r.Entity:
    entry = p4r.TableEntry(table_id=ids.table(table) if table else 0, **fields)
    return p4r.Entity(table_entry=entry)


CODE = {code: code.value[0] for code in grpc.StatusCode}
