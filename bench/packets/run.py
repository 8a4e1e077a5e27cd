"""Packets per second end to end through the processes `make run` starts: p4sim running
p4src/tunnel_offload.p4, the crypto worker on p4sim's crypto port, the controller programming
both over its own API. Each case is also run in-process, in the same run, through p4sim's
`Switch.process` on the same program holding the same entries (read back from the running
switch), and, for IPsec, the worker's `FrameProcessor` for the crypto port's round trip; the
figure is the end-to-end rate and its ratio to that in-process rate.

Cases: plain routing, Geneve encapsulation, IPsec encrypt and decrypt (AES-128-GCM, tunnel
mode), with 128- and 1,400-byte frames. Every frame that comes out, end to end and in-process,
is compared byte for byte with the expected frame (built with scapy from the documented
behaviour, as the e2e suite builds it; the ESP ciphertext for each sequence number with the
`cryptography` AEAD); a lost, extra or wrong frame fails the run. Each line also gives the CPU
time p4sim and the worker spent per frame (all threads, from /proc/PID/task/*/schedstat),
which the machine's other load does not distort the way it distorts the rates.

The bench plays PTF on p4sim's device socket (BMv2's nanomsg packet-in format), keeping at most
``--window`` frames in flight; a receive thread collects the outputs.

``--extra-tunnels N`` first installs N more tunnels through the controller, in one
createIpTunnel stream, of the shapes the reference scenarios use (IPsec decrypt on a /32 address
pair and an exact SPI, IPsec encrypt and Geneve encap on a /32 source), on addresses and SPIs no
benchmark frame carries; ``--extra-tunnels 0,60000`` measures every case at each level in turn in
the same processes (the cases' own tunnels are created anew per level) and ends with each case's
rate and CPU per frame at the last level against the first (issue 12: within 20 %).

Run: .venv/bin/python -m bench.packets.run [--packets N] [--window W] [--cases plain,encrypt]
[--extra-tunnels 0,60000] (or `make bench-packets BENCH_PACKETS_ARGS="..."`). Free ports
(port 0) and a private temporary directory.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import re
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
from finsy.proto import p4r, p4r_grpc
from pynng.exceptions import check_err

REPO = Path(__file__).resolve().parents[2]
for extra in ("ptf_tests/e2e", "ptf_tests/dataplane"):  # the e2e suite's packet builders
    sys.path.insert(0, str(REPO / extra))

from e2e_packets import (  # noqa: E402
    SUITES,
    Encap,
    esp_frame,
    esp_sa,
    expected_esp,
    geneve_encapped,
    routed,
    udp_packet,
)
from e2e_topology import SEND_PORT, port_of  # noqa: E402
from e2e_tunnels import decrypt as decrypt_tunnel  # noqa: E402
from e2e_tunnels import encrypt as encrypt_tunnel  # noqa: E402
from e2e_tunnels import geneve_encap, ipv4_match, key_of  # noqa: E402
from scapy.layers.inet import IP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402

from crypto_worker.ciphers import SUITE_BY_ENC_TYPE_NAME  # noqa: E402
from crypto_worker.processor import FrameProcessor  # noqa: E402
from crypto_worker.sa import Direction, EspMode, SaConfig, SaKeys  # noqa: E402
from crypto_worker.sa_table import SaTable  # noqa: E402
from crypto_worker.secret import Secret  # noqa: E402
from crypto_worker.shim import parse_shim  # noqa: E402
from p4sim.p4runtime.schema import Schema  # noqa: E402
from p4sim.p4runtime.writer import BatchWriter  # noqa: E402
from p4sim.program import load_program  # noqa: E402
from p4sim.switch import Switch  # noqa: E402
from tunnelctl.client import TunnelClient  # noqa: E402
from tunnelctl.connection import (  # noqa: E402
    ConnectionSettings,
    default_ca_path,
    open_channel,
)
from tunnelctl.document import parse_requests  # noqa: E402
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb  # noqa: E402

PROGRAM = REPO / "p4src" / "tunnel_offload.p4"
P4INFO = REPO / "p4src" / "tunnel_offload.p4info.txtpb"
ROUTES = REPO / "ptf_tests" / "e2e" / "routes.txt"
CRYPTO_PORT = 64
DEVICE_ID = 1
HEADER = struct.Struct("<iii")
PACKET_IN, PACKET_OUT = 3, 4
SIZES = (128, 1400)
SUITE_NAME = "_aes128gcm128"
SUITE = SUITES[SUITE_NAME]
OUTER = ("198.51.100.1", "198.51.100.2")          # encrypt: routed to port 7
PEER = ("198.51.100.30", "172.16.42.2")           # decrypt: the ESP packet's addresses
ENCAP = Encap(src="198.51.100.50", dst="198.51.100.51", vni=0x1234,
              inner_src_mac="02:00:00:00:0c:02", inner_dst_mac="02:00:00:00:0c:01")
READY_TIMEOUT = 60.0
INSTALL_TIMEOUT = 3600.0  # one stream of --extra-tunnels CREATEs
INSTALL_REPLY_BYTES = 256 << 20  # its answer: a response per request
EXTRA_FIRST_ID = 1_000_000  # the extra tunnels' ids, clear of the cases' (60,001 on)
EXTRA_NET = 0x64400000  # 100.64.0.0/10: extra tunnels' addresses, in no route, in no frame sent
EXTRA_DST_OFFSET = 1 << 21  # destinations in the upper half of that block
EXTRA_SPI_DECRYPT = 0x10000000  # extra tunnels' SPIs, clear of the cases' (9,100 on)
EXTRA_SPI_ENCRYPT = 0x20000000
ETH, IPV4, UDP_BYTES, ESP_HEAD, IV_BYTES = 14, 20, 8, 8, 8


@dataclass(frozen=True, kw_only=True)
class Case:
    """One measured case: the frames sent on port 0 and the one (port, frame) each must give."""

    name: str
    size: int
    frames: list[bytes]
    expected: list[tuple[int, bytes]]
    in_process: Callable[[], Callable[[bytes], list[tuple[int, bytes]]]]


@dataclass(frozen=True, kw_only=True)
class Result:
    name: str
    size: int
    extra: int  # tunnels installed besides the cases' own
    end_to_end: float
    in_process: float
    p4sim_us: float  # p4sim's CPU time per frame sent (all its threads), microseconds
    worker_us: float  # the crypto worker's, likewise

    @property
    def ratio(self) -> float:
        return self.end_to_end / self.in_process


# -- the processes ------------------------------------------------------------------------------

class Stack:
    """p4sim, the crypto worker and the controller, started as run.sh starts them, on free
    ports in `tmp`; stopped (only these pids) on exit."""

    def __init__(self, tmp: Path, extra_p4sim_args: list[str]) -> None:
        self.tmp = tmp
        self.processes: list[subprocess.Popen[bytes]] = []
        self.extra = extra_p4sim_args
        self.ports_url = f"ipc://{tmp}/ports.ipc"
        self.p4rt_addr = ""
        self.api_addr = ""

    def _start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        out = open(self.tmp / f"{name}.out", "wb")  # noqa: SIM115 - lives with the process
        err = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=REPO,
                                   env=dict(os.environ, PYTHONPATH=str(REPO)))
        self.processes.append(process)
        return process

    def _wait(self, what: str, process: subprocess.Popen[bytes], check: Callable[[], bool]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not check():
            if process.poll() is not None:
                raise RuntimeError(f"{what}: process exited; see {self.tmp}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: not ready after {READY_TIMEOUT} s")
            time.sleep(0.1)

    def start(self) -> None:
        py = sys.executable
        tmp = self.tmp
        switch = self._start("p4sim", [
            py, "-m", "p4sim", "run", str(PROGRAM), "--packet-socket", self.ports_url,
            "--port", f"{CRYPTO_PORT}@ipc://{tmp}/crypto-port.ipc", "--grpc-addr", "127.0.0.1:0",
            "--device-id", str(DEVICE_ID), *self.extra])
        ready = tmp / "p4sim.out"
        self._wait("p4sim", switch, lambda: b"p4sim ready" in ready.read_bytes())
        port = re.search(rb"grpc-port=(\d+)", ready.read_bytes())
        assert port is not None
        self.p4rt_addr = f"127.0.0.1:{int(port.group(1))}"
        config = subprocess.run([py, "-m", "p4sim", "device-config", str(PROGRAM)], cwd=REPO,
                                check=True, capture_output=True).stdout
        (tmp / "device-config.json").write_bytes(config)
        worker = self._start("crypto-worker", [
            py, "-m", "crypto_worker", "--sa-socket", f"{tmp}/sa.sock", "--nanomsg",
            f"ipc://{tmp}/crypto-port.ipc", "--log-level", "WARNING"])
        self._wait("crypto worker", worker, lambda: _healthy(f"unix:{tmp}/sa.sock", None))
        controller = self._start("controller", [
            py, "-m", "controller", "--listen", "127.0.0.1:0", "--state-dir", f"{tmp}/state",
            "--switch-addr", self.p4rt_addr, "--device-id", str(DEVICE_ID), "--p4info",
            str(P4INFO), "--p4-device-config", f"{tmp}/device-config.json",
            "--crypto-worker-socket", f"{tmp}/sa.sock", "--routes", str(ROUTES),
            "--data-plane", "p4runtime"])
        log = tmp / "controller.log"
        pattern = re.compile(rb"serving TLS on [^ ]*:(\d+);")
        self._wait("controller", controller, lambda: pattern.search(log.read_bytes()) is not None)
        found = pattern.search(log.read_bytes())
        assert found is not None
        self.api_addr = f"127.0.0.1:{int(found.group(1))}"
        self._wait("controller health", controller,
                   lambda: _healthy(self.api_addr, f"{tmp}/state"))

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU time so far of p4sim and of the crypto worker, every thread (schedstat, ns)."""
        return _cpu(self.processes[0].pid), _cpu(self.processes[1].pid)


def _cpu(pid: int) -> float:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
    return total / 1e9


def _healthy(address: str, state_dir: str | None) -> bool:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        if state_dir is None:
            channel = grpc.insecure_channel(address)
        else:
            channel = open_channel(ConnectionSettings(server=address, state_dir=state_dir,
                                                      timeout=2))
        with channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                              timeout=2)
        return reply.status == health_pb2.HealthCheckResponse.SERVING
    except (grpc.RpcError, OSError, ValueError):
        return False


# -- the client (PTF's part) -------------------------------------------------------------------

def pump(url: str, frames: list[bytes], window: int, timeout: float = 60.0
         ) -> tuple[float, list[tuple[int, bytes]]]:
    """Sends every frame as PACKET_IN on port 0, at most `window` unanswered; returns the wall
    time until as many PACKET_OUT came back (or `timeout`), and what came back, in order."""
    sock = pynng.Pair0(recv_timeout=int(timeout * 1000), send_timeout=int(timeout * 1000),
                       recv_buffer_size=1024, send_buffer_size=1024)
    sock.dial(url, block=True)
    wire = [HEADER.pack(PACKET_IN, SEND_PORT, len(f)) + f for f in frames]
    credit = threading.Semaphore(window)
    received: list[tuple[int, bytes]] = []
    failure: list[BaseException] = []

    def receive() -> None:
        try:
            while len(received) < len(wire):
                raw = sock.recv()
                kind, port, _ = HEADER.unpack_from(raw)
                if kind == PACKET_OUT:
                    received.append((port, raw[HEADER.size:]))
                    credit.release()
        except BaseException as error:  # noqa: BLE001 - reported by the caller
            failure.append(error)
            credit.release()

    receiver = threading.Thread(target=receive, daemon=True)
    nng, send = sock.socket, pynng.lib.nng_send
    start = time.perf_counter()
    receiver.start()
    try:
        for message in wire:
            if not credit.acquire(timeout=timeout) or failure:
                break
            check_err(send(nng, message, len(message), 0))
        receiver.join(timeout)
    finally:
        elapsed = time.perf_counter() - start
        sock.close()
    return elapsed, received


# -- expected frames ---------------------------------------------------------------------------

def _payload(size: int) -> bytes:
    return bytes(i & 0xFF for i in range(size - ETH - IPV4 - UDP_BYTES))


class EspMaker:
    """ESP frames of one SA for any sequence number, from a template scapy made for seq 1 (the
    outer headers do not depend on the sequence number; the IV is the sequence number)."""

    def __init__(self, key_salt: bytes, template: bytes, esp_at: int, spi: int) -> None:
        self.aead = AESGCM(key_salt[:SUITE.key_bytes])
        self.salt = key_salt[SUITE.key_bytes:]
        self.head = template[:esp_at]
        self.spi = spi
        seq1 = struct.pack("!II", spi, 1)
        sealed = template[esp_at + ESP_HEAD + IV_BYTES:]
        self.plaintext = self.aead.decrypt(self.salt + (1).to_bytes(8, "big"), sealed, seq1)

    def frame(self, seq: int) -> bytes:
        iv = seq.to_bytes(8, "big")
        aad = struct.pack("!II", self.spi, seq)
        return self.head + aad + iv + self.aead.encrypt(self.salt + iv, self.plaintext, aad)


# -- extra tunnels ----------------------------------------------------------------------------

def _ip(value: int) -> str:
    return ".".join(str(b) for b in value.to_bytes(4, "big"))


def extra_tunnel(n: int, *, variant: int = 0) -> dict[str, object]:
    """The n-th extra tunnel, of the reference scenarios' three match shapes in turn, on its own
    addresses (and SPI) in EXTRA_NET, which no benchmark frame carries: an IPsec decrypt of one
    SA on a /32 source and destination (the switch matches them and the exact SPI), an IPsec
    encrypt and a Geneve encap on a /32 source. `variant` gives the same tunnel other keys."""
    tunnel_id = EXTRA_FIRST_ID + n
    src = _ip(EXTRA_NET + n)
    if n % 3 == 0:
        spi = EXTRA_SPI_DECRYPT + n
        dst = _ip(EXTRA_NET + EXTRA_DST_OFFSET + n)
        return decrypt_tunnel(tunnel_id, match={"ipv4Match": ipv4_match(src, dst)}, suite=SUITE,
                              tunnel_type="TUNNEL",
                              sas=[(spi, key_of(SUITE, spi, variant=variant))],
                              next_action="FORWARD")
    if n % 3 == 1:
        spi = EXTRA_SPI_ENCRYPT + n
        return encrypt_tunnel(tunnel_id, match={"ipv4Match": ipv4_match(src)}, suite=SUITE,
                              tunnel_type="TUNNEL", spi=spi,
                              key=key_of(SUITE, spi, variant=variant),
                              outer=OUTER)
    return geneve_encap(tunnel_id, match={"ipv4Match": ipv4_match(src)}, encap=ENCAP)


# -- cases ------------------------------------------------------------------------------------

class Bench:
    def __init__(self, stack: Stack, packets: int) -> None:
        self.stack = stack
        self.packets = packets
        self.program = load_program(PROGRAM)
        self.schema = Schema(self.program.p4info)
        channel = open_channel(ConnectionSettings(server=stack.api_addr,
                                                  state_dir=f"{stack.tmp}/state", timeout=30))
        self.api = TunnelClient(channel, timeout=30)
        # the answer to one stream of many CREATEs is larger than gRPC's default 4 MiB
        ca = default_ca_path(f"{stack.tmp}/state").read_bytes()
        self.installer = TunnelClient(grpc.secure_channel(
            stack.api_addr, grpc.ssl_channel_credentials(root_certificates=ca),
            options=[("grpc.max_receive_message_length", INSTALL_REPLY_BYTES)]),
            timeout=INSTALL_TIMEOUT)
        self.next_tunnel = 60000
        self.extra = 0  # extra tunnels installed so far

    def install_extra(self, total: int) -> float:
        """Brings the extra tunnels up to `total` in one createIpTunnel stream; seconds taken."""
        tunnels = [extra_tunnel(n) for n in range(self.extra, total)]
        if not tunnels:
            return 0.0
        requests = parse_requests(tunnels, operation=pb._CREATE)
        start = time.perf_counter()
        outcome = self.installer.send(requests)
        if outcome.status == "_TUNNEL_TABLE_UNAVAILABLE":
            # A data-plane fault (e.g. a worker call past its deadline on a loaded machine)
            # stops the stream; the batches before it stay applied, the rest is as before.
            # Say so, and send what is missing once more, in a second stream, with new keys:
            # the worker retires the key of an SA it added and the controller's undo removed.
            present = {t.tunnelId for t in self.installer.all_tunnels(page_size=1000)}
            requests = parse_requests(
                [extra_tunnel(n, variant=1) for n in range(self.extra, total)
                 if EXTRA_FIRST_ID + n not in present], operation=pb._CREATE)
            print(f"installing extra tunnels: {outcome.status} ({self._controller_log(1)}); "
                  f"sending the {len(requests):,} not applied once more", flush=True)
            outcome = self.installer.send(requests)
        elapsed = time.perf_counter() - start
        if not outcome.ok:
            failed = next((o for o in outcome.outcomes if o.failed), None)
            raise RuntimeError(f"installing {len(requests)} extra tunnels: {outcome.status}, "
                               f"first failure {failed}; the controller's log ends:\n"
                               + self._controller_log(15))
        self.extra = total
        return elapsed

    def create(self, tunnel: dict[str, object]) -> None:
        outcome = self.api.send(parse_requests([tunnel], operation=pb._CREATE))
        if not outcome.ok:
            raise RuntimeError(f"createIpTunnel refused: {outcome}")

    def _controller_log(self, lines: int) -> str:
        log = (self.stack.tmp / "controller.log").read_text(errors="replace")
        return "\n".join(log.splitlines()[-lines:])

    def mirror(self) -> Switch:
        """An in-process Switch on the same program with the running switch's entries."""
        channel = grpc.insecure_channel(self.stack.p4rt_addr)
        stub = p4r_grpc.P4RuntimeStub(channel)
        query = p4r.Entity(table_entry=p4r.TableEntry())
        entities = [e for reply in stub.Read(p4r.ReadRequest(device_id=DEVICE_ID,
                                                             entities=[query]))
                    for e in reply.entities]
        channel.close()
        switch = Switch(self.program)
        updates = [p4r.Update(type=p4r.Update.INSERT, entity=e) for e in entities]
        results = BatchWriter(self.schema, switch.state, {}).apply(updates, 0)
        failed = [r for r in results if r is not None]
        if failed:
            raise RuntimeError(f"mirroring the switch's entries failed: {failed[0]}")
        return switch

    def worker_in_process(self, direction: Direction, spi: int, key_salt: bytes
                          ) -> Callable[[bytes], bytes | None]:
        """The worker's FrameProcessor with the bench's SA at whatever index the switch asks."""
        suite = SUITE_BY_ENC_TYPE_NAME[SUITE_NAME]
        table = SaTable()
        processor = FrameProcessor(table)

        def process(message: bytes) -> bytes | None:
            index = parse_shim(message).sa_index
            if table.get(index) is None:
                table.add(SaConfig(sa_index=index, spi=spi, direction=direction, suite=suite,
                                   mode=EspMode.TUNNEL, nat_traversal=False, esn=False,
                                   replay_window=1024),
                          SaKeys(key=Secret(key_salt[:suite.key_bytes]),
                                 salt=Secret(key_salt[suite.key_bytes:])))
            return processor.process(message)
        return process

    def pipeline(self, crypto: Callable[[bytes], bytes | None] | None
                 ) -> Callable[[bytes], list[tuple[int, bytes]]]:
        switch = self.mirror()
        process = switch.process

        def run(frame: bytes) -> list[tuple[int, bytes]]:
            out = process(SEND_PORT, frame)
            if crypto is None:
                return out
            final: list[tuple[int, bytes]] = []
            for port, data in out:
                if port != CRYPTO_PORT:
                    final.append((port, data))
                    continue
                reply = crypto(data)
                if reply is not None:
                    final.extend(process(CRYPTO_PORT, reply))
            return final
        return run

    def cases(self, names: list[str], level: int = 0) -> Iterator[Case]:
        """The cases of `names`; `level` > 0 gives each its own new tunnel (addresses, SPI)."""
        n = self.packets
        for size in SIZES:
            index = SIZES.index(size) + len(SIZES) * level
            if "plain" in names:
                sent = udp_packet("172.16.60.1", "172.16.60.2", payload=_payload(size))
                out_port = port_of("172.16.0.0/16")
                expected = (out_port, bytes(routed(sent, out_port)))
                yield Case(name="plain", size=size, frames=[bytes(sent)] * n,
                           expected=[expected] * n, in_process=lambda: self.pipeline(None))
            if "geneve" in names:
                src = f"172.16.61.{index + 1}"
                self.create(geneve_encap(self._tunnel_id(), match={"ipv4Match": ipv4_match(src)},
                                         encap=ENCAP))
                sent = udp_packet(src, "172.16.61.200", payload=_payload(size))
                out_port = port_of("198.51.100.0/24")
                expected = (out_port, bytes(routed(geneve_encapped(sent, ENCAP), out_port)))
                yield Case(name="geneve", size=size, frames=[bytes(sent)] * n,
                           expected=[expected] * n, in_process=lambda: self.pipeline(None))
            if "encrypt" in names:
                yield self._encrypt_case(size, index)
            if "decrypt" in names:
                yield self._decrypt_case(size, index)

    def _tunnel_id(self) -> int:
        self.next_tunnel += 1
        return self.next_tunnel

    def _encrypt_case(self, size: int, index: int) -> Case:
        n = self.packets
        spi = 9100 + index
        key_hex = key_of(SUITE, spi)
        src = f"172.16.62.{index + 1}"
        self.create(encrypt_tunnel(self._tunnel_id(), match={"ipv4Match": ipv4_match(src)},
                                   suite=SUITE, tunnel_type="TUNNEL", spi=spi, key=key_hex,
                                   outer=OUTER))
        sent = udp_packet(src, "198.51.100.20", payload=_payload(size))
        out_port = port_of("198.51.100.0/24")
        sa = esp_sa(SUITE, spi=spi, key_hex=key_hex, tunnel=OUTER)
        template = bytes(expected_esp(sa, sent[IP], seq=1, port=out_port))
        maker = EspMaker(bytes.fromhex(key_hex), template, ETH + IPV4, spi)
        assert maker.frame(1) == template
        # The end-to-end run starts at sequence 1 (a fresh SA); the in-process one too.
        expected = [(out_port, maker.frame(seq)) for seq in range(1, n + 1)]
        return Case(name="encrypt", size=size, frames=[bytes(sent)] * n, expected=expected,
                    in_process=lambda: self.pipeline(self.worker_in_process(
                        Direction.ENCRYPT, spi, bytes.fromhex(key_hex))))

    def _decrypt_case(self, size: int, index: int) -> Case:
        n = self.packets
        spi = 9200 + index
        key_hex = key_of(SUITE, spi)
        peer = (f"198.51.100.{30 + index}", PEER[1])
        self.create(decrypt_tunnel(self._tunnel_id(), match={"ipv4Match": ipv4_match(*peer)},
                                   suite=SUITE, tunnel_type="TUNNEL", sas=[(spi, key_hex)],
                                   next_action="FORWARD"))
        sa = esp_sa(SUITE, spi=spi, key_hex=key_hex, tunnel=peer)
        # the ESP frame of `size` bytes (or up to 3 less): no padding after the inner packet
        overhead = ETH + IPV4 + ESP_HEAD + IV_BYTES + SUITE.icv_bytes
        inner = (size - overhead) // 4 * 4 - 2
        plain = udp_packet("172.16.63.1", "172.16.63.2",
                           payload=bytes(i & 0xFF for i in range(inner - IPV4 - UDP_BYTES)))[IP]
        template = bytes(esp_frame(sa, plain, seq=1))
        maker = EspMaker(bytes.fromhex(key_hex), template, ETH + IPV4, spi)
        frames = [maker.frame(seq) for seq in range(1, n + 1)]
        head = Ether(template)
        decrypted = Ether(dst=head.dst, src=head.src) / plain
        out_port = port_of("172.16.0.0/16")
        expected = (out_port, bytes(routed(decrypted, out_port)))
        return Case(name="decrypt", size=len(template), frames=frames, expected=[expected] * n,
                    in_process=lambda: self.pipeline(self.worker_in_process(
                        Direction.DECRYPT, spi, bytes.fromhex(key_hex))))


def _check(what: str, got: list[tuple[int, bytes]], expected: list[tuple[int, bytes]]) -> None:
    if len(got) != len(expected):
        raise SystemExit(f"{what}: {len(got)} frames out for {len(expected)} sent")
    for number, (g, e) in enumerate(zip(got, expected, strict=True)):
        if g != e:
            raise SystemExit(f"{what}: frame {number} differs: got port {g[0]} "
                             f"{g[1][:64].hex()}..., expected port {e[0]} {e[1][:64].hex()}...")


def run(args: argparse.Namespace) -> list[Result]:
    names = args.cases.split(",")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-packets-") as tmp_name:
        stack = Stack(Path(tmp_name), args.p4sim_arg)
        try:
            stack.start()
            bench = Bench(stack, args.packets)
            for level, extra in enumerate(args.extra_tunnels):
                if extra > bench.extra:
                    added = extra - bench.extra
                    seconds = bench.install_extra(extra)
                    print(f"{added:,} extra tunnels installed in one createIpTunnel stream: "
                          f"{seconds:.1f} s ({added / seconds:,.0f} tunnels/s); load average "
                          f"{os.getloadavg()[0]:.2f}", flush=True)
                for case in bench.cases(names, level):
                    results.append(_measure(stack, case, bench.extra, args.window))
        finally:
            stack.stop()
    return results


def _measure(stack: Stack, case: Case, extra: int, window: int) -> Result:
    label = f"{case.name} {case.size}"
    run_in_process = case.in_process()
    # in-process: same frames, same checks, timed over the whole batch. The previous case's
    # mirror switch goes first and the long-lived objects (with --extra-tunnels, millions:
    # the mirror's entries, the requests) are frozen, so that no full collection of them
    # lands inside the timed loop.
    gc.collect()
    gc.freeze()
    try:
        start = time.perf_counter()
        outputs = [out for frame in case.frames for out in run_in_process(frame)]
        in_pps = len(case.frames) / (time.perf_counter() - start)
    finally:
        gc.unfreeze()
    _check(f"{label} in-process", outputs, case.expected)
    switch_before, worker_before = stack.cpu_seconds()
    elapsed, got = pump(stack.ports_url, case.frames, window)
    switch_after, worker_after = stack.cpu_seconds()
    _check(f"{label} end to end", got, case.expected)
    count = len(case.frames)
    result = Result(name=case.name, size=case.size, extra=extra, end_to_end=count / elapsed,
                    in_process=in_pps, p4sim_us=(switch_after - switch_before) / count * 1e6,
                    worker_us=(worker_after - worker_before) / count * 1e6)
    tunnels = f"+{extra:,}" if extra else ""
    print(f"{label:12} {tunnels:>7} end to end {result.end_to_end:9,.0f} pps   "
          f"in-process {in_pps:9,.0f} pps   ratio {result.ratio:.3f}   "
          f"CPU/frame p4sim {result.p4sim_us:5.1f} us, worker "
          f"{result.worker_us:5.1f} us", flush=True)
    return result


def _compare(results: list[Result]) -> None:
    """Each case at the last extra-tunnel level against the first, in the same run."""
    levels = sorted({r.extra for r in results})
    if len(levels) < 2:
        return
    first = {(r.name, r.size): r for r in results if r.extra == levels[0]}
    for r in results:
        if r.extra != levels[-1] or (r.name, r.size) not in first:
            continue
        base = first[(r.name, r.size)]
        print(f"{r.name} {r.size}: +{r.extra:,} vs +{base.extra:,} tunnels: end to end "
              f"{r.end_to_end / base.end_to_end:.2f}x, in-process "
              f"{r.in_process / base.in_process:.2f}x, CPU/frame p4sim "
              f"{r.p4sim_us / base.p4sim_us:.2f}x (goal: within 20 %)", flush=True)


def _levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--extra-tunnels: {text!r} is not N or N,M,...") from None
    if any(level < 0 for level in levels) or levels != sorted(levels):
        raise argparse.ArgumentTypeError(
            f"--extra-tunnels: {text!r} must be counts >= 0 in ascending order")
    return levels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=3000, help="frames per case")
    parser.add_argument("--window", type=int, default=1024,
                        help="frames in flight at most (default %(default)s)")
    parser.add_argument("--cases", default="plain,geneve,encrypt,decrypt")
    parser.add_argument("--p4sim-arg", action="append", default=[],
                        help="an extra argument for `p4sim run` (repeatable), e.g. --pcap=DIR")
    parser.add_argument("--extra-tunnels", type=_levels, default=[0], metavar="N[,M...]",
                        help="tunnels to install (through the controller, one stream) besides "
                             "the cases' own before measuring; several ascending counts measure "
                             "the cases at each in turn (default 0)")
    args = parser.parse_args()
    print(f"{args.packets} frames per case, window {args.window}, every output checked; "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}", flush=True)
    results = run(args)
    _compare(results)
    print(" ".join(f"{r.name}_{r.size}" + (f"_x{r.extra}" if r.extra else "")
                   + f"={r.end_to_end:.0f}" for r in results))
    print(f"load average {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
