"""The SA service over gRPC: protobuf in, domain calls, protobuf out. Nothing else.

Errors name the field and the value (keys only by length) and leave the table exactly as it was:
validation runs before any change, and each change is a single locked table operation.
"""

from __future__ import annotations

import logging
import uuid
from typing import NoReturn

import grpc

from crypto_worker.ciphers import SUITE_BY_PROTO_NAME, CipherSuite
from crypto_worker.drops import DropReason
from crypto_worker.sa import CounterSnapshot, Direction, EspMode, SecurityAssociation
from crypto_worker.sa_state import SaStateRefused, StateStoreError
from crypto_worker.sa_table import SaBatchError, SaTable, SaTableError
from crypto_worker.secret import Secret
from crypto_worker.validation import SaRequest, SaValidationError, validate_sa
from tunneloffload.crypto.v1 import worker_pb2 as pb
from tunneloffload.crypto.v1 import worker_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

FAILED_SA_METADATA = "failed-sa"  # AddSas/RemoveSas: the position of the SA refused

_DIRECTION_FROM_PB = {
    pb.DIRECTION_ENCRYPT: Direction.ENCRYPT,
    pb.DIRECTION_DECRYPT: Direction.DECRYPT,
}
_DIRECTION_TO_PB = {v: k for k, v in _DIRECTION_FROM_PB.items()}
_MODE_FROM_PB = {pb.MODE_TRANSPORT: EspMode.TRANSPORT, pb.MODE_TUNNEL: EspMode.TUNNEL}
_MODE_TO_PB = {v: k for k, v in _MODE_FROM_PB.items()}


def _suite_from_pb(value: int) -> CipherSuite | None:
    if value == pb.CIPHER_UNSPECIFIED:
        return None
    try:
        name = pb.Cipher.Name(value)
    except ValueError:
        raise SaValidationError("params.cipher", f"{value}, not a Cipher value") from None
    return SUITE_BY_PROTO_NAME[name]


def _request_from_pb(params: pb.SaParams, key: pb.SaKey) -> SaRequest:
    if params.direction not in _DIRECTION_FROM_PB and params.direction != 0:
        raise SaValidationError("params.direction", f"{params.direction}, not a Direction value")
    if params.mode not in _MODE_FROM_PB and params.mode != 0:
        raise SaValidationError("params.mode", f"{params.mode}, not a Mode value")
    return SaRequest(
        sa_index=params.sa_index,
        spi=params.spi,
        direction=_DIRECTION_FROM_PB.get(params.direction),
        suite=_suite_from_pb(params.cipher),
        mode=_MODE_FROM_PB.get(params.mode),
        nat_traversal=params.nat_traversal,
        esn=params.esn,
        replay_window=params.replay_window,
        key=Secret(key.key),
        salt=Secret(key.salt),
    )


def _drops_to_pb(drops: dict[DropReason, int]) -> list[pb.DropCount]:
    return [
        pb.DropCount(reason=pb.DropReason.Value(reason.value), packets=count)
        for reason, count in sorted(drops.items(), key=lambda item: item[0].value)
        if count
    ]


def counters_to_pb(snapshot: CounterSnapshot) -> pb.SaCounters:
    return pb.SaCounters(
        sa_index=snapshot.sa_index,
        packets=snapshot.packets,
        bytes=snapshot.bytes,
        drops=_drops_to_pb(snapshot.drops),
    )


def _info_to_pb(sa: SecurityAssociation) -> pb.SaInfo:
    config = sa.config
    return pb.SaInfo(
        params=pb.SaParams(
            sa_index=config.sa_index,
            spi=config.spi,
            direction=_DIRECTION_TO_PB[config.direction],
            cipher=pb.Cipher.Value(config.suite.proto_name),
            mode=_MODE_TO_PB[config.mode],
            nat_traversal=config.nat_traversal,
            esn=config.esn,
            replay_window=config.replay_window,
        ),
        key_length=config.suite.key_bytes,
        salt_length=config.suite.salt_bytes,
        next_sequence=sa.next_sequence,
        replay_top=sa.replay.top if sa.replay is not None else 0,
        counters=counters_to_pb(sa.counters.snapshot(config.sa_index)),
    )


class CryptoWorkerServicer(pb_grpc.CryptoWorkerServicer):
    """Maps the CryptoWorker rpcs onto the SaTable."""

    def __init__(self, table: SaTable) -> None:
        self._table = table

    def _abort(self, context: grpc.ServicerContext, error: Exception) -> NoReturn:
        """Ends the rpc with the status for `error` (context.abort raises)."""
        if isinstance(error, SaValidationError):
            field = error.field
            if field in ("key", "salt"):
                field = f"key.{field}"
            elif not field.startswith("params."):
                field = f"params.{field}"
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {error.detail}")
        if isinstance(error, SaTableError):
            code = (
                grpc.StatusCode.ALREADY_EXISTS if error.in_use else grpc.StatusCode.NOT_FOUND
            )
            context.abort(code, error.message)
        if isinstance(error, SaStateRefused):
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
        if isinstance(error, StateStoreError):
            log.error("%s", error)
            context.abort(grpc.StatusCode.UNAVAILABLE, f"the worker cannot keep SA state: {error}")
        reference = uuid.uuid4().hex[:12]
        log.error("internal error, reference %s", reference, exc_info=error)
        context.abort(grpc.StatusCode.INTERNAL, f"internal error, reference {reference}")
        raise AssertionError("unreachable: context.abort raises")

    def AddSa(self, request: pb.AddSaRequest, context: grpc.ServicerContext) -> pb.AddSaResponse:
        try:
            config, keys = validate_sa(_request_from_pb(request.params, request.key))
            self._table.add(config, keys, resume=request.resume)
        except Exception as error:  # noqa: BLE001 - every error becomes a status
            self._abort(context, error)
        return pb.AddSaResponse()

    def AddSas(self, request: pb.AddSasRequest, context: grpc.ServicerContext,
               *, check_only: bool = False) -> pb.AddSasResponse:
        """``check_only``: every check, the same errors, nothing added (the `--workers N`
        supervisor asks every process before any adds: crypto_worker/supervisor.py)."""
        items = []
        for position, item in enumerate(request.sas):
            try:
                if item.resume:
                    raise SaValidationError("resume", "true: AddSas installs new SAs only; "
                                            "resume an SA with AddSa")
                items.append(validate_sa(_request_from_pb(item.params, item.key)))
            except Exception as error:  # noqa: BLE001 - every error becomes a status
                self._abort_item(context, position, error)
        try:
            self._table.add_many(items, check_only=check_only)
        except SaBatchError as error:
            self._abort_item(context, error.position, error.error)
        except Exception as error:  # noqa: BLE001
            self._abort(context, error)
        return pb.AddSasResponse()

    def RemoveSas(self, request: pb.RemoveSasRequest, context: grpc.ServicerContext
                  ) -> pb.RemoveSasResponse:
        try:
            final = self._table.remove_many(list(request.sa_indexes),
                                            missing_ok=request.missing_ok)
        except SaBatchError as error:
            self._abort_item(context, error.position, error.error, what="sa_indexes")
        except Exception as error:  # noqa: BLE001
            self._abort(context, error)
        return pb.RemoveSasResponse(final_counters=[counters_to_pb(c) for c in final])

    def _abort_item(self, context: grpc.ServicerContext, position: int, error: Exception,
                    what: str = "sas") -> NoReturn:
        """:meth:`_abort` for one SA of a batch: its position in the details ("sas[3].params.
        spi: …") and in the trailing metadata ``failed-sa`` (the client maps it back)."""
        context.set_trailing_metadata(((FAILED_SA_METADATA, str(position)),))
        if isinstance(error, SaValidationError):
            field = error.field
            field = (f"key.{field}" if field in ("key", "salt") else
                     field if field.startswith("params.") or field == "resume"
                     else f"params.{field}")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"{what}[{position}].{field}: {error.detail}")
        if isinstance(error, SaTableError):
            code = (grpc.StatusCode.ALREADY_EXISTS if error.in_use
                    else grpc.StatusCode.NOT_FOUND)
            context.abort(code, f"{what}[{position}]: {error.message}")
        if isinstance(error, SaStateRefused):
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"{what}[{position}]: {error}")
        self._abort(context, error)

    def ReplaceSa(
        self, request: pb.ReplaceSaRequest, context: grpc.ServicerContext
    ) -> pb.ReplaceSaResponse:
        try:
            config, keys = validate_sa(_request_from_pb(request.params, request.key))
            previous = self._table.replace(config, keys)
        except Exception as error:  # noqa: BLE001
            self._abort(context, error)
        return pb.ReplaceSaResponse(previous_counters=counters_to_pb(previous))

    def RemoveSa(
        self, request: pb.RemoveSaRequest, context: grpc.ServicerContext
    ) -> pb.RemoveSaResponse:
        try:
            final = self._table.remove(request.sa_index)
        except Exception as error:  # noqa: BLE001
            self._abort(context, error)
        return pb.RemoveSaResponse(final_counters=counters_to_pb(final))

    def ListSas(
        self, request: pb.ListSasRequest, context: grpc.ServicerContext
    ) -> pb.ListSasResponse:
        return pb.ListSasResponse(sas=[_info_to_pb(sa) for sa in self._table.all()])

    def GetCounters(
        self, request: pb.GetCountersRequest, context: grpc.ServicerContext
    ) -> pb.GetCountersResponse:
        if request.sa_indexes:
            # Only the SAs asked for: no copy and sort of every SA per call.
            sas: list[SecurityAssociation] = []
            for position, sa_index in enumerate(request.sa_indexes):
                sa = self._table.get(sa_index)
                if sa is None:
                    context.abort(
                        grpc.StatusCode.NOT_FOUND,
                        f"sa_indexes[{position}]: {sa_index} is not in use",
                    )
                    raise AssertionError("unreachable: context.abort raises")
                sas.append(sa)
        elif request.dropped_only:
            sas = self._table.dropping()
        else:
            sas = self._table.all()
        if request.dropped_only:
            sas = [sa for sa in sas if any(sa.counters.drops.values())]
        response = self.drops_outside_sas()
        response.sas.extend(counters_to_pb(sa.counters.snapshot(sa.config.sa_index))
                            for sa in sas)
        return response

    def drops_outside_sas(self) -> pb.GetCountersResponse:
        """GetCounters without any SA: the drops of unknown sa_indexes and unattributed ones."""
        return pb.GetCountersResponse(
            unknown_sa=[
                pb.UnknownSaDrops(sa_index=index, packets=count)
                for index, count in sorted(dict(self._table.unknown_sa_drops).items())
            ],
            unattributed=_drops_to_pb(dict(self._table.unattributed_drops)),
        )
