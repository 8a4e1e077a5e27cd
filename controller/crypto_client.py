"""Client of the crypto worker's SA service (proto/tunneloffload/crypto/v1/worker.proto).

Turns the controller's SAs into AddSa/RemoveSa/ListSas/GetCounters calls on the worker's Unix
socket. Keys are unwrapped from :class:`controller.keys.SaKey` only here, straight into the
request message, and only after :func:`check_worker_socket` found the socket owned by this user
(or root) in a directory no other user can write (the trust assumption, docs/operations.md).
Every failure becomes :class:`WorkerUnavailable` (the worker could not be reached) or
:class:`WorkerRefused` (it answered with an error), without key material.
"""

from __future__ import annotations

import functools
import logging
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import grpc

from controller.model import Cipher, IpsecDecrypt, IpsecEncrypt, SecurityAssociation, Tunnel
from tunneloffload.crypto.v1 import worker_pb2 as wpb
from tunneloffload.crypto.v1 import worker_pb2_grpc as wpb_grpc

log = logging.getLogger(__name__)

# Deadlines. A call about one SA gets CALL_TIMEOUT; a batch call gets it plus PER_SA_TIMEOUT per
# SA; a call whose answer covers every SA the worker holds (ListSas, GetCounters of all or of the
# dropped ones) gets WHOLE_TABLE_TIMEOUT: ListSas of 60,000 SAs took up to 2.2 s on a loaded
# 2-core machine, so a fixed 3 s made a busy worker look like an outage (DEADLINE_EXCEEDED is
# reported as "crypto worker unavailable") at the table sizes this device supports.
CALL_TIMEOUT = 3.0
PER_SA_TIMEOUT = 0.001  # 4x the 0.25 ms per SA AddSas took (--workers 2, load ~7)
WHOLE_TABLE_TIMEOUT = 60.0
FAILED_SA_METADATA = "failed-sa"  # worker.proto AddSas/RemoveSas: the SA refused


class WorkerError(Exception):
    """The worker could not do what was asked; ``position``: which SA of a batch call, when
    the worker said (:meth:`CryptoWorkerClient.add_many`)."""

    position: int | None = None


class WorkerUnavailable(WorkerError):
    """The worker's socket does not answer."""


class BatchUnsupported(WorkerError):
    """The worker has no AddSas/RemoveSas (an older worker); nothing was done."""


class WorkerRefused(WorkerError):
    """The worker answered with an error status; ``code`` is its gRPC status name."""

    def __init__(self, message: str, *, code: str = "", position: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.position = position


SA_FIELDS = ("sa_index", "spi", "direction", "cipher", "mode", "nat_traversal")
"""The SaParams fields the controller sets; the worker fills in the rest (replay window)."""


@dataclass(frozen=True, kw_only=True)
class WorkerSa:
    """One SA as the controller wants it on the worker (``secret`` stays wrapped)."""

    sa_index: int
    tunnel_id: int
    encrypt: bool
    cipher: Cipher
    tunnel_mode: bool
    nat_traversal: bool
    sa: SecurityAssociation

    @property
    def params(self) -> wpb.SaParams:
        """The worker's SaParams (no key)."""
        return wpb.SaParams(
            sa_index=self.sa_index, spi=self.sa.spi,
            direction=wpb.DIRECTION_ENCRYPT if self.encrypt else wpb.DIRECTION_DECRYPT,
            # worker Cipher = ENC_TYPE + 1 (worker.proto)
            cipher=wpb.Cipher.Name(int(self.cipher) + 1),
            mode=wpb.MODE_TUNNEL if self.tunnel_mode else wpb.MODE_TRANSPORT,
            nat_traversal=self.nat_traversal)

    @functools.cached_property
    def fields(self) -> tuple[object, ...]:
        """:data:`SA_FIELDS` of :attr:`params`, built once: the worker monitor's full check
        compares every SA's fields with the worker's list, 131,072 at capacity."""
        params = self.params
        return tuple(getattr(params, name) for name in SA_FIELDS)


def worker_sas(tunnel: Tunnel, sa_indexes: Mapping[int, int]) -> list[WorkerSa]:
    """The worker SAs of one tunnel, given its SPI → SA index map."""
    body = tunnel.body
    if isinstance(body, IpsecEncrypt | IpsecDecrypt):
        return [WorkerSa(sa_index=sa_indexes[sa.spi], tunnel_id=tunnel.tunnel_id,
                         encrypt=isinstance(body, IpsecEncrypt), cipher=body.cipher,
                         tunnel_mode=body.mode.is_tunnel,
                         nat_traversal=body.mode.nat_traversal, sa=sa)
                for sa in tunnel.security_associations]
    return []


def worker_ciphers() -> frozenset[Cipher]:
    """The ENC_TYPEs the worker's protocol names (worker Cipher = ENC_TYPE + 1)."""
    known = {int(cipher) for cipher in Cipher}
    return frozenset(Cipher(number - 1) for number in wpb.Cipher.values()
                     if number != wpb.CIPHER_UNSPECIFIED and number - 1 in known)


def _trusted_owner(uid: int) -> bool:
    return uid in (os.geteuid(), 0)


def check_socket_directory(socket_path: str) -> None:
    """Refuse a worker socket in a directory where another user could put their own socket
    (writable by group or others without the sticky bit, or owned by another user): the
    controller would then hand SA keys to an impostor. Raises :class:`WorkerUnavailable`."""
    directory = os.path.dirname(os.path.abspath(socket_path))
    try:
        info = os.stat(directory)
    except OSError as error:
        raise WorkerUnavailable(f"crypto worker socket directory {directory}: "
                                f"{error.strerror}") from None
    mode = stat.S_IMODE(info.st_mode)
    if not _trusted_owner(info.st_uid):
        raise WorkerUnavailable(f"crypto worker socket directory {directory} belongs to uid "
                                f"{info.st_uid}, not to this user or root")
    if mode & 0o022 and not mode & stat.S_ISVTX:
        raise WorkerUnavailable(f"crypto worker socket directory {directory} is writable by "
                                f"group or others (mode {mode:o}); use a directory only the "
                                "controller's user can write")


def check_worker_socket(socket_path: str) -> None:
    """The socket must sit in a safe directory (:func:`check_socket_directory`), be a socket and
    belong to this user or root — checked before every key is sent."""
    check_socket_directory(socket_path)
    try:
        info = os.lstat(socket_path)
    except OSError as error:
        raise WorkerUnavailable(f"crypto worker socket {socket_path}: {error.strerror}") from None
    if not stat.S_ISSOCK(info.st_mode):
        raise WorkerUnavailable(f"crypto worker socket {socket_path} is not a socket")
    if not _trusted_owner(info.st_uid):
        raise WorkerUnavailable(f"crypto worker socket {socket_path} belongs to uid "
                                f"{info.st_uid}, not to this user or root; no key is sent")


def _fault(error: grpc.aio.AioRpcError, what: str, *, position: int | None = None
           ) -> WorkerError:
    if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                        grpc.StatusCode.CANCELLED):
        return WorkerUnavailable(f"crypto worker unavailable ({what}): {error.code().name}")
    return WorkerRefused(f"crypto worker refused {what}: {error.code().name} "
                         f"{error.details()}", code=error.code().name, position=position)


def _batch_timeout(count: int) -> float:
    """The deadline of a call about `count` SAs."""
    return CALL_TIMEOUT + count * PER_SA_TIMEOUT


def _failed_position(error: grpc.aio.AioRpcError) -> int | None:
    """The ``failed-sa`` trailing metadata of an AddSas/RemoveSas refusal (worker.proto)."""
    for key, value in error.trailing_metadata() or ():
        if key == FAILED_SA_METADATA:
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None


class CryptoWorkerClient:
    """An async gRPC channel to ``unix:<socket>``; reconnects by itself (gRPC backoff)."""

    def __init__(self, socket_path: str) -> None:
        # At start-up an unsafe directory stops the controller (ValueError); one that does not
        # exist yet (the worker may create it later) is checked before every key instead.
        if os.path.isdir(os.path.dirname(os.path.abspath(socket_path))):
            try:
                check_socket_directory(socket_path)
            except WorkerUnavailable as error:
                raise ValueError(f"--crypto-worker-socket: {error}") from None
        self.socket_path = socket_path
        self._channel = grpc.aio.insecure_channel(f"unix:{socket_path}")
        self._stub = wpb_grpc.CryptoWorkerStub(self._channel)
        self._batched = True  # AddSas/RemoveSas until the worker answers UNIMPLEMENTED

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def add(self, sa: WorkerSa, *, resume: bool = False) -> None:
        """AddSa (the key goes only into this request). ``resume``: re-install an SA installed
        before and never removed (worker restart) from the worker's durable sequence/replay
        state; a new SA is ``resume=False`` (worker.proto ``AddSaRequest.resume``)."""
        check_worker_socket(self.socket_path)
        secret = sa.sa.secret
        try:
            await self._stub.AddSa(wpb.AddSaRequest(
                params=sa.params,
                key=wpb.SaKey(key=secret.reveal_key(), salt=secret.reveal_salt()),
                resume=resume),
                timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            raise _fault(error, f"AddSa index {sa.sa_index} spi {sa.sa.spi}") from None

    @property
    def batched(self) -> bool:
        """False once the worker answered UNIMPLEMENTED to AddSas/RemoveSas (an older worker):
        callers then use AddSa/RemoveSa per SA."""
        return self._batched

    async def add_many(self, sas: Sequence[WorkerSa]) -> None:
        """AddSas: new SAs in one call, all or nothing (worker.proto). A refusal is
        :class:`WorkerRefused` with ``position``, the SA refused (nothing was added);
        :class:`BatchUnsupported` when the worker has no AddSas (nothing was added)."""
        if not sas:
            return
        check_worker_socket(self.socket_path)
        request = wpb.AddSasRequest(sas=[wpb.AddSaRequest(
            params=sa.params,
            key=wpb.SaKey(key=sa.sa.secret.reveal_key(), salt=sa.sa.secret.reveal_salt()))
            for sa in sas])
        try:
            await self._stub.AddSas(request, timeout=_batch_timeout(len(sas)))
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.UNIMPLEMENTED:
                self._batched = False
                log.info("the crypto worker has no AddSas/RemoveSas: one call per SA")
                raise BatchUnsupported("crypto worker: AddSas is not implemented") from None
            raise _fault(error, f"AddSas of {len(sas)} SA(s)",
                         position=_failed_position(error)) from None

    async def remove_many(self, sa_indexes: Sequence[int], *, missing_ok: bool = False
                          ) -> dict[int, int]:
        """RemoveSas: many SAs in one call; ``missing_ok`` skips unused indices;
        :class:`BatchUnsupported` when the worker has no RemoveSas. Returns the removed SAs'
        final drop counts (all reasons) by index — gone from the worker with them."""
        if not sa_indexes:
            return {}
        try:
            response = await self._stub.RemoveSas(wpb.RemoveSasRequest(
                sa_indexes=list(sa_indexes), missing_ok=missing_ok),
                timeout=_batch_timeout(len(sa_indexes)))
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.UNIMPLEMENTED:
                self._batched = False
                raise BatchUnsupported("crypto worker: RemoveSas is not implemented") from None
            raise _fault(error, f"RemoveSas of {len(sa_indexes)} SA(s)",
                         position=_failed_position(error)) from None
        return {final.sa_index: sum(drop.packets for drop in final.drops)
                for final in response.final_counters}

    async def remove(self, sa_index: int, *, missing_ok: bool = False) -> None:
        """RemoveSa; ``missing_ok`` treats NOT_FOUND as done."""
        try:
            await self._stub.RemoveSa(wpb.RemoveSaRequest(sa_index=sa_index),
                                      timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            if missing_ok and error.code() is grpc.StatusCode.NOT_FOUND:
                return
            raise _fault(error, f"RemoveSa index {sa_index}") from None

    async def list(self) -> dict[int, wpb.SaParams]:
        """The worker's SAs by index (parameters only)."""
        return {info.params.sa_index: info.params for info in await self.sa_infos()}

    async def sa_infos(self) -> Sequence[wpb.SaInfo]:
        """The worker's SAs as ListSas returned them: the repeated field protobuf's C code
        parsed, a Python message made only for the element read (the worker monitor walks
        131,072 at capacity, controller.worker_audit)."""
        try:
            response = await self._stub.ListSas(wpb.ListSasRequest(),
                                                timeout=WHOLE_TABLE_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            raise _fault(error, "ListSas") from None
        return response.sas

    async def _counters(self, sa_indexes: Sequence[int] | None = None
                        ) -> wpb.GetCountersResponse:
        """One GetCounters call for ``sa_indexes`` (None: every SA). The worker refuses a list
        naming an index it does not hold (NOT_FOUND, e.g. an SA it lost): then every SA is
        asked for, so a lost SA's drops (``unknown_sa``) still come back."""
        request = wpb.GetCountersRequest(sa_indexes=sa_indexes or [])
        timeout = _batch_timeout(len(sa_indexes)) if sa_indexes else WHOLE_TABLE_TIMEOUT
        try:
            return await self._stub.GetCounters(request, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            if sa_indexes and error.code() is grpc.StatusCode.NOT_FOUND:
                return await self._counters()
            raise _fault(error, "GetCounters") from None

    async def all_drops(self) -> dict[int, int]:
        """Dropped packets per SA index of every SA that has dropped any (plus frames for an
        index no SA had): one call whatever the number of SAs (``dropped_only``); an index
        missing from the answer dropped nothing."""
        try:
            response = await self._stub.GetCounters(
                wpb.GetCountersRequest(dropped_only=True), timeout=WHOLE_TABLE_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            raise _fault(error, "GetCounters") from None
        counts = {counters.sa_index: sum(drop.packets for drop in counters.drops)
                  for counters in response.sas}
        for unknown in response.unknown_sa:
            counts[unknown.sa_index] = counts.get(unknown.sa_index, 0) + unknown.packets
        return counts

    async def holds(self, sa_indexes: Sequence[int]) -> bool:
        """True when the worker holds every one of ``sa_indexes`` (a GetCounters of just
        them: a cheap probe, where ListSas returns every SA)."""
        try:
            await self._stub.GetCounters(wpb.GetCountersRequest(sa_indexes=list(sa_indexes)),
                                         timeout=_batch_timeout(len(sa_indexes)))
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return False
            raise _fault(error, "GetCounters") from None
        return True

    async def handled(self, sa_indexes: Iterable[int]) -> dict[int, int]:
        """Frames each SA index has finished with: transformed and returned, or dropped."""
        wanted = sorted(set(sa_indexes))
        if not wanted:
            return {}
        response = await self._counters(wanted)
        counts = {counters.sa_index: counters.packets + sum(d.packets for d in counters.drops)
                  for counters in response.sas}
        return {index: counts.get(index, 0) for index in wanted}

    async def drops(self, sa_indexes: Iterable[int]) -> dict[int, int]:
        """Dropped packets per SA index: all reasons summed, plus frames the worker dropped
        because no SA had that index (a lost SA); indices never seen read 0."""
        wanted = sorted(set(sa_indexes))
        if not wanted:
            return {}
        response = await self._counters(wanted)
        counts = {counters.sa_index: sum(drop.packets for drop in counters.drops)
                  for counters in response.sas}
        for unknown in response.unknown_sa:  # frames for an index whose SA the worker lost
            counts[unknown.sa_index] = counts.get(unknown.sa_index, 0) + unknown.packets
        return {index: counts.get(index, 0) for index in wanted}
