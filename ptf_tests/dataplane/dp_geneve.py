"""PTF: Geneve encap (0, 1 and the maximum number of options, IPv4 and IPv6 outer) byte for byte
against scapy's GENEVE, decap, and VNI matching of Geneve versus VXLAN.

Run just these (with p4sim or BMv2 serving p4src/ as ptf_tests/dataplane/run.sh starts it):
    ptf --platform nn --device-socket "0-{0-7,64}@ipc://..." --test-dir ptf_tests/dataplane \\
        --test-params "grpc_addr='127.0.0.1:9559';device_id=1" dp_geneve
"""

from __future__ import annotations

import ptf.testutils as tu
from p4_constants import C
from ptf.testutils import group
from scapy.layers.l2 import Dot1Q, Ether
from tunnel_base import TunnelOffloadTest
from tunnel_packets import GeneveOptions
from tunnel_scenarios import (
    HOST_MAC,
    NEXT_HOP_MAC,
    ROUTER_MAC,
    SWITCH_MAC,
    decapped,
    encap_params,
    expected_encap,
    geneve_packet,
    geneve_vni_of,
    options_of,
    plain_udp,
    routed,
    vxlan_packet,
)

IN_PORT, OUT_PORT = 1, 2


class GeneveEncapBase(TunnelOffloadTest):
    """Programs one encap rule on IN_PORT and routes the outer destination to OUT_PORT."""

    def check_encap(self, options: list[GeneveOptions], *, v6: bool = False,
                    critical: int = 0) -> None:
        tunnel = 7
        self.add_entry("tunnel_rules", "encap_geneve_v6" if v6 else "encap_geneve_v4",
                       match={"ingress_port": IN_PORT}, priority=10,
                       params=encap_params(tunnel=tunnel, options=options, v6=v6,
                                           critical=critical))
        self.add_route("2001:db8:1::/48" if v6 else "192.0.2.0/24", port=OUT_PORT,
                       src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
        before = {name: (self.counter(name, tunnel)[0], self.tunnel_bytes(name, tunnel))
                  for name in ("tunnel_in", "tunnel_out")}
        sent = plain_udp()
        expected = expected_encap(sent, options, v6=v6, critical=critical)
        for _ in range(2):
            tu.send_packet(self, IN_PORT, sent)
            tu.verify_packet(self, expected, OUT_PORT)
        tu.verify_no_other_packets(self)
        # Bytes are the frames: the one sent in, the encapsulated one that came out.
        for name, frame in (("tunnel_in", sent), ("tunnel_out", expected)):
            moved = (self.counter(name, tunnel)[0] - before[name][0],
                     self.tunnel_bytes(name, tunnel) - before[name][1])
            self.assertEqual(moved, (2, 2 * len(bytes(frame))), name)


@group("dataplane")
@group("geneve")
class GeneveEncapNoOptionsTest(GeneveEncapBase):
    """A matched IPv4 packet leaves in Geneve over IPv4 with no options, exactly as scapy builds
    it, and the tunnel's in/out counters move by the packets sent."""

    def runTest(self) -> None:  # noqa: N802 - PTF's entry point
        self.check_encap([])


@group("dataplane")
@group("geneve")
class GeneveEncapOneOptionTest(GeneveEncapBase):
    """Encap with one 4-byte option carries the option region byte for byte."""

    def runTest(self) -> None:  # noqa: N802
        self.check_encap(options_of(1, 4))


@group("dataplane")
@group("geneve")
class GeneveEncapMaxOptionsTest(GeneveEncapBase):
    """Encap with MAX_GENEVE_OPTIONS options of MAX_GENEVE_OPTION_DATA bytes (opt_len 20)."""

    def runTest(self) -> None:  # noqa: N802
        self.check_encap(options_of(C("MAX_GENEVE_OPTIONS"), C("MAX_GENEVE_OPTION_DATA")))


@group("dataplane")
@group("geneve")
class GeneveEncapIpv6OuterTest(GeneveEncapBase):
    """Encap over IPv6 with two options and the C bit set."""

    def runTest(self) -> None:  # noqa: N802
        self.check_encap(options_of(2, 8), v6=True, critical=1)


@group("dataplane")
@group("geneve")
class GeneveEncapVlanTaggedTest(GeneveEncapBase):
    """An 802.1Q-tagged packet is encapsulated untagged."""

    def runTest(self) -> None:  # noqa: N802
        self.add_entry("tunnel_rules", "encap_geneve_v4", match={"ingress_port": IN_PORT},
                       priority=10, params=encap_params(tunnel=7, options=[]))
        self.add_route("192.0.2.0/24", port=OUT_PORT, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
        plain = plain_udp()
        sent = Ether(bytes(Ether(dst=SWITCH_MAC, src=HOST_MAC) / Dot1Q(vlan=12)
                           / plain.payload))
        tu.send_packet(self, IN_PORT, sent)
        tu.verify_packet(self, expected_encap(sent, []), OUT_PORT)
        tu.verify_no_other_packets(self)


@group("dataplane")
@group("geneve")
class GeneveDecapTest(TunnelOffloadTest):
    """A Geneve packet with options, matched on its VNI, leaves as its inner frame, routed."""

    def runTest(self) -> None:  # noqa: N802
        self.add_entry("tunnel_rules", "decap_geneve", priority=5,
                       match={"tunnel_header": C("TUNNEL_HEADER_GENEVE"), "geneve_vni": 0x42},
                       params={"tunnel_index": 3, "next_action": C("NEXT_ACTION_FORWARD")})
        self.add_route("10.1.0.0/16", port=4, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
        sent = geneve_packet(0x42, options=options_of(2, 8))
        out_before = self.counter("tunnel_out", 3)
        tu.send_packet(self, IN_PORT, sent)
        tu.verify_packet(self, decapped(sent), 4)
        tu.verify_no_other_packets(self)
        self.assertEqual(self.counter("tunnel_out", 3)[0] - out_before[0], 1)


@group("dataplane")
@group("geneve")
class MatchGeneveVersusVxlanVniTest(TunnelOffloadTest):
    """A Geneve VNI rule and a VXLAN VNI rule with the same VNI each match only their header."""

    def runTest(self) -> None:  # noqa: N802
        self.add_entry("tunnel_rules", "encap_geneve_v4", priority=10,
                       match={"tunnel_header": C("TUNNEL_HEADER_GENEVE"), "geneve_vni": 100},
                       params=encap_params(tunnel=11, options=[], vni=1100))
        self.add_entry("tunnel_rules", "encap_geneve_v4", priority=10,
                       match={"tunnel_header": C("TUNNEL_HEADER_VXLAN"), "vxlan_vni": 100},
                       params=encap_params(tunnel=12, options=[], vni=1200))
        self.add_route("0.0.0.0/0", port=OUT_PORT, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
        for sent, vni in ((geneve_packet(100), 1100), (vxlan_packet(100), 1200)):
            tu.send_packet(self, IN_PORT, sent)
            result = tu.dp_poll(self, port_number=OUT_PORT, timeout=2)
            self.assertIsInstance(result, self.dataplane.PollSuccess)
            self.assertEqual(geneve_vni_of(bytes(result.packet)), vni)
        unmatched = geneve_packet(101)
        tu.send_packet(self, IN_PORT, unmatched)
        tu.verify_packet(self, routed(unmatched), OUT_PORT)
        tu.verify_no_other_packets(self)
