"""The result of compilation and how it runs: `CompiledProgram` (generated code plus the
control-plane model) and `StageFunctions` (that code bound to one device's `RuntimeState`), with the
small run-time helpers the generated code calls by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from p4sim import dataplane_lib
from p4sim.model import ProgramModel
from p4sim.packet import ExitSignal, P4AssertionFailure, Packet, ParserFailure
from p4sim.runtime import (
    ActionCall,
    ActionSpec,
    CounterState,
    KeySpec,
    MeterState,
    RegisterState,
    RuntimeState,
    TableEntry,
    TableState,
)
from p4sim.tree import py


def lookahead(P: Packet, nbytes: int, shift: int, mask: int, err: int) -> int:  # noqa: N803
    """`packet.lookahead<bit<W>>()`: peek without moving the cursor."""
    end = P.off + nbytes
    if end > len(P.data):
        raise ParserFailure(err)
    return (int.from_bytes(P.data[P.off:end], "big") >> shift) & mask


def lookahead_header(P: Packet, cls: Any, extract: Any) -> Any:  # noqa: N803
    """`packet.lookahead<H>()` for a header type H: a valid copy, the cursor unchanged."""
    header = cls()
    off = P.off
    try:
        extract(P, header)
    finally:
        P.off = off
    return header


def emit_digest(P: Packet, digest_id: int, values: tuple[int, ...]) -> None:  # noqa: N803
    """`digest(receiver, data)`: remember the values; the Switch delivers them after ingress."""
    if P.digests is None:
        P.digests = []
    P.digests.append((digest_id, values))


def advance(P: Packet, bits: int, err: int) -> None:  # noqa: N803
    """`packet.advance(bits)`: move the cursor (whole bytes)."""
    end = P.off + bits // 8
    if end > len(P.data):
        raise ParserFailure(err)
    P.off = end


def reg_read(reg: RegisterState, index: int) -> int:
    """Data-plane register read; out of range reads 0 (BMv2 logs an error and reads 0)."""
    return reg.cells[index] if 0 <= index < reg.size else 0


def reg_write(reg: RegisterState, index: int, value: int) -> None:
    """Data-plane register write; out of range writes are ignored."""
    if 0 <= index < reg.size:
        reg.cells[index] = value


@dataclass
class StageFunctions:
    """The generated functions of one device, called by `Switch`: `parse(P)`,
    `verify(P, hdr, meta)`, `ingress(P, hdr, meta, sm)`, `egress(P, hdr, meta, sm)`,
    `compute(P, hdr, meta)`, `deparse(P, hdr)`. The controls raise ExitSignal on `exit`; the
    caller ends the block there."""

    parse: Any
    verify: Any
    ingress: Any
    egress: Any
    compute: Any
    deparse: Any
    new_packet: Any
    copy_field_list: Any


@dataclass(frozen=True, kw_only=True)
class CompiledProgram:
    """The compiled program: `model` describes the control-plane entities (ids assigned),
    `source` is the generated Python (kept for debugging and `p4sim check --dump`)."""

    model: ProgramModel
    source: str
    code: Any
    field_lists: dict[int, list[tuple[str, ...]]]
    blocks: dict[str, str]
    header_classes: dict[str, str]

    def new_state(self) -> RuntimeState:
        """Fresh control-plane state, const entries installed."""
        state = RuntimeState()
        m = self.model
        for c in m.counters:
            state.counters[c.id] = CounterState(counter_id=c.id, name=c.name, size=c.size,
                                                unit=c.unit)
        dcs: dict[str, CounterState] = {}
        for c in m.direct_counters:
            dcs[c.name] = state.direct_counters[c.id] = CounterState(
                counter_id=c.id, name=c.name, size=0, unit=c.unit)
        for r in m.registers:
            state.registers[r.id] = RegisterState(register_id=r.id, name=r.name, size=r.size,
                                                  bitwidth=r.bitwidth)
        for mm in m.meters:
            state.meters[mm.id] = MeterState(meter_id=mm.id, name=mm.name, size=mm.size,
                                             unit=mm.unit)
        dms: dict[str, MeterState] = {}
        for mm in m.direct_meters:
            dms[mm.name] = state.direct_meters[mm.id] = MeterState(
                meter_id=mm.id, name=mm.name, size=0, unit=mm.unit)
        for t in m.tables:
            specs = []
            for aname, anns in t.actions:
                a = m.actions[aname]
                names = {n for n, _ in anns}
                scope = ("DEFAULT_ONLY" if "defaultonly" in names else
                         "TABLE_ONLY" if "tableonly" in names else "TABLE_AND_DEFAULT")
                specs.append(ActionSpec(action_id=a.id, name=a.name,
                                        param_bitwidths=tuple(w for _, w in a.params),
                                        scope=scope))  # type: ignore[arg-type]
            entries = tuple(
                TableEntry(table_id=t.id, matches=matches, priority=prio,
                           action=ActionCall(action_id=m.actions[an].id, args=args))
                for matches, prio, (an, args) in t.const_entries)
            state.tables[t.id] = TableState(
                table_id=t.id, name=t.name,
                keys=tuple(KeySpec(field_id=k.field_id, name=k.name, bitwidth=k.bitwidth,
                                   match_kind=k.match_kind) for k in t.keys),  # type: ignore[arg-type]
                actions=tuple(specs), size=max(t.size, len(entries)),
                default_action=ActionCall(action_id=m.actions[t.default_action[0]].id,
                                          args=t.default_action[1]),
                default_is_const=t.default_is_const, is_const=t.is_const, const_entries=entries,
                direct_counter=dcs.get(t.direct_counter) if t.direct_counter else None,
                direct_meter=dms.get(t.direct_meter) if t.direct_meter else None)
        return state

    def instantiate(self, state: RuntimeState) -> StageFunctions:
        """Run the generated module against `state`; return the pipeline functions."""
        ns: dict[str, Any] = {
            "ParserFailure": ParserFailure, "ExitSignal": ExitSignal,
            "P4AssertionFailure": P4AssertionFailure, "emit_digest": emit_digest,
            "lookahead": lookahead, "lookahead_header": lookahead_header, "advance": advance,
            "reg_read": reg_read, "reg_write": reg_write,
        }
        for name in ("HeaderStack", "stack_next", "stack_last", "copy_header", "push_front",
                     "pop_front", "to_signed", "copy_value", "copy_of", "reset_value", "out_arg",
                     "values_equal",
                     "stack_at", "pack_bits", "compute_hash", "hash_result",
                     "random_between", "log_message", "csum16", "csum16_value", "crc16",
                     "crc32"):
            ns[name] = getattr(dataplane_lib, name)
        m = self.model
        ns["_AN"] = {a.id: a.name for a in m.actions.values()}
        for a in m.actions.values():
            ns[f"_A_{py(a.name)}"] = a.id
        for t in m.tables:
            ns[f"_T_{py(t.name)}"] = state.tables[t.id]
        for c in m.counters:
            ns[f"_C_{py(c.name)}"] = state.counters[c.id]
        for c in m.direct_counters:
            ns[f"_DC_{py(c.name)}"] = state.direct_counters[c.id]
        for r in m.registers:
            ns[f"_R_{py(r.name)}"] = state.registers[r.id]
        for mm in m.meters:
            ns[f"_M_{py(mm.name)}"] = state.meters[mm.id]
        for mm in m.direct_meters:
            ns[f"_DM_{py(mm.name)}"] = state.direct_meters[mm.id]
        for d in m.digests:
            ns[f"_DG_{py(d.name)}"] = d.id
        exec(self.code, ns)  # noqa: S102 - our own generated code
        for t in m.tables:
            ns[f"_bind_{py(t.name)}"]()
        b = self.blocks
        hdr_cls = ns[f"S_{py(m.headers_type)}"]
        meta_cls = ns[f"S_{py(m.metadata_type)}"]
        sm_cls = ns["S_standard_metadata_t"]

        def new_packet(data: bytes) -> Packet:
            return Packet(data, hdr_cls(), meta_cls(), sm_cls())

        lists = self.field_lists

        def copy_field_list(src: Any, dst: Any, index: int) -> None:
            for path in lists.get(index, ()):
                s, d = src, dst
                for part in path[:-1]:
                    s = getattr(s, "f_" + part)
                    d = getattr(d, "f_" + part)
                setattr(d, "f_" + path[-1], getattr(s, "f_" + path[-1]))

        return StageFunctions(
            parse=ns[b["parse"]], verify=ns[b["verify"]], ingress=ns[b["ingress"]],
            egress=ns[b["egress"]], compute=ns[b["compute"]], deparse=ns[b["deparse"]],
            new_packet=new_packet, copy_field_list=copy_field_list)

    def encode_controller_header(self, name: str, metadata: dict[int, int]) -> bytes:
        """Serialize the @controller_header(name) header from field id → value."""
        ch = self.model.controller_header(name)
        parts = [(metadata.get(fid, 0), w) for fid, _n, w in ch.fields]
        return dataplane_lib.pack_bits(parts)

    def decode_controller_header(self, name: str, frame: bytes) -> tuple[bytes, dict[int, int]]:
        """Split a frame into (payload, field id → value) for the @controller_header(name)."""
        ch = self.model.controller_header(name)
        total = sum(w for _, _, w in ch.fields)
        nbytes = total // 8
        value = int.from_bytes(frame[:nbytes], "big")
        out = {}
        shift = total
        for fid, _n, w in ch.fields:
            shift -= w
            out[fid] = (value >> shift) & ((1 << w) - 1)
        return frame[nbytes:], out
