"""PTF: the crypto port. PTF plays the crypto worker on port 64: frames sent to it must carry
the contract's shim, and frames it returns must continue as the shim's next action says.

Run just these: ptf_tests/dataplane/run.sh dp_crypto_port
"""

from __future__ import annotations

import ptf.testutils as tu
from p4_constants import C
from ptf.testutils import group
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from tunnel_base import TunnelOffloadTest
from tunnel_packets import GENEVE, CryptoShim
from tunnel_scenarios import (
    NEXT_HOP_MAC,
    ROUTER_MAC,
    SPI_IN,
    encap_params,
    encrypt_tunnel_params,
    esp_in,
    expected_encrypt_tunnel,
    inner_tcp,
    routed,
    worker_decrypt_return_tunnel,
    worker_encrypt_return,
)

IN_PORT = 1
DECRYPT_TUNNEL = 21


class CryptoBase(TunnelOffloadTest):
    def crypto_port(self) -> int:
        return C("CRYPTO_PORT")

    def receive_one(self, port: int) -> bytes:
        result = tu.dp_poll(self, port_number=port, timeout=2)
        self.assertIsInstance(result, self.dataplane.PollSuccess)
        return bytes(result.packet)

    def add_encrypt(self, *, next_action: str = "NEXT_ACTION_FORWARD") -> None:
        self.add_entry("tunnel_rules", "ipsec_encrypt_tunnel_v4", priority=3,
                       match={"ingress_port": IN_PORT},
                       params=encrypt_tunnel_params(next_action=next_action))

    def add_decrypt(self) -> None:
        self.add_entry("tunnel_rules", "ipsec_decrypt", priority=4,
                       match={"tunnel_header": C("TUNNEL_HEADER_ESP"), "esp_spi": SPI_IN},
                       params={"tunnel_index": DECRYPT_TUNNEL,
                               "next_action": C("NEXT_ACTION_FORWARD"), "tunnel_mode": 1})
        self.add_entry("decrypt_sas", "set_decrypt_sa",
                       match={"tunnel_index": DECRYPT_TUNNEL, "spi": SPI_IN},
                       params={"sa_index": 44})


@group("dataplane")
@group("crypto")
class CryptoEncryptShimTest(CryptoBase):
    """An encrypt rule sends shim | Ether | outer IPv4 | ESP(SPI, seq 0) | inner packet to the
    crypto port, and nowhere else."""

    def runTest(self) -> None:  # noqa: N802
        self.add_encrypt()
        sent = inner_tcp()
        tu.send_packet(self, IN_PORT, sent)
        tu.verify_packet(self, expected_encrypt_tunnel(sent, ingress_port=IN_PORT),
                         self.crypto_port())
        tu.verify_no_other_packets(self)


@group("dataplane")
@group("crypto")
class CryptoEncryptReturnTest(CryptoBase):
    """The worker's encrypted frame is counted out for the tunnel, loses its shim and is routed
    on the outer destination."""

    def runTest(self) -> None:  # noqa: N802
        self.add_encrypt()
        self.add_route("203.0.113.0/24", port=6, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
        tu.send_packet(self, IN_PORT, inner_tcp())
        returned = worker_encrypt_return(self.receive_one(self.crypto_port()))
        out_before = self.counter("tunnel_out", 20)[0]
        tu.send_packet(self, self.crypto_port(), returned)
        tu.verify_packet(self, routed(Ether(returned[16:])), 6)
        tu.verify_no_other_packets(self)
        self.assertEqual(self.counter("tunnel_out", 20)[0] - out_before, 1)


@group("dataplane")
@group("crypto")
class CryptoReturnRecirculateTest(CryptoBase):
    """A RECIRCULATE encrypt rule: the returned ESP packet is matched again by the rule chained
    on its tunnel index and first ingress port, here a Geneve encap."""

    def runTest(self) -> None:  # noqa: N802
        self.add_encrypt(next_action="NEXT_ACTION_RECIRCULATE")
        self.add_entry("tunnel_rules", "encap_geneve_v4", priority=10,
                       match={"prev_tunnel": 20, "ingress_port": IN_PORT},
                       params=encap_params(tunnel=23, options=[], vni=23))
        self.add_route("192.0.2.0/24", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
        tu.send_packet(self, IN_PORT, inner_tcp())
        to_worker = self.receive_one(self.crypto_port())
        self.assertEqual(CryptoShim(to_worker[:16]).next_action, C("NEXT_ACTION_RECIRCULATE"))
        tu.send_packet(self, self.crypto_port(), worker_encrypt_return(to_worker))
        geneve = Ether(self.receive_one(2))[GENEVE]
        tu.verify_no_other_packets(self)
        self.assertEqual(geneve.vni, 23)
        self.assertEqual(Ether(bytes(geneve.payload))[IP].proto, 50)


@group("dataplane")
@group("crypto")
class CryptoDecryptShimTest(CryptoBase):
    """An ESP-in-UDP packet whose SPI is one of the tunnel's SAs goes to the worker unchanged
    behind a DECRYPT shim with the SA index from decrypt_sas."""

    def runTest(self) -> None:  # noqa: N802
        self.add_decrypt()
        sent = esp_in(nat_t=True)
        expected = CryptoShim(op=C("CRYPTO_OP_DECRYPT"),
                              flags=C("CRYPTO_FLAG_TUNNEL_MODE") | C("CRYPTO_FLAG_NAT_T"),
                              next_action=1, sa_index=44, tunnel_index=DECRYPT_TUNNEL, pass_=1,
                              next_header=0, l3_offset=14, esp_offset=42,
                              ingress_port=IN_PORT) / sent
        tu.send_packet(self, IN_PORT, sent)
        tu.verify_packet(self, expected, self.crypto_port())
        tu.verify_no_other_packets(self)


@group("dataplane")
@group("crypto")
class CryptoDecryptReturnTest(CryptoBase):
    """The worker's tunnel-mode plaintext loses outer IP, UDP, ESP and shim and the inner
    packet is routed."""

    def runTest(self) -> None:  # noqa: N802
        self.add_decrypt()
        self.add_route("10.0.0.0/8", port=5, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
        tu.send_packet(self, IN_PORT, esp_in(nat_t=True))
        to_worker = self.receive_one(self.crypto_port())
        plain = IP(src="10.9.0.1", dst="10.0.0.1", id=77) / TCP(sport=443, dport=4000) / Raw(b"hi")
        tu.send_packet(self, self.crypto_port(), worker_decrypt_return_tunnel(to_worker, plain))
        tu.verify_packet(self, Ether(dst=NEXT_HOP_MAC, src=ROUTER_MAC) / plain, 5)
        tu.verify_no_other_packets(self)


@group("dataplane")
@group("crypto")
class CryptoSaMissDropTest(CryptoBase):
    """ESP with an SPI that is not one of the matched tunnel's SAs is dropped and counted."""

    def runTest(self) -> None:  # noqa: N802
        self.add_decrypt()
        self.add_entry("tunnel_rules", "ipsec_decrypt", priority=2,
                       match={"tunnel_header": C("TUNNEL_HEADER_ESP")},
                       params={"tunnel_index": DECRYPT_TUNNEL, "next_action": 1,
                               "tunnel_mode": 1})
        before = self.counter("tunnel_drop_in", DECRYPT_TUNNEL)[0]
        tu.send_packet(self, IN_PORT, esp_in(spi=0x9999))
        after = self.counter_after("tunnel_drop_in", DECRYPT_TUNNEL, packets=before + 1)
        tu.verify_no_other_packets(self)
        self.assertEqual(after[0] - before, 1)
