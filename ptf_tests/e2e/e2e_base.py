"""Base class of the end-to-end PTF tests: the TunnelOffload API is the only way in.

Each test is a TunnelOffload gRPC client (TLS, trusting the certificate the controller generated
into its state directory, exactly as `tunnelctl` does): it creates tunnels with createIpTunnel,
sends real packets on the ports PTF owns and checks what leaves the switch. The controller
programs the switch (P4Runtime) and the crypto worker (SAs); nothing here writes to either. The
switch is only *read* over P4Runtime (Read needs no arbitration), to prove that refused requests
left it untouched.

Test parameters (run.sh passes them; ptf --test-params "name='value';..."):
    api_addr    the controller's TunnelOffload API, HOST:PORT
    state_dir   the controller's --state-dir (its generated tls/server.crt is trusted)
    p4rt_addr   the switch's P4Runtime address, for read-backs
    device_id   the P4Runtime device id (default 1)
    p4info      the P4Info text file (default p4src/tunnel_offload.p4info.txtpb)

Tunnels a test creates are deleted in tearDown (children first), and counter assertions are
before/after deltas, so tests do not depend on each other or on their order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import finsy as fy
import grpc
import ptf
import ptf.testutils as tu
from finsy.proto import p4r, p4r_grpc
from ptf.base_tests import BaseTest
from ptf.testutils import test_param_get

from tunnelctl.client import CreateOutcome, TunnelClient
from tunnelctl.connection import ConnectionSettings, open_channel
from tunnelctl.document import parse_requests
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
RPC_TIMEOUT = 30.0
PACKET_TIMEOUT = 5.0     # a crypto round trip through the worker is two extra hops
COUNTER_TIMEOUT = 10.0

# Every table the controller programs; a refused request must leave all of them as they were.
PROGRAMMED_TABLES = ("tunnel_rules", "esp_endpoints", "decrypt_sas", "routes_v4", "routes_v6")

_channel: grpc.Channel | None = None
_api: TunnelClient | None = None
_p4rt: tuple[p4r_grpc.P4RuntimeStub, fy.P4Schema, int] | None = None


def api_channel() -> grpc.Channel:
    """The process-wide TLS channel to the controller's API port (both API versions)."""
    global _channel
    if _channel is None:
        _channel = open_channel(ConnectionSettings(
            server=test_param_get("api_addr", "localhost:3443"),
            state_dir=test_param_get("state_dir", "state"), timeout=RPC_TIMEOUT))
        grpc.channel_ready_future(_channel).result(timeout=RPC_TIMEOUT)
    return _channel


def api() -> TunnelClient:
    """The process-wide v1alpha1 client (tunnelctl's)."""
    global _api
    if _api is None:
        _api = TunnelClient(api_channel(), timeout=RPC_TIMEOUT)
    return _api


def p4rt() -> tuple[p4r_grpc.P4RuntimeStub, fy.P4Schema, int]:
    """A read-only P4Runtime client of the switch: stub, schema and device id."""
    global _p4rt
    if _p4rt is None:
        channel = grpc.insecure_channel(test_param_get("p4rt_addr", "127.0.0.1:9559"))
        schema = fy.P4Schema(Path(test_param_get(
            "p4info", str(REPO / "p4src" / "tunnel_offload.p4info.txtpb"))))
        _p4rt = (p4r_grpc.P4RuntimeStub(channel), schema, int(test_param_get("device_id", 1)))
    return _p4rt


def requests_of(tunnels: Iterable[Mapping[str, Any]], operation: int) -> list[pb.ipTunnelRequest]:
    """API requests from readable tunnels (the examples' format, tunnelctl's parser)."""
    return parse_requests([dict(t) for t in tunnels], operation=operation)


def drops(counters: pb.counters) -> int:
    """Packets the tunnel dropped: the switch's drops and the worker's (docs/dataplane.md)."""
    return int(counters.inPacketsDrops + counters.outPacketsDrops)


class E2eTest(BaseTest):
    """A TunnelOffload client that sends and checks packets; deletes its tunnels afterwards."""

    def setUp(self) -> None:
        BaseTest.setUp(self)
        self.dataplane = ptf.dataplane_instance
        self.dataplane.flush()
        self.api = api()
        self._created: list[int] = []

    def tearDown(self) -> None:
        if self._created:
            deletes = [pb.ipTunnelRequest(operation=pb._DELETE, tunnelId=tunnel_id)
                       for tunnel_id in reversed(self._created)]
            outcome = self.api.send(deletes)
            if not outcome.ok:
                log.error("cleanup of tunnels %s failed: %s", self._created, outcome)
        BaseTest.tearDown(self)

    # -- the API ---------------------------------------------------------------------------------

    def create(self, *tunnels: Mapping[str, Any]) -> CreateOutcome:
        """Create readable tunnels in one createIpTunnel stream; all must be accepted."""
        outcome = self.api.send(requests_of(tunnels, pb._CREATE))
        for result in outcome.outcomes:
            if not result.failed:
                self._created.append(result.tunnel_id)
        self.assertTrue(outcome.ok, f"createIpTunnel refused: {outcome}")
        return outcome

    def update(self, *tunnels: Mapping[str, Any]) -> CreateOutcome:
        outcome = self.api.send(requests_of(tunnels, pb._UPDATE))
        self.assertTrue(outcome.ok, f"UPDATE refused: {outcome}")
        return outcome

    def delete(self, *tunnel_ids: int) -> None:
        outcome = self.api.send([pb.ipTunnelRequest(operation=pb._DELETE, tunnelId=i)
                                 for i in tunnel_ids])
        self.assertTrue(outcome.ok, f"DELETE refused: {outcome}")
        for tunnel_id in tunnel_ids:
            self._created.remove(tunnel_id)

    def counters(self, tunnel_id: int) -> pb.counters:
        reply = self.api.stats(tunnel_id)
        self.assertFalse(reply.HasField("error") and reply.error.errorString,
                         f"stats of {tunnel_id}: {reply.error}")
        return reply.tunnelCounters

    def counters_until(self, tunnel_id: int,
                       done: Callable[[pb.counters], bool]) -> pb.counters:
        """The tunnel's counters once `done(counters)` holds, or as they are after
        COUNTER_TIMEOUT: a dropped packet leaves no frame to wait for, and the switch and the
        worker process what PTF sends asynchronously."""
        deadline = time.monotonic() + COUNTER_TIMEOUT
        value = self.counters(tunnel_id)
        while not done(value) and time.monotonic() < deadline:
            time.sleep(0.05)
            value = self.counters(tunnel_id)
        return value

    # -- the switch, read back -------------------------------------------------------------------

    def switch_state(self) -> dict[str, list[bytes]]:
        """Every entry of the tables the controller programs, as sorted serialized entities."""
        stub, schema, device_id = p4rt()
        state: dict[str, list[bytes]] = {}
        for name in PROGRAMMED_TABLES:
            entity = p4r.Entity(table_entry=p4r.TableEntry(table_id=schema.tables[name].id))
            replies = stub.Read(p4r.ReadRequest(device_id=device_id, entities=[entity]),
                                timeout=RPC_TIMEOUT)
            state[name] = sorted(e.SerializeToString(deterministic=True)
                                 for reply in replies for e in reply.entities)
        return state

    # -- packets ---------------------------------------------------------------------------------

    def receive(self, port: int) -> bytes:
        """The next frame on `port` (fails after PACKET_TIMEOUT)."""
        result = tu.dp_poll(self, port_number=port, timeout=PACKET_TIMEOUT)
        self.assertIsInstance(result, self.dataplane.PollSuccess,
                              f"no frame on port {port} within {PACKET_TIMEOUT} s")
        return bytes(result.packet)

    def verify(self, expected: Any, port: int) -> None:
        tu.verify_packet(self, expected, port, timeout=PACKET_TIMEOUT)
