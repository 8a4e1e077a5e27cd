"""One p4sim device as P4Runtime sees it: the running pipeline, and a saved one waiting for
COMMIT.

``Device`` is also the dataplane's frame processor: frames go to the running ``Switch``, or are
counted as dropped while no pipeline is set (the switch starts without one unless a program is
given on the command line, like BMv2 ``simple_switch_grpc --no-p4``).

After VERIFY_AND_SAVE the device holds two pipelines, as the P4Runtime spec's two-phase update
wants and BMv2 does (its ``p4objects`` and ``p4objects_rt``): the running one keeps processing
packets with its state, while Read and Write go to the saved one (``control``), whose state
starts empty. COMMIT makes the saved pipeline, with what was written to it, the running one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from p4sim.errors import P4Error
from p4sim.p4runtime.device_config import DeviceConfig, parse_device_config
from p4sim.p4runtime.errors import invalid, not_found
from p4sim.p4runtime.p4info_diff import first_difference
from p4sim.p4runtime.proto import p4i
from p4sim.p4runtime.schema import Schema
from p4sim.p4runtime.writer import EntryMetadata
from p4sim.program import Program, load_program
from p4sim.switch import Switch

logger = logging.getLogger(__name__)

Transmit = Callable[[Iterable[tuple[int, bytes]]], None]
PacketInSink = Callable[[bytes, dict[int, int]], None]


@dataclass(kw_only=True)
class ForwardingConfig:
    """A program verified against a P4Info, with what GetForwardingPipelineConfig returns."""

    program: Program
    schema: Schema
    device_config: bytes
    cookie: int | None
    source: DeviceConfig | None = None  # keeps carried files alive while the pipeline runs


@dataclass(kw_only=True)
class Running:
    """A realized pipeline: the switch executing it and its forwarding state (the committed
    pipeline, or the saved one the controller programs before COMMIT)."""

    pipeline: ForwardingConfig
    switch: Switch
    metadata: EntryMetadata = field(default_factory=dict)


class Device:
    """The device behind the P4Runtime server and the packet ports."""

    def __init__(self, *, device_id: int, cpu_port: int | None = None,
                 default_program: Program | None = None,
                 switch_factory: Callable[..., Switch] = Switch) -> None:
        self.device_id = device_id
        self._switch_factory = switch_factory
        self.cpu_port = cpu_port
        self.default_program = default_program
        self.running: Running | None = None
        self.saved: Running | None = None
        self.frames_without_pipeline = 0
        self.transmit: Transmit = lambda outputs: None
        self.packet_in_sink: PacketInSink | None = None
        self.trace: Callable[[str], None] | None = None
        self._swap_lock = threading.Lock()

    # -- dataplane side --------------------------------------------------------------------

    def process(self, ingress_port: int, frame: bytes) -> list[tuple[int, bytes]]:
        running = self.running
        if running is None:
            self.frames_without_pipeline += 1
            logger.debug("no pipeline: frame from port %d dropped", ingress_port)
            return []
        return running.switch.process(ingress_port, frame)

    # -- control side ----------------------------------------------------------------------

    def verify(self, p4info: p4i.P4Info, device_config: bytes,
               cookie: int | None) -> ForwardingConfig:
        """Load the program the device config names or carries and check ``p4info`` against
        the P4Info p4sim generates for it. INVALID_ARGUMENT naming the problem."""
        source: DeviceConfig | None = None
        if device_config:
            source = parse_device_config(device_config)
            try:
                program = load_program(source.program, defines=source.defines)
            except P4Error as error:
                raise invalid(f"the P4 program does not load: {error}") from None
            except OSError as error:
                raise invalid(f"the P4 program cannot be read: {error}") from None
        elif self.default_program is not None:
            program = self.default_program
        else:
            raise invalid("p4_device_config is empty and the switch was started without a "
                          "program; send a p4sim device config (see `p4sim device-config`)")
        difference = first_difference(program.p4info, p4info)
        if difference is not None:
            raise invalid(f"P4Info does not match the program {program.source_path}: "
                          f"{difference}")
        return ForwardingConfig(program=program, schema=Schema(program.p4info),
                        device_config=device_config, cookie=cookie, source=source)

    @property
    def control(self) -> Running | None:
        """The pipeline Read and Write refer to: the saved one while a COMMIT is pending."""
        saved = self.saved
        return saved if saved is not None else self.running

    def save(self, pipeline: ForwardingConfig) -> None:
        """VERIFY_AND_SAVE: realize ``pipeline`` with empty state beside the running one; it
        replaces an earlier saved pipeline and what was written to it."""
        realized = self._realize(pipeline)
        with self._swap_lock:
            self.saved = realized
        logger.info("pipeline saved, waiting for COMMIT: %s", pipeline.program.source_path)

    def commit_saved(self) -> None:
        """COMMIT: the saved pipeline, with the state written to it since it was saved, starts
        processing packets. NOT_FOUND when nothing is saved."""
        with self._swap_lock:
            saved = self.saved
            if saved is None:
                raise not_found("no saved forwarding pipeline config to commit "
                                "(send VERIFY_AND_SAVE first)")
            self.running, self.saved = saved, None
        logger.info("saved pipeline committed: %s", saved.pipeline.program.source_path)

    def commit(self, pipeline: ForwardingConfig) -> None:
        """VERIFY_AND_COMMIT: run ``pipeline`` with fresh forwarding state; a saved pipeline is
        dropped."""
        realized = self._realize(pipeline)
        with self._swap_lock:
            self.running, self.saved = realized, None
        logger.info("pipeline committed: %s", pipeline.program.source_path)

    def _realize(self, pipeline: ForwardingConfig) -> Running:
        switch = self._switch_factory(pipeline.program, device_id=self.device_id,
                                      cpu_port=self.cpu_port)
        switch.packet_in_sink = self._packet_in
        switch.trace = self.trace
        return Running(pipeline=pipeline, switch=switch)

    def reconcile(self, pipeline: ForwardingConfig) -> None:
        """RECONCILE_AND_COMMIT: keep the running forwarding state, only possible when the
        P4Info is unchanged; a saved pipeline is dropped. On error nothing changes."""
        running = self.running
        if running is None:
            self.commit(pipeline)
            return
        difference = first_difference(running.pipeline.program.p4info, pipeline.program.p4info)
        if difference is not None:
            raise invalid(f"cannot keep the forwarding state across a different P4Info: "
                          f"{difference}")
        with self._swap_lock:
            pipeline.program = running.pipeline.program  # same program: keep the running one
            pipeline.schema = running.pipeline.schema
            running.pipeline = pipeline
            self.saved = None

    def _packet_in(self, payload: bytes, metadata: dict[int, int]) -> None:
        sink = self.packet_in_sink
        if sink is None:
            logger.debug("packet-in of %d bytes dropped: no controller stream", len(payload))
            return
        sink(payload, metadata)
