"""p4sim at control-plane scale: one WriteRequest of N inserts, whole-counter reads, and
packets/s through the TunnelOffload pipeline with few and with many tunnels installed.

Everything runs in process on the real p4sim objects the P4Runtime server uses: the write is a
serialized ``p4.v1.WriteRequest`` parsed and applied by ``BatchWriter`` (what ``Write`` does
under the switch lock), the read is ``EntityReader`` answering a wildcard CounterEntry read and
the ``ReadResponse`` chunks serialized as gRPC would. The classification figure is the ratio
packets/s with ``--many`` tunnels installed over packets/s with ``--few`` (issue 12: within
20 %, i.e. >= 0.8), each on probe frames spread over all its installed tunnels (ESP to a
decrypt tunnel's /32 and SPI, and IPv4 from/to an encrypt tunnel's /32 pair), measured in the
same run.

Run: .venv/bin/python -m bench.control.p4sim_scale [--inserts 10000] [--few 10] [--many 60000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import ESP
from scapy.layers.l2 import Ether

from p4sim.p4runtime.counter_wire import responses
from p4sim.p4runtime.proto import p4r
from p4sim.p4runtime.reader import EntityReader
from p4sim.p4runtime.schema import Schema
from p4sim.p4runtime.server import READ_CHUNK_BYTES
from p4sim.p4runtime.writer import BatchWriter
from p4sim.program import load_program
from p4sim.switch import Switch

PROGRAM = Path(__file__).resolve().parents[2] / "p4src" / "tunnel_offload.p4"
RULES = "TunnelIngress.classifier.tunnel_rules"
DECRYPT_SAS = "TunnelIngress.esp.decrypt_sas"
ROUTES_V4 = "TunnelIngress.forwarding.routes_v4"
TUNNEL_HEADER_ESP = 1
NEXT_ACTION_FORWARD = 1


class Names:
    """P4Info ids by name, so the benchmark spells no id."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.tables = {t.name: t for t in schema.tables.values()}
        self.actions = {a.name.rsplit(".", 1)[-1]: a for a in schema.actions.values()}
        self.counters = {c.name: c for c in schema.counters.values()}

    def field(self, table: str, name: str) -> int:
        return next(f.id for f in self.tables[table].match_fields if f.name == name)

    def action(self, name: str, **args: int) -> p4r.TableAction:
        info = self.actions[name]
        return p4r.TableAction(action=p4r.Action(action_id=info.id, params=[
            p4r.Action.Param(param_id=p.id, value=_bytes(args[p.name])) for p in info.params]))


def _bytes(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _ternary(names: Names, name: str, value: int) -> p4r.FieldMatch:
    """An exact value in a ternary field of tunnel_rules (full mask of the field's width)."""
    info = next(f for f in names.tables[RULES].match_fields if f.name == name)
    return p4r.FieldMatch(field_id=info.id, ternary=p4r.FieldMatch.Ternary(
        value=_bytes(value), mask=_bytes((1 << info.bitwidth) - 1)))


def _addr(i: int, base: int) -> int:
    return base + i


def tunnel_updates(names: Names, count: int) -> list[p4r.Update]:
    """`count` tunnels of the reference shapes, alternating: IPsec decrypt (IPv4 /32 dst and an
    exact SPI, plus its decrypt_sas entry) and Geneve encap of an IPv4 /32 src/dst pair."""
    rules = names.tables[RULES].id
    updates = []
    for i in range(1, count + 1):
        if i % 2:
            match = [_ternary(names, "ip_version", 4),
                     _ternary(names, "ipv4_dst", _addr(i, 0x0B000000)),
                     _ternary(names, "tunnel_header", TUNNEL_HEADER_ESP),
                     _ternary(names, "esp_spi", 0x1000 + i)]
            action = names.action("ipsec_decrypt", tunnel_index=i,
                                  next_action=NEXT_ACTION_FORWARD, tunnel_mode=1)
            sa = p4r.TableEntry(table_id=names.tables[DECRYPT_SAS].id, match=[
                p4r.FieldMatch(field_id=names.field(DECRYPT_SAS, "tunnel_index"),
                               exact=p4r.FieldMatch.Exact(value=_bytes(i))),
                p4r.FieldMatch(field_id=names.field(DECRYPT_SAS, "spi"),
                               exact=p4r.FieldMatch.Exact(value=_bytes(0x1000 + i)))],
                action=names.action("set_decrypt_sa", sa_index=i))
            updates.append(p4r.Update(type=p4r.Update.INSERT, entity=p4r.Entity(table_entry=sa)))
        else:
            match = [_ternary(names, "ip_version", 4),
                     _ternary(names, "ipv4_src", _addr(i, 0x0A000000)),
                     _ternary(names, "ipv4_dst", _addr(i, 0x0C000000))]
            action = names.action("encap_geneve_v4", tunnel_index=i,
                                  next_action=NEXT_ACTION_FORWARD, src_addr=0xC0A80001,
                                  dst_addr=0xC0A80002, inner_dst_mac=0x020000000001,
                                  inner_src_mac=0x020000000002, vni=i, oam=0, critical=0,
                                  option_words=0, options=0)
        entry = p4r.TableEntry(table_id=rules, match=match, action=action,
                               priority=1_000_000 + count - i)
        updates.append(p4r.Update(type=p4r.Update.INSERT, entity=p4r.Entity(table_entry=entry)))
    route = p4r.TableEntry(table_id=names.tables[ROUTES_V4].id, match=[p4r.FieldMatch(
        field_id=names.field(ROUTES_V4, "ipv4_dst"),
        lpm=p4r.FieldMatch.LPM(value=_bytes(0xC0A80000), prefix_len=16))],
        action=names.action("set_next_hop", port=1, src_mac=0x020000000010,
                            dst_mac=0x020000000011))
    updates.append(p4r.Update(type=p4r.Update.INSERT, entity=p4r.Entity(table_entry=route)))
    return updates


def probes(count: int, tunnels: int) -> list[bytes]:
    """Frames for tunnels spread over 1 … `tunnels` (both shapes)."""
    frames = []
    for n in range(count):
        i = 1 + (n * 7919) % tunnels
        if i % 2:
            frame = (Ether(dst="02:00:00:00:00:aa") /
                     IP(src="192.0.2.1", dst=_ip(_addr(i, 0x0B000000))) /
                     ESP(spi=0x1000 + i, seq=1) / (b"\x00" * 48))
        else:
            frame = (Ether(dst="02:00:00:00:00:aa") /
                     IP(src=_ip(_addr(i, 0x0A000000)), dst=_ip(_addr(i, 0x0C000000))) /
                     UDP(sport=1000, dport=2000) / (b"\x00" * 32))
        frames.append(bytes(frame))
    return frames


def _ip(value: int) -> str:
    return ".".join(str(b) for b in value.to_bytes(4, "big"))


def _switch() -> tuple[Switch, Schema, Names]:
    program = load_program(PROGRAM)
    schema = Schema(program.p4info)
    return Switch(program), schema, Names(schema)


def install(switch: Switch, schema: Schema, names: Names, tunnels: int) -> float:
    """Apply one WriteRequest of `tunnels` tunnels as the server would; seconds taken (parse +
    apply). Raises if any update failed."""
    wire = p4r.WriteRequest(device_id=1, updates=tunnel_updates(names, tunnels),
                            atomicity=p4r.WriteRequest.CONTINUE_ON_ERROR).SerializeToString()
    start = time.perf_counter()
    request = p4r.WriteRequest.FromString(wire)
    with switch.lock:
        results = BatchWriter(schema, switch.state, {}).apply(list(request.updates),
                                                              request.atomicity)
    elapsed = time.perf_counter() - start
    failed = [r for r in results if r is not None]
    if failed:
        raise SystemExit(f"{len(failed)} of {len(results)} updates failed: {failed[0]}")
    return elapsed


def read_counters(switch: Switch, schema: Schema, counter_ids: list[int], *,
                  per_message: bool) -> tuple[float, int, int]:
    """Seconds to answer one wildcard read of each counter in `counter_ids` (all cells) and
    serialize the ReadResponses as the server does; entities and bytes. `per_message` times
    the message-object-per-cell encoding p4sim used before (the in-run baseline)."""
    reader = EntityReader(schema, switch.state, {})
    queries = [p4r.Entity(counter_entry=p4r.CounterEntry(counter_id=i)) for i in counter_ids]
    start = time.perf_counter()
    with switch.lock:
        if per_message:
            found = [e for q in queries for e in reader.read(q)]
            blobs = [p4r.ReadResponse(entities=found[first:first + 256]).SerializeToString()
                     for first in range(0, len(found), 256)]
        else:
            blobs = list(responses((e for q in queries for e in reader.read_elements(q)),
                                   READ_CHUNK_BYTES))
    wire = [p4r.ReadResponse.FromString(blob).SerializeToString() for blob in blobs]
    elapsed = time.perf_counter() - start
    entities = sum(len(p4r.ReadResponse.FromString(blob).entities) for blob in blobs)
    return elapsed, entities, sum(len(w) for w in wire)


def packets_per_second(switches: list[tuple[Switch, list[bytes]]],
                       rounds: int) -> list[float]:
    """Median packets/s of each (switch, frames), rounds interleaved so that load on the
    machine hits every side alike; every frame must produce output (a rule hit), else the
    figure would time the miss path."""
    for switch, frames in switches:
        for frame in frames:
            if not switch.process(0, frame):
                raise SystemExit("a probe frame produced no output: the rule did not hit")
    rates: list[list[float]] = [[] for _ in switches]
    for _ in range(rounds):
        for side, (switch, frames) in enumerate(switches):
            start = time.perf_counter()
            for frame in frames:
                switch.process(0, frame)
            rates[side].append(len(frames) / (time.perf_counter() - start))
    return [statistics.median(side) for side in rates]


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inserts", type=int, default=10_000)
    parser.add_argument("--few", type=int, default=10)
    parser.add_argument("--many", type=int, default=60_000)
    parser.add_argument("--packets", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    switch, schema, names = _switch()
    # --inserts tunnels; a decrypt tunnel is two inserts (rule + decrypt_sas)
    seconds = install(switch, schema, names, args.inserts * 2 // 3)
    inserts = len(list(switch.state.tables[names.tables[RULES].id].entries())) + len(
        list(switch.state.tables[names.tables[DECRYPT_SAS].id].entries()))
    print(f"write: {inserts:,} inserts in one WriteRequest: {seconds:.3f} s "
          f"({inserts / seconds:,.0f} inserts/s)")
    for index in range(1, 1 + min(inserts, 1000)):  # some non-zero cells
        for counter in switch.state.counters.values():
            counter.count(index % counter.size, 100 + index)
    packets = [c.id for name, c in names.counters.items() if not name.endswith(".bits")
               and ".tunnel_" in name]
    old_s, cells, _ = read_counters(switch, schema, packets, per_message=True)
    new_s, same, nbytes = read_counters(switch, schema, packets, per_message=False)
    assert same == cells
    print(f"read: the 4 tunnel packet counters, {cells:,} cells: {new_s:.3f} s "
          f"({cells / new_s:,.0f} cells/s, {nbytes / 1e6:.1f} MB); a message per cell: "
          f"{old_s:.3f} s; ratio {old_s / new_s:.1f}x")
    every = [c.id for c in names.counters.values()]
    all_s, cells, nbytes = read_counters(switch, schema, every, per_message=False)
    print(f"read: every indexed counter, {cells:,} cells: {all_s:.3f} s "
          f"({cells / all_s:,.0f} cells/s, {nbytes / 1e6:.1f} MB)")

    sides = []
    for tunnels in (args.few, args.many):
        switch, schema, names = _switch()
        install_s = install(switch, schema, names, tunnels)
        print(f"classify: {tunnels:,} tunnels installed in one WriteRequest: {install_s:.2f} s; "
              f"RSS of this process now {_rss_mib():.0f} MiB")
        sides.append((switch, probes(args.packets, tunnels)))  # spread over every tunnel
    few, many = packets_per_second(sides, args.rounds)
    print(f"classify: {args.few:,} tunnels: {few:,.0f} packets/s; {args.many:,} tunnels: "
          f"{many:,.0f} packets/s (medians of {args.rounds} interleaved rounds)")
    print(f"ratio {args.many:,} / {args.few:,} tunnels: {many / few:.2f} (goal >= 0.80)")


if __name__ == "__main__":
    main()
