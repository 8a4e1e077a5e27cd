"""Packets per second of p4sim running an IPv4 router, against a hand-written Python loop.

Both sides do the same work per packet: parse Ethernet and IPv4, verify the header checksum,
longest-prefix match the destination, rewrite the MACs, decrement the TTL, recompute the
checksum, build the output frame. The baseline is the fastest plain Python we could write for
that (struct-based parsing, a dict per prefix length); the ratio p4sim / baseline is the figure
(issue 3's goal: at least 0.1 in-process). Both are measured in the same run on the same
packets, and every p4sim output is checked against the baseline's.

With the nanomsg round trip, each side runs behind the same p4sim packet socket
(`p4sim.ports.PacketPump` + `NnPacketSocket`, BMv2's packet-in format over an ipc:// PAIR
socket) and a client keeps a window of frames in flight, as PTF would.

Run: .venv/bin/python -m bench.p4sim.router_bench [--packets N] [--no-nanomsg]
"""

from __future__ import annotations

import argparse
import struct
import sys
import tempfile
import time
from pathlib import Path

import pynng

from p4sim.dataplane_lib import csum16
from p4sim.program import load_program
from p4sim.runtime import ActionCall, FieldMatch, TableEntry
from p4sim.switch import Switch

PROGRAM = Path(__file__).with_name("ipv4_router.p4")
# (prefix, length, next-hop MAC, port)
ROUTES = [
    (0x0A000000, 8, 0x020000000001, 1),
    (0x0A010000, 16, 0x020000000002, 2),
    (0x0A010200, 24, 0x020000000003, 3),
    (0xC0A80000, 16, 0x020000000004, 4),
]


def make_packets(count: int) -> list[bytes]:
    """IPv4/UDP frames to a spread of destinations (all routed)."""
    dests = [0x0A000005, 0x0A010105, 0x0A010205, 0xC0A80101]
    frames = []
    for i in range(count):
        ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 46, i & 0xFFFF, 0, 64, 17, 0,
                                   bytes([10, 0, 0, 1]), dests[i % 4].to_bytes(4, "big")))
        ip[10:12] = csum16(bytes(ip)).to_bytes(2, "big")
        frames.append(bytes.fromhex("020000000099" "020000000088" "0800") + bytes(ip)
                      + bytes(26))
    return frames


class HandWrittenRouter:
    """The baseline: the router written directly in Python."""

    def __init__(self) -> None:
        self.by_length: dict[int, dict[int, tuple[int, int]]] = {}
        for prefix, length, mac, port in ROUTES:
            self.by_length.setdefault(length, {})[prefix] = (mac, port)
        self.lengths = sorted(self.by_length, reverse=True)

    def process(self, port: int, frame: bytes) -> list[tuple[int, bytes]]:
        dst_mac, _src_mac, ether_type = struct.unpack_from("!6s6sH", frame, 0)
        if ether_type != 0x0800:
            return []
        ip = frame[14:34]
        ttl = ip[8]
        if csum16(ip[:10] + ip[12:]) != int.from_bytes(ip[10:12], "big") or ttl <= 1:
            return []
        dst = int.from_bytes(ip[16:20], "big")
        for length in self.lengths:
            hop = self.by_length[length].get(dst & (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF)
            if hop is not None:
                break
        else:
            return []
        mac, out_port = hop
        new_ip = bytearray(ip)
        new_ip[8] = ttl - 1
        new_ip[10:12] = b"\x00\x00"
        new_ip[10:12] = csum16(bytes(new_ip[:10] + new_ip[12:])).to_bytes(2, "big")
        return [(out_port, mac.to_bytes(6, "big") + dst_mac + frame[12:14] + bytes(new_ip)
                 + frame[34:])]


def p4sim_switch() -> Switch:
    """The router program on p4sim with the same routes."""
    program = load_program(PROGRAM)
    sw = Switch(program)
    table = next(t for t in program.p4info.tables if t.preamble.alias == "ipv4_lpm")
    action = next(a for a in program.p4info.actions if a.preamble.alias == "set_next_hop")
    state = sw.state.tables[table.preamble.id]
    for prefix, length, mac, port in ROUTES:
        state.insert(TableEntry(
            table_id=table.preamble.id,
            matches=(FieldMatch(field_id=1, kind="lpm", value=prefix, prefix_len=length),),
            action=ActionCall(action_id=action.preamble.id, args=(mac, port))))
    return sw


def measure(process: object, frames: list[bytes]) -> tuple[float, list[list[tuple[int, bytes]]]]:
    """Packets per second of `process(port, frame)` over `frames`, and the outputs."""
    outputs = []
    start = time.perf_counter()
    for frame in frames:
        outputs.append(process(0, frame))  # type: ignore[operator]
    elapsed = time.perf_counter() - start
    return len(frames) / elapsed, outputs


def measure_nanomsg(processor: object, frames: list[bytes], window: int = 64
                    ) -> tuple[float, int]:
    """Packets per second through the packet socket: send frames as PACKET_IN on port 0, keep
    `window` in flight, count the PACKET_OUT replies. Returns (pps, frames received)."""
    from p4sim.ports import NnPacketSocket, PacketPump
    from p4sim.ports.nn_protocol import MsgType, decode, encode_frame

    with tempfile.TemporaryDirectory() as tmp:
        address = f"ipc://{tmp}/bench.ipc"
        dataplane = PacketPump(processor, device_socket=NnPacketSocket(address))  # type: ignore[arg-type]
        dataplane.start()
        client = pynng.Pair0(recv_timeout=10_000)
        try:
            client.dial(address, block=True)
            received = 0
            sent = 0
            start = time.perf_counter()
            while received < len(frames):
                while sent < len(frames) and sent - received < window:
                    client.send(encode_frame(MsgType.PACKET_IN, 0, frames[sent]))
                    sent += 1
                message = decode(client.recv())
                if message.kind == MsgType.PACKET_OUT:
                    received += 1
            elapsed = time.perf_counter() - start
        finally:
            client.close()
            dataplane.stop()
    return len(frames) / elapsed, received


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--no-nanomsg", action="store_true",
                        help="skip the measurement through the nanomsg packet socket")
    args = parser.parse_args(argv)
    frames = make_packets(args.packets)
    sw = p4sim_switch()
    baseline = HandWrittenRouter()
    measure(sw.process, frames[:500])  # warm up both
    measure(baseline.process, frames[:500])
    base_pps, base_out = measure(baseline.process, frames)
    sim_pps, sim_out = measure(sw.process, frames)
    if sim_out != base_out:
        print("MISMATCH: p4sim output differs from the hand-written router", file=sys.stderr)
        return 1
    ratio = sim_pps / base_pps
    print(f"packets:          {args.packets}")
    print(f"hand-written:     {base_pps:10.0f} packets/s")
    print(f"p4sim in-process: {sim_pps:10.0f} packets/s")
    print(f"ratio:            {ratio:.3f} (goal >= 0.1)")
    if not args.no_nanomsg:
        count = min(args.packets, 5000)
        nn_base, got_base = measure_nanomsg(HandWrittenRouter(), frames[:count])
        nn_sim, got_sim = measure_nanomsg(p4sim_switch(), frames[:count])
        if got_base != count or got_sim != count:
            print("MISMATCH: frames lost through the packet socket", file=sys.stderr)
            return 1
        print(f"over nanomsg ({count} packets, window 64):")
        print(f"  hand-written:   {nn_base:10.0f} packets/s")
        print(f"  p4sim:          {nn_sim:10.0f} packets/s")
        print(f"  ratio:          {nn_sim / nn_base:.3f}")
    return 0 if ratio >= 0.1 else 2


if __name__ == "__main__":
    sys.exit(main())
