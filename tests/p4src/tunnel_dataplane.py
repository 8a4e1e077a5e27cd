"""Test harness: p4src/tunnel_offload.p4 on p4sim in-process, programmed over P4Runtime.

Each ``TunnelDataplane`` is a p4sim device behind p4sim's own P4Runtime server on a free
loopback port, programmed through the tests' one P4Runtime client (ptf_tests/p4rt_test_client.py,
finsy), as the PTF suite and the controller program the switch: tables, actions, counters and
match fields by their P4Runtime names, every write and read checked by the server. Only the
frames go straight in: ``send`` hands a frame to the device and returns what it emitted, so a
test sees exactly the frames one packet produced.

Devices are pooled for the test session (loading the program and starting a server cost more
than a test); a ``TunnelDataplane`` takes a free one and pushes the pipeline again
(VERIFY_AND_COMMIT: empty tables, zero counters), and the ``dp`` fixture hands them all back when
its test ends. Constants come from the P4 source itself (p4_constants, shared with the PTF tests),
never retyped here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import finsy as fy
import grpc
from p4_constants import C, p4_constants
from scapy.packet import Packet

from p4sim.p4runtime.device import Device
from p4sim.p4runtime.server import ServerSettings, create_server
from p4sim.program import Program, load_program
from ptf_tests.p4rt_test_client import P4RuntimeTestClient

__all__ = ["C", "p4_constants", "P4INFO_FILE", "program", "Ternary", "TunnelDataplane",
           "release_all", "close_pool"]

REPO = Path(__file__).resolve().parents[2]
P4_DIR = REPO / "p4src"
P4_PROGRAM = P4_DIR / "tunnel_offload.p4"
P4INFO_FILE = P4_DIR / "tunnel_offload.p4info.txtpb"
DEVICE_ID = 1


@cache
def program() -> Program:
    """The program, loaded once per test session (loading compiles it)."""
    return load_program(P4_PROGRAM)


@dataclass(frozen=True)
class Ternary:
    """A ternary match value with its mask (ints, or address strings of the key's width)."""

    value: int | str
    mask: int | str


@dataclass(kw_only=True)
class _PooledSwitch:
    """One p4sim device, its P4Runtime server and the primary client connected to it."""

    device: Device
    server: grpc.Server
    address: str
    client: P4RuntimeTestClient

    @classmethod
    def start(cls) -> _PooledSwitch:
        loaded = program()
        device = Device(device_id=DEVICE_ID, default_program=loaded)
        server, port = create_server(device, ServerSettings(address="127.0.0.1:0"))
        server.start()
        address = f"127.0.0.1:{port}"
        try:
            client = P4RuntimeTestClient(address, device_id=DEVICE_ID, p4info=loaded.p4info)
        except BaseException:
            server.stop(None)
            raise
        return cls(device=device, server=server, address=address, client=client)

    def close(self) -> None:
        self.client.close()
        self.server.stop(None)


_free: list[_PooledSwitch] = []
_taken: list[_PooledSwitch] = []


def release_all() -> None:
    """Hand every switch taken since the last call back to the pool (the ``dp`` fixture calls
    this when its test ends)."""
    _free.extend(_taken)
    _taken.clear()


def close_pool() -> None:
    """Stop every pooled server and client (end of the test session)."""
    release_all()
    while _free:
        _free.pop().close()


def _match_value(value: Any) -> Any:
    """A harness match value as finsy takes it: ``Ternary`` becomes finsy's (value, mask)."""
    if isinstance(value, Ternary):
        return (value.value, value.mask)
    return value


class TunnelDataplane:
    """One switch running the TunnelOffload program, tables empty and counters at 0."""

    def __init__(self) -> None:
        switch = _free.pop() if _free else _PooledSwitch.start()
        _taken.append(switch)
        switch.client.set_pipeline()
        self._device = switch.device
        self.address = switch.address  # of its P4Runtime server
        self.p4rt = switch.client

    # -- control plane (P4Runtime) ---------------------------------------------------------------

    def add_entry(self, table: str, action: str, *, match: dict[str, Any] | None = None,
                  params: dict[str, Any] | None = None, priority: int = 0) -> fy.P4TableEntry:
        """Insert an entry; `match` maps key names to finsy values (int or address string:
        exact, or all bits of a ternary key; "prefix/len" for LPM; `Ternary`), `params` maps
        every action parameter name."""
        return self.p4rt.add_entry(
            table, action, match={name: _match_value(value) for name, value in
                                  (match or {}).items()},
            params=params, priority=priority)

    def add_route(self, prefix: str, *, port: int, src_mac: str, dst_mac: str) -> None:
        """One routes_v4 / routes_v6 entry."""
        net = ipaddress.ip_network(prefix)
        table = "routes_v4" if net.version == 4 else "routes_v6"
        key = "ipv4_dst" if net.version == 4 else "ipv6_dst"
        self.add_entry(table, "set_next_hop", match={key: str(net)},
                       params={"port": port, "src_mac": src_mac, "dst_mac": dst_mac})

    def counter(self, name: str, index: int) -> tuple[int, int]:
        """(packets, bytes) of indexed counter `name` at `index`, read over P4Runtime: a count
        the counter's unit does not include reads 0."""
        return self.p4rt.counter(name, index)

    def tunnel_counts(self, name: str, tunnel_index: int) -> tuple[int, int]:
        """(packets, bytes) of per-tunnel counter `name` ("tunnel_in", "tunnel_out",
        "tunnel_drop_in", "tunnel_drop_out"): as counted, and for out and drop-out the bytes
        corrected by the per-bit cells of `<name>_delta.bits` (p4src/include/counters.p4)."""
        packets, nbytes = self.counter(name, tunnel_index)
        if name in ("tunnel_out", "tunnel_drop_out"):
            bits = C("LENGTH_DELTA_BITS")
            cells = self.p4rt.counters(f"{name}_delta.bits",
                                       range(tunnel_index * bits, (tunnel_index + 1) * bits))
            nbytes += sum(count << bit for bit, (count, _) in enumerate(cells))
            nbytes -= packets << (bits - 1)
        return packets, nbytes

    def rule_hits(self, entry: fy.P4TableEntry) -> tuple[int, int]:
        """(packets, bytes) of the direct counter of table entry `entry`."""
        return self.p4rt.direct_counter(entry)

    # -- data plane ------------------------------------------------------------------------------

    def send(self, port: int, frame: Packet | bytes) -> list[tuple[int, bytes]]:
        """Process one frame entering on `port`; the frames it produced, as (port, bytes)."""
        return self._device.process(port, bytes(frame))
