"""`--workers N` on AF_PACKET: N processes share the crypto port by `sa_index mod N`.

On a veth pair in a private network namespace: the fanout program alone sends each SA index to
its member; the worker's entry point with `--workers 2` transforms every frame of several SAs
exactly once, each SA numbered 1, 2, 3, … with no gap or repeat; the one SA service answers for
both processes (ListSas/GetCounters merged, errors as one worker gives them); after a restart
every SA resumes above its durable limit (no sequence number reused); a directory kept by 2
processes is refused with 3; a killed process stops the group and the service says so; the
processes stop when the supervisor dies.

Needs root (CI runs as root); skipped otherwise. Run just this file:
    .venv/bin/python -m pytest tests/crypto_worker/test_workers.py -q
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cw_support import Keying, ip_of, p4_encrypt_message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import ESP
from scapy.packet import Raw

from bench.crypto.netns import in_namespace, socket_in_namespace, veth_namespace
from crypto_worker import __main__ as entry
from crypto_worker import fanout
from crypto_worker.ciphers import SUITE_BY_ENC_TYPE_NAME
from crypto_worker.shim import SHIM_BYTES
from tunneloffload.crypto.v1 import worker_pb2 as pb
from tunneloffload.crypto.v1 import worker_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[2]
SUITE = SUITE_BY_ENC_TYPE_NAME["_aes128gcm128"]
OUTER = IP(src="203.0.113.1", dst="203.0.113.2")
PACKET_OUTGOING = 4
SA_INDEXES = (1, 2, 3, 4, 7, 10)  # both owners, unevenly
BLOCK = 16  # --sequence-block: small, so a resume visibly skips to the next block

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")


def _namespace() -> Iterator[str]:
    try:
        with veth_namespace("cww") as namespace:
            yield namespace
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        pytest.skip(f"cannot create a network namespace here: {error}")


@pytest.fixture
def namespace() -> Iterator[str]:
    yield from _namespace()


class _Worker:
    """The entry point with --workers N in the namespace, its channel and stub."""

    def __init__(self, namespace: str, tmp: Path, *, workers: int = 2) -> None:
        self.sa_socket = str(tmp / "sa.sock")
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, "-m", "crypto_worker",
             "--sa-socket", self.sa_socket, "--interface", "cw-crypto",
             "--workers", str(workers), "--state-dir", str(tmp / "state"),
             "--sequence-block", str(BLOCK), "--log-level", "WARNING"],
            cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stderr=subprocess.PIPE)
        self.channel = grpc.insecure_channel(f"unix:{self.sa_socket}")
        self.stub = pb_grpc.CryptoWorkerStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, "worker exited"
            try:
                self.health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                return
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def children(self) -> list[int]:
        """The worker processes (multiprocessing's resource tracker left out)."""
        path = f"/proc/{self.process.pid}/task/{self.process.pid}/children"
        pids = [int(pid) for pid in Path(path).read_text().split()]
        return [pid for pid in pids
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]

    def stop(self) -> None:
        self.channel.close()
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=30)


@contextlib.contextmanager
def _running(namespace: str, tmp: Path) -> Iterator[_Worker]:
    """A started, ready worker (two processes), stopped at the end of the block."""
    worker = _Worker(namespace, tmp)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def switch_side(namespace: str) -> Iterator[socket.socket]:
    sock = socket_in_namespace(namespace, "cw-switch")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    yield sock
    sock.close()


def _add(stub: pb_grpc.CryptoWorkerStub, keys: dict[int, Keying], *, resume: bool) -> None:
    for sa_index in SA_INDEXES:
        stub.AddSa(pb.AddSaRequest(
            params=pb.SaParams(sa_index=sa_index, spi=0x1000 + sa_index,
                               direction=pb.DIRECTION_ENCRYPT,
                               cipher=pb.Cipher.Value(SUITE.proto_name), mode=pb.MODE_TUNNEL),
            key=pb.SaKey(key=keys[sa_index].key, salt=keys[sa_index].salt), resume=resume))


def _exchange(sock: socket.socket, rounds: int) -> dict[int, list[int]]:
    """Sends `rounds` frames for every SA (interleaved), returns each SA's ESP sequence numbers
    in the order they came back; fails on a frame too many or too few."""
    inner = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5, dport=6) / Raw(b"w" * 64)
    message = {i: p4_encrypt_message(inner, sa_index=i, spi=0x1000 + i, tunnel_header=OUTER,
                                     nat_t=False)[0] for i in SA_INDEXES}
    for _ in range(rounds):
        for sa_index in SA_INDEXES:
            sock.send(message[sa_index])
    expected = rounds * len(SA_INDEXES)
    sequences: dict[int, list[int]] = {i: [] for i in SA_INDEXES}
    received = 0
    deadline = time.monotonic() + 10
    while received < expected + 1 and time.monotonic() < deadline:  # + 1: catch a duplicate
        timeout = 0.5 if received >= expected else deadline - time.monotonic()
        readable, _, _ = select.select([sock], [], [], timeout)
        if not readable:
            break
        frame, address = sock.recvfrom(65535)
        if address[2] == PACKET_OUTGOING or frame[:1] != b"\x01":
            continue
        sa_index = int.from_bytes(frame[4:6], "big")
        sequences[sa_index].append(ip_of(frame[SHIM_BYTES:])[ESP].seq)
        received += 1
    assert received == expected, (received, expected, {i: len(s) for i, s in sequences.items()})
    return sequences


@needs_root
def test_the_fanout_program_sends_each_sa_index_to_its_member(namespace: str) -> None:
    """Three sockets in one group: socket k gets exactly the frames with sa_index mod 3 == k."""
    def member(group: int | None) -> socket.socket:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(fanout_all))
        fanout.attach_drop_all(sock)
        sock.bind(("cw-crypto", fanout_all))
        group_of[0] = fanout.join(sock, group=group, members=3)
        fanout.detach_filter(sock)
        sock.setblocking(False)
        return sock

    fanout_all = 0x0003
    group_of: list[int] = [0]
    members = [in_namespace(namespace, lambda: member(None))]
    members += [in_namespace(namespace, lambda: member(group_of[0])) for _ in range(2)]
    sender = socket_in_namespace(namespace, "cw-switch")
    indexes = [0, 1, 2, 3, 65535, 256, 257, 1000, *range(10, 40)]
    try:
        for sa_index in indexes:
            sender.send(b"\x01\x01\x00\x00" + sa_index.to_bytes(2, "big") + bytes(58))
        time.sleep(0.3)
        for position, sock in enumerate(members):
            got = []
            while True:
                try:
                    frame = sock.recv(2048)
                except BlockingIOError:
                    break
                got.append(int.from_bytes(frame[4:6], "big"))
            assert got == [i for i in indexes if i % 3 == position], position
    finally:
        sender.close()
        for sock in members:
            sock.close()


@needs_root
def test_two_workers_number_every_sa_exactly_once_and_resume_after_restart(
    namespace: str, switch_side: socket.socket, tmp_path: Path,
) -> None:
    keys = {i: Keying.random(SUITE) for i in SA_INDEXES}
    with _running(namespace, tmp_path) as worker:
        assert len(worker.children()) == 2
        _add(worker.stub, keys, resume=False)
        sequences = _exchange(switch_side, rounds=30)
        assert sequences == {i: list(range(1, 31)) for i in SA_INDEXES}
        # The one service answers for both processes, as a single worker would.
        listed = worker.stub.ListSas(pb.ListSasRequest()).sas
        assert [info.params.sa_index for info in listed] == list(SA_INDEXES)
        assert all(info.next_sequence == 31 for info in listed)
        counters = worker.stub.GetCounters(pb.GetCountersRequest(sa_indexes=[10, 1, 4])).sas
        assert [(c.sa_index, c.packets) for c in counters] == [(10, 30), (1, 30), (4, 30)]
        with pytest.raises(grpc.RpcError) as missing:
            worker.stub.GetCounters(pb.GetCountersRequest(sa_indexes=[2, 3, 5]))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert missing.value.details() == "sa_indexes[2]: 5 is not in use"
        with pytest.raises(grpc.RpcError) as taken:
            _add(worker.stub, keys, resume=False)
        assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert taken.value.details() == "sa_index: 1 is already in use"
        # A used encrypt key is refused fresh at any sa_index, owned by either process.
        for sa_index in (20, 21):  # owners 0 and 1; the key numbered packets at sa_index 1
            with pytest.raises(grpc.RpcError) as reused:
                worker.stub.AddSa(pb.AddSaRequest(
                    params=pb.SaParams(sa_index=sa_index, spi=0x2000 + sa_index,
                                       direction=pb.DIRECTION_ENCRYPT,
                                       cipher=pb.Cipher.Value(SUITE.proto_name),
                                       mode=pb.MODE_TUNNEL),
                    key=pb.SaKey(key=keys[1].key, salt=keys[1].salt)))
            assert reused.value.code() == grpc.StatusCode.FAILED_PRECONDITION, sa_index
            assert reused.value.details().startswith(f"key retired: sa_index {sa_index} "), \
                reused.value.details()
        assert len(worker.stub.ListSas(pb.ListSasRequest()).sas) == len(SA_INDEXES)
    assert worker.process.returncode == 0

    with _running(namespace, tmp_path) as worker:
        _add(worker.stub, keys, resume=True)
        sequences = _exchange(switch_side, rounds=5)
        # Each SA continues above its durable limit (at most one block above the 30 it sent),
        # never a number sent before, then one by one.
        for sa_index, numbers in sequences.items():
            start = numbers[0]
            assert 30 < start <= 30 + BLOCK + 1, (sa_index, numbers)
            assert numbers == list(range(start, start + 5)), (sa_index, numbers)

    refused = _Worker(namespace, tmp_path, workers=3)
    assert refused.process.wait(timeout=60) == 2
    assert refused.process.stderr is not None
    error = refused.process.stderr.read().decode()
    assert "--workers 3" in error and "start with --workers 2" in error, error
    refused.stop()


@needs_root
def test_a_killed_worker_process_stops_the_group_and_the_service_says_so(
    namespace: str, tmp_path: Path,
) -> None:
    with _running(namespace, tmp_path) as worker:
        keys = {i: Keying.random(SUITE) for i in SA_INDEXES}
        _add(worker.stub, keys, resume=False)
        first, second = worker.children()
        os.kill(second, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while worker.health.Check(health_pb2.HealthCheckRequest(), timeout=5).status \
                == health_pb2.HealthCheckResponse.SERVING:
            assert time.monotonic() < deadline, "still SERVING after a worker process died"
            time.sleep(0.05)
        with pytest.raises(grpc.RpcError) as unavailable:
            worker.stub.RemoveSa(pb.RemoveSaRequest(sa_index=2))
        assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE
        assert f"worker process 1 (pid {second}) was killed by signal 9" in \
            unavailable.value.details()
        # The survivor was stopped too: its fanout place no longer matches its SAs.
        deadline = time.monotonic() + 20
        while Path(f"/proc/{first}").exists() and \
                Path(f"/proc/{first}/stat").read_text().split()[2] != "Z":
            assert time.monotonic() < deadline, "the other worker process still runs"
            time.sleep(0.05)
        assert worker.process.poll() is None  # the service itself stays up, NOT_SERVING


def test_nanomsg_takes_one_worker_process(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        entry.parse_args(["--sa-socket", "/tmp/x.sock", "--nanomsg", "ipc:///tmp/x.ipc",
                          "--workers", "2"])
    assert exited.value.code == 2
    assert "--workers 2: the --nanomsg crypto port is one PAIR socket" in capsys.readouterr().err
    args = entry.parse_args(["--sa-socket", "/tmp/x.sock", "--nanomsg", "ipc:///tmp/x.ipc"])
    assert args.workers == 1
    args = entry.parse_args(["--sa-socket", "/tmp/x.sock", "--interface", "veth0"])
    assert args.workers == os.cpu_count()


@needs_root
def test_the_worker_processes_stop_when_the_supervisor_dies(namespace: str,
                                                           tmp_path: Path) -> None:
    with _running(namespace, tmp_path) as worker:
        children = worker.children()
        assert len(children) == 2
        worker.process.kill()
        worker.process.wait(timeout=10)
        deadline = time.monotonic() + 20
        while any(Path(f"/proc/{pid}").exists() for pid in children):
            assert time.monotonic() < deadline, "worker processes outlived the supervisor"
            time.sleep(0.05)


@needs_root
def test_after_a_sigkill_of_every_process_no_sequence_number_is_reused(
    namespace: str, switch_side: socket.socket, tmp_path: Path,
) -> None:
    keys = {i: Keying.random(SUITE) for i in SA_INDEXES}
    with _running(namespace, tmp_path) as worker:
        _add(worker.stub, keys, resume=False)
        sent = _exchange(switch_side, rounds=40)  # past two refills of the 16-number block
        assert sent == {i: list(range(1, 41)) for i in SA_INDEXES}
        for pid in [*worker.children(), worker.process.pid]:
            os.kill(pid, signal.SIGKILL)
    with _running(namespace, tmp_path) as worker:
        _add(worker.stub, keys, resume=True)
        for sa_index, numbers in _exchange(switch_side, rounds=3).items():
            assert 40 < numbers[0] <= 40 + BLOCK + 1, (sa_index, numbers)
            assert numbers == list(range(numbers[0], numbers[0] + 3))
