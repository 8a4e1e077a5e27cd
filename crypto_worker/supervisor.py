"""`--workers N` (N > 1) on AF_PACKET: N worker processes sharing the crypto port by SA, one SA
service in front of them.

Process i (crypto_worker/child.py) owns every SA with `sa_index mod N == i`: the kernel hands
it exactly those SAs' frames (a PACKET_FANOUT group, crypto_worker/fanout.py), it alone holds
their keys, sequence numbers, replay windows and durable state (`--state-dir`/worker-i), so
nothing per SA is shared between processes and numbering stays exact.

The SA service stays one gRPC server on --sa-socket, in this process: each call goes to the
owner of its SA (crypto_worker/sa_routing.py) over that process's Connection; the reply, or the
owner's error, goes back unchanged, so a client sees one worker. Calls to one process are
serialised by a lock (one request, one reply); different processes answer in parallel.

A batch (AddSas, RemoveSas) is split by owner and stays all or nothing across the processes:
every process first checks its part with nothing changed (AddSas: every check of a single
worker, plus whether it has used the encrypt key of any SA bound for another process; the
supervisor itself finds one encrypt key twice in the batch at SAs of different processes;
RemoveSas: every index in use), and the first refusal in the batch's order is the answer, its
position renumbered to the whole batch's. Only when no process refuses does each apply its part,
in one durable transaction per process, all in parallel. Every call that changes SAs holds one
lock while it runs, so no other change comes between the checks and the changes. A process that
then still fails its part (its disk: UNAVAILABLE, or an internal error) has its error returned
and the other processes' parts are removed again (their keys retired, as any removed SA's: the
batch must be retried with new keys).

A process that dies ends the group. After a member leaves a fanout group the kernel moves the
last member into its place, so the survivors' SAs would reach the wrong process (and be dropped
as UNKNOWN_SA); restarting only the dead one would not give it its old place back. So the
supervisor logs the death (which process, pid, exit status), stops the other processes, turns
health NOT_SERVING and answers every SA call UNAVAILABLE naming the dead process, as a
single-process worker with a dead packet loop does: the worker must be restarted, and with
--state-dir every SA then resumes (AddSa resume=true) above its durable limits, never reusing a
sequence number.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent import futures
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from crypto_worker import child
from crypto_worker.fanout import owner_of
from crypto_worker.sa_routing import (
    CHANGE_METHODS,
    DROPS_ONLY,
    FRESH_SA_METHODS,
    ROUTES,
    ChildAbort,
    batch_abort,
    merge_final_counters,
)
from crypto_worker.server import (
    SERVICE_NAME,
    WorkerSettings,
    bind_sa_socket,
    check_socket_directory,
    remove_stale_socket,
)
from crypto_worker.state_layout import check_layout
from tunneloffload.crypto.v1 import worker_pb2 as pb

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0  # a process that has not opened its port by then: start-up fails
STOP_TIMEOUT_S = 10.0
_SERVICE = pb.DESCRIPTOR.services_by_name["CryptoWorker"]


class WorkerStartError(Exception):
    """A worker process could not start (its message names the process and the cause)."""


class _Member:
    """One worker process and the Connection its calls go over."""

    def __init__(self, index: int, process: BaseProcess, connection: Connection) -> None:
        self.index = index
        self.process = process
        self.connection = connection
        self.lock = threading.Lock()

    def describe(self) -> str:
        return f"worker process {self.index} (pid {self.process.pid})"

    def exchange(self, message: tuple[Any, ...], timeout: float | None = None) -> Any:
        with self.lock:
            self.connection.send(message)
            if timeout is not None and not self.connection.poll(timeout):
                raise TimeoutError(f"{self.describe()} did not answer within {timeout:.0f} s")
            return self.connection.recv()


def _exit_text(exitcode: int | None) -> str:
    if exitcode is None:
        return "is not running"
    if exitcode < 0:
        return f"was killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


class Supervisor:
    """N worker processes in one fanout group and the SA service that fronts them."""

    def __init__(self, settings: WorkerSettings, members: int, *, log_level: str = "INFO") -> None:
        assert settings.interface is not None and members > 1
        self.settings = settings
        self.members = members
        if settings.state_dir is not None:  # without: each process logs a WARNING
            check_layout(settings.state_dir, members)
        self._failure: str | None = None  # why the group is stopped, once it is
        self._stopping = threading.Event()
        self._members: list[_Member] = []
        # Every change of SAs runs under this lock: a fresh encrypt key is checked against every
        # process, then installed (two calls cannot both find a key unused in the other's
        # process), and a batch is checked in every process, then applied.
        self._change_lock = threading.Lock()
        check_socket_directory(settings.sa_socket)
        remove_stale_socket(settings.sa_socket)
        context = multiprocessing.get_context("spawn")
        try:
            for index in range(members):
                ours, theirs = context.Pipe(duplex=True)
                process = context.Process(
                    target=child.main, name=f"crypto-worker-{index}",
                    args=(settings, index, members, theirs, log_level), daemon=False)
                process.start()
                theirs.close()
                self._members.append(_Member(index, process, ours))
            self._open_ports()
        except BaseException:
            self._stop_members()
            raise
        self._health = health.HealthServicer()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers((self._handlers(),))
        for service in ("", SERVICE_NAME):
            self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        bind_sa_socket(self._server, settings.sa_socket)
        self._socket_inode = os.lstat(settings.sa_socket).st_ino
        self._watcher = threading.Thread(target=self._watch, name="worker-watch", daemon=True)

    def _open_ports(self) -> None:
        """Each process opens its port and joins the group, one after the other in index
        order (the kernel's member order is the join order)."""
        group: int | None = None
        for member in self._members:
            try:
                reply = member.exchange(("open", group), timeout=START_TIMEOUT_S)
            except (EOFError, OSError, TimeoutError) as error:
                member.process.join(timeout=1)
                raise WorkerStartError(f"{member.describe()} "
                                       f"{_exit_text(member.process.exitcode)} before its port "
                                       f"was open ({error or 'no reply'})") from None
            if reply[0] != "opened":
                raise WorkerStartError(f"{member.describe()}: {reply[1]}")
            group = reply[1]
        log.info("%s worker processes share %s by sa_index mod %s (fanout group %s)",
                 self.members, self.settings.interface, self.members, group)

    # ---- the SA service ------------------------------------------------------------------

    def _handlers(self) -> grpc.GenericRpcHandler:
        handlers = {}
        for method in _SERVICE.methods:
            request_class = getattr(pb, method.input_type.name)
            response_class = getattr(pb, method.output_type.name)
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                self._forwarder(method.name),
                request_deserializer=request_class.FromString,
                response_serializer=response_class.SerializeToString)
        return grpc.method_handlers_generic_handler(_SERVICE.full_name, handlers)

    def _forwarder(self, method: str) -> Callable[[Message, grpc.ServicerContext], Message]:
        response_class = getattr(pb, _SERVICE.methods_by_name[method].output_type.name)

        def call(index: int, request: Message) -> Message:
            return self._call(index, method, request, response_class)

        def forward(request: Message, context: grpc.ServicerContext) -> Message:
            route = ROUTES.get(method)
            batched = self._batches.get(method)
            try:
                if batched is not None:
                    with self._change_lock:
                        return batched(request)
                if route is None:
                    raise ChildAbort(grpc.StatusCode.UNIMPLEMENTED,
                                     f"{method}: not routed to the owners of its SAs with "
                                     f"--workers {self.members}")
                if method in CHANGE_METHODS:
                    with self._change_lock:
                        if method in FRESH_SA_METHODS and not getattr(request, "resume", False):
                            self._refuse_used_key(method, request)
                        return route(request, self.members, call)
                return route(request, self.members, call)
            except ChildAbort as abort:
                if abort.trailing_metadata:
                    context.set_trailing_metadata(abort.trailing_metadata)
                context.abort(abort.code, abort.details)
            raise AssertionError("unreachable: context.abort raises")

        return forward

    @property
    def _batches(self) -> dict[str, Callable[[Message], Message]]:
        return {"AddSas": self._add_sas, "RemoveSas": self._remove_sas}

    def _exchange_all(self, messages: dict[int, tuple[Any, ...]]) -> dict[int, Any]:
        """One request to each of several processes, sent before any reply is read (they work
        in parallel); the replies by process."""
        if self._failure is not None:
            raise ChildAbort(grpc.StatusCode.UNAVAILABLE, self._failure)
        members = [self._members[index] for index in sorted(messages)]
        for member in members:  # always in index order: no two callers wait on each other
            member.lock.acquire()
        try:
            for member in members:
                member.connection.send(messages[member.index])
            return {member.index: member.connection.recv() for member in members}
        except (EOFError, OSError):
            raise ChildAbort(grpc.StatusCode.UNAVAILABLE,
                             self._failure or "a worker process is gone; the crypto port is "
                             "stopped: restart the worker") from None
        finally:
            for member in members:
                member.lock.release()

    def _parts(self, sa_indexes: list[int]) -> list[list[int]]:
        """The batch's positions by owner."""
        parts: list[list[int]] = [[] for _ in range(self.members)]
        for position, sa_index in enumerate(sa_indexes):
            parts[owner_of(sa_index, self.members)].append(position)
        return parts

    def _add_sas(self, request: Message) -> Message:
        assert isinstance(request, pb.AddSasRequest)
        items = list(request.sas)
        parts = self._parts([item.params.sa_index for item in items])
        encrypt = [position for position, item in enumerate(items)
                   if item.params.direction == pb.DIRECTION_ENCRYPT]
        own = {index: pb.AddSasRequest(sas=[items[p] for p in part])
               for index, part in enumerate(parts)}
        foreign = {index: [p for p in encrypt if owner_of(items[p].params.sa_index,
                                                           self.members) != index]
                   for index in range(self.members)}
        replies = self._exchange_all({index: (
            "check_add", own[index].SerializeToString(),
            pb.AddSasRequest(sas=[items[p] for p in foreign[index]]).SerializeToString())
            for index in range(self.members)})
        # (validation before the rest, as one worker; then the batch's order) → the refusal
        refusals: list[tuple[int, int, int, ChildAbort]] = []
        for index, (_, refusal, used) in sorted(replies.items()):
            if refusal is not None:
                abort = ChildAbort(grpc.StatusCode[refusal[1]], refusal[2], refusal[3])
                position, abort = batch_abort(abort, parts[index], "sas")
                rank = 0 if abort.code is grpc.StatusCode.INVALID_ARGUMENT else 1
                refusals.append((rank, position, 0, abort))
            for sub, message in used:
                position = foreign[index][sub]
                refusals.append((1, position, 1, ChildAbort(
                    grpc.StatusCode.FAILED_PRECONDITION, f"sas[{position}]: {message}",
                    (("failed-sa", str(position)),))))
        first: dict[tuple[bytes, bytes], int] = {}
        for position in encrypt:
            item = items[position]
            key = (item.key.key, item.key.salt)
            earlier = first.setdefault(key, position)
            if earlier != position and (owner_of(items[earlier].params.sa_index, self.members)
                                        != owner_of(item.params.sa_index, self.members)):
                refusals.append((1, position, 2, ChildAbort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"sas[{position}]: key retired: sa_index {item.params.sa_index} spi "
                    f"{item.params.spi}: this encrypt key is already used by another SA of "
                    "the batch; use a new key", (("failed-sa", str(position)),))))
        if refusals:
            raise min(refusals, key=lambda refusal: refusal[:3])[3]
        replies = self._exchange_all({
            index: ("call", "AddSas", own[index].SerializeToString())
            for index, part in enumerate(parts) if part})
        failed = {index: reply for index, reply in replies.items() if reply[0] != "ok"}
        if not failed:
            return pb.AddSasResponse()
        done = {index: ("call", "RemoveSas", pb.RemoveSasRequest(
            sa_indexes=[items[p].params.sa_index for p in parts[index]]).SerializeToString())
            for index in replies if index not in failed}
        log.error("AddSas of %d SA(s): %s; removing the %d SA(s) other processes added",
                  len(items), "; ".join(f"worker process {i}: {r[2]}" for i, r in
                                        sorted(failed.items())),
                  sum(len(parts[index]) for index in done))
        if done:
            self._exchange_all(done)
        index, reply = min(failed.items())
        raise batch_abort(ChildAbort(grpc.StatusCode[reply[1]], reply[2], reply[3]),
                          parts[index], "sas")[1]

    def _remove_sas(self, request: Message) -> Message:
        assert isinstance(request, pb.RemoveSasRequest)
        wanted = list(request.sa_indexes)
        parts = self._parts(wanted)
        if not request.missing_ok:
            # Every index in use and none repeated (a repeat is "not in use" to one worker).
            refused: list[int] = []
            seen: set[int] = set()
            unique: list[list[int]] = [[] for _ in range(self.members)]
            for position, sa_index in enumerate(wanted):
                if sa_index in seen:
                    refused.append(position)
                else:
                    seen.add(sa_index)
                    unique[owner_of(sa_index, self.members)].append(position)
            replies = self._exchange_all({index: ("call", "GetCounters", pb.GetCountersRequest(
                sa_indexes=[wanted[p] for p in part]).SerializeToString())
                for index, part in enumerate(unique) if part})
            for index, reply in replies.items():
                if reply[0] == "ok":
                    continue
                if reply[1] != grpc.StatusCode.NOT_FOUND.name:
                    raise ChildAbort(grpc.StatusCode[reply[1]], reply[2], reply[3])
                sub = int(reply[2].split("[", 1)[1].split("]", 1)[0])  # "sa_indexes[k]: …"
                refused.append(unique[index][sub])
            if refused:
                position = min(refused)
                raise ChildAbort(grpc.StatusCode.NOT_FOUND,
                                 f"sa_indexes[{position}]: sa_index: {wanted[position]} is not "
                                 "in use", (("failed-sa", str(position)),))
        replies = self._exchange_all({index: ("call", "RemoveSas", pb.RemoveSasRequest(
            sa_indexes=[wanted[p] for p in part], missing_ok=request.missing_ok
        ).SerializeToString()) for index, part in enumerate(parts) if part})
        final: dict[int, list[pb.SaCounters]] = {}
        for index, reply in sorted(replies.items()):
            if reply[0] != "ok":
                raise batch_abort(ChildAbort(grpc.StatusCode[reply[1]], reply[2], reply[3]),
                                  parts[index], "sa_indexes")[1]
            final[index] = list(pb.RemoveSasResponse.FromString(reply[1]).final_counters)
        return pb.RemoveSasResponse(final_counters=merge_final_counters(
            wanted, self.members, final))

    def _refuse_used_key(self, method: str, request: Message) -> None:
        """FAILED_PRECONDITION if a process other than the owner has numbered packets under
        this fresh SA's encrypt key (the owner checks its own state itself)."""
        owner = owner_of(request.params.sa_index, self.members)  # type: ignore[attr-defined]
        payload = request.SerializeToString()
        for member in self._members:
            if member.index == owner:
                continue
            if self._failure is not None:
                raise ChildAbort(grpc.StatusCode.UNAVAILABLE, self._failure)
            try:
                reply = member.exchange(("key_used", method, payload))
            except (EOFError, OSError):
                raise ChildAbort(grpc.StatusCode.UNAVAILABLE,
                                 self._failure or f"{member.describe()} is gone") from None
            if reply[1] is not None:
                raise ChildAbort(grpc.StatusCode.FAILED_PRECONDITION, reply[1])

    def _call(self, index: int, method: str, request: Message,
              response_class: type[Message]) -> Message:
        if self._failure is not None:
            raise ChildAbort(grpc.StatusCode.UNAVAILABLE, self._failure)
        member = self._members[index]
        message = (("drops",) if request is DROPS_ONLY else
                   ("call", method, request.SerializeToString()))
        try:
            reply = member.exchange(message)
        except (EOFError, OSError):
            raise ChildAbort(grpc.StatusCode.UNAVAILABLE,
                             self._failure or f"{member.describe()} is gone; the crypto port is "
                             "stopped: restart the worker") from None
        if reply[0] == "ok":
            return response_class.FromString(reply[1])
        raise ChildAbort(grpc.StatusCode[reply[1]], reply[2], reply[3])

    # ---- life cycle ----------------------------------------------------------------------

    def _watch(self) -> None:
        """Waits for any process to end; one that ends while the group runs stops the group."""
        sentinels = {member.process.sentinel: member for member in self._members}
        ready = wait(list(sentinels))
        if self._stopping.is_set():
            return
        member = sentinels[ready[0]]  # type: ignore[index]
        member.process.join(timeout=1)
        self._failure = (f"{member.describe()} {_exit_text(member.process.exitcode)}; the "
                         "crypto port is stopped: restart the worker")
        log.error("%s; stopping the other worker processes (the fanout group no longer sends "
                  "each SA to its owner)", self._failure)
        for service in ("", SERVICE_NAME):
            self._health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        self._stop_members()

    def _stop_members(self) -> None:
        for member in self._members:
            # Not in the middle of another thread's call on the same Connection.
            if member.process.is_alive() and member.lock.acquire(timeout=STOP_TIMEOUT_S):
                try:
                    member.connection.send(("stop",))
                except OSError:
                    pass
                finally:
                    member.lock.release()
        for member in self._members:
            member.process.join(timeout=STOP_TIMEOUT_S)
            if member.process.is_alive():
                log.error("%s did not stop within %s s; terminating it", member.describe(),
                          STOP_TIMEOUT_S)
                member.process.terminate()
                member.process.join(timeout=STOP_TIMEOUT_S)
            member.connection.close()

    def start(self) -> None:
        self._server.start()
        self._watcher.start()
        log.info("SA service on unix:%s, %s worker processes", self.settings.sa_socket,
                 self.members)

    def stop(self) -> None:
        self._stopping.set()
        self._server.stop(grace=1).wait()
        self._stop_members()
        try:
            if os.lstat(self.settings.sa_socket).st_ino == self._socket_inode:
                os.unlink(self.settings.sa_socket)
        except FileNotFoundError:
            pass

