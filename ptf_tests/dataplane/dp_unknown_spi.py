"""PTF: ESP with an unknown SPI. A decrypt tunnel is programmed as the controller programs it
(one tunnel_rules entry per SA SPI, its decrypt_sas entry, and an esp_endpoints entry with the
rule's match less the SPI); ESP from its peer with another SPI is dropped and counted on the
tunnel; ESP that no decrypt tunnel's match claims is routed like any IP packet.

Run just these: ptf_tests/dataplane/run.sh dp_unknown_spi
"""

from __future__ import annotations

import ptf.testutils as tu
from p4_constants import C
from ptf.testutils import group
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from tunnel_base import TunnelOffloadTest
from tunnel_packets import CryptoShim
from tunnel_scenarios import (
    HOST_MAC,
    NEXT_HOP_MAC,
    ROUTER_MAC,
    SPI_IN,
    SWITCH_MAC,
    TUNNEL_DST,
    TUNNEL_SRC,
    esp_header,
    esp_in,
    rebuilt,
    routed,
)

IN_PORT = 1
DEFAULT_PORT = 7
TUNNEL = 31
SA_INDEX = 54
UNKNOWN_SPI = 0x9999
# ESP from the peer (TUNNEL_DST) to this gateway (TUNNEL_SRC), as esp_in() sends it.
PEER_MATCH = {"ip_version": 4, "ipv4_src": TUNNEL_DST, "ipv4_dst": TUNNEL_SRC}


class UnknownSpiBase(TunnelOffloadTest):
    def add_decrypt_tunnel(self) -> None:
        self.add_entry("tunnel_rules", "ipsec_decrypt", priority=40,
                       match={**PEER_MATCH, "tunnel_header": C("TUNNEL_HEADER_ESP"),
                              "esp_spi": SPI_IN},
                       params={"tunnel_index": TUNNEL,
                               "next_action": C("NEXT_ACTION_FORWARD"), "tunnel_mode": 1})
        self.add_entry("decrypt_sas", "set_decrypt_sa",
                       match={"tunnel_index": TUNNEL, "spi": SPI_IN},
                       params={"sa_index": SA_INDEX})
        self.add_entry("esp_endpoints", "drop_unknown_spi", priority=40, match=PEER_MATCH,
                       params={"tunnel_index": TUNNEL})
        self.add_route("0.0.0.0/0", port=DEFAULT_PORT, src_mac=ROUTER_MAC,
                       dst_mac=NEXT_HOP_MAC)


@group("dataplane")
@group("crypto")
class EspUnknownSpiDropTest(UnknownSpiBase):
    """ESP from a decrypt tunnel's peer with an SPI that is none of its SAs leaves no port (not
    even the default route) and counts one in-packet and one in-drop on that tunnel; its known
    SPI still goes to the worker."""

    def runTest(self) -> None:  # noqa: N802
        self.add_decrypt_tunnel()
        in_before = self.counter("tunnel_in", TUNNEL)[0]
        drop_before = self.counter("tunnel_drop_in", TUNNEL)[0]
        drop_bytes_before = self.tunnel_bytes("tunnel_drop_in", TUNNEL)
        reason_before = self.counter("drop_reasons", C("DROP_SA_MISS"))[0]
        forged = esp_in(spi=UNKNOWN_SPI, nat_t=True)
        tu.send_packet(self, IN_PORT, forged)
        after = self.counter_after("tunnel_drop_in", TUNNEL, packets=drop_before + 1)
        tu.verify_no_other_packets(self)
        self.assertEqual(after[0] - drop_before, 1)
        self.assertEqual(self.tunnel_bytes("tunnel_drop_in", TUNNEL) - drop_bytes_before,
                         len(forged))
        self.assertEqual(self.counter("tunnel_in", TUNNEL)[0] - in_before, 1)
        self.assertEqual(self.counter("drop_reasons", C("DROP_SA_MISS"))[0] - reason_before, 1)

        known = esp_in(nat_t=True)
        tu.send_packet(self, IN_PORT, known)
        result = tu.dp_poll(self, port_number=C("CRYPTO_PORT"), timeout=2)
        self.assertIsInstance(result, self.dataplane.PollSuccess)
        shim = CryptoShim(bytes(result.packet)[:16])
        self.assertEqual((shim.tunnel_index, shim.sa_index), (TUNNEL, SA_INDEX))
        self.assertEqual(bytes(result.packet)[16:], bytes(known))
        tu.verify_no_other_packets(self)
        self.assertEqual(self.counter("tunnel_drop_in", TUNNEL)[0] - drop_before, 1)


@group("dataplane")
@group("crypto")
class EspNoTunnelRoutedTest(UnknownSpiBase):
    """ESP that no decrypt tunnel's match claims is not this switch's: it is routed unchanged
    (next-hop MACs only), ESP and NAT-T alike, and no tunnel counts it."""

    def runTest(self) -> None:  # noqa: N802
        self.add_decrypt_tunnel()
        in_before = self.counter("tunnel_in", TUNNEL)[0]
        reason_before = self.counter("drop_reasons", C("DROP_SA_MISS"))[0]
        body = Raw(esp_header(UNKNOWN_SPI, 3) + b"\x5a" * 48)
        for frame in (
                rebuilt(Ether(dst=SWITCH_MAC, src=HOST_MAC)
                        / IP(src="198.51.100.7", dst=TUNNEL_SRC, proto=50) / body),
                rebuilt(Ether(dst=SWITCH_MAC, src=HOST_MAC)
                        / IP(src=TUNNEL_DST, dst="198.51.100.8") / UDP(sport=4500, dport=4500)
                        / body)):
            tu.send_packet(self, IN_PORT, frame)
            tu.verify_packet(self, routed(frame), DEFAULT_PORT)
        tu.verify_no_other_packets(self)
        self.assertEqual(self.counter("tunnel_in", TUNNEL)[0] - in_before, 0)
        self.assertEqual(self.counter("drop_reasons", C("DROP_SA_MISS"))[0] - reason_before, 0)
