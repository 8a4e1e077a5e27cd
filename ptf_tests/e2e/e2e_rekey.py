"""PTF end to end: rekeying under traffic loses nothing. The reference client's flows: an encrypt
tunnel gets a new SA with one UPDATE; a decrypt tunnel gets the new SA added beside the old one,
the peer switches, then the old SA is deleted. A sender thread keeps packets flowing while the
API calls run, and every packet sent must come out, decryptable with the SA it was sent under.

Run just these: ptf_tests/e2e/run.sh e2e_rekey
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import ptf.testutils as tu
from e2e_base import E2eTest
from e2e_packets import SUITES, decrypt, esp_frame, esp_sa, esp_spi_seq, routed, udp_packet
from e2e_topology import SEND_PORT, port_of
from e2e_tunnels import decrypt as decrypt_tunnel
from e2e_tunnels import encrypt as encrypt_tunnel
from e2e_tunnels import ipv4_match, key_of
from ptf.testutils import group
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether

log = logging.getLogger(__name__)

SUITE = SUITES["_aes256gcm128"]
AFTER = 15          # packets the sender still sends after each API call returned
MAX_PACKETS = 400   # the sender's bound, whatever happens to the API call


class Sender(threading.Thread):
    """Sends make(n) for n = 1, 2, … until told to stop; records what it sent."""

    def __init__(self, test: E2eTest, make: Callable[[int], Ether]) -> None:
        super().__init__(name="e2e-sender", daemon=True)
        self._test, self._make = test, make
        self.sent: list[Ether] = []
        self._lock = threading.Lock()
        self._stop_at: int | None = None
        self.progress = threading.Condition(self._lock)

    def run(self) -> None:
        while True:
            with self._lock:
                if len(self.sent) >= (self._stop_at or MAX_PACKETS):
                    return
                frame = self._make(len(self.sent) + 1)
                self.sent.append(frame)
                self.progress.notify_all()
            tu.send_packet(self._test, SEND_PORT, frame)

    def wait_sent(self, count: int) -> None:
        with self._lock:
            self.progress.wait_for(lambda: len(self.sent) >= count, timeout=30)

    def count(self) -> int:
        with self._lock:
            return len(self.sent)

    def stop_after(self, more: int) -> None:
        """Send `more` further packets, then stop (and wait for it)."""
        with self._lock:
            self._stop_at = min(len(self.sent) + more, MAX_PACKETS)
        self.join(timeout=60)


class RekeyTest(E2eTest):
    def under_traffic(self, sender: Sender, call: Callable[[], object]) -> None:
        """Run the API `call` while `sender` keeps sending; at least one packet must have been
        sent while it was in flight (else this would not be a rekey under traffic)."""
        before = sender.count()
        call()
        during = sender.count() - before
        log.info("%d packets sent while the rekey call was in flight", during)
        self.assertGreater(during, 0, "no packet was sent during the rekey call")


@group("e2e")
@group("rekey")
class RekeyEncryptUnderTrafficTest(RekeyTest):
    """An encrypt SA UPDATE while packets flow: every packet comes out, the old SPI's sequence
    numbers run 1 … a and then the new SPI's 1 … b, with no gap and no packet lost, and the
    tunnel's counters count every packet once."""

    def runTest(self) -> None:  # noqa: N802
        outer = ("198.51.100.1", "198.51.100.2")
        old = esp_sa(SUITE, spi=9000, key_hex=key_of(SUITE, 9000), tunnel=outer)
        new = esp_sa(SUITE, spi=9001, key_hex=key_of(SUITE, 9001), tunnel=outer)
        self.create(encrypt_tunnel(53000, match={"ipv4Match": ipv4_match("172.16.50.0/24")},
                                   suite=SUITE, tunnel_type="TUNNEL", spi=9000,
                                   key=key_of(SUITE, 9000), outer=outer))
        before = self.counters(53000)
        sender = Sender(self, lambda n: udp_packet("172.16.50.1", "172.16.51.1", ident=n))
        sender.start()
        sender.wait_sent(AFTER)
        self.under_traffic(sender, lambda: self.update({
            "tunnelId": 53000, "ipsecTunnel": {"ipsecEnc": {
                "tunnelType": "TUNNEL", "encryptionType": SUITE.enc_type,
                "ipsecSA": {"spi": 9001, "encryptionKey": key_of(SUITE, 9001)}}}}))
        sender.stop_after(AFTER)

        sas = {9000: old, 9001: new}
        seen: dict[int, list[int]] = {9000: [], 9001: []}
        sent_by_id = {int(frame[IP].id): frame for frame in sender.sent}
        for _ in sender.sent:
            received = self.receive(port_of("198.51.100.0/24"))
            spi, seq = esp_spi_seq(received)
            self.assertIn(spi, sas, f"unexpected SPI {spi}")
            plain = decrypt(sas[spi], received)
            self.assertEqual(bytes(plain), bytes(sent_by_id[plain.id][IP]))
            if seen[9001]:
                self.assertEqual(spi, 9001, "the old SA was used after the new one")
            seen[spi].append(seq)
        tu.verify_no_other_packets(self)
        self.assertEqual(seen[9000], list(range(1, len(seen[9000]) + 1)))
        self.assertEqual(seen[9001], list(range(1, len(seen[9001]) + 1)))
        self.assertGreaterEqual(len(seen[9000]), AFTER)
        self.assertGreaterEqual(len(seen[9001]), AFTER)
        after = self.counters(53000)    # the counters span both SAs
        self.assertEqual(after.inPackets - before.inPackets, len(sender.sent))
        self.assertEqual(after.outPackets - before.outPackets, len(sender.sent))


@group("e2e")
@group("rekey")
class RekeyDecryptUnderTrafficTest(RekeyTest):
    """A decrypt rekey while packets flow: add the new SA, the peer switches to it, delete the
    old SA; every packet sent under either SA comes out decrypted, and after the delete the old
    SPI is dropped while the new one still works."""

    def runTest(self) -> None:  # noqa: N802
        peer = ("192.0.2.80", "192.0.2.81")     # no route: an ESP packet not decrypted drops
        keys = {9100: key_of(SUITE, 9100), 9101: key_of(SUITE, 9101)}
        sas = {spi: esp_sa(SUITE, spi=spi, key_hex=key, tunnel=peer) for spi, key in keys.items()}
        self.create(decrypt_tunnel(53100, match={"ipv4Match": ipv4_match(*peer)}, suite=SUITE,
                                   tunnel_type="TUNNEL", sas=[(9100, keys[9100])],
                                   next_action="FORWARD"))
        current = {"spi": 9100}
        seqs = {9100: 0, 9101: 0}

        def make(n: int) -> Ether:
            spi = current["spi"]
            seqs[spi] += 1
            plain = udp_packet("172.16.60.1", "172.16.61.1", ident=n)[IP]
            return esp_frame(sas[spi], plain, seq=seqs[spi])

        def rekey(sa_changes: list[dict]) -> None:
            self.update({"tunnelId": 53100, "ipsecTunnel": {"ipsecDec": {
                "tunnelType": "TUNNEL", "encryptionType": SUITE.enc_type,
                "ipsecSAs": sa_changes}}})

        sender = Sender(self, make)
        sender.start()
        sender.wait_sent(AFTER)
        self.under_traffic(sender, lambda: rekey(
            [{"spi": 9101, "encryptionKey": keys[9101], "operation": "_CREATE"}]))
        sender.wait_sent(sender.count() + AFTER)
        with sender.progress:
            current["spi"] = 9101           # the peer switches to the new SA
        sender.wait_sent(sender.count() + AFTER)
        self.under_traffic(sender, lambda: rekey([{"spi": 9100, "operation": "_DELETE"}]))
        sender.stop_after(AFTER)

        out_port = port_of("172.16.0.0/16")
        for frame in sender.sent:
            spi, _ = esp_spi_seq(bytes(frame))
            plain = sas[spi].decrypt(IP(bytes(frame[IP])))
            self.verify(routed(Ether(dst=frame.dst, src=frame.src) / plain, out_port), out_port)
        self.assertEqual(seqs[9100] + seqs[9101], len(sender.sent))
        self.assertGreaterEqual(seqs[9101], 2 * AFTER)

        # The old SA is gone: its SPI no longer decrypts; the new one still does.
        seqs[9100] += 1
        tu.send_packet(self, SEND_PORT, esp_frame(
            sas[9100], udp_packet("172.16.60.1", "172.16.61.1", ident=999)[IP],
            seq=seqs[9100]))
        current["spi"] = 9101
        last = make(1000)
        tu.send_packet(self, SEND_PORT, last)
        plain = sas[9101].decrypt(IP(bytes(last[IP])))
        self.verify(routed(Ether(dst=last.dst, src=last.src) / plain, out_port), out_port)
        tu.verify_no_other_packets(self)
