"""PTF smoke test of p4sim: the IPv4 router of router.p4, tables programmed over P4Runtime.

Run (the Makefile's test-ptf target does all of this, with cleanup):
    p4sim run ptf_tests/smoke/router.p4 --packet-socket ipc:///tmp/p4sim-smoke.ipc \\
        --grpc-addr 127.0.0.1:9559 --device-id 1 &
    p4sim p4info ptf_tests/smoke/router.p4 -o /tmp/router.p4info.txt
    ptf --platform nn --device-socket 0-{0-7}@ipc:///tmp/p4sim-smoke.ipc \\
        --test-dir ptf_tests/smoke --test-params "grpc_addr='127.0.0.1:9559';device_id=1;\\
p4info='/tmp/router.p4info.txt'"
On BMv2, add device_config='router.json' (p4c's output) to --test-params.
"""

from __future__ import annotations

import atexit
import copy
from pathlib import Path

import finsy as fy
import ptf.testutils as tu
from ptf.base_tests import BaseTest
from ptf.testutils import group
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from ptf_tests.p4rt_test_client import P4RuntimeTestClient

ROUTER_MAC = 0x00AA00000001
NEXT_HOP_MAC = 0x00BB00000002
DROP_NO_ROUTE, DROP_TTL, DROP_BAD_CHECKSUM = 3, 2, 1


def mac_text(value: int) -> str:
    return ":".join(f"{b:02x}" for b in value.to_bytes(6, "big"))


def udp_packet(dst: str = "10.0.1.5", ttl: int = 64) -> Ether:
    return (Ether(src="00:11:22:33:44:55", dst=mac_text(ROUTER_MAC))
            / IP(src="192.0.2.1", dst=dst, ttl=ttl) / UDP(sport=1234, dport=4321)
            / b"p4sim smoke test payload")


def routed(packet: Ether) -> Ether:
    """What the router must send: a copy with new MACs, TTL - 1 and a new checksum."""
    expected = copy.deepcopy(packet)
    expected[Ether].src = mac_text(ROUTER_MAC)
    expected[Ether].dst = mac_text(NEXT_HOP_MAC)
    expected[IP].ttl -= 1
    del expected[IP].chksum
    return Ether(bytes(expected))


_client: P4RuntimeTestClient | None = None


def client() -> P4RuntimeTestClient:
    """The process-wide P4Runtime client (ptf_tests/p4rt_test_client.py), primary on the
    switch."""
    global _client
    if _client is None:
        params = tu.test_params_get()
        device_config = params.get("device_config")
        _client = P4RuntimeTestClient(
            params.get("grpc_addr", "127.0.0.1:9559"), device_id=int(params.get("device_id", 1)),
            p4info=Path(params["p4info"]),
            device_config=Path(device_config).read_bytes() if device_config else b"")
        atexit.register(_client.close)
    return _client


class RouterTestBase(BaseTest):
    """Loads the pipeline afresh (empty ipv4_lpm, counters at 0) before each test."""

    def setUp(self) -> None:
        BaseTest.setUp(self)
        self.dataplane = tu.ptf.dataplane_instance  # type: ignore[attr-defined]
        self.client = client()
        self.client.set_pipeline()

    def add_route(self, prefix: str, port: int) -> fy.P4TableEntry:
        return self.client.add_entry("ipv4_lpm", "set_nhop", match={"dst": prefix},
                                     params={"port": port, "dmac": NEXT_HOP_MAC,
                                             "smac": ROUTER_MAC})


@group("smoke")
class RouterForwardTest(RouterTestBase):
    """A packet to a routed prefix leaves on the route's port with new MACs, TTL - 1 and a
    correct IPv4 checksum; its route's direct counter counts it."""

    def runTest(self) -> None:  # noqa: N802 - unittest name
        entry = self.add_route("10.0.1.0/24", 2)
        packet = udp_packet()
        tu.send_packet(self, 1, packet)
        tu.verify_packet(self, routed(packet), 2)
        tu.verify_no_other_packets(self)
        self.assertEqual(self.client.direct_counter(entry), (1, len(bytes(routed(packet)))))


@group("smoke")
class RouterLongestPrefixTest(RouterTestBase):
    """With a /16 and a /24 route covering the destination, the /24 wins."""

    def runTest(self) -> None:  # noqa: N802
        self.add_route("10.0.0.0/16", 3)
        self.add_route("10.0.1.0/24", 4)
        packet = udp_packet("10.0.1.77")
        tu.send_packet(self, 1, packet)
        tu.verify_packet(self, routed(packet), 4)
        other = udp_packet("10.0.9.1")
        tu.send_packet(self, 1, other)
        tu.verify_packet(self, routed(other), 3)
        tu.verify_no_other_packets(self)


@group("smoke")
class RouterNoRouteDropTest(RouterTestBase):
    """A packet without a route is dropped and counted as "no route"."""

    def runTest(self) -> None:  # noqa: N802
        before, _ = self.client.counter("drops", DROP_NO_ROUTE)
        tu.send_packet(self, 1, udp_packet("192.168.7.7"))
        tu.verify_no_other_packets(self)
        after, _ = self.client.counter("drops", DROP_NO_ROUTE)
        self.assertEqual(after - before, 1)


@group("smoke")
class RouterTtlExpiredTest(RouterTestBase):
    """A routed packet with TTL 1 is dropped, counted as a TTL drop."""

    def runTest(self) -> None:  # noqa: N802
        self.add_route("10.0.1.0/24", 2)
        before, _ = self.client.counter("drops", DROP_TTL)
        tu.send_packet(self, 1, udp_packet(ttl=1))
        tu.verify_no_other_packets(self)
        after, _ = self.client.counter("drops", DROP_TTL)
        self.assertEqual(after - before, 1)


@group("smoke")
class RouterBadChecksumTest(RouterTestBase):
    """A routed packet with a wrong IPv4 header checksum is dropped, counted as such."""

    def runTest(self) -> None:  # noqa: N802
        self.add_route("10.0.1.0/24", 2)
        before, _ = self.client.counter("drops", DROP_BAD_CHECKSUM)
        packet = Ether(bytes(udp_packet()))
        packet[IP].chksum ^= 0xFFFF
        tu.send_packet(self, 1, packet)
        tu.verify_no_other_packets(self)
        after, _ = self.client.counter("drops", DROP_BAD_CHECKSUM)
        self.assertEqual(after - before, 1)
