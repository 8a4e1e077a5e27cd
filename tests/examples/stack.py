"""The product as `make run` starts it, on free ports in a private temp dir: ``p4sim run
p4src/tunnel_offload.p4`` (front-panel ports on one nanomsg socket, the crypto port 64 on its
own), the crypto worker on that port, and the controller with its P4Runtime data plane, TLS, the
routes of examples/routes.txt and the metrics endpoint. tunnelctl runs in-process against it;
examples/send_traffic.py too, on the front-panel socket. Readiness is polled, never slept for.
"""

from __future__ import annotations

import io
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from examples_support import EXAMPLES, REPO, load_example_module
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tunnelctl.__main__ import main as tunnelctl_main

READY_TIMEOUT = 60.0
CRYPTO_PORT = 64


@dataclass(frozen=True, kw_only=True)
class Result:
    status: int
    out: str
    err: str


class Stack:
    """Switch, worker and controller; :meth:`close` stops exactly the processes it started."""

    def __init__(self, routes: Path = EXAMPLES / "routes.txt") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ex-"))   # short: Unix socket paths ~100 bytes
        self.packet_url = f"ipc://{self.dir}/ports.ipc"
        self.crypto_url = f"ipc://{self.dir}/crypto-port.ipc"
        self.sa_socket = self.dir / "crypto-sa.sock"
        self.state_dir = self.dir / "state"
        self.routes = routes
        self.processes: list[subprocess.Popen[bytes]] = []
        self.address = ""
        self.metrics_url = ""

    # ---- start ---------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.dir / f"{name}.log"
        with log.open("wb") as handle:
            process = subprocess.Popen(argv, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process, log

    def _wait_line(self, process: subprocess.Popen[bytes], log: Path,
                   pattern: str) -> re.Match[str]:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            found = re.search(pattern, log.read_text(errors="replace"))
            if found:
                return found
            if process.poll() is not None:
                raise RuntimeError(f"{log.name}: exited {process.returncode}\n{log.read_text()}")
            time.sleep(0.05)
        raise RuntimeError(f"{log.name}: no line matching {pattern!r}\n{log.read_text()}")

    def start(self) -> Stack:
        python = sys.executable
        switch, log = self._spawn("p4sim", [
            python, "-m", "p4sim", "run", str(REPO / "p4src" / "tunnel_offload.p4"),
            "--grpc-addr", "127.0.0.1:0", "--packet-socket", self.packet_url,
            "--port", f"{CRYPTO_PORT}@{self.crypto_url}"])
        p4rt_port = self._wait_line(switch, log, r"p4sim ready: .* grpc-port=(\d+)").group(1)
        worker, log = self._spawn("crypto-worker", [
            python, "-m", "crypto_worker", "--sa-socket", str(self.sa_socket),
            "--nanomsg", self.crypto_url, "--state-dir", str(self.dir / "worker-state"),
            "--log-level", "WARNING"])
        self._wait_health(f"unix:{self.sa_socket}", worker, log, secure=False)
        controller, log = self._spawn("controller", [
            python, "-m", "controller", "--listen", "localhost:0", "--state-dir",
            str(self.state_dir), "--switch-addr", f"127.0.0.1:{p4rt_port}",
            "--crypto-worker-socket", str(self.sa_socket), "--routes", str(self.routes),
            "--metrics-addr", "127.0.0.1:0", "--data-plane", "p4runtime"])
        port = self._wait_line(controller, log, r"serving TLS on \S+:(\d+);").group(1)
        self.address = f"localhost:{port}"
        self.metrics_url = self._wait_line(
            controller, log, r"Prometheus endpoint on (http://\S+/metrics)").group(1)
        ready = self.tunnelctl("health", "--wait", str(int(READY_TIMEOUT)))
        if ready.status != 0:
            raise RuntimeError(f"controller not ready: {ready.err}\n{log.read_text()}")
        return self

    def _wait_health(self, target: str, process: subprocess.Popen[bytes], log: Path, *,
                     secure: bool) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{log.name}: exited {process.returncode}\n{log.read_text()}")
            try:
                with grpc.insecure_channel(target) as channel:
                    reply = health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{log.name}: not SERVING\n{log.read_text()}")

    def close(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
                         for log in sorted(self.dir.glob("*.log")))

    # ---- use -----------------------------------------------------------------------------------

    def tunnelctl(self, *argv: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        status = tunnelctl_main(["--server", self.address, "--state-dir", str(self.state_dir),
                                 *argv], out=out, err=err)
        return Result(status=status, out=out.getvalue(), err=err.getvalue())

    def send_traffic(self, *argv: str) -> Result:
        """examples/send_traffic.py's main on this switch's front-panel socket."""
        send_traffic = load_example_module("send_traffic")
        out = io.StringIO()
        err = io.StringIO()
        saved = sys.stderr
        sys.stderr = err
        try:
            status = send_traffic.main(["--socket", self.packet_url, *argv], out=out)
        finally:
            sys.stderr = saved
        return Result(status=status, out=out.getvalue(), err=err.getvalue())
