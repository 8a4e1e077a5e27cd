"""PTF end to end: ESP interoperates with an independent implementation. ESP the pipeline (switch
plus crypto worker) produces is decrypted by scapy's SecurityAssociation, and ESP scapy makes is
decrypted by the pipeline, for every scapy-checkable suite in transport and tunnel mode, with
and without NAT-T. Tunnels are created over the API only.

Run just these: ptf_tests/e2e/run.sh e2e_esp
"""

from __future__ import annotations

import time

import ptf.testutils as tu
from e2e_base import E2eTest, drops
from e2e_packets import (
    SUITES,
    decrypt,
    esp_frame,
    esp_sa,
    esp_spi_seq,
    expected_esp,
    ip_layer,
    routed,
    udp6_packet,
    udp_packet,
)
from e2e_topology import SEND_PORT, port_of
from e2e_tunnels import decrypt as decrypt_tunnel
from e2e_tunnels import encrypt as encrypt_tunnel
from e2e_tunnels import ipv4_match, ipv6_match, key_of
from ptf.testutils import group
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether

# (suite, API tunnel type): every suite once, every mode once.
CASES = (
    ("_aes256gcm128", "TUNNEL"),
    ("_aes256ccm64", "TRANSPORT"),
    ("_aes128ccm96", "TUNNEL_NAT_TRAVERSAL"),
    ("_aes128gcm128", "TRANSPORT_NAT_TRAVERSAL"),
)
OUTER = ("198.51.100.1", "198.51.100.2")   # routed to port 7


@group("e2e")
@group("esp")
class EspPipelineEncryptScapyDecryptTest(E2eTest):
    """For each suite and mode, the ESP frame the pipeline emits is exactly scapy's encryption
    of the sent packet (sequence number 1) and scapy decrypts it back to the sent packet."""

    def runTest(self) -> None:  # noqa: N802
        for index, (name, tunnel_type) in enumerate(CASES):
            with self.subTest(suite=name, mode=tunnel_type):
                suite = SUITES[name]
                tunnel_mode = tunnel_type.startswith("TUNNEL")
                nat_t = tunnel_type.endswith("NAT_TRAVERSAL")
                spi, key = 7000 + index, key_of(suite, 7000 + index)
                src = f"172.16.40.{index + 1}"
                sent = udp_packet(src, "198.51.100.20", ident=index + 1)
                tunnel_id = 51000 + index
                self.create(encrypt_tunnel(
                    tunnel_id, match={"ipv4Match": ipv4_match(src)}, suite=suite,
                    tunnel_type=tunnel_type, spi=spi, key=key,
                    outer=OUTER if tunnel_mode else None))
                sa = esp_sa(suite, spi=spi, key_hex=key, nat_t=nat_t,
                            tunnel=OUTER if tunnel_mode else None)
                out_port = port_of("198.51.100.0/24")

                tu.send_packet(self, SEND_PORT, sent)

                received = self.receive(out_port)
                self.assertEqual(bytes(decrypt(sa, received)), bytes(sent[IP]))
                expected = expected_esp(sa, sent[IP], seq=1, port=out_port)
                self.assertEqual(received, bytes(expected))
                tu.verify_no_other_packets(self)
                self.delete(tunnel_id)


@group("e2e")
@group("esp")
class EspScapyEncryptPipelineDecryptTest(E2eTest):
    """For each suite and mode, ESP that scapy encrypts is decrypted by the pipeline and the
    plaintext packet is routed on; the same frame sent again is a replay and is dropped."""

    def runTest(self) -> None:  # noqa: N802
        peer = ("198.51.100.30", "172.16.42.2")    # the ESP packet's own IPs
        for index, (name, tunnel_type) in enumerate(CASES):
            with self.subTest(suite=name, mode=tunnel_type):
                suite = SUITES[name]
                tunnel_mode = tunnel_type.startswith("TUNNEL")
                nat_t = tunnel_type.endswith("NAT_TRAVERSAL")
                spi, key = 8000 + index, key_of(suite, 8000 + index)
                tunnel_id = 52000 + index
                self.create(decrypt_tunnel(
                    tunnel_id, match={"ipv4Match": ipv4_match(*peer)}, suite=suite,
                    tunnel_type=tunnel_type, sas=[(spi, key)], next_action="FORWARD"))
                sa = esp_sa(suite, spi=spi, key_hex=key, nat_t=nat_t,
                            tunnel=peer if tunnel_mode else None)
                if tunnel_mode:
                    plain = udp_packet("172.16.41.1", "172.16.41.2", ident=index + 1)[IP]
                else:
                    plain = udp_packet(*peer, ident=index + 1)[IP]
                sent = esp_frame(sa, plain, seq=5)

                tu.send_packet(self, SEND_PORT, sent)

                decrypted = Ether(dst=sent.dst, src=sent.src) / sa.decrypt(IP(bytes(sent[IP])))
                self.assertEqual(bytes(decrypted[IP]), bytes(plain))
                self.verify(routed(decrypted, port_of("172.16.0.0/16")),
                            port_of("172.16.0.0/16"))
                before = self.counters(tunnel_id)
                tu.send_packet(self, SEND_PORT, sent)
                after = self.counters_until(tunnel_id, lambda c, b=before: drops(c) > drops(b))
                self.assertEqual(drops(after) - drops(before), 1, "the replay is not counted")
                self.assertEqual(after.outPackets, before.outPackets)
                tu.verify_no_other_packets(self)
                self.delete(tunnel_id)


# An SA must keep its state for its whole life. The pause below is part of the scenario (an SA
# in use across time, past periodic background work such as reconciliation), not a wait for
# readiness: nothing is polled for, the packets are simply sent that far apart.
SA_LIFETIME_PAUSE = 1.5


@group("e2e")
@group("esp")
class EspSequenceNeverRestartsTest(E2eTest):
    """Packets sent under one encrypt SA seconds apart get sequence numbers 1, 2, 3 (a restart
    under the same key would reuse the AES-GCM nonce) and each decrypts with scapy."""

    def runTest(self) -> None:  # noqa: N802
        suite = SUITES["_aes256gcm128"]
        key = key_of(suite, 7100)
        self.create(encrypt_tunnel(55000, match={"ipv4Match": ipv4_match("172.16.43.1")},
                                   suite=suite, tunnel_type="TUNNEL", spi=7100, key=key,
                                   outer=OUTER))
        sa = esp_sa(suite, spi=7100, key_hex=key, tunnel=OUTER)
        out_port = port_of("198.51.100.0/24")
        for seq in (1, 2, 3):
            if seq > 1:
                time.sleep(SA_LIFETIME_PAUSE)
            sent = udp_packet("172.16.43.1", "198.51.100.20", ident=seq)
            tu.send_packet(self, SEND_PORT, sent)
            received = self.receive(out_port)
            self.assertEqual(esp_spi_seq(received), (7100, seq))
            self.assertEqual(bytes(decrypt(sa, received)), bytes(sent[IP]))
        tu.verify_no_other_packets(self)


@group("e2e")
@group("esp")
class EspReplayRejectedOverTimeTest(E2eTest):
    """A decrypt SA keeps its anti-replay window: a packet replayed seconds after it was
    accepted is dropped and counted (a reset window would accept it again)."""

    def runTest(self) -> None:  # noqa: N802
        suite = SUITES["_aes256gcm128"]
        key = key_of(suite, 7200)
        peer = ("198.51.100.31", "172.16.44.2")
        self.create(decrypt_tunnel(55100, match={"ipv4Match": ipv4_match(*peer)}, suite=suite,
                                   tunnel_type="TUNNEL", sas=[(7200, key)],
                                   next_action="FORWARD"))
        sa = esp_sa(suite, spi=7200, key_hex=key, tunnel=peer)
        sent = esp_frame(sa, udp_packet("172.16.44.1", "172.16.44.2")[IP], seq=1)
        tu.send_packet(self, SEND_PORT, sent)
        decrypted = Ether(dst=sent.dst, src=sent.src) / sa.decrypt(IP(bytes(sent[IP])))
        self.verify(routed(decrypted, port_of("172.16.0.0/16")), port_of("172.16.0.0/16"))

        time.sleep(SA_LIFETIME_PAUSE)
        before = self.counters(55100)
        tu.send_packet(self, SEND_PORT, sent)
        after = self.counters_until(55100, lambda c: drops(c) > drops(before))
        self.assertEqual(drops(after) - drops(before), 1, "the replay is not counted")
        self.assertEqual(after.outPackets, before.outPackets)
        tu.verify_no_other_packets(self)


@group("e2e")
@group("esp")
@group("ipv6")
class EspIpv6InteropTest(E2eTest):
    """IPv6 both ways: an IPv4 packet in an IPv6 NAT-T tunnel and an IPv6 packet in transport
    mode leave as ESP that scapy decrypts (byte for byte scapy's own encryption), and an IPv6
    packet scapy encrypts in an IPv6 tunnel is decrypted and routed on its inner address."""

    def runTest(self) -> None:  # noqa: N802
        gcm, ccm = SUITES["_aes256gcm128"], SUITES["_aes256ccm64"]
        outer = ("2001:db8:e2e::1", "2001:db8:e2e::2")
        out_port, plain_port = port_of("2001:db8:e2e::/48"), port_of("2001:db8:172::/48")
        cases = (
            ("v4-in-v6 tunnel NAT-T", gcm, "TUNNEL_NAT_TRAVERSAL", outer,
             {"ipv4Match": ipv4_match("172.16.45.1")}, udp_packet("172.16.45.1", "172.16.45.2")),
            ("v6 transport", ccm, "TRANSPORT", None,
             {"ipv6Match": ipv6_match("2001:db8:172::1")},
             udp6_packet("2001:db8:172::1", "2001:db8:e2e::20")),
        )
        for index, (name, suite, tunnel_type, tunnel, match, sent) in enumerate(cases):
            with self.subTest(case=name):
                spi, key = 7300 + index, key_of(suite, 7300 + index)
                self.create(encrypt_tunnel(56000 + index, match=match, suite=suite,
                                           tunnel_type=tunnel_type, spi=spi, key=key,
                                           outer=tunnel))
                sa = esp_sa(suite, spi=spi, key_hex=key, tunnel=tunnel,
                            nat_t=tunnel_type.endswith("NAT_TRAVERSAL"))
                tu.send_packet(self, SEND_PORT, sent)
                received = self.receive(out_port)
                self.assertEqual(bytes(decrypt(sa, received)), bytes(ip_layer(sent)))
                self.assertEqual(received, bytes(expected_esp(sa, ip_layer(sent), seq=1,
                                                              port=out_port)))
                tu.verify_no_other_packets(self)
                self.delete(56000 + index)

        with self.subTest(case="v6-in-v6 decrypt"):
            peer = ("2001:db8:e2e::30", "2001:db8:e2e::31")
            key = key_of(gcm, 7310)
            self.create(decrypt_tunnel(56010, match={"ipv6Match": ipv6_match(*peer)},
                                       suite=gcm, tunnel_type="TUNNEL", sas=[(7310, key)],
                                       next_action="FORWARD"))
            sa = esp_sa(gcm, spi=7310, key_hex=key, tunnel=peer)
            plain = ip_layer(udp6_packet("2001:db8:172::1", "2001:db8:172::2"))
            sent = esp_frame(sa, plain, seq=1)
            tu.send_packet(self, SEND_PORT, sent)
            decrypted = Ether(dst=sent.dst, src=sent.src) / decrypt(sa, bytes(sent))
            self.assertEqual(bytes(decrypted.payload), bytes(plain))
            self.verify(routed(decrypted, plain_port), plain_port)
            tu.verify_no_other_packets(self)
