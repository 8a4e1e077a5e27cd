"""Entry point: `tunnel-offload-crypto-worker --sa-socket PATH (--nanomsg URL | --interface IF)
[--workers N]`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

from crypto_worker.esp import DEFAULT_MTU, MAX_FRAME, MIN_MTU
from crypto_worker.fanout import MAX_MEMBERS
from crypto_worker.packet_loop import DEFAULT_BATCH
from crypto_worker.ports.nanomsg import limit_nng_threads
from crypto_worker.reservation import DEFAULT_BLOCK
from crypto_worker.sa_state import StateStoreError
from crypto_worker.server import CRYPTO_PORT, SaSocketError, Worker, WorkerSettings
from crypto_worker.supervisor import Supervisor, WorkerStartError
from process_tuning import tune_gc

log = logging.getLogger(__name__)


def _mtu(text: str) -> int:
    value = int(text)
    if not MIN_MTU <= value <= MAX_FRAME:
        raise argparse.ArgumentTypeError(f"{value}, must be {MIN_MTU} … {MAX_FRAME}")
    return value


def _block(text: str) -> int:
    value = int(text)
    if not 2 <= value <= 1 << 32:
        raise argparse.ArgumentTypeError(f"{value}, must be 2 … {1 << 32}")
    return value


def _workers(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_MEMBERS:
        raise argparse.ArgumentTypeError(f"{value}, must be 1 … {MAX_MEMBERS}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tunnel-offload-crypto-worker",
        description="ESP (AES-GCM/CCM) on the switch's crypto port; SA service on a Unix socket.",
    )
    parser.add_argument("--sa-socket", required=True, help="path of the SA service's Unix socket")
    io = parser.add_mutually_exclusive_group(required=True)
    io.add_argument("--nanomsg", metavar="URL", help="the switch's crypto-port socket to dial")
    io.add_argument("--interface", metavar="IF", help="a Linux interface (AF_PACKET), e.g. veth")
    parser.add_argument("--crypto-port", type=int, default=CRYPTO_PORT)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    parser.add_argument(
        "--mtu", type=_mtu, default=DEFAULT_MTU,
        help="the crypto port's MTU: the largest IP packet (Ethernet header not counted) the "
        f"worker returns; larger results are dropped as OVERSIZE (default {DEFAULT_MTU})",
    )
    parser.add_argument(
        "--state-dir", metavar="DIR",
        help="directory (created 0700) for the durable SA state: reserved sequence numbers, "
        "replay marks, retired keys; without it nothing survives a restart (tests only)",
    )
    parser.add_argument(
        "--sequence-block", type=_block, default=DEFAULT_BLOCK, metavar="N",
        help="sequence numbers / replay marks reserved per durable write (default "
        f"{DEFAULT_BLOCK}); a crash skips or refuses fewer than N",
    )
    parser.add_argument(
        "--workers", type=_workers, metavar="N",
        help="worker processes sharing the crypto port by SA (sa_index mod N; AF_PACKET only: "
        "default the number of CPUs with --interface, 1 with --nanomsg)",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if args.nanomsg is not None:
        if args.workers is not None and args.workers > 1:
            parser.error(f"--workers {args.workers}: the --nanomsg crypto port is one PAIR "
                         "socket with one peer, so one process serves it; use --workers 1, or "
                         "--interface (AF_PACKET) for several")
        args.workers = 1
    elif args.workers is None:
        args.workers = os.cpu_count() or 1
    return args




def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    tune_gc()  # process_tuning: fewer full collections
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = WorkerSettings(
        sa_socket=args.sa_socket,
        nanomsg_url=args.nanomsg,
        interface=args.interface,
        crypto_port=args.crypto_port,
        batch=args.batch,
        mtu=args.mtu,
        state_dir=args.state_dir,
        sequence_block=args.sequence_block,
    )
    if args.nanomsg:
        limit_nng_threads()  # before the port opens nng's first socket
    worker: Worker | Supervisor
    try:
        if args.workers > 1:
            worker = Supervisor(settings, args.workers, log_level=args.log_level)
        else:
            worker = Worker(settings)
    except (SaSocketError, StateStoreError, WorkerStartError) as error:
        log.error("%s", error)
        raise SystemExit(2) from None
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    worker.start()
    stopped.wait()
    log.info("stopping")
    worker.stop()


if __name__ == "__main__":
    main()
