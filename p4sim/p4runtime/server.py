"""The ``p4.v1.P4Runtime`` gRPC service of a p4sim device.

gRPC in and out only: requests are checked in the order the spec gives (device id, role,
primary, pipeline) and handed to the writer, reader, arbiter and device. Errors leave as gRPC
statuses; a failed Write batch carries one ``p4.v1.Error`` per update in the
``google.rpc.Status`` details (trailer ``grpc-status-details-bin``), as the spec packs them.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import TypeVar

import grpc
from google.protobuf import any_pb2

from p4sim.p4runtime.arbitration import Arbiter, Controller, Notifications, election_id_of
from p4sim.p4runtime.counter_wire import responses
from p4sim.p4runtime.device import Device, Running
from p4sim.p4runtime.errors import P4RuntimeError
from p4sim.p4runtime.packet_io import packet_in_message, packet_out_metadata
from p4sim.p4runtime.proto import P4RUNTIME_API_VERSION, p4r, p4r_grpc, rpc_code, rpc_status
from p4sim.p4runtime.reader import EntityReader
from p4sim.p4runtime.writer import BatchWriter

logger = logging.getLogger(__name__)

T = TypeVar("T")
READ_CHUNK_BYTES = 256 * 1024  # about this much per ReadResponse (clients accept 4 MiB)
_END = object()
_SET = p4r.SetForwardingPipelineConfigRequest
_GET = p4r.GetForwardingPipelineConfigRequest


@dataclass(frozen=True, kw_only=True)
class ServerSettings:
    address: str = "127.0.0.1:9559"
    max_workers: int = 16
    # None: plaintext, as simple_switch_grpc without --grpc-server-ssl (p4sim.p4runtime.tls).
    credentials: grpc.ServerCredentials | None = None


class _Stream:
    """The outgoing side of one StreamChannel."""

    def __init__(self) -> None:
        self.outbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.controller: Controller | None = None


class P4RuntimeServicer(p4r_grpc.P4RuntimeServicer):
    def __init__(self, device: Device) -> None:
        self._device = device
        self._arbiter = Arbiter(device.device_id)
        self._streams: dict[int, _Stream] = {}
        self._streams_lock = threading.Lock()
        self._write_gate = threading.RLock()  # no primary change while a batch is applied
        device.packet_in_sink = self._packet_in

    # -- unary RPCs ------------------------------------------------------------------------

    def Capabilities(self, request, context):  # noqa: N802 - gRPC method name
        return p4r.CapabilitiesResponse(p4runtime_api_version=P4RUNTIME_API_VERSION)

    def SetForwardingPipelineConfig(self, request, context):  # noqa: N802
        def work() -> p4r.SetForwardingPipelineConfigResponse:
            self._check_device(request.device_id)
            with self._write_gate:
                self._check_primary(request.role, election_id_of(request))
                self._set_pipeline(request)
            return p4r.SetForwardingPipelineConfigResponse()

        return _guarded(context, work)

    def GetForwardingPipelineConfig(self, request, context):  # noqa: N802
        return _guarded(context, lambda: self._get_pipeline(request))

    def _get_pipeline(self, request: p4r.GetForwardingPipelineConfigRequest
                      ) -> p4r.GetForwardingPipelineConfigResponse:
        self._check_device(request.device_id)
        control = self._device.control  # the saved config, once VERIFY_AND_SAVE stored one
        if control is None:
            return p4r.GetForwardingPipelineConfigResponse()
        pipeline = control.pipeline
        config = p4r.ForwardingPipelineConfig()
        if pipeline.cookie is not None:
            config.cookie.cookie = pipeline.cookie
        kind = request.response_type
        if kind in (_GET.ALL, _GET.P4INFO_AND_COOKIE):
            config.p4info.CopyFrom(pipeline.program.p4info)
        if kind in (_GET.ALL, _GET.DEVICE_CONFIG_AND_COOKIE):
            config.p4_device_config = pipeline.device_config
        if kind not in (_GET.ALL, _GET.COOKIE_ONLY, _GET.P4INFO_AND_COOKIE,
                        _GET.DEVICE_CONFIG_AND_COOKIE):
            raise P4RuntimeError(grpc.StatusCode.INVALID_ARGUMENT,
                                 f"unknown response_type {kind}")
        return p4r.GetForwardingPipelineConfigResponse(config=config)

    def Write(self, request, context):  # noqa: N802
        return _guarded(context, lambda: self._write(request))

    def _write(self, request: p4r.WriteRequest) -> p4r.WriteResponse:
        self._check_device(request.device_id)
        with self._write_gate:
            self._check_primary(request.role, election_id_of(request))
            target = self._control()
            with target.switch.lock:
                writer = BatchWriter(target.pipeline.schema, target.switch.state,
                                     target.metadata)
                results = writer.apply(list(request.updates), request.atomicity)
        failures = [r for r in results if r is not None]
        if failures:
            logger.info("write batch of %d updates: %d failed, first: %s",
                        len(results), len(failures), failures[0])
            raise _BatchFailed(results)
        return p4r.WriteResponse()

    def Read(self, request, context):  # noqa: N802
        """Yields serialized ReadResponses: create_server registers Read with no response
        serializer, so the bytes go out as encoded (no message rebuilt per cell)."""
        yield from _guarded(context, lambda: self._read(request))

    def _read(self, request: p4r.ReadRequest) -> list[bytes]:
        """The serialized ReadResponses: one snapshot under the switch lock, encoded without
        a message object per counter cell (counter_wire)."""
        self._check_device(request.device_id)
        target = self._control()
        reader = EntityReader(target.pipeline.schema, target.switch.state, target.metadata)
        with target.switch.lock:
            elements = (element for entity in request.entities
                        for element in reader.read_elements(entity))
            return list(responses(elements, READ_CHUNK_BYTES))

    # -- stream ----------------------------------------------------------------------------

    def StreamChannel(self, request_iterator, context):  # noqa: N802
        stream = _Stream()
        with self._streams_lock:
            self._streams[id(stream)] = stream
        reader = threading.Thread(target=self._read_stream, args=(request_iterator, stream),
                                  name="p4rt-stream-rx", daemon=True)
        reader.start()
        context.add_callback(lambda: stream.outbox.put(_END))
        try:
            while True:
                item = stream.outbox.get()
                if item is _END:
                    return
                if isinstance(item, P4RuntimeError):
                    context.abort(item.code, item.message)
                yield item
        finally:
            with self._streams_lock:
                self._streams.pop(id(stream), None)
            if stream.controller is not None:
                with self._write_gate:
                    self._deliver(self._arbiter.leave(stream.controller))

    def _read_stream(self, requests: Iterator[p4r.StreamMessageRequest], stream: _Stream) -> None:
        try:
            for message in requests:
                kind = message.WhichOneof("update")
                if kind == "arbitration":
                    self._arbitrate(stream, message.arbitration)
                elif kind == "packet":
                    self._packet_out(stream, message.packet)
                else:
                    stream.outbox.put(_stream_error(
                        grpc.StatusCode.UNIMPLEMENTED, f"stream message {kind} not supported"))
        except P4RuntimeError as error:
            stream.outbox.put(error)
        except grpc.RpcError:
            pass  # the client went away
        except Exception:  # noqa: BLE001 - a stream bug must not leave the client hanging
            reference = uuid.uuid4().hex[:8]
            logger.exception("stream handler failed (reference %s)", reference)
            stream.outbox.put(P4RuntimeError(grpc.StatusCode.INTERNAL,
                                             f"internal error, reference {reference}"))
        stream.outbox.put(_END)

    def _arbitrate(self, stream: _Stream, message: p4r.MasterArbitrationUpdate) -> None:
        with self._write_gate:
            controller, notes = self._arbiter.update(stream.controller, message)
        stream.controller = controller
        primary = self._arbiter.is_primary(controller.role, controller.election_id)
        logger.info("arbitration: role %r election id %s is %s", controller.role,
                    controller.election_id, "primary" if primary else "backup")
        self._deliver(notes)

    def _deliver(self, notes: Notifications) -> None:
        with self._streams_lock:
            by_controller = {id(s.controller): s for s in self._streams.values()}
        for controller, update in notes:
            target = by_controller.get(id(controller))
            if target is not None:
                target.outbox.put(p4r.StreamMessageResponse(arbitration=update))

    def _packet_out(self, stream: _Stream, packet: p4r.PacketOut) -> None:
        controller = stream.controller
        if controller is None or not self._arbiter.is_primary(controller.role,
                                                              controller.election_id):
            stream.outbox.put(_stream_error(grpc.StatusCode.PERMISSION_DENIED,
                                            "only the primary controller may send packets",
                                            packet))
            return
        running = self._device.running
        if running is None:
            stream.outbox.put(_stream_error(grpc.StatusCode.FAILED_PRECONDITION,
                                            "no forwarding pipeline config is set", packet))
            return
        try:
            metadata = packet_out_metadata(running.pipeline.schema, packet)
            outputs = running.switch.packet_out(packet.payload, metadata)
        except P4RuntimeError as error:
            stream.outbox.put(_stream_error(error.code, error.message, packet))
            return
        except ValueError as error:  # e.g. the switch has no CPU port
            stream.outbox.put(_stream_error(grpc.StatusCode.FAILED_PRECONDITION, str(error),
                                            packet))
            return
        self._device.transmit(outputs)

    def _packet_in(self, payload: bytes, metadata: dict[int, int]) -> None:
        """Called by the switch (pipeline thread, switch lock held): never blocks."""
        message = packet_in_message(payload, metadata)
        primaries = {id(c) for c in self._arbiter.primaries()}
        with self._streams_lock:
            targets = [s for s in self._streams.values() if id(s.controller) in primaries]
        if not targets:
            logger.debug("packet-in of %d bytes dropped: no primary controller", len(payload))
        for stream in targets:
            stream.outbox.put(message)

    # -- checks ----------------------------------------------------------------------------

    def _check_device(self, device_id: int) -> None:
        if device_id != self._device.device_id:
            raise P4RuntimeError(grpc.StatusCode.NOT_FOUND,
                                 f"device id {device_id} is not this device "
                                 f"({self._device.device_id})")

    def _check_primary(self, role: str, election_id: int | None) -> None:
        if not self._arbiter.role_known(role):
            raise P4RuntimeError(grpc.StatusCode.NOT_FOUND,
                                 f"role {role!r} has no controller on this device")
        if not self._arbiter.is_primary(role, election_id):
            raise P4RuntimeError(grpc.StatusCode.PERMISSION_DENIED,
                                 f"election id {election_id} is not the primary of role "
                                 f"{role!r}")

    def _control(self) -> Running:
        """The pipeline Read and Write refer to: the saved one between VERIFY_AND_SAVE and
        COMMIT, else the running one."""
        control = self._device.control
        if control is None:
            raise P4RuntimeError(grpc.StatusCode.FAILED_PRECONDITION,
                                 "no forwarding pipeline config is set on this device")
        return control

    def _set_pipeline(self, request: p4r.SetForwardingPipelineConfigRequest) -> None:
        action = request.action
        config = request.config
        has_config = request.HasField("config") and config.HasField("p4info")
        cookie = config.cookie.cookie if config.HasField("cookie") else None
        if action == _SET.COMMIT:
            if request.HasField("config") and (config.HasField("p4info")
                                               or config.p4_device_config
                                               or config.HasField("cookie")):
                raise P4RuntimeError(grpc.StatusCode.INVALID_ARGUMENT,
                                     "COMMIT takes no config; it commits the saved one")
            self._device.commit_saved()
            return
        if action not in (_SET.VERIFY, _SET.VERIFY_AND_SAVE, _SET.VERIFY_AND_COMMIT,
                          _SET.RECONCILE_AND_COMMIT):
            raise P4RuntimeError(grpc.StatusCode.INVALID_ARGUMENT,
                                 f"unknown SetForwardingPipelineConfig action {action}")
        if not has_config:
            raise P4RuntimeError(grpc.StatusCode.INVALID_ARGUMENT,
                                 "the request carries no config with a P4Info")
        pipeline = self._device.verify(config.p4info, config.p4_device_config, cookie)
        if action == _SET.VERIFY_AND_SAVE:
            self._device.save(pipeline)
        elif action == _SET.VERIFY_AND_COMMIT:
            self._device.commit(pipeline)
        elif action == _SET.RECONCILE_AND_COMMIT:
            self._device.reconcile(pipeline)


class _BatchFailed(Exception):
    def __init__(self, results: list[P4RuntimeError | None]) -> None:
        super().__init__("write batch failed")
        self.results = results


def _guarded(context: grpc.ServicerContext, work: Callable[[], T]) -> T:
    """Run ``work``; a P4RuntimeError becomes the RPC status, anything else INTERNAL with a
    reference id (the traceback goes to the log, never to the client)."""
    try:
        return work()
    except _BatchFailed as failed:
        _abort_with_details(context, failed.results)
    except P4RuntimeError as error:
        logger.debug("request refused: %s", error)
        context.abort(error.code, error.message)
    except Exception:
        reference = uuid.uuid4().hex[:8]
        logger.exception("request failed (reference %s)", reference)
        context.abort(grpc.StatusCode.INTERNAL, f"internal error, reference {reference}")
    raise AssertionError("unreachable: context.abort raises")


def _abort_with_details(context: grpc.ServicerContext,
                        results: list[P4RuntimeError | None]) -> None:
    details = []
    for result in results:
        error = p4r.Error(canonical_code=rpc_code.OK)
        if result is not None:
            error = p4r.Error(canonical_code=result.code.value[0], message=result.message,
                              space="p4sim")
        packed = any_pb2.Any()
        packed.Pack(error)
        details.append(packed)
    message = "Write failure."
    status = rpc_status.Status(code=rpc_code.UNKNOWN, message=message, details=details)
    context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
    context.abort(grpc.StatusCode.UNKNOWN, message)


def _stream_error(code: grpc.StatusCode, message: str,
                  packet: p4r.PacketOut | None = None) -> p4r.StreamMessageResponse:
    error = p4r.StreamError(canonical_code=code.value[0], message=message, space="p4sim")
    if packet is not None:
        error.packet_out.packet_out.CopyFrom(packet)
    return p4r.StreamMessageResponse(error=error)


class _RawRead:
    """Registers the generated P4Runtime handlers on `server`, Read's without a response
    serializer (P4RuntimeServicer.Read yields bytes already serialized)."""

    def __init__(self, server: grpc.Server) -> None:
        self._server = server

    @staticmethod
    def _raw(handlers: dict[str, grpc.RpcMethodHandler]) -> dict[str, grpc.RpcMethodHandler]:
        read = handlers["Read"]
        return {**handlers, "Read": grpc.unary_stream_rpc_method_handler(
            read.unary_stream, request_deserializer=read.request_deserializer)}

    def add_generic_rpc_handlers(self, generic_handlers: object) -> None:
        """The generated code's generic handler: built from the registered ones below."""

    def add_registered_method_handlers(self, service: str,
                                       handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        raw = self._raw(handlers)
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, raw),))
        self._server.add_registered_method_handlers(service, raw)


def create_server(device: Device, settings: ServerSettings) -> tuple[grpc.Server, int]:
    """A gRPC server for ``device``, not yet started, and the port it bound (address port 0
    picks a free one)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=settings.max_workers,
                                                    thread_name_prefix="p4rt"))
    p4r_grpc.add_P4RuntimeServicer_to_server(P4RuntimeServicer(device), _RawRead(server))
    if settings.credentials is None:
        port = server.add_insecure_port(settings.address)
    else:
        port = server.add_secure_port(settings.address, settings.credentials)
    if port == 0:
        raise OSError(f"cannot bind the P4Runtime server to {settings.address}")
    return server, port
