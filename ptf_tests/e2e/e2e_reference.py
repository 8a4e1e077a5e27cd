"""PTF end to end: the four scenarios of the public reference client (att/sessionOffload
tests/basicIPT/tunnels_client.py; examples/1-4 are the team's readable versions), created over
the API and checked with real packets through p4sim, the crypto worker and the controller.

Run just these: ptf_tests/e2e/run.sh e2e_reference

Differences from the reference, on purpose, each because the packets must be checkable:
- the cipher is AES-256-GCM with a 16-byte ICV (`_aes256gcm128`) instead of the reference's
  8-byte ICV: scapy 2.8, the independent ESP implementation, makes only 16-byte GCM tags;
- the Geneve decap of the four-tunnel chain matches the Geneve header, as docs/api.md requires;
- the last tunnel of the four-tunnel chain matches the previous tunnel only: the reference also
  matches ESP SPI 920 there, but after a Geneve encap the packet the rule sees is Geneve, which
  has no SPI, so that rule could never be hit (see FourTunnelChainSpiMatchTest).
"""

from __future__ import annotations

import ptf.testutils as tu
from e2e_base import E2eTest
from e2e_packets import (
    GENEVE,
    SUITES,
    Encap,
    GeneveOptions,
    decrypt,
    esp_frame,
    esp_sa,
    expected_esp,
    geneve_encapped,
    geneve_packet,
    routed,
    udp_packet,
)
from e2e_topology import SEND_PORT, port_of
from e2e_tunnels import decrypt as decrypt_tunnel
from e2e_tunnels import encrypt as encrypt_tunnel
from e2e_tunnels import geneve_decap, geneve_encap, ipv4_match, key_of
from ptf.testutils import group
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

SUITE = SUITES["_aes256gcm128"]
RULE_MACS = {"inner_src_mac": "10:20:30:40:50:60", "inner_dst_mac": "60:50:40:30:20:10"}
OPTION = GeneveOptions(classid=0x0104, type=0x11, data=bytes.fromhex("10203040"))


def inner_frame(src: str, dst: str, *, ident: int = 1) -> Ether:
    """A plain frame as the remote site sends it inside a tunnel."""
    return udp_packet(src, dst, ident=ident)


@group("e2e")
@group("reference")
class ReferenceDecryptToGeneveTest(E2eTest):
    """ESP-in-UDP (transport, NAT-T) 11.0.0.1 -> 11.0.0.2 with SPI 780 is decrypted by 10000 and
    leaves Geneve-encapsulated by 10001 (5.5.5.5 -> 6.6.6.6, VNI 500, one option)."""

    def runTest(self) -> None:  # noqa: N802
        encap = Encap(src="5.5.5.5", dst="6.6.6.6", vni=500, options=(OPTION,), **RULE_MACS)
        self.create(
            decrypt_tunnel(10000, match={"ipv4Match": ipv4_match("11.0.0.1", "11.0.0.2")},
                           suite=SUITE, tunnel_type="TRANSPORT_NAT_TRAVERSAL",
                           sas=[(780, key_of(SUITE, 780))]),
            geneve_encap(10001, match={"tunnelId": 10000}, encap=encap))
        sa = esp_sa(SUITE, spi=780, key_hex=key_of(SUITE, 780), nat_t=True)
        plain = inner_frame("11.0.0.1", "11.0.0.2")
        sent = esp_frame(sa, plain[IP], seq=1)

        tu.send_packet(self, SEND_PORT, sent)

        decrypted = Ether(dst=sent.dst, src=sent.src) / sa.decrypt(IP(bytes(sent[IP])))
        self.verify(routed(geneve_encapped(decrypted, encap), port_of("6.6.6.6/32")),
                    port_of("6.6.6.6/32"))
        tu.verify_no_other_packets(self)


@group("e2e")
@group("reference")
class ReferenceGeneveToEncryptTest(E2eTest):
    """Geneve 11.0.0.1 -> 11.0.0.2 VNI 500 is decapsulated by 10002 and its inner packet leaves
    ESP-encrypted by 10003 (tunnel NAT-T 11.0.0.2 -> 11.0.0.1, SPI 4587), which scapy decrypts
    back to the inner packet."""

    def runTest(self) -> None:  # noqa: N802
        self.create(
            geneve_decap(10002, match={"ipv4Match": ipv4_match("11.0.0.1", "11.0.0.2"),
                                       "geneveMatch": {"vni": 500}}),
            encrypt_tunnel(10003, match={"tunnelId": 10002}, suite=SUITE,
                           tunnel_type="TUNNEL_NAT_TRAVERSAL", spi=4587, key=key_of(SUITE, 4587),
                           outer=("11.0.0.2", "11.0.0.1")))
        inner = inner_frame("172.16.1.1", "172.16.2.2")
        sent = geneve_packet("11.0.0.1", "11.0.0.2", 500, inner)
        sa = esp_sa(SUITE, spi=4587, key_hex=key_of(SUITE, 4587), tunnel=("11.0.0.2", "11.0.0.1"),
                    nat_t=True)
        out_port = port_of("11.0.0.1/32")

        tu.send_packet(self, SEND_PORT, sent)

        plain = Ether(bytes(sent[GENEVE].payload))[IP]
        received = self.receive(out_port)
        self.assertEqual(bytes(decrypt(sa, received)), bytes(plain))
        self.assertEqual(received, bytes(expected_esp(sa, plain, seq=1, port=out_port)))
        tu.verify_no_other_packets(self)


def four_tunnel_chain(last_match: dict, *, spi_in: int = 980,
                      spi_out: int = 45888) -> list[dict]:
    """examples/2-four-tunnel-chain.yaml with this suite's cipher and `last_match` for 20003
    (other SPIs for a second run of the chain: an SA is never installed twice)."""
    encap = Encap(src="7.7.7.7", dst="8.8.8.8", vni=700, options=(OPTION,), **RULE_MACS)
    return [
        decrypt_tunnel(20000, match={"ipv4Match": ipv4_match("12.0.0.1", "12.0.0.2")},
                       suite=SUITE, tunnel_type="TUNNEL", sas=[(spi_in, key_of(SUITE, spi_in))]),
        geneve_decap(20001, match={"tunnelId": 20000, "geneveMatch": {}}),
        geneve_encap(20002, match={"tunnelId": 20001}, encap=encap, next_action="RECIRCULATE"),
        encrypt_tunnel(20003, match=last_match, suite=SUITE, tunnel_type="TRANSPORT",
                       spi=spi_out, key=key_of(SUITE, spi_out)),
    ]


def four_tunnel_packet(spi_in: int = 980) -> tuple[Ether, Ether]:
    """(the ESP frame sent, the frame inside its Geneve): ESP tunnel mode 12.0.0.1 -> 12.0.0.2
    with `spi_in` around a Geneve packet around a plain frame."""
    inner = inner_frame("172.16.3.1", "172.16.3.2")
    geneve = geneve_packet("192.0.2.1", "192.0.2.2", 900, inner)
    sa_in = esp_sa(SUITE, spi=spi_in, key_hex=key_of(SUITE, spi_in),
                   tunnel=("12.0.0.1", "12.0.0.2"))
    return esp_frame(sa_in, geneve[IP], seq=1), inner


@group("e2e")
@group("reference")
class ReferenceFourTunnelChainTest(E2eTest):
    """ESP (tunnel) SPI 980 is decrypted (20000), the Geneve inside it decapsulated (20001), the
    inner frame re-encapsulated in Geneve 7.7.7.7 -> 8.8.8.8 (20002) and that ESP-encrypted in
    transport mode with SPI 45888 (20003): one frame out, and each tunnel counted it once in and
    once out, with the bytes of the frame it received and of the frame it emitted."""

    def runTest(self) -> None:  # noqa: N802
        self.create(*four_tunnel_chain({"tunnelId": 20002}))
        chain = (20000, 20001, 20002, 20003)
        before = {tunnel_id: self.counters(tunnel_id) for tunnel_id in chain}
        sent, inner = four_tunnel_packet()
        encap = Encap(src="7.7.7.7", dst="8.8.8.8", vni=700, options=(OPTION,), **RULE_MACS)
        sa_out = esp_sa(SUITE, spi=45888, key_hex=key_of(SUITE, 45888))
        out_port = port_of("8.8.8.8/32")

        tu.send_packet(self, SEND_PORT, sent)

        regeneve = geneve_encapped(inner, encap)[IP]
        received = self.receive(out_port)
        self.assertEqual(bytes(decrypt(sa_out, received)), bytes(regeneve))
        self.assertEqual(received, bytes(expected_esp(sa_out, regeneve, seq=1, port=out_port)))
        tu.verify_no_other_packets(self)
        moved = {}
        for tunnel_id in chain:    # each tunnel of the chain took the packet in and put it out
            after = self.counters(tunnel_id)
            self.assertEqual((after.inPackets - before[tunnel_id].inPackets,
                              after.outPackets - before[tunnel_id].outPackets), (1, 1),
                             f"tunnel {tunnel_id}")
            moved[tunnel_id] = (after.inBytes - before[tunnel_id].inBytes,
                                after.outBytes - before[tunnel_id].outBytes)
        # Bytes are the frames at each tunnel's boundary: the ESP frame sent, the decrypted
        # frame, the inner frame, the new Geneve frame, the ESP frame received; what one
        # tunnel emitted is what the next one received.
        self.assertEqual(moved[20000][0], len(bytes(sent)))
        self.assertEqual(moved[20001][1], len(bytes(inner)))
        self.assertEqual(moved[20002][1], len(bytes(geneve_encapped(inner, encap))))
        self.assertEqual(moved[20003][1], len(received))
        for first, second in zip(chain, chain[1:], strict=False):
            self.assertEqual(moved[first][1], moved[second][0], f"{first} -> {second}")


@group("e2e")
@group("reference")
class FourTunnelChainSpiMatchTest(E2eTest):
    """With the reference's SPI 920 in 20003's match, the Geneve frame 20002 makes never hits
    20003 (a Geneve packet has no SPI): it is routed unencrypted on 8.8.8.8."""

    def runTest(self) -> None:  # noqa: N802
        self.create(*four_tunnel_chain({"tunnelId": 20002, "ipsecMatch": {"spi": 920}},
                                       spi_in=981, spi_out=45889))
        sent, inner = four_tunnel_packet(981)
        encap = Encap(src="7.7.7.7", dst="8.8.8.8", vni=700, options=(OPTION,), **RULE_MACS)

        tu.send_packet(self, SEND_PORT, sent)

        self.verify(routed(geneve_encapped(inner, encap), port_of("8.8.8.8/32")),
                    port_of("8.8.8.8/32"))
        tu.verify_no_other_packets(self)


@group("e2e")
@group("reference")
class ReferenceRematchChainTest(E2eTest):
    """2.2.2.2 -> 3.3.3.3 is ESP-encrypted in tunnel mode 14.0.0.2 -> 14.0.0.1 (30000, SPI
    50000, RECIRCULATE) and the ESP packet, matched again on its new outer IPs, leaves
    Geneve-encapsulated 9.9.9.9 -> 10.10.10.10 (30001)."""

    def runTest(self) -> None:  # noqa: N802
        encap = Encap(src="9.9.9.9", dst="10.10.10.10", vni=701, options=(OPTION,), **RULE_MACS)
        self.create(
            encrypt_tunnel(30000, match={"ipv4Match": ipv4_match("2.2.2.2", "3.3.3.3")},
                           suite=SUITE, tunnel_type="TUNNEL", spi=50000, key=key_of(SUITE, 50000),
                           outer=("14.0.0.2", "14.0.0.1"), next_action="RECIRCULATE"),
            geneve_encap(30001, match={"ipv4Match": ipv4_match("14.0.0.2", "14.0.0.1")},
                         encap=encap))
        sent = udp_packet("2.2.2.2", "3.3.3.3")
        sa = esp_sa(SUITE, spi=50000, key_hex=key_of(SUITE, 50000), tunnel=("14.0.0.2", "14.0.0.1"))
        out_port = port_of("10.10.10.10/32")

        tu.send_packet(self, SEND_PORT, sent)

        received = Ether(self.receive(out_port))
        esp_inside = Ether(bytes(received[GENEVE].payload))
        self.assertEqual(bytes(decrypt(sa, bytes(esp_inside))), bytes(sent[IP]))
        encrypted = Ether(dst=sent.dst, src=sent.src) / esp_frame(sa, sent[IP], seq=1)[IP]
        self.assertEqual(bytes(received),
                         bytes(routed(geneve_encapped(encrypted, encap), out_port)))
        tu.verify_no_other_packets(self)


@group("e2e")
@group("reference")
class ReferenceFanOutTest(E2eTest):
    """One decrypt tunnel (40000, tunnel NAT-T, SPI 80000) fans out by inner IPs: 15.0.0.2 ->
    15.0.0.1 leaves in Geneve VNI 701 (40001), 16.0.0.2 -> 16.0.0.1 in Geneve VNI 702 (40002),
    and an inner packet neither matches is routed as it is, with no route, so dropped."""

    def runTest(self) -> None:  # noqa: N802
        encaps = {
            "15.0.0": Encap(src="9.9.9.9", dst="10.10.10.10", vni=701, options=(OPTION,),
                            **RULE_MACS),
            "16.0.0": Encap(src="11.11.11.11", dst="12.12.12.12", vni=702, options=(OPTION,),
                            **RULE_MACS),
        }
        self.create(
            decrypt_tunnel(40000, match={"ipv4Match": ipv4_match("2.2.2.2", "3.3.3.3")},
                           suite=SUITE, tunnel_type="TUNNEL_NAT_TRAVERSAL",
                           sas=[(80000, key_of(SUITE, 80000))]),
            geneve_encap(40001, encap=encaps["15.0.0"],
                         match={"tunnelId": 40000,
                                "ipv4Match": ipv4_match("15.0.0.2", "15.0.0.1")}),
            geneve_encap(40002, encap=encaps["16.0.0"],
                         match={"tunnelId": 40000,
                                "ipv4Match": ipv4_match("16.0.0.2", "16.0.0.1")}))
        sa = esp_sa(SUITE, spi=80000, key_hex=key_of(SUITE, 80000), tunnel=("2.2.2.2", "3.3.3.3"),
                    nat_t=True)

        for seq, (net, out_port) in enumerate((("15.0.0", port_of("10.10.10.10/32")),
                                               ("16.0.0", port_of("12.12.12.12/32"))), 1):
            with self.subTest(inner=net):
                plain = inner_frame(f"{net}.2", f"{net}.1", ident=seq)
                sent = esp_frame(sa, plain[IP], seq=seq)
                tu.send_packet(self, SEND_PORT, sent)
                decrypted = Ether(dst=sent.dst, src=sent.src) / sa.decrypt(IP(bytes(sent[IP])))
                self.verify(routed(geneve_encapped(decrypted, encaps[net]), out_port), out_port)

        unmatched = Ether() / IP(src="17.0.0.2", dst="17.0.0.1") / UDP() / Raw(b"x" * 8)
        tu.send_packet(self, SEND_PORT, esp_frame(sa, IP(bytes(unmatched[IP])), seq=3))
        tu.verify_no_other_packets(self)
