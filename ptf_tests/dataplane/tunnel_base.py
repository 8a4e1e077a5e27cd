"""Base class of the TunnelOffload data-plane PTF tests.

The tests program the tables directly over P4Runtime (the controller is not involved) and check
real packets on the ports PTF owns, the crypto port included. They use only P4Runtime and PTF's
packet socket, so the same tests run on p4sim and on BMv2 simple_switch_grpc.

Test parameters (ptf --test-params "name='value';..."), named as in ptf_tests/smoke:
    grpc_addr      P4Runtime server address      (default 127.0.0.1:9559)
    device_id      P4Runtime device id           (default 1, p4sim's and the Makefile's)
    p4info         P4Info text file              (default p4src/tunnel_offload.p4info.txtpb)
    device_config  p4_device_config file: p4c's BMv2 JSON on BMv2; on p4sim empty (or absent)
                   means "the program `p4sim run` was started with"
PTF must own the front-panel ports 0-7 and the crypto port 64 (the tests play the worker).
The switch is driven through ptf_tests/p4rt_test_client.py (finsy: entities by P4Runtime name,
with "did you mean" errors; connecting pushes the pipeline once per run); each test
deletes what it inserted, and counter assertions are before/after deltas, so tests do not depend
on each other or on their order.
"""

from __future__ import annotations

import atexit
import time
from pathlib import Path
from typing import Any

import finsy as fy
import ptf
from p4_constants import C
from ptf.base_tests import BaseTest
from ptf.testutils import test_param_get

from ptf_tests.p4rt_test_client import P4RuntimeTestClient

REPO = Path(__file__).resolve().parents[2]
DEFAULT_P4INFO = REPO / "p4src" / "tunnel_offload.p4info.txtpb"
COUNTER_TIMEOUT = 10.0

_client: P4RuntimeTestClient | None = None


def client() -> P4RuntimeTestClient:
    """The process-wide client; connecting pushes the pipeline, once per PTF run."""
    global _client
    if _client is None:
        config = test_param_get("device_config", "")
        _client = P4RuntimeTestClient(test_param_get("grpc_addr", "127.0.0.1:9559"),
                                      device_id=int(test_param_get("device_id", 1)),
                                      p4info=Path(test_param_get("p4info", str(DEFAULT_P4INFO))),
                                      device_config=Path(config).read_bytes() if config else b"")
        atexit.register(_client.close)
    return _client


class TunnelOffloadTest(BaseTest):
    """Programs entries by P4Runtime name and removes them again when the test ends."""

    def setUp(self) -> None:
        BaseTest.setUp(self)
        self.dataplane = ptf.dataplane_instance
        self.dataplane.flush()
        self.p4rt = client()
        self._installed: list[fy.P4TableEntry] = []

    def tearDown(self) -> None:
        if self._installed:
            self.p4rt.delete(reversed(self._installed))
        BaseTest.tearDown(self)

    # -- programming -----------------------------------------------------------------------------

    def add_entry(self, table: str, action: str, *, match: dict[str, Any] | None = None,
                  params: dict[str, Any] | None = None, priority: int = 0) -> None:
        """Insert one table entry (finsy values: ints, address strings, (value, mask),
        "prefix/len"); tearDown deletes it."""
        self._installed.append(self.p4rt.add_entry(table, action, match=match, params=params,
                                                   priority=priority))

    def add_route(self, prefix: str, *, port: int, src_mac: str, dst_mac: str) -> None:
        v6 = ":" in prefix
        self.add_entry("routes_v6" if v6 else "routes_v4", "set_next_hop",
                       match={"ipv6_dst" if v6 else "ipv4_dst": prefix},
                       params={"port": port, "src_mac": src_mac, "dst_mac": dst_mac})

    def counter(self, name: str, index: int) -> tuple[int, int]:
        """(packets, bytes) of an indexed counter cell, read over P4Runtime."""
        return self.p4rt.counter(name, index)

    def tunnel_bytes(self, name: str, tunnel_index: int) -> int:
        """Bytes of per-tunnel counter `name` ("tunnel_in", ...): as counted, and for out and
        drop-out corrected by the per-bit cells of `<name>_delta.bits`
        (p4src/include/counters.p4), read in one P4Runtime Read."""
        packets, nbytes = self.counter(name, tunnel_index)
        if name in ("tunnel_out", "tunnel_drop_out"):
            bits = C("LENGTH_DELTA_BITS")
            cells = self.p4rt.counters(f"{name}_delta.bits",
                                       range(tunnel_index * bits, (tunnel_index + 1) * bits))
            nbytes += sum(count << bit for bit, (count, _) in enumerate(cells))
            nbytes -= packets << (bits - 1)
        return nbytes

    def counter_after(self, name: str, index: int, *, packets: int) -> tuple[int, int]:
        """The counter once it has counted at least `packets` packets, or as it is after
        COUNTER_TIMEOUT. A dropped packet leaves no frame to wait for, and the switch processes
        what PTF sends asynchronously, so drop counters are polled rather than read once."""
        deadline = time.monotonic() + COUNTER_TIMEOUT
        value = self.counter(name, index)
        while value[0] < packets and time.monotonic() < deadline:
            time.sleep(0.02)
            value = self.counter(name, index)
        return value
