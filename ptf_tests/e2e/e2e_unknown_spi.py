"""PTF end to end: ESP with an unknown SPI. A decrypt tunnel created over the API makes the
switch the ESP end point for its peer: ESP from that peer under an SPI that is none of the
tunnel's SAs is dropped and shows in getIpTunnelStats as an in-packet and an in-drop of the
tunnel; ESP from a peer no decrypt tunnel matches is routed as it is (docs/dataplane.md
"ESP with an unknown SPI").

Run just these: ptf_tests/e2e/run.sh e2e_unknown_spi
"""

from __future__ import annotations

import ptf.testutils as tu
from e2e_base import E2eTest
from e2e_packets import SUITES, esp_frame, esp_sa, routed, udp_packet
from e2e_topology import SEND_PORT, port_of
from e2e_tunnels import decrypt as decrypt_tunnel
from e2e_tunnels import ipv4_match, key_of
from ptf.testutils import group
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether


@group("e2e")
@group("esp")
class EspUnknownSpiDroppedTest(E2eTest):
    """ESP from the tunnel's peer under an unknown SPI leaves no port and counts one in-packet
    and one in-drop (its bytes too) on the tunnel; under the SA's SPI it is decrypted and
    routed; ESP between hosts no decrypt tunnel matches is routed unchanged."""

    def runTest(self) -> None:  # noqa: N802
        suite = SUITES["_aes256gcm128"]
        peer = ("198.51.100.40", "172.16.43.2")   # the ESP packet's own IPs (transport mode)
        spi, key = 8100, key_of(suite, 8100)
        tunnel_id = 53000
        self.create(decrypt_tunnel(
            tunnel_id, match={"ipv4Match": ipv4_match(*peer)}, suite=suite,
            tunnel_type="TRANSPORT", sas=[(spi, key)], next_action="FORWARD"))
        plain = udp_packet(*peer)[IP]
        clear_port = port_of("172.16.0.0/16")

        unknown = esp_frame(esp_sa(suite, spi=spi + 1, key_hex=key), plain, seq=1)
        before = self.counters(tunnel_id)
        tu.send_packet(self, SEND_PORT, unknown)
        after = self.counters_until(
            tunnel_id, lambda c: c.inPacketsDrops > before.inPacketsDrops)
        tu.verify_no_other_packets(self)   # before: routed, still encrypted, to port 1
        self.assertEqual(after.inPacketsDrops - before.inPacketsDrops, 1)
        self.assertEqual(after.inBytesDrops - before.inBytesDrops, len(unknown))
        self.assertEqual(after.inPackets - before.inPackets, 1)
        self.assertEqual(after.inBytes - before.inBytes, len(unknown))
        self.assertEqual(after.outPackets, before.outPackets)

        sa = esp_sa(suite, spi=spi, key_hex=key)
        known = esp_frame(sa, plain, seq=1)
        tu.send_packet(self, SEND_PORT, known)
        decrypted = Ether(dst=known.dst, src=known.src) / sa.decrypt(IP(bytes(known[IP])))
        self.verify(routed(decrypted, clear_port), clear_port)

        transit = esp_frame(esp_sa(suite, spi=spi + 1, key_hex=key),
                            udp_packet("198.51.100.41", "172.16.43.2")[IP], seq=1)
        tu.send_packet(self, SEND_PORT, transit)
        self.verify(routed(transit, clear_port), clear_port)
        tu.verify_no_other_packets(self)
        final = self.counters(tunnel_id)
        self.assertEqual(final.inPackets - after.inPackets, 1)   # the known SPI only
        self.assertEqual(final.inPacketsDrops, after.inPacketsDrops)
        self.delete(tunnel_id)
