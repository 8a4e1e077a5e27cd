"""Real processes for the data-plane tests: ``p4sim run p4src/tunnel_offload.p4``, the crypto
worker, a P4Runtime reader (plain Read RPCs, no arbitration) and a packet port on the switch's
nanomsg socket (BMv2's packet-in message format)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import finsy as fy
import grpc
import pynng
from finsy.proto import p4r, p4r_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
PROGRAM = REPO / "p4src" / "tunnel_offload.p4"
P4INFO = REPO / "p4src" / "tunnel_offload.p4info.txtpb"
BIN = REPO / ".venv" / "bin"
READY_TIMEOUT = 30.0
PACKET_IN, PACKET_OUT = 3, 4
CRYPTO_PORT = 64


class SwitchProcess:
    """``p4sim run`` on a free P4Runtime port; front-panel ports on one socket, port 64 on its
    own (for the worker). :meth:`restart` keeps the addresses (the pipeline state is lost).

    With ``tls`` (a controller.switch_pki.SwitchPki) P4Runtime is mutual TLS, as ``make run``
    serves it; by default it is plaintext."""

    def __init__(self, workdir: Path, tls: Any = None) -> None:
        self.packet_url = f"ipc://{workdir}/switch.ipc"
        self.crypto_url = f"ipc://{workdir}/crypto.ipc"
        self.grpc_port = 0
        self.tls = tls
        self.process: subprocess.Popen[str] | None = None

    def channel(self) -> grpc.Channel:
        """A channel to the P4Runtime server (with the controller's certificate under TLS)."""
        if self.tls is None:
            return grpc.insecure_channel(self.address)
        return grpc.secure_channel(self.address, grpc.ssl_channel_credentials(
            root_certificates=self.tls.ca_cert.read_bytes(),
            private_key=self.tls.controller_key.read_bytes(),
            certificate_chain=self.tls.controller_cert.read_bytes()))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self) -> None:
        # DP_P4SIM_SRC: run the p4sim package of another checkout (e.g. a clean export).
        source = os.environ.get("DP_P4SIM_SRC", str(REPO))
        tls_args = [] if self.tls is None else [
            "--grpc-server-ssl", "--grpc-server-cert", str(self.tls.switch_cert),
            "--grpc-server-key", str(self.tls.switch_key), "--grpc-server-cacert",
            str(self.tls.ca_cert), "--grpc-server-with-client-auth"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "p4sim", "run", str(PROGRAM), "--grpc-addr",
             f"127.0.0.1:{self.grpc_port}", "--packet-socket", self.packet_url,
             "--port", f"{CRYPTO_PORT}@{self.crypto_url}", *tls_args],
            cwd=source, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"p4sim exited with {self.process.wait()}")
            found = re.search(r"p4sim ready: .* grpc-port=(\d+)", line)
            if found:
                self.grpc_port = int(found.group(1))
                return
        raise RuntimeError("p4sim did not get ready")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def restart(self) -> None:
        self.kill()
        self.start()


class WorkerProcess:
    """``tunnel-offload-crypto-worker`` dialing the switch's crypto-port socket."""

    def __init__(self, workdir: Path, crypto_url: str, *extra_args: str) -> None:
        self.socket = workdir / "worker.sock"
        self.extra_args = extra_args  # e.g. ("--sequence-block", "64")
        self.state_dir = workdir / "worker-state"  # durable SA state: kept across restarts
        self.crypto_url = crypto_url
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(BIN / "tunnel-offload-crypto-worker"), "--sa-socket", str(self.socket),
             "--state-dir", str(self.state_dir), "--nanomsg", self.crypto_url,
             "--log-level", "WARNING", *self.extra_args],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        channel = grpc.insecure_channel(f"unix:{self.socket}")
        try:
            health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=READY_TIMEOUT,
                wait_for_ready=True)
        finally:
            channel.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


class SwitchReader:
    """Reads the switch's tables and counters over P4Runtime (Read needs no arbitration)."""

    def __init__(self, switch: SwitchProcess) -> None:
        self.switch = switch
        self.schema = fy.P4Schema(P4INFO)

    def _read(self, entity: p4r.Entity) -> list[p4r.Entity]:
        with self.switch.channel() as channel:
            stub = p4r_grpc.P4RuntimeStub(channel)
            request = p4r.ReadRequest(device_id=1, entities=[entity])
            return [e for response in stub.Read(request, timeout=10) for e in response.entities]

    def entries(self, table: str) -> list[fy.P4TableEntry]:
        table_id = self.schema.tables[table].id
        entities = self._read(p4r.Entity(table_entry=p4r.TableEntry(table_id=table_id)))
        return [fy.P4TableEntry.decode(e, self.schema) for e in entities]

    def snapshot(self) -> dict[str, list[bytes]]:
        """Every managed table's entries as sorted canonical bytes (for "untouched" checks)."""
        result = {}
        for table in ("tunnel_rules", "esp_endpoints", "decrypt_sas", "routes_v4", "routes_v6"):
            table_id = self.schema.tables[table].id
            entities = self._read(p4r.Entity(table_entry=p4r.TableEntry(table_id=table_id)))
            result[table] = sorted(e.SerializeToString(deterministic=True) for e in entities)
        return result

    def counter(self, name: str, index: int) -> tuple[int, int]:
        counter_id = self.schema.counters[name].id
        [entity] = self._read(p4r.Entity(counter_entry=p4r.CounterEntry(
            counter_id=counter_id, index=p4r.Index(index=index))))
        data = entity.counter_entry.data
        return data.packet_count, data.byte_count


@dataclass
class PacketPort:
    """The PTF side of the switch's device socket: send frames in, receive frames out."""

    url: str

    def __post_init__(self) -> None:
        self.socket = pynng.Pair0(dial=self.url, recv_timeout=3000)

    def send(self, port: int, frame: bytes) -> None:
        self.socket.send(struct.pack("<iii", PACKET_IN, port, len(frame)) + frame)

    def receive(self, timeout: float = 3.0) -> tuple[int, bytes] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.socket.recv()
            except pynng.Timeout:
                return None
            kind, port, _ = struct.unpack_from("<iii", message)
            if kind == PACKET_OUT:
                return port, message[12:]
        return None

    def close(self) -> None:
        self.socket.close()


async def eventually(check: Any, timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll ``check()`` until it returns a truthy value (never sleep-and-hope)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


def worker_sas(socket: Path) -> dict[int, Any]:
    """The worker's SAs by index (ListSas over its Unix socket)."""
    from tunneloffload.crypto.v1 import worker_pb2 as wpb
    from tunneloffload.crypto.v1 import worker_pb2_grpc as wpb_grpc

    with grpc.insecure_channel(f"unix:{socket}") as channel:
        response = wpb_grpc.CryptoWorkerStub(channel).ListSas(wpb.ListSasRequest(), timeout=5)
    return {info.params.sa_index: info.params for info in response.sas}


async def health(port: int) -> int:
    """The controller's health status for "" (plaintext channel)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5, wait_for_ready=True)
        return response.status


async def wait_serving(controller: Any, timeout: float = 20.0) -> None:
    """Poll the controller's health until SERVING."""

    async def serving() -> bool:
        return await health(controller.port) == health_pb2.HealthCheckResponse.SERVING

    await eventually(serving, timeout=timeout, interval=0.1)


def plant_sa(socket, sa_index: int, spi: int) -> None:
    """Install an SA behind the controller's back (to make its next AddSa fail)."""
    from tunneloffload.crypto.v1 import worker_pb2 as wpb
    from tunneloffload.crypto.v1 import worker_pb2_grpc as wpb_grpc

    with grpc.insecure_channel(f"unix:{socket}") as channel:
        wpb_grpc.CryptoWorkerStub(channel).AddSa(wpb.AddSaRequest(
            params=wpb.SaParams(sa_index=sa_index, spi=spi, direction=wpb.DIRECTION_DECRYPT,
                                cipher=wpb.CIPHER_AES256_GCM_ICV8, mode=wpb.MODE_TRANSPORT),
            key=wpb.SaKey(key=b"\x01" * 32, salt=b"\0" * 4)), timeout=5)


class ControllerProcess:
    """``python -m controller`` as its own process (so it can be SIGKILLed), started the way
    scripts/run.sh starts it — the same state dir on every (re)start — but plaintext on a free
    port. Its log goes to ``<workdir>/controller.log`` (appended across restarts)."""

    def __init__(self, workdir: Path, switch: SwitchProcess, worker: WorkerProcess,
                 routes: Path) -> None:
        self.state_dir = workdir / "controller-state"
        self.log_path = workdir / "controller.log"
        self.switch = switch
        self.worker = worker
        self.routes = routes
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "controller", "--listen", "127.0.0.1:0", "--insecure",
                 "--state-dir", str(self.state_dir), "--data-plane", "p4runtime",
                 "--switch-addr", self.switch.address, "--crypto-worker-socket",
                 str(self.worker.socket), "--routes", str(self.routes), "--log-level", "INFO"],
                cwd=REPO, stdout=subprocess.DEVNULL, stderr=log_file)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"controller exited with {self.process.returncode}: "
                                   f"{self.log()[offset:][-2000:]}")
            found = re.search(r"serving PLAINTEXT \(--insecure\) on [\d.]+:(\d+)",
                              self.log()[offset:])
            if found:
                self.port = int(found.group(1))
                return
            time.sleep(0.05)
        raise RuntimeError("the controller did not log its port")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_serving(self, timeout: float = 30.0) -> None:
        """Poll the controller's health until SERVING."""
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                try:
                    status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2,
                                        wait_for_ready=True).status
                except grpc.RpcError:
                    status = None
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"controller not SERVING after {timeout}s (last "
                                         f"status {status})")
                time.sleep(0.1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM (a clean stop), SIGKILL after 10 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
