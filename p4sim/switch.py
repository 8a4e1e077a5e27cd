"""One v1model device: the BMv2 simple_switch packet flow around a compiled program.

Flow per frame, as simple_switch runs it: parser → verifyChecksum → ingress → traffic manager
(resubmit, drop on egress_spec 511, multicast refused) → egress → (drop on egress_spec 511) →
computeChecksum → deparser → recirculate or transmit. Recirculated and resubmitted packets go
round again in the same `process` call, up to `max_passes` passes; packets that end anywhere but
on a port are counted in `stats.dropped` by reason, never lost silently.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from p4sim.packet import ExitSignal, Packet
from p4sim.program import Program
from p4sim.runtime import RuntimeState

log = logging.getLogger(__name__)

DROP_PORT = 511
INSTANCE_NORMAL = 0
INSTANCE_RECIRC = 4
INSTANCE_RESUBMIT = 6


@dataclass
class SwitchStats:
    """Frames in, frames out, and drops by reason (e.g. "mark_to_drop", "pass_limit")."""

    received: int = 0
    transmitted: int = 0
    recirculated: int = 0
    resubmitted: int = 0
    dropped: Counter[str] = field(default_factory=Counter)


class _Pass(NamedTuple):
    """One trip through the pipeline (a NamedTuple: cheap to create per packet)."""

    frame: bytes
    ingress_port: int
    instance_type: int
    preserved: object | None  # user metadata of the previous pass, when a field list is kept
    field_list: int | None


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
        self._pipeline = program.compiled.instantiate(self.state)
        self._started_ns = time.monotonic_ns()

    def reset_state(self) -> None:
        """Empty tables (const entries stay), zero counters and registers (pipeline reload)."""
        with self.lock:
            self.state.reset()

    def process(self, ingress_port: int, frame: bytes) -> list[tuple[int, bytes]]:
        """Run one frame through the pipeline (recirculations and resubmits included).

        Returns the frames transmitted, as (egress_port, bytes), in order. Frames sent to the CPU
        port go to `packet_in_sink` instead when it is set.
        """
        with self.lock:
            self.stats.received += 1
            out: list[tuple[int, bytes]] = []
            pending = [_Pass(frame=bytes(frame), ingress_port=ingress_port,
                             instance_type=INSTANCE_NORMAL, preserved=None, field_list=None)]
            passes = 0
            while pending:
                job = pending.pop(0)
                passes += 1
                if passes > self.max_passes:
                    self.stats.dropped["pass_limit"] += 1
                    log.warning("packet dropped after %s passes (recirculation loop?)",
                                self.max_passes)
                    break
                try:
                    self._one_pass(job, out, pending)
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

    def _one_pass(self, job: _Pass, out: list[tuple[int, bytes]], pending: list[_Pass]) -> None:
        pipe = self._pipeline
        tracing = self.trace is not None
        P: Packet = pipe.new_packet(job.frame)  # noqa: N806 - same name as in generated code
        hdr, meta, sm = P.hdr, P.meta, P.sm
        sm.f_ingress_port = job.ingress_port
        sm.f_instance_type = job.instance_type
        sm.f_packet_length = len(job.frame)
        # microseconds since the switch started, as simple_switch's get_ts()
        sm.f_ingress_global_timestamp = (time.monotonic_ns() - self._started_ns) // 1000
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
        if P.resubmit is not None:
            self._trace(f"resubmit with field list {P.resubmit}")
            self.stats.resubmitted += 1
            pending.append(_Pass(frame=job.frame, ingress_port=job.ingress_port,
                                 instance_type=INSTANCE_RESUBMIT, preserved=meta,
                                 field_list=P.resubmit))
            return
        if sm.f_mcast_grp:
            self.stats.dropped["multicast_unsupported"] += 1
            self._trace("dropped: multicast groups are not supported")
            return
        if sm.f_egress_spec == DROP_PORT:
            self.stats.dropped["ingress_drop"] += 1
            self._trace("dropped in ingress")
            return
        # As simple_switch: the packet is enqueued as NORMAL (so egress never sees RECIRC or
        # RESUBMIT), and egress_spec is reset (to drop_port + 1, which is 0 in 9 bits) so only
        # mark_to_drop in egress drops it.
        sm.f_egress_port = sm.f_egress_spec
        sm.f_instance_type = INSTANCE_NORMAL
        sm.f_egress_spec = (DROP_PORT + 1) & 0x1FF
        sm.f_egress_global_timestamp = (time.monotonic_ns() - self._started_ns) // 1000
        if tracing:
            self._trace(f"egress on port {sm.f_egress_port}")
        try:
            pipe.egress(P, hdr, meta, sm)
        except ExitSignal:
            pass
        if tracing:
            self._flush(P)
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
        frame = b"".join(P.emitted) + P.data[P.off:]
        if P.recirculate is not None:
            self._trace(f"recirculate with field list {P.recirculate}, {len(frame)} bytes")
            self.stats.recirculated += 1
            pending.append(_Pass(frame=frame, ingress_port=job.ingress_port,
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

    def _flush(self, P: Packet) -> None:  # noqa: N803
        if P.trace:
            for line in P.trace:
                self._trace(line)
            P.trace.clear()

    def _trace(self, message: str) -> None:
        if self.trace:
            self.trace(message)
