"""``make bench-control``: control-plane throughput of the controller — with the full data plane
on p4sim (switch + crypto worker + controller) and with ``--data-plane detached`` — against
an in-repo baseline server of the same API that only stores requests (baseline_server.py: the
cost floor of gRPC + protobuf + TLS here), all in one run, same client, same requests.

Workloads (IPsec-decrypt CREATEs, each with its own /32 source, SPI and key):
one createIpTunnel stream of --stream-small and of --stream-large requests, --singles streams
of one request each, and paged getAllIpTunnelsStats (--page per response) over --stats-small
and --stats-large tunnels (topped up in streams of at most --load-chunk when fewer are stored).
A stream the controller refuses is reported as refused. Prints tunnels/s, the ratio to the
baseline, the RSS of every process started, and each process's CPU time per tunnel for
every workload (this client's too). Free ports, a private temp dir, every process
stopped by pid at the end.

Run: .venv/bin/python -m bench.control.run [--stream-small 5000 --stream-large 50000
     --singles 1000 --stats-small 5000 --stats-large 65536 --rounds 1]
(--rounds 3 on a loaded machine: medians of alternating rounds, each round's ratios taken
against that round's baseline.)
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[2]
PROGRAM = REPO / "p4src" / "tunnel_offload.p4"
P4INFO = REPO / "p4src" / "tunnel_offload.p4info.txtpb"
ROUTES = REPO / "ptf_tests" / "e2e" / "routes.txt"
CRYPTO_PORT = 64
READY_TIMEOUT = 60.0


def ipsec_decrypt(tunnel_id: int) -> pb.ipTunnelRequest:
    """A CREATE of an IPsec-decrypt tunnel; id, /32 source and SPI follow from tunnel_id."""
    request = pb.ipTunnelRequest(tunnelId=tunnel_id, operation=pb._CREATE, nextAction=pb.FORWARD)
    source = ipaddress.IPv4Address(0x0A000000 + tunnel_id)
    request.match_criteria.ipv4Match.sourceIp = int.from_bytes(source.packed, "little")
    request.match_criteria.ipv4Match.sourceIpPrefix = 32
    dec = request.ipsecTunnel.ipsecDec
    dec.tunnelType = pb.TRANSPORT
    dec.encryptionType = pb._aes256gcm64
    dec.ipsecSAs.add(spi=0x10000 + tunnel_id, encryptionKey=os.urandom(32).hex().encode(),
                     operation=pb._CREATE)
    return request


@dataclass
class Target:
    """One API server under test and the processes behind it."""

    name: str
    port: int
    cert: Path
    pids: dict[str, int] = field(default_factory=dict)
    stored: int = 0  # tunnels created so far
    next_id: int = 1


class Processes:
    """Processes this run started; stopped in reverse order, by pid."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("wb")
        process = subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT,
                                   cwd=REPO)
        self.started.append(process)
        return process

    def wait_for(self, name: str, process: subprocess.Popen[bytes], pattern: str) -> re.Match[str]:
        deadline = time.monotonic() + READY_TIMEOUT
        path = self.tmp / f"{name}.log"
        while time.monotonic() < deadline:
            found = re.search(pattern, path.read_text(errors="replace"))
            if found:
                return found
            if process.poll() is not None:
                raise SystemExit(f"{name} exited early:\n{path.read_text()[-2000:]}")
            time.sleep(0.1)
        raise SystemExit(f"{name}: not ready after {READY_TIMEOUT} s")

    def stop(self) -> None:
        for process in reversed(self.started):
            if process.poll() is None:
                process.terminate()
        for process in reversed(self.started):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start_baseline(procs: Processes) -> Target:
    state = procs.tmp / "baseline"
    process = procs.start("baseline", "-m", "bench.control.baseline_server", str(state))
    found = procs.wait_for("baseline", process, r"baseline ready port=(\d+) cert=(\S+)")
    return Target("baseline", int(found[1]), Path(found[2]), {"baseline": process.pid})


def start_controller(procs: Processes, name: str, *args: str) -> tuple[int, Path, int]:
    state = procs.tmp / name
    process = procs.start(name, "-m", "controller", "--listen", "127.0.0.1:0",
                          "--state-dir", str(state), *args)
    found = procs.wait_for(name, process, r"serving TLS on [^ ]*:(\d+);")
    return int(found[1]), state / "tls" / "server.crt", process.pid


def start_detached(procs: Processes) -> Target:
    port, cert, pid = start_controller(procs, "detached", "--data-plane", "detached")
    return Target("detached", port, cert, {"controller": pid})


@dataclass
class Switch:
    """p4sim running PROGRAM and the crypto worker on its crypto port."""

    p4rt_port: int
    device_config: Path
    sa_socket: Path
    switch_pid: int
    worker_pid: int


def start_switch(procs: Processes) -> Switch:
    tmp = procs.tmp
    switch = procs.start("p4sim", "-m", "p4sim", "run", str(PROGRAM), "--packet-socket",
                         f"ipc://{tmp}/ports.ipc", "--port",
                         f"{CRYPTO_PORT}@ipc://{tmp}/crypto-port.ipc", "--grpc-addr",
                         "127.0.0.1:0", "--device-id", "1")
    p4rt_port = procs.wait_for("p4sim", switch, r"grpc-port=(\d+)")[1]
    config = tmp / "device-config.json"
    config.write_bytes(subprocess.run([sys.executable, "-m", "p4sim", "device-config",
                                       str(PROGRAM)], check=True, capture_output=True,
                                      cwd=REPO).stdout)
    worker = procs.start("crypto-worker", "-m", "crypto_worker", "--sa-socket",
                         f"{tmp}/crypto-sa.sock", "--nanomsg", f"ipc://{tmp}/crypto-port.ipc")
    deadline = time.monotonic() + READY_TIMEOUT
    while not (tmp / "crypto-sa.sock").exists():
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the crypto worker did not start: "
                             + (tmp / "crypto-worker.log").read_text()[-2000:])
        time.sleep(0.1)
    return Switch(int(p4rt_port), config, tmp / "crypto-sa.sock", switch.pid, worker.pid)


def start_full(procs: Processes) -> Target:
    switch = start_switch(procs)
    port, cert, pid = start_controller(
        procs, "full", "--switch-addr", f"127.0.0.1:{switch.p4rt_port}", "--device-id", "1",
        "--p4info", str(P4INFO), "--p4-device-config", str(switch.device_config),
        "--crypto-worker-socket", str(switch.sa_socket), "--routes", str(ROUTES),
        "--data-plane", "p4runtime")
    return Target("full", port, cert, {"p4sim": switch.switch_pid,
                                       "crypto-worker": switch.worker_pid, "controller": pid})


def _channel(target: Target) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(target.cert.read_bytes())
    return grpc.aio.secure_channel(f"localhost:{target.port}", credentials,
                                   options=[("grpc.max_receive_message_length", 64 << 20)])


async def _ready(channel: grpc.aio.Channel, target: Target) -> None:
    """Polls until the server answers (the controllers: health SERVING, i.e. data plane up)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            if target.name == "baseline":
                await pb_grpc.ipTunnelServiceStub(channel).Capabilities(pb.CapabilityRequest(),
                                                                        timeout=2)
                return
            status = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2)
            if status.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{target.name}: not serving after {READY_TIMEOUT} s")
        await asyncio.sleep(0.2)


async def create_stream(stub: pb_grpc.ipTunnelServiceStub, target: Target,
                        count: int) -> tuple[float, str]:
    """One stream of `count` CREATEs: (seconds, outcome)."""
    requests = [ipsec_decrypt(target.next_id + i) for i in range(count)]

    async def feed() -> Iterator[pb.ipTunnelRequest]:  # type: ignore[misc]
        for request in requests:
            yield request

    start = time.perf_counter()
    try:
        answer = await stub.createIpTunnel(feed(), timeout=3600)
    except grpc.aio.AioRpcError as error:
        return time.perf_counter() - start, f"refused: {error.code().name} {error.details()}"
    elapsed = time.perf_counter() - start
    if answer.requestStatus != pb._TUNNEL_ACCEPTED:
        return elapsed, f"refused: {pb.ADD_TUNNEL_STATUS.Name(answer.requestStatus)}"
    target.next_id += count
    target.stored += count
    return elapsed, "accepted"


async def singles(stub: pb_grpc.ipTunnelServiceStub, target: Target, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        request = ipsec_decrypt(target.next_id)

        async def feed(r: pb.ipTunnelRequest = request) -> Iterator[pb.ipTunnelRequest]:  # type: ignore[misc]
            yield r

        answer = await stub.createIpTunnel(feed(), timeout=60)
        if answer.requestStatus != pb._TUNNEL_ACCEPTED:
            raise SystemExit(f"{target.name}: single CREATE refused: {answer}")
        target.next_id += 1
        target.stored += 1
    return time.perf_counter() - start


async def top_up(stub: pb_grpc.ipTunnelServiceStub, target: Target, total: int,
                 chunk: int) -> None:
    while target.stored < total:
        _, outcome = await create_stream(stub, target, min(chunk, total - target.stored))
        if outcome != "accepted":
            raise SystemExit(f"{target.name}: loading tunnels failed: {outcome}")


async def stats_pass(stub: pb_grpc.ipTunnelServiceStub, page: int) -> tuple[float, int]:
    start = time.perf_counter()
    seen = 0
    async for response in stub.getAllIpTunnelsStats(pb.tunnelRequestArgs(tunnelsPerRequest=page),
                                                    timeout=3600):
        seen += len(response.responses)
    return time.perf_counter() - start, seen


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat utime, stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU time per process (and this client) spent on one workload, in µs per tunnel: where
    the machine's two cores go, next to the rate (the profile's first question). The kernel
    counts in clock ticks (10 ms here), so a workload of under a second of CPU reads coarse."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self.per_tunnel: dict[str, dict[str, float]] = {}  # work -> process -> µs per tunnel

    def _now(self) -> dict[str, float]:
        now = {process: cpu_seconds(pid) for process, pid in self._pids.items()}
        now["client"] = time.process_time()
        return now

    def start(self) -> None:
        self._start = self._now()

    def stop(self, work: str, tunnels: int) -> None:
        end = self._now()
        self.per_tunnel[work] = {process: (end[process] - self._start[process]) * 1e6
                                 / max(tunnels, 1) for process in end}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run_target(target: Target, args: argparse.Namespace, cpu: CpuMeter
                     ) -> dict[str, tuple[float, str]]:
    """Every workload on one target: name -> (tunnels/s, note); CPU per tunnel into ``cpu``."""
    out: dict[str, tuple[float, str]] = {}
    async with _channel(target) as channel:
        stub = pb_grpc.ipTunnelServiceStub(channel)
        await _ready(channel, target)
        for count, stats_after in ((args.stream_small, args.stats_small),
                                   (args.stream_large, None)):
            work = f"1 stream of {count:,} CREATEs"
            cpu.start()
            seconds, outcome = await create_stream(stub, target, count)
            cpu.stop(work, count)
            rate = count / seconds if outcome == "accepted" else 0.0
            out[work] = (rate, "" if outcome == "accepted" else f"{outcome} after {seconds:.1f} s")
            if stats_after is not None:
                await top_up(stub, target, stats_after, args.load_chunk)
                work = f"paged stats over {stats_after:,}"
                cpu.start()
                seconds, seen = await stats_pass(stub, args.page)
                cpu.stop(work, seen)
                out[work] = (seen / seconds, "")
        work = f"{args.singles:,} single-request streams"
        cpu.start()
        seconds = await singles(stub, target, args.singles)
        cpu.stop(work, args.singles)
        out[work] = (args.singles / seconds, "")
        await top_up(stub, target, args.stats_large, args.load_chunk)
        work = f"paged stats over {args.stats_large:,}"
        cpu.start()
        seconds, seen = await stats_pass(stub, args.page)
        cpu.stop(work, seen)
        out[work] = (seen / seconds, "")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream-small", type=int, default=5_000)
    parser.add_argument("--stream-large", type=int, default=50_000)
    parser.add_argument("--singles", type=int, default=1_000)
    parser.add_argument("--stats-small", type=int, default=5_000)
    parser.add_argument("--stats-large", type=int, default=65_535)
    parser.add_argument("--page", type=int, default=100)
    parser.add_argument("--load-chunk", type=int, default=4_096,
                        help="requests per stream when loading tunnels for the stats passes")
    parser.add_argument("--targets", default="baseline,detached,full")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every target this many times, fresh processes each time, in "
                             "alternating order; print medians (ratios: the median of each "
                             "round's ratio to that round's baseline)")
    args = parser.parse_args()
    names = args.targets.split(",")
    load_before = os.getloadavg()
    rounds: list[dict[str, dict[str, tuple[float, str]]]] = []
    rss: dict[str, dict[str, float]] = {}
    cpu: dict[str, dict[str, dict[str, float]]] = {}  # last round: target -> work -> process
    for number in range(args.rounds):
        order = names if number % 2 == 0 else names[::-1]
        results: dict[str, dict[str, tuple[float, str]]] = {}
        for name in order:
            results[name], rss[name], cpu[name] = run_fresh(name, args)
        rounds.append(results)
    load_after = os.getloadavg()
    print("\n| work | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for work in dict.fromkeys(w for r in rounds[0].values() for w in r):
        cells = []
        for name in names:
            rates = [r[name].get(work, (0.0, "n/a"))[0] for r in rounds]
            notes = sorted({r[name].get(work, (0.0, "n/a"))[1] for r in rounds} - {""})
            ratios = [r[name][work][0] / r["baseline"][work][0] for r in rounds
                      if name != "baseline" and work in r.get("baseline", {})
                      and r["baseline"][work][0] and r[name].get(work, (0.0,))[0]]
            ratio = f" ({statistics.median(ratios):.3f}x)" if ratios else ""
            cells.append(f"{statistics.median(rates):,.0f} /s{ratio}"
                         + (f" — {'; '.join(notes)}" if notes else ""))
        print(f"| {work} | " + " | ".join(cells) + " |")
    print(f"\n{args.rounds} round(s); load average (1, 5, 15 min) before "
          + ", ".join(f"{value:.1f}" for value in load_before) + ", after "
          + ", ".join(f"{value:.1f}" for value in load_after))
    print("RSS (MiB, last round): " + "; ".join(f"{name}: " + ", ".join(
        f"{process} {mib:.0f}" for process, mib in procs_rss.items())
        for name, procs_rss in rss.items()))
    print("\nCPU per tunnel (µs, last round; client = this benchmark's own process):")
    print("\n| work | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for work in dict.fromkeys(w for per_work in cpu.values() for w in per_work):
        cells = []
        for name in names:
            spent = cpu.get(name, {}).get(work, {})
            cells.append(", ".join(f"{process} {value:,.0f}" for process, value in spent.items())
                         + (f" = {sum(spent.values()):,.0f}" if len(spent) > 1 else ""))
        print(f"| {work} | " + " | ".join(cells) + " |")


def run_fresh(name: str, args: argparse.Namespace
              ) -> tuple[dict[str, tuple[float, str]], dict[str, float],
                         dict[str, dict[str, float]]]:
    """One target's workloads on processes started for it (and stopped after)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-control-"))
    procs = Processes(tmp)
    try:
        starters = {"baseline": start_baseline, "detached": start_detached, "full": start_full}
        target = starters[name](procs)
        # the pids, to attach a profiler (py-spy record -p PID) while the workloads run
        print(f"{name}: running ... pids " + ", ".join(
            f"{process}={pid}" for process, pid in target.pids.items()), flush=True)
        cpu = CpuMeter(target.pids)
        results = asyncio.run(run_target(target, args, cpu))
        return (results, {process: rss_mib(pid) for process, pid in target.pids.items()},
                cpu.per_tunnel)
    finally:
        procs.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
