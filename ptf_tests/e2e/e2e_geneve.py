"""PTF end to end: Geneve with IPv6 outer headers, created over the API (the reference scenarios
cover IPv4 outer headers).

Run just these: ptf_tests/e2e/run.sh e2e_geneve
"""

from __future__ import annotations

import ptf.testutils as tu
from e2e_base import E2eTest
from e2e_packets import (
    GENEVE,
    Encap,
    GeneveOptions,
    geneve_encapped,
    geneve_packet,
    routed,
    udp6_packet,
    udp_packet,
)
from e2e_topology import SEND_PORT, port_of
from e2e_tunnels import geneve_decap, geneve_encap, ipv6_match
from ptf.testutils import group
from scapy.layers.l2 import Ether

ENCAP_V6 = Encap(src="2001:db8:e2e::a", dst="2001:db8:e2e::b", vni=0xABCDE,
                 inner_src_mac="02:00:00:00:0b:02", inner_dst_mac="02:00:00:00:0b:01",
                 options=(GeneveOptions(classid=0x0104, type=0x11, data=bytes(range(8))),
                          GeneveOptions(classid=0x0105, type=0x12, data=b"\xaa\xbb\xcc\xdd")))


@group("e2e")
@group("geneve")
@group("ipv6")
class GeneveIpv6EncapTest(E2eTest):
    """An IPv6 packet matched by its IPv6 source leaves in Geneve over IPv6 with the rule's VNI,
    two options and inner MACs, routed on the outer IPv6 destination."""

    def runTest(self) -> None:  # noqa: N802
        self.create(geneve_encap(58000, match={"ipv6Match": ipv6_match("2001:db8:172::7")},
                                 encap=ENCAP_V6))
        sent = udp6_packet("2001:db8:172::7", "2001:db8:172::8")
        out_port = port_of("2001:db8:e2e::/48")

        tu.send_packet(self, SEND_PORT, sent)

        self.verify(routed(geneve_encapped(sent, ENCAP_V6), out_port), out_port)
        tu.verify_no_other_packets(self)


@group("e2e")
@group("geneve")
@group("ipv6")
class GeneveIpv6DecapTest(E2eTest):
    """Geneve over IPv6 with the matched VNI is decapsulated and its inner IPv4 frame routed on
    the inner destination; the same packet with another VNI is not decapsulated: it is routed as
    it is, on its outer destination."""

    def runTest(self) -> None:  # noqa: N802
        peer = ("2001:db8:e2e::c", "2001:db8:e2e::d")
        self.create(geneve_decap(58100, next_action="FORWARD",
                                 match={"ipv6Match": ipv6_match(*peer),
                                        "geneveMatch": {"vni": 4711}}))
        inner = udp_packet("172.16.47.1", "172.16.47.2")
        sent = geneve_packet(*peer, 4711, inner)
        plain_port = port_of("172.16.0.0/16")

        tu.send_packet(self, SEND_PORT, sent)
        self.verify(routed(Ether(bytes(sent[GENEVE].payload)), plain_port), plain_port)

        other_vni = geneve_packet(*peer, 4712, inner)
        tu.send_packet(self, SEND_PORT, other_vni)
        outer_port = port_of("2001:db8:e2e::/48")
        self.verify(routed(other_vni, outer_port), outer_port)
        tu.verify_no_other_packets(self)
