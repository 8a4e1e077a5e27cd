"""PTF end to end: what the API reports and changes is what the data plane does. Counters read
through the API equal the packets sent; a DELETE stops the tunnel's traffic and removes exactly
what its CREATE added on the switch; refused requests leave the switch (read back over P4Runtime)
and the traffic exactly as they were.

Run just these: ptf_tests/e2e/run.sh e2e_lifecycle
"""

from __future__ import annotations

import ptf.testutils as tu
from e2e_base import E2eTest, drops, requests_of
from e2e_packets import (
    SUITES,
    Encap,
    GeneveOptions,
    esp_frame,
    esp_sa,
    geneve_encapped,
    routed,
    udp_packet,
)
from e2e_topology import SEND_PORT, port_of
from e2e_tunnels import decrypt as decrypt_tunnel
from e2e_tunnels import encrypt as encrypt_tunnel
from e2e_tunnels import geneve_decap, geneve_encap, ipv4_match, key_of
from ptf.testutils import group
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether

from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

SUITE = SUITES["_aes256gcm128"]
ENCAP = Encap(src="9.9.9.9", dst="10.10.10.10", vni=4242, inner_src_mac="02:00:00:00:0b:02",
              inner_dst_mac="02:00:00:00:0b:01",
              options=(GeneveOptions(classid=0x0102, type=0x03, data=b"\x01\x02\x03\x04"),))
UNROUTED = "192.0.2.50"    # no route covers it: without a tunnel, packets to it are dropped


@group("e2e")
@group("counters")
class CountersEqualPacketsSentTest(E2eTest):
    """After N packets through a Geneve encap tunnel its in/out packet counters moved by exactly
    N, its byte counters by the lengths of the N frames sent and the N frames received, and its
    drops not at all, the same through getIpTunnel and
    both paged streams; N packets an ESP decrypt tunnel
    cannot authenticate move its drops by exactly N and its out counter not at all."""

    def runTest(self) -> None:  # noqa: N802
        count = 7
        self.create(geneve_encap(54000, match={"ipv4Match": ipv4_match(dst=UNROUTED)},
                                 encap=ENCAP))
        before = self.counters(54000)
        out_port = port_of("10.10.10.10/32")
        sent = [udp_packet("172.16.70.1", UNROUTED, ident=n) for n in range(1, count + 1)]
        received = []
        for frame in sent:
            tu.send_packet(self, SEND_PORT, frame)
            received.append(self.receive(out_port))
            self.assertEqual(received[-1], bytes(routed(geneve_encapped(frame, ENCAP), out_port)))
        after = self.counters_until(54000, lambda c: c.outPackets >= before.outPackets + count)
        # Bytes are the frames themselves: those sent in, and the encapsulated ones received.
        self.assertEqual(after.inPackets - before.inPackets, count)
        self.assertEqual(after.outPackets - before.outPackets, count)
        self.assertEqual(after.inBytes - before.inBytes, sum(len(bytes(f)) for f in sent))
        self.assertEqual(after.outBytes - before.outBytes, sum(len(f) for f in received))
        self.assertEqual(drops(after), drops(before))
        # Every read path reports the same counters: getIpTunnel, and the paged streams.
        self.assertEqual(self.api.get(54000).tunnelCounters, after)
        paged = {r.tunnelId: r.tunnelCounters for r in self.api.all_stats(page_size=1)}
        self.assertEqual(paged[54000], after)
        listed = {r.tunnelId: r.tunnelCounters for r in self.api.all_tunnels(page_size=1)}
        self.assertEqual(listed[54000], after)

        peer = ("192.0.2.60", "192.0.2.61")
        self.create(decrypt_tunnel(54001, match={"ipv4Match": ipv4_match(*peer)}, suite=SUITE,
                                   tunnel_type="TUNNEL", sas=[(9200, key_of(SUITE, 9200))],
                                   next_action="FORWARD"))
        wrong_key = esp_sa(SUITE, spi=9200, key_hex=key_of(SUITE, 9200, variant=1), tunnel=peer)
        before = self.counters(54001)
        for n in range(1, count + 1):
            tu.send_packet(self, SEND_PORT, esp_frame(
                wrong_key, udp_packet("172.16.71.1", "172.16.71.2", ident=n)[IP], seq=n))
        after = self.counters_until(54001, lambda c: drops(c) >= drops(before) + count)
        self.assertEqual(drops(after) - drops(before), count)
        self.assertEqual(after.inPackets - before.inPackets, count)
        self.assertEqual(after.outPackets, before.outPackets)
        tu.verify_no_other_packets(self)


@group("e2e")
@group("lifecycle")
class DeleteStopsTrafficTest(E2eTest):
    """A deleted encap and a deleted decrypt tunnel no longer touch their packets (which, with
    no route, are dropped), and the switch's tables are back to what they were before."""

    def runTest(self) -> None:  # noqa: N802
        baseline = self.switch_state()
        peer = ("192.0.2.60", "192.0.2.61")
        key = key_of(SUITE, 9300)
        self.create(
            geneve_encap(54100, match={"ipv4Match": ipv4_match(dst=UNROUTED)}, encap=ENCAP),
            decrypt_tunnel(54101, match={"ipv4Match": ipv4_match(*peer)}, suite=SUITE,
                           tunnel_type="TUNNEL", sas=[(9300, key)], next_action="FORWARD"))
        self.assertNotEqual(self.switch_state(), baseline)
        sa = esp_sa(SUITE, spi=9300, key_hex=key, tunnel=peer)
        plain = udp_packet("172.16.80.1", UNROUTED)
        esp = [esp_frame(sa, udp_packet("172.16.81.1", "172.16.81.2", ident=n)[IP], seq=n)
               for n in (1, 2)]

        tu.send_packet(self, SEND_PORT, plain)
        self.verify(routed(geneve_encapped(plain, ENCAP), port_of("10.10.10.10/32")),
                    port_of("10.10.10.10/32"))
        tu.send_packet(self, SEND_PORT, esp[0])
        decrypted = Ether(dst=esp[0].dst, src=esp[0].src) / sa.decrypt(IP(bytes(esp[0][IP])))
        self.verify(routed(decrypted, port_of("172.16.0.0/16")), port_of("172.16.0.0/16"))

        self.delete(54101, 54100)
        self.assertEqual(self.switch_state(), baseline)
        tu.send_packet(self, SEND_PORT, plain)
        tu.send_packet(self, SEND_PORT, esp[1])
        tu.verify_no_other_packets(self)


@group("e2e")
@group("lifecycle")
class InvalidRequestsLeaveDataPlaneTest(E2eTest):
    """Each refused request (bad key, decap without a Geneve match, DELETE of a tunnel others
    chain from, UPDATE to five Geneve options, removing a decrypt tunnel's last SA, a rule
    chained from a missing tunnel) is answered _TUNNEL_REJECTED naming its field, and leaves the
    switch's tables, the tunnels read over the API and the traffic exactly as before."""

    def runTest(self) -> None:  # noqa: N802
        peer = ("192.0.2.60", "192.0.2.61")
        key = key_of(SUITE, 9400)
        self.create(
            decrypt_tunnel(54200, match={"ipv4Match": ipv4_match(*peer)}, suite=SUITE,
                           tunnel_type="TUNNEL", sas=[(9400, key)]),
            geneve_encap(54201, match={"tunnelId": 54200}, encap=ENCAP))
        switch_before = self.switch_state()
        api_before = [self.api.get(i).SerializeToString(deterministic=True)
                      for i in (54200, 54201)]
        five_options = tuple(GeneveOptions(classid=0x0100 + i, type=i, data=b"\0\0\0\1")
                             for i in range(5))
        refused = {
            "encryptionKey": (pb._CREATE, encrypt_tunnel(
                54202, match={"ipv4Match": ipv4_match("172.16.90.1")}, suite=SUITE,
                tunnel_type="TUNNEL", spi=9401, key="00" * 36, outer=peer)),
            "geneveMatch": (pb._CREATE, geneve_decap(
                54203, match={"ipv4Match": ipv4_match("192.0.2.70", "192.0.2.71")})),
            "tunnelId": (pb._DELETE, {"tunnelId": 54200}),
            "geneveOption": (pb._UPDATE, geneve_encap(
                54201, match={"tunnelId": 54200},
                encap=Encap(src=ENCAP.src, dst=ENCAP.dst, vni=ENCAP.vni,
                            inner_src_mac=ENCAP.inner_src_mac,
                            inner_dst_mac=ENCAP.inner_dst_mac, options=five_options))),
            "ipsecSAs[0]": (pb._UPDATE, {"tunnelId": 54200, "ipsecTunnel": {"ipsecDec": {
                "tunnelType": "TUNNEL", "encryptionType": SUITE.enc_type,
                "ipsecSAs": [{"spi": 9400, "operation": "_DELETE"}]}}}),
            "match_criteria.tunnelId": (pb._CREATE, geneve_encap(
                54204, match={"tunnelId": 54999}, encap=ENCAP)),
        }
        for field, (operation, tunnel) in refused.items():
            with self.subTest(field=field):
                outcome = self.api.send(requests_of([tunnel], operation))
                self.assertEqual(outcome.status, "_TUNNEL_REJECTED", outcome)
                (result,) = outcome.outcomes
                self.assertTrue(result.failed)
                self.assertIn(field, result.reason)
                self.assertEqual(self.switch_state(), switch_before)
                self.assertEqual([self.api.get(i).SerializeToString(deterministic=True)
                                  for i in (54200, 54201)], api_before)

        sa = esp_sa(SUITE, spi=9400, key_hex=key, tunnel=peer)
        sent = esp_frame(sa, udp_packet("172.16.91.1", "172.16.91.2")[IP], seq=1)
        tu.send_packet(self, SEND_PORT, sent)
        decrypted = Ether(dst=sent.dst, src=sent.src) / sa.decrypt(IP(bytes(sent[IP])))
        self.verify(routed(geneve_encapped(decrypted, ENCAP), port_of("10.10.10.10/32")),
                    port_of("10.10.10.10/32"))
        tu.verify_no_other_packets(self)
