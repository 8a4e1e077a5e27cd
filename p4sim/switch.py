"""One v1model device: the BMv2 simple_switch packet flow around a compiled program.

Flow per frame, as simple_switch runs it: parser → verifyChecksum → ingress → traffic manager
(ingress clone, resubmit, multicast, drop on egress_spec 511) → egress (egress clone, drop on
egress_spec 511) → computeChecksum → deparser → recirculate or transmit. Recirculated,
resubmitted, cloned and replicated packets are handled in the same `process` call, bounded by
`max_passes` ingress passes; packets that end anywhere but on a port are counted in
`stats.dropped` by reason, never lost silently.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from p4sim.dataplane_lib import copy_header
from p4sim.packet import ExitSignal, P4AssertionFailure, Packet
from p4sim.program import Program
from p4sim.runtime import Replica, RuntimeState

log = logging.getLogger(__name__)

DROP_PORT = 511
INSTANCE_NORMAL = 0
INSTANCE_INGRESS_CLONE = 1
INSTANCE_EGRESS_CLONE = 2
INSTANCE_RECIRC = 4
INSTANCE_REPLICATION = 5
INSTANCE_RESUBMIT = 6
EGRESS_JOBS_PER_PASS = 64  # copies (clones, multicast replicas) allowed per ingress pass
_monotonic_ns = time.monotonic_ns  # read twice per pass: a module global, not an attribute


@dataclass
class SwitchStats:
    """Frames in, frames out, copies made, and drops by reason (e.g. "ingress_drop",
    "pass_limit")."""

    received: int = 0
    transmitted: int = 0
    recirculated: int = 0
    resubmitted: int = 0
    cloned: int = 0
    replicated: int = 0
    digests: int = 0
    dropped: Counter[str] = field(default_factory=Counter)


class _Pass(NamedTuple):
    """One trip through ingress (a NamedTuple: cheap to create per packet)."""

    frame: bytes
    ingress_port: int
    instance_type: int
    preserved: object | None  # user metadata of the previous pass, when a field list is kept
    field_list: int | None


class _EgressJob(NamedTuple):
    """A copy (clone or multicast replica) that goes straight to egress."""

    packet: Packet
    ingress_port: int
    truncate_to: int


class Switch:
    """One v1model device running a Program, with its control-plane state.

    `lock` is held for a whole packet; a P4Runtime write batch takes it too, so a batch is applied
    between packets, never inside one. `cpu_port` (BMv2's ``--cpu-port``) enables packet-in and
    packet-out through the program's `@controller_header` headers.
    """

    def __init__(
        self,
        program: Program,
        *,
        device_id: int = 0,
        cpu_port: int | None = None,
        max_passes: int = 16,
    ) -> None:
        self.program = program
        self.device_id = device_id
        self.cpu_port = cpu_port
        self.max_passes = max_passes
        self.state: RuntimeState = program.compiled.new_state()
        self.lock: threading.RLock = self.state.lock
        self.stats = SwitchStats()
        self.packet_in_sink: Callable[[bytes, dict[int, int]], None] | None = None
        self.trace: Callable[[str], None] | None = None
        # digest(receiver, data) calls: (P4Info digest id, struct member values in order)
        self.digest_sink: Callable[[int, tuple[int, ...]], None] | None = None
        self._pipeline = program.compiled.instantiate(self.state)
        self._started_ns = time.monotonic_ns()

    def reset_state(self) -> None:
        """Empty tables (const entries stay), zero counters and registers (pipeline reload)."""
        with self.lock:
            self.state.reset()

    def process(self, ingress_port: int, frame: bytes) -> list[tuple[int, bytes]]:
        """Run one frame through the pipeline (recirculations, resubmits, clones and multicast
        copies included).

        Returns the frames transmitted, as (egress_port, bytes), in order. Frames sent to the CPU
        port go to `packet_in_sink` instead when it is set.
        """
        if type(frame) is not bytes:  # the transports hand in bytes; anything else is copied
            frame = bytes(frame)
        with self.lock:
            self.stats.received += 1
            out: list[tuple[int, bytes]] = []
            pending: deque[_Pass | _EgressJob] = deque()
            try:
                # positional: a keyword NamedTuple call costs more, once per frame
                self._ingress_pass(_Pass(frame, ingress_port, INSTANCE_NORMAL, None, None),
                                   out, pending)
            except P4AssertionFailure as failed:
                log.error("packet dropped: %s", failed)
                self.stats.dropped["assertion_failed"] += 1
            except Exception:
                log.exception("packet dropped: run-time error in the pipeline")
                self.stats.dropped["runtime_error"] += 1
            if not pending:  # the common case: no recirculation, resubmit, clone or copy
                return out
            passes = 1
            copies = 0
            while pending:
                job = pending.popleft()
                if isinstance(job, _Pass):
                    passes += 1
                    if passes > self.max_passes:
                        self.stats.dropped["pass_limit"] += 1 + len(pending)
                        log.warning("packet dropped after %s passes (recirculation loop?)",
                                    self.max_passes)
                        break
                else:
                    copies += 1
                    if copies > EGRESS_JOBS_PER_PASS * self.max_passes:
                        self.stats.dropped["copy_limit"] += 1 + len(pending)
                        log.warning("packet dropped after %s copies (clone loop?)", copies - 1)
                        break
                try:
                    if isinstance(job, _Pass):
                        self._ingress_pass(job, out, pending)
                    else:
                        self._egress_pass(job.packet, job.ingress_port, out, pending,
                                          job.truncate_to)
                except P4AssertionFailure as failed:
                    log.error("packet dropped: %s", failed)
                    self.stats.dropped["assertion_failed"] += 1
                except Exception:
                    # A run-time fault the front end could not rule out (e.g. a header stack
                    # index out of range): drop and count this packet, keep the switch running.
                    log.exception("packet dropped: run-time error in the pipeline")
                    self.stats.dropped["runtime_error"] += 1
            return out

    def packet_out(self, payload: bytes, metadata: dict[int, int]) -> list[tuple[int, bytes]]:
        """Inject a P4Runtime PacketOut: the `packet_out` controller header built from
        `metadata` (field id → value) is put in front of `payload`, and the frame enters on the
        CPU port."""
        if self.cpu_port is None:
            raise ValueError("packet_out needs a cpu_port on the Switch")
        header = self.program.compiled.encode_controller_header("packet_out", metadata)
        return self.process(self.cpu_port, header + payload)

    # -- one pass ------------------------------------------------------------------------------

    def _ingress_pass(self, job: _Pass, out: list[tuple[int, bytes]],
                      pending: deque[_Pass | _EgressJob]) -> None:
        pipe = self._pipeline
        tracing = self.trace is not None
        frame = job.frame
        P: Packet = pipe.new_packet(frame)  # noqa: N806 - same name as in generated code
        hdr, meta, sm = P.hdr, P.meta, P.sm
        sm.f_ingress_port = job.ingress_port
        sm.f_instance_type = job.instance_type
        sm.f_packet_length = len(frame)
        # microseconds since the switch started, as simple_switch's get_ts()
        sm.f_ingress_global_timestamp = (_monotonic_ns() - self._started_ns) // 1000
        if job.preserved is not None and job.field_list is not None:
            pipe.copy_field_list(job.preserved, meta, job.field_list)
        if tracing:
            P.trace = []
            self._trace(f"pass: port {job.ingress_port} instance_type {job.instance_type} "
                        f"length {len(job.frame)}")
        pipe.parse(P)
        try:
            pipe.verify(P, hdr, meta)
        except ExitSignal:
            pass
        if tracing:
            if sm.f_checksum_error:
                self._trace("verify_checksum: checksum_error = 1")
            self._flush(P)
        try:
            pipe.ingress(P, hdr, meta, sm)
        except ExitSignal:
            pass
        if tracing:
            self._flush(P)
        if P.digests:
            self._deliver_digests(P.digests)
            P.digests = None
        if P.clone is not None:
            self._clone_at_ingress(job, P, pending)
        if P.resubmit is not None:
            self._trace(f"resubmit with field list {P.resubmit}")
            self.stats.resubmitted += 1
            pending.append(_Pass(frame=job.frame, ingress_port=job.ingress_port,
                                 instance_type=INSTANCE_RESUBMIT, preserved=meta,
                                 field_list=P.resubmit))
            return
        if sm.f_mcast_grp:
            self._multicast(job, P, pending)
            return
        if sm.f_egress_spec == DROP_PORT:
            self.stats.dropped["ingress_drop"] += 1
            self._trace("dropped in ingress")
            return
        # As simple_switch: the packet is enqueued as NORMAL, so egress never sees RECIRC or
        # RESUBMIT.
        sm.f_egress_port = sm.f_egress_spec
        sm.f_instance_type = INSTANCE_NORMAL
        self._egress_pass(P, job.ingress_port, out, pending, 0)

    def _egress_pass(self, P: Packet, ingress_port: int, out: list[tuple[int, bytes]],  # noqa: N803
                     pending: deque[_Pass | _EgressJob], truncate_to: int) -> None:
        pipe = self._pipeline
        tracing = self.trace is not None
        hdr, meta, sm = P.hdr, P.meta, P.sm
        # simple_switch resets egress_spec (to drop_port + 1, which is 0 in 9 bits) so only
        # mark_to_drop in egress drops the packet
        sm.f_egress_spec = (DROP_PORT + 1) & 0x1FF
        sm.f_egress_global_timestamp = (_monotonic_ns() - self._started_ns) // 1000
        if tracing:
            if P.trace is None:
                P.trace = []
            self._trace(f"egress on port {sm.f_egress_port} instance_type {sm.f_instance_type}")
        try:
            pipe.egress(P, hdr, meta, sm)
        except ExitSignal:
            pass
        if tracing:
            self._flush(P)
        if P.digests:
            # simple_switch generates digests (learning) at the end of ingress only
            self.stats.dropped["digest_in_egress"] += len(P.digests)
            P.digests = None
        if P.clone is not None:
            self._clone_at_egress(P, ingress_port, pending)
        if sm.f_egress_spec == DROP_PORT:
            self.stats.dropped["egress_drop"] += 1
            self._trace("dropped in egress")
            return
        try:
            pipe.compute(P, hdr, meta)
        except ExitSignal:
            pass
        try:
            pipe.deparse(P, hdr)
        except ExitSignal:
            pass
        # the emitted headers and the unparsed rest in one join (one copy of the frame, not two);
        # P is finished with here, so its emitted list may take the rest
        emitted = P.emitted
        if P.off < len(P.data):
            emitted.append(P.data[P.off:])
        frame = b"".join(emitted)
        if P.truncate_to and (not truncate_to or P.truncate_to < truncate_to):
            truncate_to = P.truncate_to
        if truncate_to:
            frame = frame[:truncate_to]
        if P.recirculate is not None:
            self._trace(f"recirculate with field list {P.recirculate}, {len(frame)} bytes")
            self.stats.recirculated += 1
            # simple_switch resets all metadata, standard_metadata.ingress_port included, and
            # does not restore it for a recirculated packet (targets/simple_switch/
            # simple_switch.cpp, egress_thread: phv_copy->reset_metadata()), so it reads 0.
            pending.append(_Pass(frame=frame, ingress_port=0,
                                 instance_type=INSTANCE_RECIRC, preserved=meta,
                                 field_list=P.recirculate))
            return
        port = sm.f_egress_port
        self.stats.transmitted += 1
        if port == self.cpu_port and self.packet_in_sink is not None:
            payload, metadata = self.program.compiled.decode_controller_header("packet_in", frame)
            self._trace(f"packet-in to the controller, {len(payload)} bytes")
            self.packet_in_sink(payload, metadata)
            return
        if tracing:
            self._trace(f"transmit on port {port}, {len(frame)} bytes")
        out.append((port, frame))

    def _deliver_digests(self, digests: list[tuple[int, tuple[int, ...]]]) -> None:
        for digest_id, values in digests:
            self.stats.digests += 1
            self._trace(f"digest {digest_id}: {values}")
            if self.digest_sink is None:
                self.stats.dropped["digest_no_receiver"] += 1
            else:
                self.digest_sink(digest_id, values)

    # -- packet replication --------------------------------------------------------------------

    def _copy(self, P: Packet, *, headers: bool, metadata: bool) -> Packet:  # noqa: N803
        """A new packet over the same bytes; headers and/or all metadata copied from P."""
        Q = self._pipeline.new_packet(P.data)  # noqa: N806
        Q.off = P.off
        if headers:
            copy_header(Q.hdr, P.hdr)
        if metadata:
            copy_header(Q.meta, P.meta)
            copy_header(Q.sm, P.sm)
        Q.trace = [] if self.trace is not None else None
        return Q

    @staticmethod
    def _place(Q: Packet, replica: Replica, instance_type: int) -> None:  # noqa: N803
        Q.sm.f_egress_port = replica.egress_port
        Q.sm.f_egress_rid = replica.instance
        Q.sm.f_instance_type = instance_type

    def _multicast(self, job: _Pass, P: Packet, pending: deque[_Pass | _EgressJob]) -> None:  # noqa: N803
        group = P.sm.f_mcast_grp
        replicas = self.state.multicast_groups.get(group)
        if not replicas:
            self.stats.dropped["multicast_group_unknown"] += 1
            self._trace(f"dropped: multicast group {group} has no replicas")
            return
        self._trace(f"multicast group {group}: {len(replicas)} copies")
        for replica in replicas:
            Q = self._copy(P, headers=True, metadata=True)  # noqa: N806
            self._place(Q, replica, INSTANCE_REPLICATION)
            self.stats.replicated += 1
            pending.append(_EgressJob(packet=Q, ingress_port=job.ingress_port, truncate_to=0))

    def _clone_at_ingress(self, job: _Pass, P: Packet,  # noqa: N803
                          pending: deque[_Pass | _EgressJob]) -> None:
        """I2E: the original frame is parsed again (as simple_switch does), keeps only the
        field-list metadata, and goes to egress on each replica of the session."""
        assert P.clone is not None
        session_id, field_list = P.clone
        P.clone = None
        session = self.state.clone_sessions.get(session_id)
        if session is None:
            self.stats.dropped["clone_session_unknown"] += 1
            self._trace(f"clone: session {session_id} is not configured")
            return
        pipe = self._pipeline
        for replica in session.replicas:
            Q = pipe.new_packet(job.frame)  # noqa: N806
            Q.trace = [] if self.trace is not None else None
            Q.sm.f_ingress_port = job.ingress_port
            Q.sm.f_packet_length = len(job.frame)
            pipe.parse(Q)
            try:
                pipe.verify(Q, Q.hdr, Q.meta)
            except ExitSignal:
                pass
            if field_list is not None:
                pipe.copy_field_list(P.meta, Q.meta, field_list)
            self._place(Q, replica, INSTANCE_INGRESS_CLONE)
            self.stats.cloned += 1
            self._trace(f"clone (ingress) to port {replica.egress_port}, session {session_id}")
            pending.append(_EgressJob(packet=Q, ingress_port=job.ingress_port,
                                      truncate_to=session.packet_length_bytes))

    def _clone_at_egress(self, P: Packet, ingress_port: int,  # noqa: N803
                         pending: deque[_Pass | _EgressJob]) -> None:
        """E2E: the headers as egress left them, metadata reset except the field list."""
        assert P.clone is not None
        session_id, field_list = P.clone
        P.clone = None
        session = self.state.clone_sessions.get(session_id)
        if session is None:
            self.stats.dropped["clone_session_unknown"] += 1
            self._trace(f"clone: session {session_id} is not configured")
            return
        for replica in session.replicas:
            Q = self._copy(P, headers=True, metadata=False)  # noqa: N806
            if field_list is not None:
                self._pipeline.copy_field_list(P.meta, Q.meta, field_list)
            Q.sm.f_packet_length = P.sm.f_packet_length
            self._place(Q, replica, INSTANCE_EGRESS_CLONE)
            self.stats.cloned += 1
            self._trace(f"clone (egress) to port {replica.egress_port}, session {session_id}")
            pending.append(_EgressJob(packet=Q, ingress_port=ingress_port,
                                      truncate_to=session.packet_length_bytes))

    def _flush(self, P: Packet) -> None:  # noqa: N803
        if P.trace:
            for line in P.trace:
                self._trace(line)
            P.trace.clear()

    def _trace(self, message: str) -> None:
        if self.trace:
            self.trace(message)
