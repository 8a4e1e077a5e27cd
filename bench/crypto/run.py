"""Crypto worker speed: packets/s per core through the worker's real port I/O, against the bare
`cryptography` AEAD call on the same payload sizes, measured in the same run.

The worker runs as shipped (its entry point, in a subprocess) and dials a nanomsg PAIR socket on
which this script plays the switch: it sends N shim-wrapped frames per case as PACKET_OUT for
port 64 while a second thread receives the N answers. "Per core" is N divided by the CPU time the
worker process used (user + system, from /proc), so other load on the machine does not distort
it; the wall-clock rate is shown too. The baseline is N one-shot AESGCM calls on one core
(`time.process_time`). The figure is ratio = worker per core / bare AEAD per core.

Two more rates per case, on the same frames in this process: the worker's own FrameProcessor
without any port I/O ("no-I/O"), and the floor (bench/crypto/floor.py): a hand-written minimal
ESP loop, checked to give the worker's output for the same frames; `/floor` = worker per core /
floor per core, what the worker costs compared with a straightforward Python ESP.

Run as root (with iproute2), it then measures the same cases a second time with the worker on
AF_PACKET, the BMv2 set-up: a veth pair in a network namespace it creates and deletes, the bench
on one end, the worker on the other; that table's rows start with `af_packet`.

On AF_PACKET it also measures `--workers` (several processes sharing the port by sa_index):
encrypt 64 with two SAs, aggregate frames/s with 1 and with 2 worker processes in the same run
(`af_packet workers_1=… workers_2=… workers_2_vs_1=…`); the table above it runs `--workers 1`,
so its per-core figures are one process's.

Usage: .venv/bin/python bench/crypto/run.py [--packets N] [--no-afpacket]
(or `make bench-crypto`). Prints the tables, the `af_packet ratio_… floor_ratio_…` line and the
nanomsg `floor_ratio_…` line, then last one line `ratio_64=X ratio_1400=Y` (encrypt, nanomsg
port I/O, against the bare AEAD).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pynng
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pynng.exceptions import check_err
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.crypto import floor  # noqa: E402
from bench.crypto.netns import socket_in_namespace, veth_namespace  # noqa: E402
from crypto_worker.ciphers import SUITE_BY_ENC_TYPE_NAME  # noqa: E402
from crypto_worker.processor import FrameProcessor  # noqa: E402
from crypto_worker.sa import Direction, EspMode, SaConfig, SaKeys  # noqa: E402
from crypto_worker.sa_table import SaTable  # noqa: E402
from crypto_worker.secret import Secret  # noqa: E402
from crypto_worker.shim import FLAG_TUNNEL_MODE, CryptoShim, ShimOp  # noqa: E402
from tunneloffload.crypto.v1 import worker_pb2 as pb  # noqa: E402
from tunneloffload.crypto.v1 import worker_pb2_grpc as pb_grpc  # noqa: E402

SIZES = (64, 512, 1400)
SUITE = SUITE_BY_ENC_TYPE_NAME["_aes128gcm128"]
CRYPTO_PORT = 64
HEADER = struct.Struct("<iii")
ETH_BYTES = 14
PACKET_OUTGOING = 4
OUTER_BYTES = 20
SO_RCVBUFFORCE = 33  # asm-generic/socket.h (root: above net.core.rmem_max)
# Frames queued per burst while the workers are stopped, and for at most how long: each 256 KiB
# ring block is handed over 1 ms after its first frame, so the 64 blocks of a receive ring
# (crypto_worker/ports/afpacket.py) fill by time long before they fill by bytes.
# A veth hands each frame to the receiving side through the per-CPU backlog
# (net.core.netdev_max_backlog, 1,000 by default), which softirq work drains; on a busy machine that
# work waits for ksoftirqd, so a burst larger than the backlog loses frames before any worker sees
# them. Bursts stay within half of it (burst_frames()).
BURST = 4000
BURST_SECONDS = 0.040
# An answer missing this long after the last one is taken as never coming (a frame the kernel
# dropped before the worker: the worker's own counters show it never saw it).
QUIET_SECONDS = 2.0


def burst_frames() -> int:
    """Frames per burst: BURST, or half the kernel's backlog when that is smaller."""
    try:
        backlog = int(Path("/proc/sys/net/core/netdev_max_backlog").read_text())
    except (OSError, ValueError):
        backlog = 1000
    return max(1, min(BURST, backlog // 2))


@dataclass(frozen=True, kw_only=True)
class Result:
    op: str
    size: int
    worker_per_core: float
    worker_wall: float
    aead_per_core: float
    in_process_per_core: float  # the worker's FrameProcessor in this process, no port I/O
    floor_per_core: float  # the hand-written minimal ESP loop (bench/crypto/floor.py)

    @property
    def ratio(self) -> float:
        return self.worker_per_core / self.aead_per_core

    @property
    def floor_ratio(self) -> float:
        return self.worker_per_core / self.floor_per_core


def _cpu_seconds(pid: int) -> float:
    """CPU time of every thread of `pid` (the Python thread and nng's, gRPC's), in nanosecond
    resolution: the sum of /proc/PID/task/*/schedstat run times. (/proc/PID/stat counts in
    10 ms clock ticks, which is a few percent of a case.) The threads live as long as the
    process, so none of the time is lost with an exited thread."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except FileNotFoundError:  # a thread that ended between listing and reading
            continue
    return total / 1e9


def _inner_packet(size: int) -> bytes:
    """An IPv4/UDP packet of exactly `size` bytes: the payload ESP protects in tunnel mode."""
    packet = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / Raw(b"b" * (size - 28))
    return bytes(packet)


def _encrypt_message(sa_index: int, spi: int, size: int) -> bytes:
    """`shim | frame` as p4src sends it for ENCRYPT in tunnel mode (outer length covers ESP)."""
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x0800)
    inner = _inner_packet(size)
    outer = IP(src="203.0.113.1", dst="203.0.113.2", proto=50, len=OUTER_BYTES + 8 + len(inner))
    frame = bytes(eth) + bytes(outer) + struct.pack("!II", spi, 0) + inner
    return _shim(ShimOp.ENCRYPT, sa_index, 4) + frame


def _shim(op: ShimOp, sa_index: int, next_header: int) -> bytes:
    return CryptoShim(version=1, op=op, flags=FLAG_TUNNEL_MODE, next_action=1, sa_index=sa_index,
                      tunnel_index=1, pass_count=1, next_header=next_header, l3_offset=ETH_BYTES,
                      status=0, esp_offset=ETH_BYTES + OUTER_BYTES, ingress_port=1).pack()


def _decrypt_messages(key: bytes, salt: bytes, sa_index: int, spi: int, size: int,
                      count: int) -> list[bytes]:
    """`count` ESP frames (sequence 1 … count) made with the same key, as P4 forwards them."""
    table = SaTable()
    table.add(SaConfig(sa_index=1, spi=spi, direction=Direction.ENCRYPT, suite=SUITE,
                       mode=EspMode.TUNNEL, nat_traversal=False, esn=False, replay_window=64),
              SaKeys(key=Secret(key), salt=Secret(salt)))
    processor = FrameProcessor(table)
    message = _encrypt_message(1, spi, size)
    shim = _shim(ShimOp.DECRYPT, sa_index, 0)
    out = []
    for _ in range(count):
        reply = processor.process(message)
        assert reply is not None
        out.append(shim + reply[16:])
    return out


class Switch:
    """The switch's side of the crypto port, kept cheap so that it offers frames faster than the
    worker takes them: messages are framed before the clock starts, and both directions call
    nng directly (no per-call allocations, receives into one buffer)."""

    def __init__(self, url: str) -> None:
        self.socket = pynng.Pair0(recv_timeout=20000, send_timeout=20000,
                                  recv_buffer_size=1024, send_buffer_size=1024)
        self.socket.listen(url)

    def pump(self, messages: list[bytes]) -> float:
        """Sends every message and waits for as many answers; returns the wall time."""
        wire = [HEADER.pack(4, CRYPTO_PORT, len(m)) + m for m in messages]
        received = 0
        failure: list[BaseException] = []
        nng_socket = self.socket.socket
        lib, ffi = pynng.lib, pynng.ffi

        def receive() -> None:
            nonlocal received
            buffer = ffi.new("char[]", 70000)
            view = ffi.buffer(buffer)
            size = ffi.new("size_t *")
            recv = lib.nng_recv
            try:
                while received < len(wire):
                    size[0] = 70000
                    check_err(recv(nng_socket, buffer, size, 0))
                    if HEADER.unpack_from(view)[0] == 3:  # PACKET_IN (skip PORT_ADD)
                        received += 1
            except BaseException as error:  # noqa: BLE001
                failure.append(error)

        receiver = threading.Thread(target=receive)
        start = time.perf_counter()
        receiver.start()
        send = lib.nng_send
        try:
            for message in wire:
                check_err(send(nng_socket, message, len(message), 0))
        finally:
            receiver.join()
        elapsed = time.perf_counter() - start
        if failure:
            raise RuntimeError(f"only {received} of {len(wire)} answers") from failure[0]
        return elapsed


def _processor(key: bytes, salt: bytes, spi: int, direction: Direction) -> FrameProcessor:
    """The worker's FrameProcessor with one fresh SA (index 1) on `key`, in this process."""
    table = SaTable()
    table.add(SaConfig(sa_index=1, spi=spi, direction=direction, suite=SUITE,
                       mode=EspMode.TUNNEL, nat_traversal=False, esn=False, replay_window=1024),
              SaKeys(key=Secret(key), salt=Secret(salt)))
    return FrameProcessor(table)


def _at_index_1(messages: list[bytes]) -> list[bytes]:
    return [m[:4] + b"\x00\x01" + m[6:] for m in messages]  # the shim's sa_index field


def _in_process_and_floor(op: str, key: bytes, salt: bytes, spi: int,
                          messages: list[bytes]) -> tuple[float, float]:
    """Per-core rates, on the frames the worker got, of its FrameProcessor without port I/O and
    of the hand-written floor; first checks that both give the same output for a batch."""
    direction = Direction.ENCRYPT if op == "encrypt" else Direction.DECRYPT
    messages = _at_index_1(messages)

    def floor_loop() -> Callable[[list[bytes]], list[bytes]]:
        if op == "encrypt":
            return floor.encrypt_loop(key, salt, spi)
        return floor.decrypt_loop(key, salt)

    sample = messages[:64]
    expected = _processor(key, salt, spi, direction).process_batch(sample)
    got = floor_loop()(sample)
    if got != expected or len(got) != len(sample):
        raise SystemExit(f"{op}: the floor's output differs from the worker's")
    processor = _processor(key, salt, spi, direction)
    return floor.per_core(processor.process_batch, messages), floor.per_core(floor_loop(), messages)


def _bare_aead(size: int, count: int, decrypt: bool) -> float:
    aead = AESGCM(os.urandom(16))
    data = os.urandom(size)
    aad = os.urandom(8)
    nonces = [os.urandom(12) for _ in range(64)]
    sealed = [aead.encrypt(n, data, aad) for n in nonces]
    start = time.process_time()
    if decrypt:
        for i in range(count):
            aead.decrypt(nonces[i & 63], sealed[i & 63], aad)
    else:
        for i in range(count):
            aead.encrypt(nonces[i & 63], data, aad)
    return count / (time.process_time() - start)


def _wait_ready(channel: grpc.Channel, process: subprocess.Popen[bytes]) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError("the worker exited")
        try:
            health.Check(health_pb2.HealthCheckRequest(), timeout=1)
            return
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def echo_floor(packets: int, size: int) -> float:
    """Frames/s per core of the null worker (nn_echo.py): the port I/O alone, no ESP."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"ipc://{tmp}/echo.ipc"
        switch = Switch(url)
        process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("nn_echo.py")),
                                    url])
        try:
            message = _encrypt_message(1, 0x1001, size)
            switch.pump([message] * (packets // 20))  # also waits until it has connected
            cpu_before = _cpu_seconds(process.pid)
            switch.pump([message] * packets)
            return packets / (_cpu_seconds(process.pid) - cpu_before)
        finally:
            process.terminate()
            process.wait(timeout=10)
            switch.socket.close()


class VethSwitch:
    """The switch's side of the crypto port on a veth (the BMv2 set-up): raw frames
    `shim | Ethernet frame` on an AF_PACKET socket in the bench's network namespace. A veth
    drops what the worker's socket buffer cannot hold, so at most WINDOW frames are in flight."""

    WINDOW = 64

    def __init__(self, sock: socket.socket, window: int = WINDOW) -> None:
        self.socket = sock
        self.window = window
        # Room for a whole window of the largest frames, so none is lost on this side.
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 1 << 26)

    def pump(self, messages: list[bytes]) -> float:
        window = threading.Semaphore(self.window)
        received = 0
        failure: list[BaseException] = []

        def receive() -> None:
            nonlocal received
            buffer = bytearray(70000)
            recvfrom_into = self.socket.recvfrom_into
            try:
                while received < len(messages):
                    size, address = recvfrom_into(buffer)
                    if address[2] != PACKET_OUTGOING and buffer[0] == 1:  # shim version 1
                        received += 1
                        window.release()
            except BaseException as error:  # noqa: BLE001
                failure.append(error)
                window.release()

        receiver = threading.Thread(target=receive)
        start = time.perf_counter()
        receiver.start()
        send = self.socket.send
        try:
            for message in messages:
                if not window.acquire(timeout=20) or failure:
                    break
                send(message)
        finally:
            receiver.join()
        elapsed = time.perf_counter() - start
        if failure or received < len(messages):
            raise RuntimeError(f"only {received} of {len(messages)} answers on the veth") from (
                failure[0] if failure else None)
        return elapsed


    def burst(self, messages: list[bytes], paused: list[int]) -> tuple[int, int, float]:
        """(sent, answered, seconds): how long the worker processes `paused` take to answer the
        first `sent` frames of `messages`, queued while they were stopped (SIGSTOP). The frames
        wait in their receive rings, so the rate is the workers' own, not bounded by this sender
        or a window. Sending stops after BURST_SECONDS: each ring block is handed over 1 ms after
        its first frame, so a slower sender fills more blocks with fewer frames, and past the
        ring's 64 blocks the kernel would drop the rest. A frame the kernel drops before the
        worker (see BURST) is not answered: the receiver gives up on it after QUIET_SECONDS
        without an answer, and `answered` says how many came."""
        received = 0
        last = 0.0
        target = len(messages)  # set to what was sent before any answer can arrive
        failure: list[BaseException] = []

        def receive() -> None:
            nonlocal received, last
            buffer = bytearray(70000)
            recvfrom_into = self.socket.recvfrom_into
            try:
                while received < target:
                    size, address = recvfrom_into(buffer)
                    if address[2] != PACKET_OUTGOING and buffer[0] == 1:
                        received += 1
                        last = time.perf_counter()
            except TimeoutError:
                pass  # the rest was lost before the worker; the caller checks its counters
            except BaseException as error:  # noqa: BLE001
                failure.append(error)

        for pid in paused:
            os.kill(pid, signal.SIGSTOP)
        receiver = threading.Thread(target=receive)
        sent = 0
        timeout = self.socket.gettimeout()
        self.socket.settimeout(QUIET_SECONDS)
        try:
            send, clock = self.socket.send, time.perf_counter
            stop_at = clock() + BURST_SECONDS
            for message in messages:
                send(message)
                sent += 1
                if clock() > stop_at:
                    break
            target = sent
            receiver.start()
        finally:
            start = time.perf_counter()
            for pid in paused:
                os.kill(pid, signal.SIGCONT)
            if receiver.ident is not None:  # started
                receiver.join()
            self.socket.settimeout(timeout)
        if failure or received == 0:
            raise RuntimeError(f"only {received} of {sent} answers on the veth") from (
                failure[0] if failure else None)
        return sent, received, last - start


@contextlib.contextmanager
def _worker(io: str, tmp: str, *, workers: int = 1, window: int = VethSwitch.WINDOW,
            ) -> Iterator[tuple[subprocess.Popen[bytes], Switch | VethSwitch]]:
    """The worker as shipped, on the nanomsg port or (io="afpacket") on one end of a veth pair
    in a network namespace this bench creates and deletes; `workers` processes (--workers)."""
    sa_socket = f"{tmp}/sa.sock"
    with contextlib.ExitStack() as stack:
        switch: Switch | VethSwitch
        if io == "nanomsg":
            url = f"ipc://{tmp}/crypto-port.ipc"
            switch = Switch(url)
            command = [sys.executable, "-m", "crypto_worker", "--nanomsg", url]
        else:
            namespace = stack.enter_context(veth_namespace("cwbench"))
            switch = VethSwitch(socket_in_namespace(namespace, "cw-switch", ignore_outgoing=True,
                                                    timeout=20), window)
            command = ["ip", "netns", "exec", namespace, sys.executable, "-m", "crypto_worker",
                       "--interface", "cw-crypto", "--workers", str(workers)]
        process = subprocess.Popen(
            [*command, "--sa-socket", sa_socket, "--log-level", "WARNING"],
            cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
        try:
            yield process, switch
        finally:
            process.terminate()
            process.wait(timeout=10)
            switch.socket.close()


def run(packets: int, io: str = "nanomsg") -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory() as tmp, _worker(io, tmp) as (process, switch):
        channel = grpc.insecure_channel(f"unix:{tmp}/sa.sock")
        try:
            _wait_ready(channel, process)
            stub = pb_grpc.CryptoWorkerStub(channel)
            for number, size in enumerate(SIZES):
                # A key per size: the worker refuses a second encrypt SA under a used key.
                key, salt = os.urandom(SUITE.key_bytes), os.urandom(SUITE.salt_bytes)
                for op, direction in (("encrypt", pb.DIRECTION_ENCRYPT),
                                      ("decrypt", pb.DIRECTION_DECRYPT)):
                    sa_index = 1 + number * 2 + (op == "decrypt")
                    spi = 0x1000 + sa_index
                    stub.AddSa(pb.AddSaRequest(
                        params=pb.SaParams(sa_index=sa_index, spi=spi, direction=direction,
                                           cipher=pb.Cipher.Value(SUITE.proto_name),
                                           mode=pb.MODE_TUNNEL, replay_window=1024),
                        key=pb.SaKey(key=key, salt=salt)))
                    if op == "encrypt":
                        messages = [_encrypt_message(sa_index, spi, size)] * packets
                    else:
                        messages = _decrypt_messages(key, salt, sa_index, spi, size, packets)
                    switch.pump(messages[: packets // 20])  # warm-up, not measured
                    if op == "decrypt":
                        messages = _decrypt_messages(key, salt, sa_index, spi, size,
                                                     packets + packets // 20)[packets // 20 :]
                    cpu_before = _cpu_seconds(process.pid)
                    wall = switch.pump(messages)
                    cpu = _cpu_seconds(process.pid) - cpu_before
                    if cpu <= 0:
                        raise SystemExit(f"--packets {packets}: too few to measure CPU time")
                    counters = stub.GetCounters(pb.GetCountersRequest(sa_indexes=[sa_index]))
                    assert counters.sas[0].packets == packets + packets // 20, counters
                    in_process, floor_rate = _in_process_and_floor(op, key, salt, spi, messages)
                    results.append(Result(op=op, size=size, worker_per_core=packets / cpu,
                                          worker_wall=packets / wall,
                                          aead_per_core=_bare_aead(size, packets, op == "decrypt"),
                                          in_process_per_core=in_process,
                                          floor_per_core=floor_rate))
        finally:
            channel.close()
    return results


def _tree_cpu_seconds(pid: int) -> float:
    """CPU time of `pid` and of every process under it (the --workers processes)."""
    total = _cpu_seconds(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return total
    return total + sum(_tree_cpu_seconds(int(child)) for child in children)


@dataclass(frozen=True, kw_only=True)
class Scaling:
    workers: int
    wall: float  # frames/s, all processes together
    per_core: float  # frames per CPU second of the worker's whole process tree
    lost: int  # frames the kernel dropped before the workers (not counted in the rates)


def _children(pid: int) -> list[int]:
    return [int(child) for child in
            Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


def workers_scaling(packets: int, size: int = 64) -> list[Scaling]:
    """Encrypt on AF_PACKET with --workers 1, then 2: two SAs (sa_index 1 and 2, one per
    process under 2), frames interleaved, queued while the packet processes are stopped and
    then answered at their own pace (VethSwitch.burst), every answer counted."""
    results = []
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp, \
                _worker("afpacket", tmp, workers=workers) as (process, switch):
            channel = grpc.insecure_channel(f"unix:{tmp}/sa.sock")
            try:
                _wait_ready(channel, process)
                stub = pb_grpc.CryptoWorkerStub(channel)
                messages = []
                for sa_index in (1, 2):
                    stub.AddSa(pb.AddSaRequest(
                        params=pb.SaParams(sa_index=sa_index, spi=0x1000 + sa_index,
                                           direction=pb.DIRECTION_ENCRYPT,
                                           cipher=pb.Cipher.Value(SUITE.proto_name),
                                           mode=pb.MODE_TUNNEL),
                        key=pb.SaKey(key=os.urandom(SUITE.key_bytes),
                                     salt=os.urandom(SUITE.salt_bytes))))
                    messages.append(_encrypt_message(sa_index, 0x1000 + sa_index, size))
                stream = messages * (packets // 2)
                switch.pump(stream[: packets // 10])  # warm-up, not measured
                assert isinstance(switch, VethSwitch)
                paused = _children(process.pid) if workers > 1 else [process.pid]
                assert len(paused) == workers, paused
                wall = cpu = 0.0
                done = answered = 0
                size = burst_frames()
                while done < len(stream):
                    cpu_before = _tree_cpu_seconds(process.pid)
                    sent, got, seconds = switch.burst(stream[done:done + size], paused)
                    cpu += _tree_cpu_seconds(process.pid) - cpu_before
                    wall += seconds
                    done += sent
                    answered += got
                counters = stub.GetCounters(pb.GetCountersRequest(sa_indexes=[1, 2]), timeout=30)
                total = sum(c.packets for c in counters.sas)
                # Every frame the workers saw was answered; the unanswered ones never reached them.
                assert total == answered + packets // 10, (total, answered, counters)
                if answered < len(stream) * 0.9:
                    raise RuntimeError(f"--workers {workers}: {len(stream) - answered} of "
                                       f"{len(stream)} frames lost before the workers")
                results.append(Scaling(workers=workers, wall=answered / wall,
                                       per_core=answered / cpu, lost=len(stream) - answered))
            finally:
                channel.close()
    return results


def _print_table(results: list[Result], prefix: str = "") -> None:
    print(f"{prefix}{'op':8} {'payload':>7} {'worker pps/core':>16} {'worker pps wall':>16} "
          f"{'no-I/O pps/core':>16} {'floor pps/core':>15} {'bare AEAD pps/core':>19} "
          f"{'ratio':>6} {'/floor':>6}")
    for r in results:
        print(f"{prefix}{r.op:8} {r.size:>7} {r.worker_per_core:>16,.0f} "
              f"{r.worker_wall:>16,.0f} {r.in_process_per_core:>16,.0f} "
              f"{r.floor_per_core:>15,.0f} {r.aead_per_core:>19,.0f} {r.ratio:>6.3f} "
              f"{r.floor_ratio:>6.3f}")


def _afpacket_possible() -> str | None:
    """Why the AF_PACKET mode cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "not root"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=20000, help="packets per case")
    parser.add_argument("--no-afpacket", action="store_true",
                        help="skip the second I/O mode (AF_PACKET on a veth, root only)")
    args = parser.parse_args()
    results = run(args.packets)
    print(f"cipher {SUITE.label}, tunnel mode, {args.packets} packets per case, "
          f"nanomsg port I/O, batch 64")
    _print_table(results)
    for size in (64, 1400):
        print(f"port I/O floor (null worker, nn_echo.py), payload {size}: "
              f"{echo_floor(args.packets, size):,.0f} frames/s per core")
    skip = "--no-afpacket" if args.no_afpacket else _afpacket_possible()
    if skip is None:
        print(f"AF_PACKET port I/O (BMv2 set-up: veth pair in a network namespace), "
              f"{args.packets} packets per case, at most {VethSwitch.WINDOW} in flight, batch 64")
        af_results = run(args.packets, "afpacket")
        _print_table(af_results, prefix="af_packet ")
        af = {(r.op, r.size): r for r in af_results}
        print(f"af_packet ratio_64={af[('encrypt', 64)].ratio:.3f} "
              f"ratio_1400={af[('encrypt', 1400)].ratio:.3f} "
              f"floor_ratio_64={af[('encrypt', 64)].floor_ratio:.3f} "
              f"floor_ratio_1400={af[('encrypt', 1400)].floor_ratio:.3f}")
        scaling = workers_scaling(args.packets)
        print(f"af_packet --workers (encrypt 64, 2 SAs, {args.packets} frames queued in bursts "
              f"while the workers are stopped, then answered, {os.cpu_count()} CPUs): "
              + ", ".join(
                  f"{r.workers} worker{'s' if r.workers > 1 else ''} {r.wall:,.0f} frames/s "
                  f"({r.per_core:,.0f}/core, {r.lost} lost before the worker)"
                  for r in scaling))
        print(f"af_packet workers_1={scaling[0].wall:.0f} workers_2={scaling[1].wall:.0f} "
              f"workers_2_vs_1={scaling[1].wall / scaling[0].wall:.2f}")
    else:
        print(f"AF_PACKET port I/O: not measured ({skip})")
    by_case = {(r.op, r.size): r for r in results}
    print(f"nanomsg floor_ratio_64={by_case[('encrypt', 64)].floor_ratio:.3f} "
          f"floor_ratio_1400={by_case[('encrypt', 1400)].floor_ratio:.3f}")
    print(f"ratio_64={by_case[('encrypt', 64)].ratio:.3f} "
          f"ratio_1400={by_case[('encrypt', 1400)].ratio:.3f}")


if __name__ == "__main__":
    main()
