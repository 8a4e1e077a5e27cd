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
Entities are encoded by finsy from their P4Runtime names (with "did you mean" errors); each test
deletes what it inserted, and counter assertions are before/after deltas, so tests do not depend
on each other or on their order.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

import finsy as fy
import grpc
import ptf
from finsy.proto import p4r, p4r_grpc
from p4_constants import C
from ptf.base_tests import BaseTest
from ptf.testutils import test_param_get

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_P4INFO = REPO / "p4src" / "tunnel_offload.p4info.txtpb"
RPC_TIMEOUT = 30.0
COUNTER_TIMEOUT = 10.0


class P4RuntimeSession:
    """One primary P4Runtime client: stream with arbitration, pipeline push, write and read."""

    def __init__(self, *, address: str, device_id: int, schema: fy.P4Schema) -> None:
        self.device_id = device_id
        self.schema = schema
        self.election_id = p4r.Uint128(high=0, low=1)
        self._channel = grpc.insecure_channel(address)
        grpc.channel_ready_future(self._channel).result(timeout=RPC_TIMEOUT)
        self._stub = p4r_grpc.P4RuntimeStub(self._channel)
        self._outbox: queue.Queue[p4r.StreamMessageRequest | None] = queue.Queue()
        self._inbox: queue.Queue[p4r.StreamMessageResponse] = queue.Queue()
        self._stream = self._stub.StreamChannel(iter(self._outbox.get, None))
        threading.Thread(target=self._pump, name="p4rt-stream", daemon=True).start()
        self._outbox.put(p4r.StreamMessageRequest(arbitration=p4r.MasterArbitrationUpdate(
            device_id=device_id, election_id=self.election_id)))
        reply = self._inbox.get(timeout=RPC_TIMEOUT)
        if reply.arbitration.status.code != grpc.StatusCode.OK.value[0]:
            raise RuntimeError(f"not primary on device {device_id}: {reply.arbitration.status}")

    def _pump(self) -> None:
        try:
            for message in self._stream:
                self._inbox.put(message)
        except grpc.RpcError as exc:  # the stream ends when the channel closes
            log.debug("P4Runtime stream closed: %s", exc.code())

    def set_pipeline(self, device_config: bytes) -> None:
        """VERIFY_AND_COMMIT the program: every table empties, every counter restarts at 0."""
        self._stub.SetForwardingPipelineConfig(p4r.SetForwardingPipelineConfigRequest(
            device_id=self.device_id, election_id=self.election_id,
            action=p4r.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT,
            config=p4r.ForwardingPipelineConfig(p4info=self.schema.p4info,
                                                p4_device_config=device_config)),
            timeout=RPC_TIMEOUT)

    def write(self, update_type: p4r.Update.Type.ValueType,
              entities: list[p4r.Entity]) -> None:
        updates = [p4r.Update(type=update_type, entity=e) for e in entities]
        self._stub.Write(p4r.WriteRequest(device_id=self.device_id,
                                          election_id=self.election_id, updates=updates),
                         timeout=RPC_TIMEOUT)

    def read(self, entity: p4r.Entity) -> list[p4r.Entity]:
        replies = self._stub.Read(p4r.ReadRequest(device_id=self.device_id, entities=[entity]),
                                  timeout=RPC_TIMEOUT)
        return [e for reply in replies for e in reply.entities]

    def close(self) -> None:
        self._outbox.put(None)
        self._channel.close()


_session: P4RuntimeSession | None = None


def session() -> P4RuntimeSession:
    """The process-wide session; the pipeline is pushed once, when it is first opened."""
    global _session
    if _session is None:
        p4info = Path(test_param_get("p4info", str(DEFAULT_P4INFO)))
        config = test_param_get("device_config", "")
        _session = P4RuntimeSession(address=test_param_get("grpc_addr", "127.0.0.1:9559"),
                                    device_id=int(test_param_get("device_id", 1)),
                                    schema=fy.P4Schema(p4info))
        _session.set_pipeline(Path(config).read_bytes() if config else b"")
        atexit.register(_session.close)
    return _session


class TunnelOffloadTest(BaseTest):
    """Programs entries by P4Runtime name and removes them again when the test ends."""

    def setUp(self) -> None:
        BaseTest.setUp(self)
        self.dataplane = ptf.dataplane_instance
        self.dataplane.flush()
        self.p4rt = session()
        self._installed: list[p4r.Entity] = []

    def tearDown(self) -> None:
        if self._installed:
            self.p4rt.write(p4r.Update.DELETE, list(reversed(self._installed)))
        BaseTest.tearDown(self)

    # -- programming -----------------------------------------------------------------------------

    def add_entry(self, table: str, action: str, *, match: dict[str, Any] | None = None,
                  params: dict[str, Any] | None = None, priority: int = 0) -> None:
        """Insert one table entry (finsy values: ints, address strings, (value, mask),
        "prefix/len")."""
        entry = fy.P4TableEntry(table, match=fy.P4TableMatch(match or {}),
                                action=fy.P4TableAction(action, **(params or {})),
                                priority=priority)
        entity = entry.encode(self.p4rt.schema)
        self.p4rt.write(p4r.Update.INSERT, [entity])
        self._installed.append(entity)

    def add_route(self, prefix: str, *, port: int, src_mac: str, dst_mac: str) -> None:
        v6 = ":" in prefix
        self.add_entry("routes_v6" if v6 else "routes_v4", "set_next_hop",
                       match={"ipv6_dst" if v6 else "ipv4_dst": prefix},
                       params={"port": port, "src_mac": src_mac, "dst_mac": dst_mac})

    def counter(self, name: str, index: int) -> tuple[int, int]:
        """(packets, bytes) of an indexed counter cell, read over P4Runtime."""
        entity = fy.P4CounterEntry(name, index=index).encode(self.p4rt.schema)
        (reply,) = self.p4rt.read(entity)
        data = reply.counter_entry.data
        return data.packet_count, data.byte_count

    def tunnel_bytes(self, name: str, tunnel_index: int) -> int:
        """Bytes of per-tunnel counter `name` ("tunnel_in", ...): summed from its per-bit cells
        `<name>_bytes.length_bits` (p4src/include/counters.p4), read over P4Runtime."""
        bits = C("FRAME_LENGTH_BITS")
        return sum(self.counter(f"{name}_bytes.length_bits", tunnel_index * bits + bit)[0] << bit
                   for bit in range(bits))

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
