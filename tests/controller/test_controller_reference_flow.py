"""The reference client's flows (att/sessionOffload tests/basicIPT, v1alpha1 era) over TLS:
first replayed with our own builders that encode exactly as that client does, then — when a
copy of the client is available — by running the unmodified client itself against our server.

Run just this file: .venv/bin/python -m pytest tests/controller/test_controller_reference_flow.py -q
Set REFERENCE_CLIENT_GIT to a clone of att/sessionOffload to run the real client (default: the
local mirror /work/.mirror/att+sessionOffload/repo when present; otherwise that test skips).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ctl_builders import (
    geneve_decap,
    geneve_encap,
    hex_key,
    ipsec_dec,
    ipsec_enc,
    match_ipv4,
    update_dec_sas,
    update_enc_sa,
)
from ctl_client import create

from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE_COMMIT = "6f991f5"  # "Done changing the rekey mechanism and added action"


async def test_rekey_flow_replayed(v1) -> None:
    caps = await v1.Capabilities(pb.CapabilityRequest())
    assert caps.ipsecCapabilities.encryptionSupported

    # IPsec decrypt (NAT-T transport) → Geneve encap chained from it; Geneve decap → IPsec
    # encrypt (NAT-T tunnel) chained from it; match IPs written into sourceIp as the client does.
    first_key, second_key = hex_key(), hex_key()
    stream = [
        ipsec_dec(10000, spi=780, key=first_key, mode=pb.TRANSPORT_NAT_TRAVERSAL,
                  match=match_ipv4(source="11.0.0.2")),
        geneve_encap(10001, match=match_ipv4(tunnel_id=10000), vni=500,
                     outer=("5.5.5.5", "6.6.6.6")),
        geneve_decap(10002, match=match_ipv4(source="11.0.0.2", geneve_vni=500)),
        ipsec_enc(10003, spi=4587, mode=pb.TUNNEL_NAT_TRAVERSAL, outer=("11.0.0.2", "11.0.0.1"),
                  match=match_ipv4(tunnel_id=10002)),
    ]
    created = await create(v1, *stream)
    assert (created.requestStatus, created.errorStatus) == (pb._TUNNEL_ACCEPTED, 0)
    assert [item.tunnelId for item in created.responses] == [10000, 10001, 10002, 10003]

    # Encrypt rekey: UPDATE with only the new SA (tunnelType/encryptionType left at 0).
    updated = await create(v1, update_enc_sa(10003, spi=4590))
    assert (updated.requestStatus, updated.errorStatus) == (pb._TUNNEL_ACCEPTED, 0)

    # Decrypt rekey: add the new SA beside the old.
    added = await create(v1, update_dec_sas(10000, (1030, pb._CREATE, second_key)))
    assert added.requestStatus == pb._TUNNEL_ACCEPTED

    stats = await v1.getIpTunnelStats(pb.tunnelId(tunnelId=10000))
    assert stats.tunnelId == 10000 and stats.HasField("tunnelCounters")
    tunnel = await v1.getIpTunnel(pb.tunnelId(tunnelId=10000))
    assert [sa.spi for sa in tunnel.ipTunnel.ipsecTunnel.ipsecDec.ipsecSAs] == [780, 1030]
    assert all(not sa.encryptionKey for sa in tunnel.ipTunnel.ipsecTunnel.ipsecDec.ipsecSAs)

    removed = await create(v1, update_dec_sas(10000, (780, pb._DELETE, b"")))
    assert removed.requestStatus == pb._TUNNEL_ACCEPTED
    tunnel = await v1.getIpTunnel(pb.tunnelId(tunnelId=10000))
    assert [sa.spi for sa in tunnel.ipTunnel.ipsecTunnel.ipsecDec.ipsecSAs] == [1030]
    enc = (await v1.getIpTunnel(pb.tunnelId(tunnelId=10003))).ipTunnel.ipsecTunnel.ipsecEnc
    assert (enc.ipsecSA.spi, enc.tunnelType) == (4590, pb.TUNNEL_NAT_TRAVERSAL)

    pages = [page async for page in v1.getAllIpTunnelsStats(
        pb.tunnelRequestArgs(tunnelsPerRequest=2))]
    assert [[item.tunnelId for item in page.responses] for page in pages] == [
        [10000, 10001], [10002, 10003]]


async def test_other_reference_flows_replayed(v1) -> None:
    # four_tunnel_chain: its Geneve decap (20001) matches only the previous tunnel, so it is
    # refused (decap needs a Geneve match); 20002 and 20003 then chain from missing tunnels.
    chain = await create(
        v1,
        ipsec_dec(20000, spi=980, mode=pb.TUNNEL, match=match_ipv4(source="12.0.0.2")),
        geneve_decap(20001, match=match_ipv4(tunnel_id=20000)),
        geneve_encap(20002, match=match_ipv4(tunnel_id=20001), vni=700,
                     outer=("7.7.7.7", "8.8.8.8"), next_action=pb.RECIRCULATE),
        ipsec_enc(20003, spi=45888, mode=pb.TRANSPORT, outer=("13.0.0.2", "13.0.0.1"),
                  match=match_ipv4(spi=920, tunnel_id=20002)),
    )
    assert chain.requestStatus == pb._TUNNEL_REJECTED
    assert chain.errorStatus == 0b1110
    assert "match_criteria.geneveMatch" in chain.responses[1].error.errorString
    assert "20001 does not exist" in chain.responses[2].error.errorString

    # tunnel_recursion_without_tunnel_id and tunnel_recursion_with_tunnel_id_and_ip: accepted.
    recursion = await create(
        v1,
        ipsec_enc(30000, spi=50000, mode=pb.TUNNEL, outer=("14.0.0.2", "14.0.0.1"),
                  match=match_ipv4(source="3.3.3.3"), next_action=pb.RECIRCULATE),
        geneve_encap(30001, match=match_ipv4(source="14.0.0.1"), vni=701,
                     outer=("9.9.9.9", "10.10.10.10"), next_action=pb.RECIRCULATE),
    )
    assert (recursion.requestStatus, recursion.errorStatus) == (pb._TUNNEL_ACCEPTED, 0)
    with_ip = await create(
        v1,
        ipsec_dec(40000, spi=80000, mode=pb.TUNNEL_NAT_TRAVERSAL,
                  match=match_ipv4(source="3.3.3.3")),
        geneve_encap(40001, match=match_ipv4(tunnel_id=40000, source="15.0.0.1"), vni=701,
                     outer=("9.9.9.9", "10.10.10.10"), next_action=pb.RECIRCULATE),
        geneve_encap(40002, match=match_ipv4(tunnel_id=40000, source="16.0.0.1"), vni=702,
                     outer=("11.11.11.11", "12.12.12.12"), next_action=pb.RECIRCULATE),
    )
    assert (with_ip.requestStatus, with_ip.errorStatus) == (pb._TUNNEL_ACCEPTED, 0)


def _reference_git() -> Path | None:
    configured = os.environ.get("REFERENCE_CLIENT_GIT", "/work/.mirror/att+sessionOffload/repo")
    path = Path(configured)
    return path if path.exists() and shutil.which("git") else None


# Runs the client's own run() unmodified; only the dial target is redirected from the
# hard-coded localhost:3443 to the test server's port.
_HARNESS = """
import sys, grpc
port = sys.argv[1]
_secure_channel = grpc.secure_channel
def secure_channel(target, *args, **kwargs):
    assert target == "localhost:3443", target
    return _secure_channel("localhost:" + port, *args, **kwargs)
grpc.secure_channel = secure_channel
import tunnels_client
tunnels_client.run()
print("REFERENCE CLIENT DONE")
"""


async def test_unmodified_reference_client(controller, tmp_path: Path) -> None:
    git_dir = _reference_git()
    if git_dir is None:
        pytest.skip("no copy of att/sessionOffload (set REFERENCE_CLIENT_GIT)")
    workdir = tmp_path / "client"
    (workdir / "ssl").mkdir(parents=True)
    for name in ("tunnels_client.py", "tunnels_helper.py"):
        source = subprocess.run(
            ["git", f"--git-dir={git_dir}", "show", f"{REFERENCE_COMMIT}:tests/basicIPT/{name}"],
            check=True, capture_output=True).stdout
        (workdir / name).write_bytes(source)
    assert controller.cert_path is not None
    shutil.copy(controller.cert_path, workdir / "ssl" / "server.crt")
    # Stubs generated from *our* v1alpha1 proto, under the module names the client imports.
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc",
                    f"-I{REPO_ROOT / 'proto' / 'tunneloffload' / 'v1alpha1'}",
                    f"--python_out={workdir}", f"--grpc_python_out={workdir}",
                    "tunneloffload.proto"], check=True)
    (workdir / "harness.py").write_text(_HARNESS)

    process = await asyncio.create_subprocess_exec(
        sys.executable, "harness.py", str(controller.port), cwd=workdir,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    output = stdout.decode()
    assert process.returncode == 0, stderr.decode()
    assert "REFERENCE CLIENT DONE" in output
    assert "numberGeneveOptionsSupported: 4" in output
    tunnels = controller.store.tunnels
    assert {10000, 10001, 10002, 10003, 20000, 30000, 30001, 40000, 40001, 40002} == set(tunnels)
    assert [sa.spi for sa in tunnels[10000].security_associations] == [1030]
    assert [sa.spi for sa in tunnels[10003].security_associations] == [4590]
