"""One worker process of `--workers N` (N > 1): the SAs with `sa_index mod N == index`, their
durable state, and a packet loop on this process's share of the crypto port.

The supervisor (crypto_worker/supervisor.py) starts it with the `spawn` method (a fresh
interpreter: no gRPC or thread state copied by fork) and talks to it over one
`multiprocessing` Connection, strictly one request then one reply:

- ("open", group) → ("opened", group_id) or ("failed", message): open the AF_PACKET port and
  join fanout group `group` (None: create it), start the packet loop. The supervisor sends it
  to one process at a time, in index order: the kernel numbers fanout members by join order.
- ("call", method, request bytes) → ("ok", response bytes) or ("abort", status name, details,
  trailing metadata):
  the CryptoWorker rpc `method`, run by the same servicer as a single-process worker, so
  validation, errors and state changes are exactly the same.
- ("key_used", method, request bytes) → ("ok", message or None): for a fresh encrypt SA
  (AddSa without resume, ReplaceSa) bound for another process, whether this process's durable
  state has numbered packets under that key (message: why it must not be used). A single
  worker refuses such a key at any sa_index; under N processes the supervisor asks every
  process but the owner first, so the rule holds across them. None when the request does not
  validate: its owner then gives the exact error.
- ("check_add", own AddSasRequest bytes, others' AddSasRequest bytes) → ("ok", refusal or
  None, [(i, message), …]): AddSas of this process's part of a batch with every check and
  nothing added (refusal: ("abort", status name, details, trailing metadata) as for "call"),
  and, for each SA i of the other processes' part, "key_used" when its key has numbered
  packets here. The supervisor applies a batch only when no process refuses any of it.
- ("drops",) → ("ok", GetCountersResponse bytes): only this process's drops outside any SA
  (a GetCounters for SAs that are all another process's).
- ("stop",) → the process stops its loop, flushes its state and exits 0.

A closed Connection (the supervisor died) stops it too. The packet loop dying exits the process
with status 3: the supervisor sees the exit and stops the group.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import uuid
from multiprocessing.connection import Connection
from typing import NoReturn

import grpc

from crypto_worker.packet_loop import PacketLoop
from crypto_worker.ports.afpacket import FanoutMembership
from crypto_worker.ports.base import CryptoPortIo
from crypto_worker.processor import FrameProcessor
from crypto_worker.sa import Direction
from crypto_worker.sa_state import StateStoreError
from crypto_worker.sa_table import SaTable
from crypto_worker.server import WorkerSettings, open_port, open_table
from crypto_worker.servicer import CryptoWorkerServicer
from crypto_worker.servicer import _request_from_pb as request_from_pb  # the same parse
from crypto_worker.state_layout import child_state_dir
from crypto_worker.validation import SaValidationError, validate_sa
from tunneloffload.crypto.v1 import worker_pb2 as pb

log = logging.getLogger(__name__)

LOOP_DIED_STATUS = 3
_METHODS = pb.DESCRIPTOR.services_by_name["CryptoWorker"].methods_by_name


class Aborted(Exception):
    """What `context.abort` raises here: the status the servicer chose, for the supervisor."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class _CallContext:
    """The part of grpc.ServicerContext the servicer uses: abort, trailing metadata."""

    def __init__(self) -> None:
        self.trailing_metadata: tuple[tuple[str, str], ...] = ()

    def set_trailing_metadata(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.trailing_metadata = tuple(metadata)

    def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise Aborted(code, details)


class _Stopped(Exception):
    """SIGTERM: leave the request loop and stop in order."""


def _raise_stopped(*_: object) -> None:
    raise _Stopped


def run_call(servicer: CryptoWorkerServicer, method: str, request: bytes
             ) -> tuple[str, bytes] | tuple[str, str, str, tuple[tuple[str, str], ...]]:
    """One rpc through the servicer: ("ok", response) or ("abort", status name, details,
    trailing metadata)."""
    descriptor = _METHODS.get(method)
    if descriptor is None:
        return ("abort", grpc.StatusCode.UNIMPLEMENTED.name, f"no rpc {method!r}", ())
    context = _CallContext()
    try:
        message = getattr(pb, descriptor.input_type.name).FromString(request)
        response = getattr(servicer, method)(message, context)
    except Aborted as aborted:
        return ("abort", aborted.code.name, aborted.details, context.trailing_metadata)
    except Exception:  # noqa: BLE001 - as the gRPC server would: INTERNAL, never a dead process
        reference = uuid.uuid4().hex[:12]
        log.error("internal error in %s, reference %s", method, reference, exc_info=True)
        return ("abort", grpc.StatusCode.INTERNAL.name, f"internal error, reference {reference}",
                ())
    return ("ok", response.SerializeToString())


def check_add(servicer: CryptoWorkerServicer, table: SaTable, index: int, own: bytes,
              others: bytes) -> tuple[str, tuple[str, str, str, tuple[tuple[str, str], ...]]
                                      | None, list[tuple[int, str]]]:
    """The "check_add" exchange: this process's refusal of its part of an AddSas batch (None:
    it would add all of it) and the other processes' SAs whose encrypt key it has used."""
    context = _CallContext()
    refusal = None
    try:
        servicer.AddSas(pb.AddSasRequest.FromString(own), context, check_only=True)
    except Aborted as aborted:
        refusal = ("abort", aborted.code.name, aborted.details, context.trailing_metadata)
    used = []
    for position, item in enumerate(pb.AddSasRequest.FromString(others).sas):
        message = key_used(table, index, "AddSa", item.SerializeToString())
        if message is not None:
            used.append((position, message))
    return ("ok", refusal, used)


def key_used(table: SaTable, index: int, method: str, request: bytes) -> str | None:
    """Why the fresh encrypt SA in `request` must not take its key, if this process's durable
    state has numbered packets under it; None when it may (or is not an encrypt SA, or does
    not validate)."""
    descriptor = _METHODS[method]
    message = getattr(pb, descriptor.input_type.name).FromString(request)
    try:
        config, keys = validate_sa(request_from_pb(message.params, message.key))
    except SaValidationError:
        return None
    if config.direction is not Direction.ENCRYPT:
        return None
    identity = table.store.identity(config.sa_index, config.spi, config.direction, keys)
    used, _ = table.store._key_used(identity)  # noqa: SLF001 - the store's own key rule
    if not used:
        return None
    return (f"key retired: sa_index {config.sa_index} spi {config.spi}: this encrypt key has "
            f"numbered packets before, in worker process {index} (another sa_index); use a "
            "new key")


class _DataPath:
    """The port, the packet loop thread and the SA table of this process."""

    def __init__(self, settings: WorkerSettings, table: SaTable, port: CryptoPortIo) -> None:
        self.table = table
        self.port = port
        self._stop = threading.Event()
        self._loop = PacketLoop(port, FrameProcessor(table, mtu=settings.mtu),
                                batch=settings.batch)
        self._thread = threading.Thread(target=self._loop.run, args=(self._stop, self._died),
                                        name="packet-loop", daemon=True)
        self._thread.start()

    def _died(self) -> None:
        log.error("the packet loop is dead; exiting with status %s so the supervisor stops the "
                  "group", LOOP_DIED_STATUS)
        try:
            self.table.close()  # the drop counters reach the disk
        finally:
            os._exit(LOOP_DIED_STATUS)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.port.close()


def main(settings: WorkerSettings, index: int, members: int, connection: Connection,
         log_level: str) -> None:
    """The process's entry point (multiprocessing target)."""
    logging.basicConfig(
        level=log_level.upper(),
        format=f"%(asctime)s %(levelname)s worker-{index} %(name)s: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor stops the group in order
    signal.signal(signal.SIGTERM, _raise_stopped)
    table: SaTable | None = None
    data_path: _DataPath | None = None
    try:
        state_dir = (child_state_dir(settings.state_dir, index)
                     if settings.state_dir is not None else None)
        try:
            table = open_table(settings, state_dir)
        except StateStoreError as error:
            connection.send(("failed", str(error)))
            return
        servicer = CryptoWorkerServicer(table)
        while True:
            try:
                request = connection.recv()
            except EOFError:
                log.error("the supervisor is gone; stopping")
                return
            kind = request[0]
            if kind == "call":
                connection.send(run_call(servicer, request[1], request[2]))
            elif kind == "drops":
                connection.send(("ok", servicer.drops_outside_sas().SerializeToString()))
            elif kind == "check_add":
                connection.send(check_add(servicer, table, index, request[1], request[2]))
            elif kind == "key_used":
                connection.send(("ok", key_used(table, index, request[1], request[2])))
            elif kind == "open":
                try:
                    port = open_port(settings, FanoutMembership(group=request[1],
                                                                members=members))
                except OSError as error:
                    connection.send(("failed", f"interface: {settings.interface!r}: {error}"))
                    return
                data_path = _DataPath(settings, table, port)
                connection.send(("opened", getattr(port, "fanout_group", None)))
            elif kind == "stop":
                return
    except _Stopped:
        log.info("SIGTERM; stopping")
    finally:
        if data_path is not None:
            data_path.stop()
        if table is not None:
            table.close()
