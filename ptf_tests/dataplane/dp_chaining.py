"""PTF: recirculation — tunnels chained by tunnel index, re-matching on inner IPs after a decap,
and the pass bound that stops a looping rule.

Run just these: ptf_tests/dataplane/run.sh dp_chaining
"""

from __future__ import annotations

import ptf.testutils as tu
from p4_constants import C
from ptf.testutils import group
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether
from tunnel_base import TunnelOffloadTest
from tunnel_packets import GENEVE
from tunnel_scenarios import (
    INNER_DST_MAC,
    INNER_SRC_MAC,
    NEXT_HOP_MAC,
    OUTER_V4,
    ROUTER_MAC,
    encap_params,
    geneve_packet,
    geneve_vni_of,
    plain_udp,
)

IN_PORT = 1
DECAP_TUNNEL = 5


class ChainBase(TunnelOffloadTest):
    def add_decap_then_recirculate(self) -> None:
        """First pass: Geneve VNI 0x42 is decapsulated and matched again (tunnel 5)."""
        self.add_entry("tunnel_rules", "decap_geneve", priority=5,
                       match={"tunnel_header": C("TUNNEL_HEADER_GENEVE"), "geneve_vni": 0x42,
                              "prev_tunnel": 0},
                       params={"tunnel_index": DECAP_TUNNEL,
                               "next_action": C("NEXT_ACTION_RECIRCULATE")})

    def add_second_pass_encap(self, *, tunnel: int, inner_dst: str) -> None:
        self.add_entry("tunnel_rules", "encap_geneve_v4", priority=10,
                       match={"prev_tunnel": DECAP_TUNNEL, "ipv4_dst": inner_dst},
                       params=encap_params(tunnel=tunnel, options=[], vni=tunnel))

    def receive_one(self, port: int) -> bytes:
        result = tu.dp_poll(self, port_number=port, timeout=2)
        self.assertIsInstance(result, self.dataplane.PollSuccess)
        return bytes(result.packet)


@group("dataplane")
@group("recirculation")
class ChainDecapThenEncapTest(ChainBase):
    """Decap (RECIRCULATE) then, matched by the previous tunnel index, encap: the inner frame
    leaves in a new Geneve tunnel."""

    def runTest(self) -> None:  # noqa: N802
        self.add_decap_then_recirculate()
        self.add_second_pass_encap(tunnel=6, inner_dst="10.1.0.5")
        self.add_route("192.0.2.0/24", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
        sent = geneve_packet(0x42, inner_dst="10.1.0.5")
        before = {t: self.counter("tunnel_in", t)[0] for t in (DECAP_TUNNEL, 6)}
        tu.send_packet(self, IN_PORT, sent)
        frame = self.receive_one(2)
        tu.verify_no_other_packets(self)
        out = Ether(frame)[GENEVE]
        self.assertEqual(out.vni, 6)
        inner = Ether(bytes(sent[GENEVE].payload))
        inner.dst, inner.src = INNER_DST_MAC, INNER_SRC_MAC
        self.assertEqual(bytes(out.payload), bytes(inner))
        for tunnel, count in before.items():
            self.assertEqual(self.counter("tunnel_in", tunnel)[0] - count, 1)


@group("dataplane")
@group("recirculation")
class ChainInnerIpRematchTest(ChainBase):
    """After a decap the next pass matches on the inner destination: two inner addresses reach
    two different tunnels, a third one is routed as decapsulated."""

    def runTest(self) -> None:  # noqa: N802
        self.add_decap_then_recirculate()
        self.add_second_pass_encap(tunnel=6, inner_dst="10.1.0.5")
        self.add_second_pass_encap(tunnel=8, inner_dst="10.1.0.6")
        self.add_route("192.0.2.0/24", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
        self.add_route("10.1.0.0/16", port=5, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
        for inner_dst, vni in (("10.1.0.5", 6), ("10.1.0.6", 8)):
            tu.send_packet(self, IN_PORT, geneve_packet(0x42, inner_dst=inner_dst))
            self.assertEqual(geneve_vni_of(self.receive_one(2)), vni)
        tu.send_packet(self, IN_PORT, geneve_packet(0x42, inner_dst="10.1.0.7"))
        self.assertEqual(Ether(self.receive_one(5))[IP].dst, "10.1.0.7")
        tu.verify_no_other_packets(self)


@group("dataplane")
@group("recirculation")
class RecirculationPassLimitTest(ChainBase):
    """A rule that matches its own output is cut after MAX_PASSES passes: nothing leaves, the
    drop is counted as DROP_PASS_LIMIT and against the tunnel's output."""

    def runTest(self) -> None:  # noqa: N802
        tunnel = 9
        self.add_entry("tunnel_rules", "encap_geneve_v4", priority=10,
                       match={"ipv4_dst": OUTER_V4[1]},
                       params=encap_params(tunnel=tunnel, options=[],
                                           next_action="NEXT_ACTION_RECIRCULATE"))
        self.add_route("0.0.0.0/0", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
        names = ("tunnel_in", "tunnel_out", "tunnel_drop_out")
        before = {n: self.counter(n, tunnel)[0] for n in names}
        limit_before = self.counter("drop_reasons", C("DROP_PASS_LIMIT"))[0]
        tu.send_packet(self, IN_PORT, plain_udp(dst=OUTER_V4[1]))
        self.counter_after("drop_reasons", C("DROP_PASS_LIMIT"), packets=limit_before + 1)
        tu.verify_no_other_packets(self)
        delta = {n: self.counter(n, tunnel)[0] - before[n] for n in names}
        self.assertEqual(delta, {"tunnel_in": C("MAX_PASSES"), "tunnel_out": C("MAX_PASSES"),
                                 "tunnel_drop_out": 1})
        self.assertEqual(self.counter("drop_reasons", C("DROP_PASS_LIMIT"))[0] - limit_before, 1)
