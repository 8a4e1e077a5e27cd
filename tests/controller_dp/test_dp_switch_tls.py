"""The switch channel is closed to every process without the controller's certificate: p4sim
serves P4Runtime with mutual TLS (simple_switch_grpc's --grpc-server-ssl
--grpc-server-with-client-auth), the controller connects with its client certificate and
programs tunnels; with a wrong CA or no certificate it says exactly why, once, and stays
NOT_SERVING.

Run: .venv/bin/python -m pytest tests/controller_dp/test_dp_switch_tls.py -q
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from ctl_builders import ipsec_enc
from ctl_client import create
from dp_support import P4INFO, REPO, SwitchProcess, eventually, health, worker_sas
from finsy.proto import p4r, p4r_grpc
from grpc_health.v1 import health_pb2

from controller.counter_poller import CounterArrayReader, CounterReadFailed
from controller.pipeline import Pipeline
from controller.switch_pki import SwitchPki, ensure_switch_pki
from controller.tls import SwitchChannelTls
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc

CONNECTION_LOG = "controller.p4rt.connection"


@pytest.fixture
def pki(workdir: Path) -> SwitchPki:
    return ensure_switch_pki(workdir / "switch-tls")


@pytest.fixture
def other_pki(workdir: Path) -> SwitchPki:
    """A second, unrelated CA with its own switch and controller certificates."""
    return ensure_switch_pki(workdir / "other-tls")


@pytest.fixture
def switch(workdir: Path, pki: SwitchPki) -> Iterator[SwitchProcess]:
    """p4sim with mutual TLS (overrides conftest's plaintext switch for this module)."""
    process = SwitchProcess(workdir, tls=pki)
    process.start()
    yield process
    process.kill()


def credentials(ca: Path, cert: Path | None = None, key: Path | None = None
                ) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None)


def become_primary(address: str, creds: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    """Open a StreamChannel and ask for primary with election id 1000 (what an intruder does);
    OK when the switch answers the arbitration, else the status the RPC failed with."""
    channel = (grpc.insecure_channel(address) if creds is None
               else grpc.secure_channel(address, creds))
    with channel:
        stub = p4r_grpc.P4RuntimeStub(channel)
        request = p4r.StreamMessageRequest(arbitration=p4r.MasterArbitrationUpdate(
            device_id=1, election_id=p4r.Uint128(high=0, low=1000)))
        try:
            for response in stub.StreamChannel(iter([request]), timeout=5):
                assert response.WhichOneof("update") == "arbitration"
                return grpc.StatusCode.OK
        except grpc.RpcError as error:
            return error.code()
    raise AssertionError("the stream ended without an answer")


def test_switch_refuses_clients_without_a_certificate(switch: SwitchProcess,
                                                      pki: SwitchPki) -> None:
    assert become_primary(switch.address, None) == grpc.StatusCode.UNAVAILABLE
    assert become_primary(switch.address, credentials(pki.ca_cert)) == \
        grpc.StatusCode.UNAVAILABLE
    # The same request with the controller's certificate is answered: the refusals above were
    # the certificate check, not a broken server.
    assert become_primary(switch.address, credentials(
        pki.ca_cert, pki.controller_cert, pki.controller_key)) == grpc.StatusCode.OK


def test_switch_refuses_a_certificate_of_another_ca(switch: SwitchProcess, pki: SwitchPki,
                                                    other_pki: SwitchPki) -> None:
    intruder = credentials(pki.ca_cert, other_pki.controller_cert, other_pki.controller_key)
    assert become_primary(switch.address, intruder) == grpc.StatusCode.UNAVAILABLE
    # Nor does the switch's own certificate of the other CA pass as a client certificate.
    server_cert = credentials(pki.ca_cert, other_pki.switch_cert, other_pki.switch_key)
    assert become_primary(switch.address, server_cert) == grpc.StatusCode.UNAVAILABLE
    # A read (no arbitration needed) is refused too.
    with grpc.secure_channel(switch.address, intruder) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            list(p4r_grpc.P4RuntimeStub(channel).Read(
                p4r.ReadRequest(device_id=1, entities=[p4r.Entity(
                    table_entry=p4r.TableEntry())]), timeout=5))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_controller_with_its_certificate_programs_a_tunnel(start_dp_controller, pki,
                                                                 reader, worker) -> None:
    controller = await start_dp_controller(switch_ca=pki.ca_cert, switch_cert=pki.controller_cert,
                                           switch_key=pki.controller_key)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{controller.port}") as channel:
        answer = await create(pb_grpc.ipTunnelServiceStub(channel), ipsec_enc(21, spi=4587))
        stats = await pb_grpc.ipTunnelServiceStub(channel).getIpTunnelStats(
            pb.tunnelId(tunnelId=21), timeout=10)
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    assert stats.HasField("tunnelCounters") and stats.tunnelCounters.inPackets == 0, stats
    # Read back over the same mutual-TLS channel: the rule is on the switch, the SA on the worker.
    [rule] = reader.entries("tunnel_rules")
    assert rule.action.name == "ipsec_encrypt_tunnel_v4"
    assert rule.action.args["spi"] == 4587
    assert [sa.spi for sa in worker_sas(worker.socket).values()] == [4587]


@pytest.mark.parametrize("case", ["wrong-ca", "no-client-cert", "other-client-cert",
                                  "plaintext"])
async def test_controller_with_wrong_tls_says_why_once_and_is_not_serving(
        case, start_dp_controller, pki, other_pki, switch, caplog, capfd) -> None:
    caplog.set_level(logging.DEBUG, logger=CONNECTION_LOG)
    tls = {
        "wrong-ca": {"switch_ca": other_pki.ca_cert, "switch_cert": pki.controller_cert,
                     "switch_key": pki.controller_key},
        "no-client-cert": {"switch_ca": pki.ca_cert},
        "other-client-cert": {"switch_ca": pki.ca_cert,
                              "switch_cert": other_pki.controller_cert,
                              "switch_key": other_pki.controller_key},
        "plaintext": {},
    }[case]
    expected = {
        "wrong-ca": f"TLS handshake failed: the switch's certificate does not verify against "
                    f"--switch-ca {other_pki.ca_cert} (unable to get local issuer certificate)",
        "no-client-cert": "the switch closed the connection during the TLS handshake: it "
                          "requires a client certificate; give --switch-cert and --switch-key",
        "other-client-cert": f"it refused the client certificate --switch-cert "
                             f"{other_pki.controller_cert}",
        "plaintext": "it likely requires TLS; give --switch-ca",
    }[case]
    controller = await start_dp_controller(wait=False, **tls)

    def retried() -> bool:  # the ERROR line, then at least one more attempt
        still = [r for r in caplog.records
                 if r.name == CONNECTION_LOG and "still" in r.getMessage()]
        return len(still) >= 1

    await eventually(retried, timeout=20)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert expected in errors[0] and switch.address in errors[0], errors[0]
    assert await health(controller.port) == health_pb2.HealthCheckResponse.NOT_SERVING
    # No private key, not even a line of one, in the controller's log or the process's output
    # (gRPC's own C-core messages included).
    output = caplog.text + "".join(capfd.readouterr())
    for key in (pki.controller_key, other_pki.controller_key, pki.switch_key):
        body = [line for line in key.read_text().splitlines() if "PRIVATE KEY" not in line]
        assert body and not any(line in output for line in body)


async def test_controller_process_with_a_wrong_ca_prints_one_line(workdir, pki, other_pki,
                                                                   switch, worker) -> None:
    """The `tunnel-offload-controller` process as an operator runs it: its whole stderr holds
    one ERROR line for the refused handshake (gRPC's own per-attempt lines are silenced), and
    its health says NOT_SERVING."""
    log = workdir / "controller.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "controller", "--listen", "127.0.0.1:0", "--insecure",
             "--state-dir", str(workdir / "state"), "--switch-addr", switch.address,
             "--switch-ca", str(other_pki.ca_cert), "--switch-cert", str(pki.controller_cert),
             "--switch-key", str(pki.controller_key),
             "--crypto-worker-socket", str(worker.socket)],
            cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)
    try:
        def port() -> int | None:
            found = re.search(r"serving PLAINTEXT \(--insecure\) on 127\.0\.0\.1:(\d+)",
                              log.read_text())
            return int(found.group(1)) if found else None

        api_port = await eventually(port, timeout=30)
        await eventually(lambda: "ERROR" in log.read_text(), timeout=30)
        first_error = time.monotonic()
        assert await health(api_port) == health_pb2.HealthCheckResponse.NOT_SERVING
        # Several more attempts (0.1 s doubling): still the one line.
        await asyncio.sleep(max(0.0, 2.0 - (time.monotonic() - first_error)))
        text = log.read_text()
    finally:
        process.terminate()
        process.wait(timeout=15)
    errors = [line for line in text.splitlines() if " ERROR " in line]
    assert len(errors) == 1, text
    assert errors[0].endswith(
        f"ERROR controller.p4rt.connection: P4Runtime channel to {switch.address}: TLS handshake "
        f"failed: the switch's certificate does not verify against --switch-ca "
        f"{other_pki.ca_cert} (unable to get local issuer certificate) (retrying every 5 s at "
        "most)"), errors[0]
    assert "Handshake failed" not in text and "PRIVATE KEY" not in text


async def test_switch_restart_under_tls_reconnects_without_a_tls_error(
        start_dp_controller, pki, switch, reader, caplog) -> None:
    """A switch that dies and comes back is an outage, not a certificate problem: the
    controller reconnects with its certificate and re-installs the rule, and no ERROR line
    blames TLS meanwhile."""
    controller = await start_dp_controller(switch_ca=pki.ca_cert, switch_cert=pki.controller_cert,
                                           switch_key=pki.controller_key)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{controller.port}") as channel:
        answer = await create(pb_grpc.ipTunnelServiceStub(channel), ipsec_enc(21, spi=4587))
        stats = await pb_grpc.ipTunnelServiceStub(channel).getIpTunnelStats(
            pb.tunnelId(tunnelId=21), timeout=10)
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    assert stats.HasField("tunnelCounters") and stats.tunnelCounters.inPackets == 0, stats
    before = reader.snapshot()
    switch.kill()
    await eventually(lambda: _status_is(controller.port, NOT_SERVING))
    switch.start()  # same port and certificates, empty tables
    await eventually(lambda: _status_is(controller.port, SERVING), timeout=30)
    assert reader.snapshot() == before
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVING = health_pb2.HealthCheckResponse.SERVING


async def _status_is(port: int, status: int) -> bool:
    return await health(port) == status


async def test_bulk_counter_reads_use_the_switch_channel_tls(switch: SwitchProcess,
                                                             pki: SwitchPki) -> None:
    """The bulk counter reader (many-tunnel stats, the metrics scrape) opens a channel of its own:
    with the controller's TLS files it reads every cell; plaintext is refused by the switch."""
    arrays = Pipeline.load(P4INFO).tunnel_counter_arrays()
    tls = SwitchChannelTls(ca=pki.ca_cert, cert=pki.controller_cert, key=pki.controller_key)
    reader = CounterArrayReader(address=switch.address, device_id=1, counters=arrays, tls=tls)
    try:
        snapshot = await reader.read()
    finally:
        await reader.close()
    assert {name: len(cells) for name, cells in snapshot.packets.items()} == {
        name: size for name, (_, size) in arrays.items()}
    plaintext = CounterArrayReader(address=switch.address, device_id=1, counters=arrays,
                                   timeout=5)
    try:
        with pytest.raises(CounterReadFailed, match="UNAVAILABLE"):
            await plaintext.read()
    finally:
        await plaintext.close()
