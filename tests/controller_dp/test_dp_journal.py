"""kill -9 of the controller in the middle of applying a long createIpTunnel stream (real p4sim,
crypto worker and controller processes). The client gets no answer for any request of that
stream; after the controller is started again on the same state dir:

- every request of the stream is either fully applied (store, switch and worker all show it) or
  not at all (none of them does);
- the switch (P4Runtime read), the worker (ListSas) and the store (the API and the store's own
  rows) read back equal: no stray rule, SA or index, nothing missing;
- the journal is empty, and the start-up log names exactly the requests that were applied but
  never acknowledged, and those of the interrupted batch that did not happen.

The service commits a stream BATCH requests per store transaction (controller/service.py); the
data plane programs each such batch in smaller batches of its own (a data-plane batch ends
before a second change of a tunnel it holds: the stream here deletes tunnels it created, so
it is several). What survives a kill is the stream's committed service batches, a prefix, plus
the DELETEs of tunnels that existed before the stream in the batch the kill interrupted: their
SAs may already have left the worker, so they are finished at start-up
(controller/journal_recovery.py), never undone; the rest of that batch did not happen.

Run just this file: .venv/bin/python -m pytest tests/controller_dp/test_dp_journal.py -q
(DP_JOURNAL_SEED=n repeats a run; DP_JOURNAL_ROUNDS sets how many kills, default 3).
"""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from ctl_builders import (
    delete,
    geneve_encap,
    hex_key,
    ipsec_dec,
    ipsec_enc,
    match_ipv4,
    update_dec_sas,
    update_enc_sa,
)
from dp_support import ControllerProcess, SwitchProcess, SwitchReader, WorkerProcess, worker_sas

from controller.service import BATCH
from tunneloffload.crypto.v1 import worker_pb2_grpc as wpb_grpc
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc

ROUNDS = int(os.environ.get("DP_JOURNAL_ROUNDS", "3"))
STREAM = 48  # requests per killed stream
BASE = 8  # tunnels created (and answered) before each round: the stream rekeys and deletes some


@pytest.fixture
def journal_controller(workdir: Path, switch: SwitchProcess, worker: WorkerProcess,
                       routes_file: Path) -> Iterator[ControllerProcess]:
    process = ControllerProcess(workdir, switch, worker, routes_file)
    process.start()
    process.wait_serving()
    yield process
    process.stop()


def _stub(controller: ControllerProcess) -> tuple[grpc.Channel, pb_grpc.ipTunnelServiceStub]:
    channel = grpc.insecure_channel(f"127.0.0.1:{controller.port}")
    return channel, pb_grpc.ipTunnelServiceStub(channel)


def _tunnels(controller: ControllerProcess) -> dict[int, pb.ipTunnelResponse]:
    channel, stub = _stub(controller)
    with channel:
        pages = list(stub.getAllIpTunnels(pb.tunnelRequestArgs(), timeout=10))
    return {item.tunnelId: item for page in pages for item in page.responses}


def _spis(item: pb.ipTunnelResponse) -> list[int]:
    tunnel = item.ipTunnel.ipsecTunnel
    if tunnel.HasField("ipsecEnc"):
        return [tunnel.ipsecEnc.ipsecSA.spi]
    if tunnel.HasField("ipsecDec"):
        return sorted(sa.spi for sa in tunnel.ipsecDec.ipsecSAs)
    return []


def _rows(controller: ControllerProcess, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    """Rows of the controller's own database, read-only (it may be running)."""
    path = controller.state_dir / "tunnels.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as database:
        return database.execute(sql).fetchall()


def _assert_equal(controller: ControllerProcess, reader: SwitchReader,
                  worker: WorkerProcess) -> dict[int, list[int]]:
    """Switch, worker and store agree exactly; returns the stored tunnels' SPIs by id."""
    stored = {tunnel_id: _spis(item) for tunnel_id, item in _tunnels(controller).items()}
    assert _rows(controller, "SELECT * FROM journal") == []
    allocations = {int(tunnel_id): (index, dict(_pairs(pairs)))
                   for tunnel_id, index, pairs in _rows(
                       controller, "SELECT tunnel_id, tunnel_index, sa_indexes FROM allocations")}
    assert sorted(allocations) == sorted(stored), "allocations are not the stored tunnels"
    indexes = [index for index, _ in allocations.values()]
    assert len(set(indexes)) == len(indexes), "a tunnel index is allocated twice"
    for tunnel_id, spis in stored.items():
        assert sorted(allocations[tunnel_id][1]) == spis, f"tunnel {tunnel_id}: SA allocation"
    by_index = {index: (tunnel_id, pairs) for tunnel_id, (index, pairs) in allocations.items()}
    # The switch: every rule belongs to an allocated tunnel and names its SA; every tunnel has
    # its rule(s): one per decrypt SA (matched by SPI), else one.
    rules: dict[int, list[int]] = {}
    for entry in reader.entries("tunnel_rules"):
        args = entry.action.args if entry.action is not None else {}  # type: ignore[union-attr]
        index = args["tunnel_index"]
        assert index in by_index, f"stray rule of tunnel index {index}: {entry}"
        tunnel_id, pairs = by_index[index]
        if "sa_index" in args:  # encrypt
            assert pairs == {args["spi"]: args["sa_index"]}, (tunnel_id, entry)
        spi = entry.match["esp_spi"][0] if "esp_spi" in entry.match else 0  # type: ignore[index]
        rules.setdefault(tunnel_id, []).append(spi)
    wanted_decrypt: dict[tuple[int, int], int] = {}
    for tunnel_id, (index, pairs) in allocations.items():
        found = sorted(rules.get(tunnel_id, []))
        if any(found):  # a decrypt tunnel: one rule per SA
            assert found == sorted(pairs), (tunnel_id, found, pairs)
            wanted_decrypt.update({(index, spi): sa for spi, sa in pairs.items()})
        else:
            assert found == [0], f"tunnel {tunnel_id}: rules {found}"
    decrypt_sas = {(entry.match["tunnel_index"], entry.match["spi"]):  # type: ignore[index]
                   entry.action.args["sa_index"]  # type: ignore[union-attr]
                   for entry in reader.entries("decrypt_sas")}
    assert decrypt_sas == wanted_decrypt
    # The worker: exactly the stored SAs at their allocated indices.
    on_worker = {index: params.spi for index, params in worker_sas(worker.socket).items()}
    wanted_sas = {sa: spi for _, pairs in allocations.values() for spi, sa in pairs.items()}
    assert on_worker == wanted_sas, "the worker does not hold exactly the stored SAs"
    return stored


def _pairs(text: str) -> list[tuple[int, int]]:
    """The store's JSON [[spi, sa_index], ...]."""
    return [(int(spi), int(sa)) for spi, sa in json.loads(text)]


def _stream(rng: random.Random, round_number: int, base: list[int], spi_start: int, *,
            rekeys: bool) -> list[pb.ipTunnelRequest]:
    """STREAM requests: CREATEs of new tunnels of every kind, and UPDATEs and DELETEs of the
    base tunnels (each touched at most once). The UPDATEs add an SA to a decrypt tunnel, or,
    with `rekeys`, replace an encrypt tunnel's SA."""
    requests: list[pb.ipTunnelRequest] = []
    spi = spi_start
    touched: set[int] = set()
    created: list[int] = []  # tunnels this stream creates: deleting one ends a batch
    for number in range(STREAM):
        roll = rng.random()
        free = [t for t in base if t not in touched]
        updatable = [t for t in free if t % 3 == (0 if rekeys else 1)]
        if roll < 0.15 and updatable:
            tunnel_id = rng.choice(updatable)
            touched.add(tunnel_id)
            requests.append(update_enc_sa(tunnel_id, spi=spi) if rekeys else
                            update_dec_sas(tunnel_id, (spi, pb._CREATE, hex_key())))
        elif roll < 0.25 and free:
            tunnel_id = rng.choice(free)
            touched.add(tunnel_id)
            requests.append(delete(tunnel_id))
        elif roll < 0.40 and created:
            requests.append(delete(created.pop(rng.randrange(len(created)))))
        else:
            tunnel_id = 1000 * round_number + 100 + number
            created.append(tunnel_id)
            requests.append(_create(tunnel_id, spi, source=f"10.{round_number}.{number}.1"))
        spi += 1
    return requests


def _create(tunnel_id: int, spi: int, *, source: str) -> pb.ipTunnelRequest:
    kind = tunnel_id % 3
    if kind == 0:
        return ipsec_enc(tunnel_id, spi=spi, match=match_ipv4(source=source))
    if kind == 1:
        return ipsec_dec(tunnel_id, spi=spi, match=match_ipv4(source=source))
    return geneve_encap(tunnel_id, match=match_ipv4(source=source), vni=tunnel_id % 4000 + 1)


def _effect(request: pb.ipTunnelRequest, before: list[int] | None
            ) -> tuple[int, list[int] | None]:
    """(tunnel id, the tunnel's SPIs once this request is applied; None: gone). `before`: the
    tunnel's SPIs before it (an UPDATE of a decrypt tunnel adds its SAs to them)."""
    if request.operation == pb._DELETE:
        return request.tunnelId, None
    if request.ipsecTunnel.HasField("ipsecEnc"):
        return request.tunnelId, [request.ipsecTunnel.ipsecEnc.ipsecSA.spi]
    if request.ipsecTunnel.HasField("ipsecDec"):
        added = [sa.spi for sa in request.ipsecTunnel.ipsecDec.ipsecSAs]
        return request.tunnelId, sorted(added + (before or [])
                                        if request.operation == pb._UPDATE else added)
    return request.tunnelId, []


def _batches(log: str) -> list[int]:
    """The sizes of the batches the controller has programmed, by its per-batch log line."""
    return [int(n) for n in re.findall(r"(\d+) request\(s\) programmed in one batch", log)]


def _send(port: int, requests: list[pb.ipTunnelRequest], outcome: list[object]) -> None:
    """One createIpTunnel stream; its answer or error goes into `outcome`."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            outcome.append(pb_grpc.ipTunnelServiceStub(channel).createIpTunnel(
                iter(requests), timeout=60))
        except grpc.RpcError as error:
            outcome.append(error)


@pytest.mark.parametrize("rekeys", [False, True], ids=["decrypt-updates", "encrypt-rekeys"])
def test_kill_9_mid_stream_leaves_every_request_whole_or_absent(
        rekeys: bool, switch: SwitchProcess, worker: WorkerProcess,
        journal_controller: ControllerProcess) -> None:
    controller, reader = journal_controller, SwitchReader(switch)
    seed = int(os.environ.get("DP_JOURNAL_SEED", str(random.randrange(1 << 32))))
    rng = random.Random(seed)
    spi = 5000
    for round_number in range(1, ROUNDS + 1):
        note = f"seed {seed}, round {round_number}"
        base = [1000 * round_number + n for n in range(BASE)]
        channel, stub = _stub(controller)
        with channel:
            answer = stub.createIpTunnel(iter([
                _create(t, spi + i, source=f"10.{round_number}.{200 + i}.1")
                for i, t in enumerate(base)]), timeout=20)
        assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
        spi += BASE
        before = _assert_equal(controller, reader, worker)
        requests = _stream(rng, round_number, base, spi, rekeys=rekeys)
        spi += STREAM
        # Requests programmed before the SIGKILL (not too near the end: the stream must
        # still be running when the kill lands).
        kill_after = rng.randrange(2, STREAM * 3 // 4)
        log_offset = len(controller.log())

        outcome: list[object] = []
        client = threading.Thread(target=_send, args=(controller.port, requests, outcome))
        client.start()
        deadline = time.monotonic() + 30
        while sum(_batches(controller.log()[log_offset:])) < kill_after:
            assert time.monotonic() < deadline, f"{note}: the stream is not being applied"
            time.sleep(0.002)
        controller.kill()
        programmed = _batches(controller.log()[log_offset:])
        client.join(timeout=10)
        assert outcome and isinstance(outcome[0], grpc.RpcError), \
            f"{note}: the client got an answer before the kill: {outcome}"

        restart_offset = len(controller.log())
        controller.start()
        controller.wait_serving()
        try:
            after = _assert_equal(controller, reader, worker)
        except AssertionError:
            print("KILLLOG", controller.log()[log_offset:][-6000:])
            raise

        # Each request is whole or absent; what was applied is a prefix of the stream (its
        # committed batches) plus, after it, DELETEs finished at start-up (module doc).
        applied: list[int] = []
        state = dict(before)
        for index, request in enumerate(requests):
            tunnel_id, spis = _effect(request, state.get(request.tunnelId))
            done = (tunnel_id not in after) if spis is None else (after.get(tunnel_id) == spis)
            untouched = (after.get(tunnel_id) == state.get(tunnel_id)
                         if tunnel_id in state else tunnel_id not in after)
            assert done or untouched, (
                f"{note}: request {index} ({pb.OPERATION.Name(request.operation)} tunnel "
                f"{tunnel_id}) is half-applied: before {state.get(tunnel_id)}, wanted {spis}, "
                f"now {after.get(tunnel_id)}")
            if done and not untouched:
                applied.append(index)
                if spis is None:
                    state.pop(tunnel_id, None)
                else:
                    state[tunnel_id] = spis
        # The start-up log names every applied request as unacknowledged, and the rest of the
        # interrupted batch (if the kill came between its writes and its commit) as not having
        # happened.
        startup = controller.log()[restart_offset:]
        acknowledged_missing = sorted(int(n) for n in re.findall(
            r"request (\d+) \(\w+ tunnel \d+\) was applied but never acknowledged", startup))
        interrupted = [int(n) for n in re.findall(
            r"request (\d+) \(\w+ tunnel \d+\) was being applied when the controller stopped",
            startup)]
        finished = [int(n) for n in re.findall(
            r"request (\d+) \(DELETE tunnel \d+\) was interrupted by the stop; finished at "
            r"start-up", startup)]
        prefix = [index for index in applied if index not in finished]
        assert prefix == list(range(len(prefix))), f"{note}: applied {applied}"
        # The service commits BATCH requests per store transaction: the committed prefix is a
        # whole number of them (none here: the stream is shorter), never part of one.
        assert len(prefix) % BATCH == 0, (note, applied, programmed)
        assert acknowledged_missing == applied, (note, acknowledged_missing, applied)
        # An interrupted DELETE is finished (controller/journal_recovery.py), never undone; the
        # rest of the interrupted batch did not happen. Both come after the committed prefix.
        assert all(index >= len(prefix) for index in finished + interrupted), (
            note, prefix, finished, interrupted)
        assert all(requests[index].operation == pb._DELETE and requests[index].tunnelId in before
                   for index in finished), (note, finished)
        assert not set(interrupted) & set(prefix), (note, interrupted, prefix)
        print(f"{note}: killed after {programmed} programmed; {len(applied)} applied, "
              f"interrupted {[pb.OPERATION.Name(requests[i].operation) for i in interrupted]}, "
              f"finished at start-up {finished}")
        # The tunnels still work as tunnels: every surviving one of the stream can be deleted.
        channel, stub = _stub(controller)
        with channel:
            answer = stub.createIpTunnel(iter([delete(t) for t in sorted(after)]), timeout=30)
        assert answer.requestStatus == pb._TUNNEL_ACCEPTED, (note, answer)
        assert _assert_equal(controller, reader, worker) == {}


class KillingProxy(wpb_grpc.CryptoWorkerServicer):
    """The worker's SA service as the controller sees it: every call forwarded to the real
    worker; when armed, the controller is SIGKILLed right after a RemoveSa has reached the
    worker and before the controller gets the answer — a kill at exactly the point where the
    request can no longer simply be dropped."""

    def __init__(self, worker: WorkerProcess) -> None:
        self._channel = grpc.insecure_channel(f"unix:{worker.socket}")
        self._stub = wpb_grpc.CryptoWorkerStub(self._channel)
        self.victim: ControllerProcess | None = None
        self.removed: list[int] = []

    def AddSa(self, request, context):  # noqa: N802 - gRPC method names
        return self._stub.AddSa(request, timeout=5)

    def ReplaceSa(self, request, context):  # noqa: N802
        return self._stub.ReplaceSa(request, timeout=5)

    def ListSas(self, request, context):  # noqa: N802
        return self._stub.ListSas(request, timeout=5)

    def GetCounters(self, request, context):  # noqa: N802
        return self._stub.GetCounters(request, timeout=5)

    def RemoveSa(self, request, context):  # noqa: N802
        response = self._stub.RemoveSa(request, timeout=5)
        victim, self.victim = self.victim, None
        if victim is not None:
            self.removed.append(request.sa_index)
            victim.kill()
        return response

    def close(self) -> None:
        self._channel.close()


@dataclass
class _Socket:
    socket: Path


def test_kill_9_after_the_old_sa_left_the_worker_undoes_a_rekey_and_finishes_a_delete(
        workdir: Path, switch: SwitchProcess, worker: WorkerProcess, routes_file: Path) -> None:
    """The worst moments for a crash: an encrypt rekey whose old SA the worker has just removed
    (its key retired there), and a DELETE whose SA is gone. After the restart the rekey is
    undone — the old SA resumed above its durable limit, the tunnel active and encrypting under
    its old SPI with new sequence numbers — and the DELETE is finished."""
    from concurrent import futures

    from dp_support import PacketPort
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    proxy = KillingProxy(worker)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    wpb_grpc.add_CryptoWorkerServicer_to_server(proxy, server)
    proxy_socket = workdir / "proxy.sock"
    server.add_insecure_port(f"unix:{proxy_socket}")
    server.start()
    controller = ControllerProcess(workdir, switch, _Socket(proxy_socket),  # type: ignore[arg-type]
                                   routes_file)
    port = PacketPort(switch.packet_url)
    try:
        controller.start()
        controller.wait_serving()
        channel, stub = _stub(controller)
        with channel:
            answer = stub.createIpTunnel(iter([
                ipsec_enc(1, spi=4587, match=match_ipv4(source="10.0.0.1")),
                ipsec_dec(2, spi=780, match=match_ipv4(source="11.0.0.2"))]), timeout=10)
        assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
        frame = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / b"x")

        def encrypted() -> tuple[int, int]:
            port.send(1, frame)
            received = port.receive()
            assert received is not None, "the encrypt tunnel is dark"
            payload = bytes(Ether(received[1])[UDP].payload)
            return int.from_bytes(payload[:4], "big"), int.from_bytes(payload[4:8], "big")

        sent_before = [encrypted() for _ in range(3)]
        assert sent_before == [(4587, 1), (4587, 2), (4587, 3)]
        before = _assert_equal(controller, SwitchReader(switch), worker)

        for request in (update_enc_sa(1, spi=4590), delete(2)):
            proxy.victim = controller
            outcome: list[object] = []
            _send(controller.port, [request], outcome)
            assert outcome and isinstance(outcome[0], grpc.RpcError), outcome
            assert proxy.victim is None, f"no RemoveSa reached the worker: {outcome}"
            restart = len(controller.log())
            controller.start()
            controller.wait_serving()
            after = _assert_equal(controller, SwitchReader(switch), worker)
            startup = controller.log()[restart:]
            assert "cannot be resumed" not in startup, startup[-3000:]  # nothing left dark
            if request.operation == pb._UPDATE:
                assert after == before, "the interrupted rekey is not undone"
                assert "UPDATE tunnel 1) was being applied" in startup
            else:
                assert after == {1: [4587]}, "the interrupted DELETE is not finished"
                assert "DELETE tunnel 2) was interrupted by the stop; finished" in startup
        # The old encrypt SA, resumed: same SPI, numbering above everything used before.
        spi, sequence = encrypted()
        assert spi == 4587 and sequence > 3
        assert proxy.removed and len(proxy.removed) == 2
    finally:
        port.close()
        controller.stop()
        server.stop(None)
        proxy.close()
