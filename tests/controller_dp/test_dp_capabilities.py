"""Capabilities over the API come from the P4Info and the worker; strays on the worker go."""

from __future__ import annotations

import grpc
from ctl_builders import ipsec_enc
from ctl_client import create
from dp_support import eventually, plant_sa, worker_sas

from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc


async def test_capabilities_report_the_pipeline_and_the_worker(v1) -> None:
    caps = await v1.Capabilities(pb.CapabilityRequest(), timeout=5)
    assert caps.geneveCapabilities.numberGeneveOptionsSupported == 4
    assert sorted(caps.ipsecCapabilities.encryptionSupported) == list(range(12))
    assert sorted(caps.ipsecCapabilities.tunnelTypeSupported) == [0, 1, 2, 3]


async def test_without_a_worker_no_ipsec_is_offered_or_accepted(start_dp_controller,
                                                                reader) -> None:
    controller = await start_dp_controller(crypto_worker_socket=None)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{controller.port}") as channel:
        v1 = pb_grpc.ipTunnelServiceStub(channel)
        caps = await v1.Capabilities(pb.CapabilityRequest(), timeout=5)
        assert list(caps.ipsecCapabilities.encryptionSupported) == []
        answer = await create(v1, ipsec_enc(1))
        assert answer.requestStatus == pb._TUNNEL_REJECTED
        error = answer.responses[0].error
        assert error.errorMessage.ipsecError == pb.nonSupportedTunnelType
        assert error.errorString == ("ipsecTunnel.ipsecEnc.tunnelType: TUNNEL_NAT_TRAVERSAL is "
                                     "not supported by this device (see Capabilities)")
    assert reader.entries("tunnel_rules") == []


async def test_a_stray_sa_on_the_worker_is_removed(controller, v1, worker) -> None:
    await create(v1, ipsec_enc(1, spi=4587))
    plant_sa(worker.socket, 50, 7777)
    await eventually(lambda: set(worker_sas(worker.socket)) == {1})
    assert worker_sas(worker.socket)[1].spi == 4587
