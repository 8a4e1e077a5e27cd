"""A steady packet rate through an IPsec encrypt tunnel while `tunnelctl rekey` swaps its SA
every few seconds: how many frames are lost, how many leave in clear, and the latency.

The processes are the ones `make run` starts (bench/packets/run.py's Stack: p4sim on
p4src/tunnel_offload.p4, the crypto worker on p4sim's crypto port, the controller). The bench
creates one encrypt tunnel (AES-128-GCM, tunnel mode) over the API, then plays PTF on the device
socket: an open-loop sender offers `--rate` frames/s of 128 bytes for `--seconds`, each frame
numbered in its payload, while a receive thread timestamps every frame that comes out; every
`--rekey-every` seconds a real `tunnelctl rekey ID --new-spi N --new-key HEX` subprocess swaps
the encrypt SA (new SPI, new key).

Every frame out is checked: it must leave on the tunnel's port with the expected outer headers,
carry one of the tunnel's SPIs (the first or one given by a rekey) with that SA's sequence
numbers strictly increasing, and decrypt (ICV verified, `cryptography` AEAD) to exactly the frame
sent with that number. Reported: frames sent and the rate achieved, lost (numbers never seen),
duplicated, in clear (any frame out that is not such an ESP frame, e.g. the inner packet routed
unencrypted), the frames per SA, and each rekey's duration with the CPU it cost each process.

Latency (send to receive, on this host's monotonic clock) is split to show where it comes
from: p50 / p90 / p99 / max overall, for frames sent within 1 s of a rekey and away from them,
in quiet seconds (the rest of the machine under 0.5 core) and busy ones, and one row per second
with the cores p4sim, the worker, the bench and everything else used in it; with the sender's
lag behind its schedule and the offered, sent and delivered rates.

Run: .venv/bin/python -m bench.packets.rekey [--rate 5000] [--seconds 60] [--rekey-every 10]
[--latency-file CSV] [--logs DIR] (or `make bench-rekey`); `--rekey-every 0` runs the same load
without rekeys. Free ports and a private temporary directory (the Stack's). Exits 1
when a frame was lost, duplicated or left in clear, or a rekey failed; latency only reported.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pynng
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pynng.exceptions import check_err
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

REPO = Path(__file__).resolve().parents[2]
for extra in ("ptf_tests/e2e", "ptf_tests/dataplane"):  # the e2e suite's packet builders
    sys.path.insert(0, str(REPO / extra))

from e2e_packets import esp_sa, expected_esp  # noqa: E402
from e2e_topology import HOST_MAC, SEND_PORT, SWITCH_MAC, port_of  # noqa: E402
from e2e_tunnels import encrypt as encrypt_tunnel  # noqa: E402
from e2e_tunnels import ipv4_match, key_of  # noqa: E402

from bench.packets.run import (  # noqa: E402
    ETH,
    HEADER,
    IPV4,
    OUTER,
    PACKET_IN,
    PACKET_OUT,
    SUITE,
    Bench,
    EspMaker,
    Stack,
    _cpu,
)

FRAME_BYTES = 128
PAYLOAD_AT = ETH + IPV4 + 8  # the frame number: the first 8 bytes of the UDP payload
ESP_AT = ETH + IPV4
FIRST_SPI = 9300
SOURCE = "172.16.63.1"
TUNNEL_ID = 61000
_NUMBER = struct.Struct("!Q")
RECEIVE_BYTES = 2048  # a frame out (128 bytes plus ESP and outer headers) with its header
_NNG_ETIMEDOUT = 5


@dataclass
class Sa:
    spi: int
    aead: AESGCM
    salt: bytes
    frames: int = 0
    last_sequence: int = 0


@dataclass
class Rekey:
    at: float  # seconds since the start of sending
    spi: int
    seconds: float
    ok: bool
    output: str
    # CPU seconds spent during the rekey by tunnelctl (the child), the controller, p4sim and the
    # crypto worker: which process the rekey loads while packets flow
    cpu: dict[str, float] = field(default_factory=dict)


@dataclass
class Report:
    sent: int = 0
    send_seconds: float = 0.0
    received: int = 0
    lost: int = 0
    duplicated: int = 0
    clear: int = 0
    wrong: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    sent_times: list[float] = field(default_factory=list)  # since the start, per latency
    send_lag: list[float] = field(default_factory=list)  # actual minus scheduled send, per frame
    receive_seconds: float = 0.0  # from the first send to the last frame received
    # second of sending -> cores used by p4sim, the worker, this bench and everything else on
    # the machine (/proc/stat less those three): whether a slow second had the CPU it needed.
    # A second is missing when the sampler itself did not run in it (the machine was stalled).
    cores: dict[int, dict[str, float]] = field(default_factory=dict)
    p4sim_us: float = 0.0  # CPU per frame sent, all threads
    worker_us: float = 0.0
    bench_us: float = 0.0  # this process (sender, receiver, sampler), likewise


def _frame_template() -> bytes:
    payload = bytes(8) + (b"rekey-bench-" * 10)[: FRAME_BYTES - PAYLOAD_AT - 8]
    frame = Ether(dst=SWITCH_MAC, src=HOST_MAC) / IP(src=SOURCE, dst="198.51.100.20") / UDP(
        sport=40000, dport=5001, chksum=0) / Raw(payload)
    data = bytes(frame)
    assert len(data) == FRAME_BYTES
    return data


def _numbered(template: bytes, number: int) -> bytes:
    return template[:PAYLOAD_AT] + _NUMBER.pack(number) + template[PAYLOAD_AT + 8:]


class RekeyBench:
    def __init__(self, stack: Stack, args: argparse.Namespace) -> None:
        self.stack = stack
        self.args = args
        self.bench = Bench(stack, 0)
        self.template = _frame_template()
        self.sas: dict[int, Sa] = {}
        self.rekeys: list[Rekey] = []

    def _add_sa(self, spi: int) -> str:
        key_hex = key_of(SUITE, spi)
        key_salt = bytes.fromhex(key_hex)
        self.sas[spi] = Sa(spi=spi, aead=AESGCM(key_salt[:SUITE.key_bytes]),
                           salt=key_salt[SUITE.key_bytes:])
        return key_hex

    def create(self) -> None:
        key_hex = self._add_sa(FIRST_SPI)
        self.bench.create(encrypt_tunnel(TUNNEL_ID, match={"ipv4Match": ipv4_match(SOURCE)},
                                         suite=SUITE, tunnel_type="TUNNEL", spi=FIRST_SPI,
                                         key=key_hex, outer=OUTER))
        self.out_port = port_of("198.51.100.0/24")
        sa = esp_sa(SUITE, spi=FIRST_SPI, key_hex=key_hex, tunnel=OUTER)
        sent = Ether(self.template)
        expected = bytes(expected_esp(sa, sent[IP], seq=1, port=self.out_port))
        maker = EspMaker(bytes.fromhex(key_hex), expected, ESP_AT, FIRST_SPI)
        assert maker.frame(1) == expected
        self.head = expected[:ESP_AT]  # the outer headers: the same for every frame and SA
        self.inner = maker.plaintext  # inner packet ‖ padding ‖ pad length ‖ next header
        self.inner_number_at = PAYLOAD_AT - ETH  # the frame number inside the inner packet

    def _rekey(self, number: int, started: float) -> None:
        spi = FIRST_SPI + number
        key_hex = self._add_sa(spi)
        command = [sys.executable, "-m", "tunnelctl", "-s", self.stack.api_addr, "--state-dir",
                   f"{self.stack.tmp}/state", "rekey", str(TUNNEL_ID), "--new-spi", str(spi),
                   "--new-key", key_hex]
        before = self._cpu()
        begin = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))
        seconds = time.perf_counter() - begin
        after = self._cpu()
        self.rekeys.append(Rekey(at=begin - started, spi=spi, seconds=seconds,
                                 ok=done.returncode == 0,
                                 output=(done.stdout + done.stderr).strip(),
                                 cpu={name: after[name] - before[name] for name in after}))

    def _sample_cores(self, stop: threading.Event, report: Report) -> None:
        """Once a second from the start of sending, the cores each part used in that second.

        A sample that comes late (the sampler got no CPU either) is averaged over its whole
        interval and filed under the second it began in; the seconds it spans beyond that
        stay missing, which counts them as busy."""
        def sample() -> tuple[float, dict[str, float]]:
            p4sim, worker = self.stack.cpu_seconds()
            return time.perf_counter(), {"p4sim": p4sim, "worker": worker,
                                         "bench": _cpu(os.getpid()), "machine": _machine_busy()}
        (last_at, last), second = sample(), 1
        while not stop.wait(max(0.0, self.started + second - time.perf_counter())):
            at, now = sample()
            elapsed = at - last_at
            used = {name: (now[name] - last[name]) / elapsed for name in now}
            used["other"] = max(0.0, used.pop("machine") - sum(used.values()))
            report.cores[int(last_at - self.started)] = used
            last_at, last = at, now
            second = int(at - self.started) + 1

    def _cpu(self) -> dict[str, float]:
        """CPU seconds so far: waited-for children (tunnelctl runs), then each stack process."""
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        p4sim, worker = self.stack.cpu_seconds()
        return {"tunnelctl": children.ru_utime + children.ru_stime,
                "controller": _cpu(self.stack.processes[2].pid), "p4sim": p4sim,
                "worker": worker}

    def run(self) -> Report:
        args = self.args
        total = int(args.rate * args.seconds)
        wire = [HEADER.pack(PACKET_IN, SEND_PORT, FRAME_BYTES) + _numbered(self.template, n)
                for n in range(total)]
        sent_at = [0.0] * total
        arrived: list[tuple[float, bytes]] = []  # (receive time, message), decoded later
        sock = pynng.Pair0(recv_timeout=200, send_timeout=5000, recv_buffer_size=1024,
                           send_buffer_size=1024)
        sock.dial(self.stack.ports_url, block=True)
        stop = threading.Event()
        nng = sock.socket

        def receive() -> None:
            # The receiver shares two cores with what it measures, so it does the least per
            # frame: nng_recv into one reusable buffer (pynng's recv() allocates an nng message
            # and two cffi objects per call), the time taken as the call returns, one copy of
            # the message kept; headers are decoded after the run.
            clock, recv, append = time.perf_counter, pynng.lib.nng_recv, arrived.append
            buffer = pynng.ffi.new("char[]", RECEIVE_BYTES)
            view, size = pynng.ffi.buffer(buffer), pynng.ffi.new("size_t *")
            while not stop.is_set():
                size[0] = RECEIVE_BYTES
                error = recv(nng, buffer, size, 0)
                if error:
                    if error == _NNG_ETIMEDOUT:
                        continue
                    if stop.is_set():
                        return
                    check_err(error)
                append((clock(), view[:size[0]]))

        receiver = threading.Thread(target=receive, daemon=True)
        receiver.start()
        send = pynng.lib.nng_send
        report = Report()
        # No collection pauses in the bench while it timestamps frames: everything built so
        # far is frozen out of the collector, and the collector is off until the run ends
        # (the messages received are bytes in tuples; nothing here makes reference cycles).
        gc.collect()
        gc.freeze()
        gc.disable()
        sampler = threading.Thread(target=self._sample_cores, args=(stop, report), daemon=True)
        p4sim_before, worker_before = self.stack.cpu_seconds()
        bench_before = _cpu(os.getpid())
        started = time.perf_counter()
        self.started = started
        sampler.start()
        rekeyer: threading.Thread | None = None
        next_rekey = started + args.rekey_every if args.rekey_every > 0 else float("inf")
        rekey_number = 1
        sent = 0
        try:
            while sent < total:
                now = time.perf_counter()
                due = min(total, int((now - started) * args.rate) + 1)
                while sent < due:
                    message = wire[sent]
                    sent_at[sent] = time.perf_counter()
                    check_err(send(nng, message, len(message), 0))
                    sent += 1
                if (now >= next_rekey and sent < total
                        and (rekeyer is None or not rekeyer.is_alive())):
                    rekeyer = threading.Thread(target=self._rekey, args=(rekey_number, started))
                    rekeyer.start()
                    rekey_number += 1
                    next_rekey += args.rekey_every
                time.sleep(0.0005)
            report.send_seconds = time.perf_counter() - started
            report.sent = sent
            report.send_lag = [at - started - n / args.rate for n, at in enumerate(sent_at)]
            if rekeyer is not None:
                rekeyer.join()
            deadline = time.monotonic() + args.drain
            while len(arrived) < sent and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)  # anything extra (duplicates) that is still on its way
            p4sim_after, worker_after = self.stack.cpu_seconds()
            report.p4sim_us = (p4sim_after - p4sim_before) / max(sent, 1) * 1e6
            report.worker_us = (worker_after - worker_before) / max(sent, 1) * 1e6
            report.bench_us = (_cpu(os.getpid()) - bench_before) / max(sent, 1) * 1e6
        finally:
            stop.set()
            receiver.join(5)
            sampler.join(5)
            sock.close()
            gc.enable()
            gc.unfreeze()
        got: list[tuple[float, int, bytes]] = []
        for when, message in arrived:
            kind, port, _ = HEADER.unpack_from(message)
            if kind == PACKET_OUT:
                got.append((when, port, message[HEADER.size:]))
        if got:
            report.receive_seconds = got[-1][0] - started
        self._check(got, sent_at, report, started)
        return report

    def _check(self, got: list[tuple[float, int, bytes]], sent_at: list[float],
               report: Report, started: float) -> None:
        seen = bytearray(report.sent)
        inner, at = self.inner, self.inner_number_at
        for when, port, frame in got:
            report.received += 1
            problem = self._problem(port, frame)
            if problem is not None:
                report.clear += 1
                if len(report.wrong) < 5:
                    report.wrong.append(problem)
                continue
            spi = int.from_bytes(frame[ESP_AT:ESP_AT + 4], "big")
            sequence = int.from_bytes(frame[ESP_AT + 4:ESP_AT + 8], "big")
            sa = self.sas[spi]
            iv = frame[ESP_AT + 8:ESP_AT + 16]
            try:
                plaintext = sa.aead.decrypt(sa.salt + iv, frame[ESP_AT + 16:],
                                            frame[ESP_AT:ESP_AT + 8])
            except InvalidTag:
                report.clear += 1
                report.wrong.append(f"spi {spi} sequence {sequence}: ICV does not verify")
                continue
            number = _NUMBER.unpack_from(plaintext, at)[0]
            expected = inner[:at] + _NUMBER.pack(number) + inner[at + 8:]
            if number >= report.sent or plaintext != expected or sequence <= sa.last_sequence:
                report.clear += 1
                report.wrong.append(f"spi {spi} sequence {sequence} (after "
                                    f"{sa.last_sequence}): not the frame sent as {number}")
                continue
            sa.last_sequence = sequence
            sa.frames += 1
            if seen[number]:
                report.duplicated += 1
                continue
            seen[number] = 1
            report.latencies.append(when - sent_at[number])
            report.sent_times.append(sent_at[number] - started)
        report.lost = report.sent - sum(seen)

    def _problem(self, port: int, frame: bytes) -> str | None:
        """Why `frame` is not one of the tunnel's ESP frames, or None."""
        if port != self.out_port:
            return f"a frame on port {port}: {frame[:48].hex()}"
        if frame[:ESP_AT] != self.head:
            return f"outer headers differ (in clear?): {frame[:48].hex()}"
        if int.from_bytes(frame[ESP_AT:ESP_AT + 4], "big") not in self.sas:
            return f"unknown SPI: {frame[:48].hex()}"
        return None


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


NEAR_REKEY = 1.0  # seconds either side of a rekey (its tunnelctl run) that count as "near" it
# A second counts as "quiet" when everything outside the stack and this bench (a rekey's
# tunnelctl included) used less than this many cores: at 5,000 pps p4sim takes up to ~1 core,
# the worker ~0.3 and the bench ~0.4, so on 2 cores that leaves about this much before the
# pipeline thread waits for a core.
QUIET_OTHER_CORES = 0.5


def _machine_busy() -> float:
    """CPU seconds every core of the machine has been busy (/proc/stat, all but idle and
    iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def _near_rekey(at: float, rekeys: list[Rekey]) -> bool:
    return any(r.at - NEAR_REKEY <= at <= r.at + r.seconds + NEAR_REKEY for r in rekeys)


def _figures(values: list[float]) -> str:
    """p50 / p90 / p99 / max of latencies in ms, one table row."""
    return (f"{len(values):8} {_percentile(values, 0.5):8.1f} {_percentile(values, 0.9):8.1f} "
            f"{_percentile(values, 0.99):8.1f} {max(values, default=0.0):8.1f}")


def _print_latency(report: Report, rekeys: list[Rekey], args: argparse.Namespace) -> None:
    """Where the latency comes from: everything, the frames sent near a rekey (from 1 s before
    its `tunnelctl rekey` starts to 1 s after it returns) and the others (steady queueing), then
    one row per second of sending (by send time), and the sender's own lag behind its schedule
    (a late sender sends bursts, which queue)."""
    latencies = [x * 1000 for x in report.latencies]
    near = [lat for lat, at in zip(latencies, report.sent_times, strict=True)
            if _near_rekey(at, rekeys)]
    far = [lat for lat, at in zip(latencies, report.sent_times, strict=True)
           if not _near_rekey(at, rekeys)]
    print("latency ms (send to receive)    frames      p50      p90      p99      max")
    print(f"  all                         {_figures(latencies)}")
    print(f"  within {NEAR_REKEY:g} s of a rekey       {_figures(near)}")
    print(f"  away from rekeys            {_figures(far)}")
    sending = math.ceil(report.send_seconds)  # not the drain after it
    quiet = {second for second, cores in report.cores.items()
             if second < sending and cores["other"] < QUIET_OTHER_CORES}
    calm = [lat for lat, at in zip(latencies, report.sent_times, strict=True)
            if int(at) in quiet]
    busy = [lat for lat, at in zip(latencies, report.sent_times, strict=True)
            if int(at) not in quiet]
    print(f"  in quiet seconds            {_figures(calm)}   ({len(quiet)} s: the rest of the "
          f"machine < {QUIET_OTHER_CORES:g} core)")
    print(f"  in busy seconds             {_figures(busy)}   ({sending - len(quiet)} s)")
    lag = [x * 1000 for x in report.send_lag]
    print(f"  sender lag behind schedule  {_figures(lag)}")
    print(f"offered {args.rate:,.0f} frames/s, sent {report.sent / report.send_seconds:,.0f}/s, "
          f"delivered {report.received / max(report.receive_seconds, 1e-9):,.0f}/s "
          f"(received {report.received:,} by {report.receive_seconds:.1f} s); "
          f"CPU/frame p4sim {report.p4sim_us:.1f} us, worker {report.worker_us:.1f} us, "
          f"bench {report.bench_us:.1f} us")
    by_second: dict[int, list[float]] = {}
    for lat, at in zip(latencies, report.sent_times, strict=True):
        by_second.setdefault(int(at), []).append(lat)
    print("per second (by send time)   frames      p50      p90      p99      max   "
          "cores used: p4sim worker bench other (tunnelctl is in other)")
    for second in sorted(by_second):
        mark = " rekey" if any(int(r.at) == second for r in rekeys) else ""
        cores = report.cores.get(second)
        used = ("      (no sample)" if cores is None else
                " ".join(f"{cores[name]:6.2f}" for name in ("p4sim", "worker", "bench", "other")))
        print(f"  {second:4} s                    {_figures(by_second[second])}   "
              f"{used}{mark}")
    if args.latency_file:
        with open(args.latency_file, "w") as out:
            out.write("sent_s,latency_ms\n")
            for lat, at in zip(latencies, report.sent_times, strict=True):
                out.write(f"{at:.6f},{lat:.3f}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5000, help="frames/s offered")
    parser.add_argument("--seconds", type=float, default=60, help="how long to send")
    parser.add_argument("--rekey-every", type=float, default=10,
                        help="seconds between rekeys (0: none, the steady-load baseline)")
    parser.add_argument("--drain", type=float, default=10,
                        help="seconds to wait for the last frames after sending stops")
    parser.add_argument("--logs", help="copy the processes' logs to this directory at the end")
    parser.add_argument("--latency-file", help="write each frame's send time (s since the "
                        "start) and latency (ms) to this CSV file")
    args = parser.parse_args()
    print(f"{args.rate:,.0f} frames/s of {FRAME_BYTES} bytes for {args.seconds:g} s through an "
          f"encrypt tunnel, `tunnelctl rekey` every {args.rekey_every:g} s; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-rekey-") as tmp_name:
        stack = Stack(Path(tmp_name), [])
        try:
            stack.start()
            bench = RekeyBench(stack, args)
            bench.create()
            report = bench.run()
        finally:
            stack.stop()
            if args.logs:
                Path(args.logs).mkdir(parents=True, exist_ok=True)
                for log in [*Path(tmp_name).glob("*.log"), *Path(tmp_name).glob("*.out")]:
                    shutil.copy(log, args.logs)
    for rekey in bench.rekeys:
        cpu = ", ".join(f"{name} {seconds * 1000:.0f}" for name, seconds in rekey.cpu.items())
        print(f"rekey at {rekey.at:5.1f} s to spi {rekey.spi}: {rekey.seconds:.2f} s, "
              f"{'ok' if rekey.ok else 'FAILED: ' + rekey.output}; CPU ms: {cpu}")
    for sa in bench.sas.values():
        print(f"spi {sa.spi}: {sa.frames} frames, last sequence {sa.last_sequence}")
    for problem in report.wrong:
        print(f"wrong: {problem}")
    latencies = [x * 1000 for x in report.latencies]
    _print_latency(report, bench.rekeys, args)
    print(f"rekey_bench offered={args.rate:.0f} achieved={report.sent / report.send_seconds:.0f} "
          f"delivered={report.received / max(report.receive_seconds, 1e-9):.0f} "
          f"sent={report.sent} received={report.received} lost={report.lost} "
          f"duplicated={report.duplicated} clear={report.clear} "
          f"rekeys={sum(r.ok for r in bench.rekeys)}/{len(bench.rekeys)} "
          f"p50_ms={_percentile(latencies, 0.5):.1f} p90_ms={_percentile(latencies, 0.9):.1f} "
          f"p99_ms={_percentile(latencies, 0.99):.1f} max_ms={max(latencies, default=0):.1f} "
          f"load={os.getloadavg()[0]:.2f}")
    if report.lost or report.duplicated or report.clear or not all(r.ok for r in bench.rekeys):
        raise SystemExit(1)  # a correctness failure, unlike a latency figure, fails the run


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
