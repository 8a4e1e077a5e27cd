"""PTF end to end through `tunneloffload.v2` (the OPI successor served on the same port): a
tunnel created, read and deleted with the v2 methods carries real traffic exactly as one created
through v1alpha1.

Run just these: ptf_tests/e2e/run.sh e2e_api_v2
"""

from __future__ import annotations

import ptf.testutils as tu
from e2e_base import RPC_TIMEOUT, E2eTest, api_channel, requests_of
from e2e_packets import SUITES, decrypt, esp_sa, expected_esp, routed, udp_packet
from e2e_topology import SEND_PORT, port_of
from e2e_tunnels import encrypt as encrypt_tunnel
from e2e_tunnels import ipv4_match, key_of
from ptf.testutils import group
from scapy.layers.inet import IP

from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v2 import tunneloffload_pb2 as v2
from tunneloffload.v2 import tunneloffload_pb2_grpc as v2_grpc


def as_v2(request: pb.ipTunnelRequest) -> v2.IpTunnelRequest:
    """The same request as a v2 message: the two versions share field numbers and types
    (docs/api.md), so the bytes are the same."""
    return v2.IpTunnelRequest.FromString(request.SerializeToString())


@group("e2e")
@group("api-v2")
class ApiV2EncryptTunnelTest(E2eTest):
    """An encrypt tunnel created with v2 CreateIpTunnel encrypts a packet scapy decrypts, v2
    GetIpTunnelStats counts it in and out, and after a v2 DELETE the packet is no longer
    encrypted (it is routed as it is)."""

    def runTest(self) -> None:  # noqa: N802
        stub = v2_grpc.IpTunnelServiceStub(api_channel())
        suite = SUITES["_aes256gcm128"]
        key, outer = key_of(suite, 7400), ("198.51.100.1", "198.51.100.2")
        create = requests_of([encrypt_tunnel(
            57000, match={"ipv4Match": ipv4_match("172.16.46.1")}, suite=suite,
            tunnel_type="TUNNEL", spi=7400, key=key, outer=outer)], pb._CREATE)
        reply = stub.CreateIpTunnel(iter([as_v2(r) for r in create]), timeout=RPC_TIMEOUT)
        self.assertEqual(reply.request_status, v2._TUNNEL_ACCEPTED, reply)
        self._created.append(57000)
        before = stub.GetIpTunnelStats(v2.TunnelId(tunnel_id=57000), timeout=RPC_TIMEOUT)

        sent = udp_packet("172.16.46.1", "198.51.100.20")
        sa = esp_sa(suite, spi=7400, key_hex=key, tunnel=outer)
        out_port = port_of("198.51.100.0/24")
        tu.send_packet(self, SEND_PORT, sent)
        received = self.receive(out_port)
        self.assertEqual(bytes(decrypt(sa, received)), bytes(sent[IP]))
        self.assertEqual(received, bytes(expected_esp(sa, sent[IP], seq=1, port=out_port)))

        after = stub.GetIpTunnelStats(v2.TunnelId(tunnel_id=57000), timeout=RPC_TIMEOUT)
        self.assertEqual(after.tunnel_counters.in_packets - before.tunnel_counters.in_packets, 1)
        self.assertEqual(after.tunnel_counters.out_packets - before.tunnel_counters.out_packets,
                         1)

        delete = v2.IpTunnelRequest(operation=v2._DELETE, tunnel_id=57000)
        reply = stub.CreateIpTunnel(iter([delete]), timeout=RPC_TIMEOUT)
        self.assertEqual(reply.request_status, v2._TUNNEL_ACCEPTED, reply)
        self._created.remove(57000)
        tu.send_packet(self, SEND_PORT, sent)
        self.verify(routed(sent, out_port), out_port)
        tu.verify_no_other_packets(self)

