"""The controller's side of durable SAs, against the real switch and a scripted worker service.

The worker's durable state (AddSa ``resume``) is built in crypto_worker/; these tests drive the
controller's calls through a unit-level stand-in of the worker's gRPC service (real gRPC on a
Unix socket) that can forget its SAs (a restart) and refuse a resume ("no durable state") or a
fresh key ("key retired") the way worker.proto says the real one does.
"""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
from ctl_builders import ipsec_dec, ipsec_enc, match_ipv4, update_enc_sa
from ctl_client import create
from dp_support import eventually

from tunneloffload.crypto.v1 import worker_pb2 as wpb
from tunneloffload.crypto.v1 import worker_pb2_grpc as wpb_grpc
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc


class ScriptedWorker(wpb_grpc.CryptoWorkerServicer):
    """Holds SAs by index and records every AddSa as (spi, resume)."""

    def __init__(self) -> None:
        self.sas: dict[int, wpb.SaParams] = {}
        self.adds: list[tuple[int, bool]] = []
        self.durable: set[int] = set()  # SPIs the worker can resume
        self.retired_keys: set[bytes] = set()  # key || salt

    async def AddSa(self, request, context):  # noqa: N802 - gRPC method name
        self.adds.append((request.params.spi, request.resume))
        if request.resume and request.params.spi not in self.durable:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no durable state")
        if not request.resume and request.key.key + request.key.salt in self.retired_keys:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "key retired")
        if request.params.sa_index in self.sas:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, "in use")
        self.sas[request.params.sa_index] = request.params
        return wpb.AddSaResponse()

    async def RemoveSa(self, request, context):  # noqa: N802
        if self.sas.pop(request.sa_index, None) is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such SA")
        return wpb.RemoveSaResponse()

    async def ListSas(self, request, context):  # noqa: N802
        return wpb.ListSasResponse(sas=[wpb.SaInfo(params=params)
                                        for params in self.sas.values()])

    async def GetCounters(self, request, context):  # noqa: N802
        return wpb.GetCountersResponse()

    def restart(self) -> None:
        self.sas.clear()


async def _serve(socket: Path) -> tuple[grpc.aio.Server, ScriptedWorker]:
    server = grpc.aio.server()
    scripted = ScriptedWorker()
    wpb_grpc.add_CryptoWorkerServicer_to_server(scripted, server)
    server.add_insecure_port(f"unix:{socket}")
    await server.start()
    return server, scripted


async def test_worker_restart_resumes_every_sa_and_degrades_what_cannot_resume(
        start_dp_controller, workdir, caplog) -> None:
    socket = workdir / "scripted.sock"
    server, scripted = await _serve(socket)
    try:
        controller = await start_dp_controller(crypto_worker_socket=socket, worker_poll=0.05)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{controller.port}") as channel:
            v1 = pb_grpc.ipTunnelServiceStub(channel)
            answer = await create(v1, ipsec_enc(1, spi=4587), ipsec_dec(2, spi=780))
            assert answer.requestStatus == pb._TUNNEL_ACCEPTED
            assert scripted.adds == [(4587, False), (780, False)]  # new SAs: resume=false

            scripted.durable = {780}  # the decrypt SA's state survived, the encrypt one's not
            scripted.restart()
            await eventually(lambda: {p.spi for p in scripted.sas.values()} == {780})
            await eventually(lambda: (4587, True) in scripted.adds)
            polls = len(scripted.adds)
            await eventually(lambda: controller.dataplane.tunnel_states()[1] != "active")
            states = controller.dataplane.tunnel_states()
            assert states[2] == "active"
            assert states[1].startswith("degraded: encrypt SA spi 4587")
            assert "no durable state" in states[1]
            # Several polls later: never re-added fresh, not retried, logged once.
            for _ in range(10):
                await eventually(lambda: True)
                await controller.dataplane.reconcile_worker()
            assert (4587, False) not in scripted.adds[2:]
            assert len(scripted.adds) == polls
            degraded = [r for r in caplog.records if r.levelno == logging.WARNING
                        and "now degraded" in r.getMessage() and "4587" in r.getMessage()]
            assert len(degraded) == 1

            # The client rekeys: a fresh SA (resume=false), the tunnel is active again.
            answer = await create(v1, update_enc_sa(1, spi=4588))
            assert answer.requestStatus == pb._TUNNEL_ACCEPTED
            assert scripted.adds[-1] == (4588, False)
            controller.dataplane.log_states()
            assert controller.dataplane.tunnel_states()[1] == "active"

            # A key the worker holds as retired: the client's mistake, not an outage.
            key = b"5c" * 32
            scripted.retired_keys.add(bytes.fromhex(key.decode()) + bytes(4))  # zero salt
            errors_before = sum(r.levelno >= logging.ERROR for r in caplog.records)
            answer = await create(v1, ipsec_enc(3, spi=4700, key=key,
                                                match=match_ipv4(source="10.0.0.7")))
            assert answer.requestStatus == pb._TUNNEL_REJECTED, answer
            text = answer.responses[0].error.errorString
            assert text.startswith("ipsecTunnel.ipsecEnc.ipsecSA.encryptionKey: not applied:")
            assert "key retired" in text and "spi 4700" in text
            assert sum(r.levelno >= logging.ERROR for r in caplog.records) == errors_before
            assert 3 not in controller.store.tunnels
            assert {p.spi for p in scripted.sas.values()} == {780, 4588}
    finally:
        await server.stop(None)


class ListingWorker(ScriptedWorker):
    """Counts ListSas calls and runs `during_list` (if set) before answering one."""

    def __init__(self) -> None:
        super().__init__()
        self.lists = 0
        self.during_list = None

    async def ListSas(self, request, context):  # noqa: N802
        self.lists += 1
        if self.during_list is not None:
            await self.during_list()
        return await super().ListSas(request, context)


async def test_a_full_check_overtaken_by_a_change_is_not_retried_at_every_poll(
        start_dp_controller, workdir) -> None:
    """controller/worker_audit.py: a full check listed without the lock while something was
    programmed is discarded, spaced like a completed one, and the next check lists under the
    lock and completes (a stray SA planted on the worker is removed only then)."""
    socket = workdir / "listing.sock"
    server = grpc.aio.server()
    scripted = ListingWorker()
    wpb_grpc.add_CryptoWorkerServicer_to_server(scripted, server)
    server.add_insecure_port(f"unix:{socket}")
    await server.start()
    try:
        # Polls 60 s apart: only the calls below run checks (the schedule is forced due).
        controller = await start_dp_controller(crypto_worker_socket=socket, worker_poll=60.0)
        dataplane = controller.dataplane
        async with grpc.aio.insecure_channel(f"127.0.0.1:{controller.port}") as channel:
            v1 = pb_grpc.ipTunnelServiceStub(channel)
            assert (await create(v1, ipsec_dec(1, spi=780))).requestStatus == \
                pb._TUNNEL_ACCEPTED
            stray = wpb.SaParams(sa_index=999, spi=999)
            scripted.sas[999] = stray

            async def program_meanwhile() -> None:
                scripted.during_list = None
                answer = await create(v1, ipsec_dec(2, spi=781,
                                                    match=match_ipv4(source="10.0.0.9")))
                assert answer.requestStatus == pb._TUNNEL_ACCEPTED

            scripted.during_list = program_meanwhile
            lists = scripted.lists
            dataplane._audit._next = 0.0  # due now
            await dataplane.reconcile_worker()
            assert scripted.lists == lists + 1
            assert 999 in scripted.sas  # discarded: the list predates tunnel 2
            assert dataplane._audit.under_lock and not dataplane._audit.due()
            for _ in range(3):  # probes only: the worker holds the wanted SAs
                await dataplane.reconcile_worker()
            assert scripted.lists == lists + 1

            dataplane._audit._next = 0.0
            await dataplane.reconcile_worker()
            assert scripted.lists == lists + 2
            assert 999 not in scripted.sas
            assert {p.spi for p in scripted.sas.values()} == {780, 781}
            assert not dataplane._audit.under_lock
    finally:
        await server.stop(None)
