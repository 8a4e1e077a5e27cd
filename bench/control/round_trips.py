"""The floor under a single-request createIpTunnel stream: one bare round trip from Python to
each server the controller must call for it, with nothing done on the other side.

A single CREATE of an IPsec tunnel costs the controller at least one call to the crypto worker
(AddSas) and one P4Runtime Write to the switch, each a gRPC round trip between Python
processes on this machine, besides the client's own round trip to the controller (which the
baseline server pays too). This measures the two extra round trips with calls that do no work
— the worker's ListSas with no SA installed, a P4Runtime Read of one counter cell — so the
figure is what any design with the worker and the switch as separate gRPC servers pays per
request, whatever the controller does. Wall time and this client's CPU time per call.

Run: .venv/bin/python -m bench.control.round_trips [--calls 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
from finsy.proto import p4i, p4r, p4r_grpc
from google.protobuf import text_format

from bench.control.run import P4INFO, Processes, start_switch
from tunneloffload.crypto.v1 import worker_pb2 as wpb
from tunneloffload.crypto.v1 import worker_pb2_grpc as wpb_grpc


async def per_call(call: Callable[[], Awaitable[object]], calls: int) -> tuple[float, float]:
    """(wall µs, client CPU µs) per call, after a warm-up of a tenth of the calls."""
    for _ in range(max(calls // 10, 1)):
        await call()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        await call()
    return ((time.perf_counter() - wall) * 1e6 / calls,
            (time.process_time() - cpu) * 1e6 / calls)


async def measure(sa_socket: Path, p4rt_port: int, calls: int) -> dict[str, tuple[float, float]]:
    # any counter of the program, read back from the checked-in P4Info
    counter_id = text_format.Parse(P4INFO.read_text(), p4i.P4Info()).counters[0].preamble.id
    out: dict[str, tuple[float, float]] = {}
    async with grpc.aio.insecure_channel(f"unix:{sa_socket}") as channel:
        worker = wpb_grpc.CryptoWorkerStub(channel)
        out["crypto worker ListSas (no SA)"] = await per_call(
            lambda: worker.ListSas(wpb.ListSasRequest()), calls)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{p4rt_port}") as channel:
        switch = p4r_grpc.P4RuntimeStub(channel)
        request = p4r.ReadRequest(device_id=1, entities=[p4r.Entity(counter_entry=(
            p4r.CounterEntry(counter_id=counter_id, index=p4r.Index(index=1))))])

        async def read() -> None:
            async for _ in switch.Read(request):
                pass

        out["P4Runtime Read of 1 counter cell"] = await per_call(read, calls)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-round-trips-"))
    procs = Processes(tmp)
    try:
        switch = start_switch(procs)
        results = asyncio.run(measure(switch.sa_socket, switch.p4rt_port, args.calls))
    finally:
        procs.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n| bare round trip ({args.calls:,} calls) | wall µs per call | client CPU µs |")
    print("|---|---|---|")
    for name, (wall, cpu) in results.items():
        print(f"| {name} | {wall:,.0f} | {cpu:,.0f} |")
    total = sum(wall for wall, _ in results.values())
    print(f"\nfloor added to one single-request CREATE of an IPsec tunnel: {total:,.0f} µs "
          f"(load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
