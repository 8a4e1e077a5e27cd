"""One P4Runtime connection to the switch, kept up by itself.

finsy does the protocol: arbitration, SetForwardingPipelineConfig (when the switch's pipeline
cookie differs from ours — e.g. after a switch restart lost it), name → id resolution and value
encoding. This module adds the life cycle the controller needs: connect, call ``on_ready`` (the
data plane reconciles the switch's tables there), wait until the channel drops, call
``on_down``, back off (0.1 s doubling to 5 s) and connect again — until :meth:`stop`.

Why not finsy's own reconnect (``Switch.run`` with ``SwitchOptions.ready_handler``; read in
finsy 0.30's switch.py): a lifecycle that fails within ``_FAIL_MIN_TIME_SECS`` (2 s) waits a
fixed ``_FAIL_THROTTLE_SECS`` (10 s) before the next attempt, so a restarted switch would stay
dark up to 10 s (ours: 0.1 s, doubling); a failed attempt is logged at DEBUG when its code is
UNAVAILABLE (which is also how a TLS refusal ends) and otherwise at CRITICAL with a traceback,
once per attempt, where an operator needs one line saying what is misconfigured
(:func:`controller.tls.explain_switch_failure`); and the ready handler runs as a task beside
the stream, so the data plane could not hold health NOT_SERVING until reconciliation ended
without our own bookkeeping anyway. finsy still does the rest: the channel, arbitration, the
pipeline push and every encoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import finsy as fy
from finsy.grpcutil import GRPCStatusCode
from finsy.switch import SwitchEvent

from controller.tls import SwitchChannelTls, explain_switch_failure

log = logging.getLogger(__name__)

INITIAL_BACKOFF = 0.1
MAX_BACKOFF = 5.0


class SwitchUnavailable(Exception):
    """No usable P4Runtime channel (not connected, not primary, or the call failed in
    transport)."""


class SwitchWriteFailed(Exception):
    """A WriteRequest was refused; ``failed`` holds the indices of the refused updates, or is
    None when the switch did not say which ones (then any of them may have been applied)."""

    def __init__(self, message: str, failed: frozenset[int] | None) -> None:
        super().__init__(message)
        self.failed = failed


@dataclass(frozen=True, kw_only=True)
class SwitchTarget:
    """Where the switch is and what pipeline it must run."""

    address: str
    device_id: int
    p4info: Path
    device_config: bytes  # p4_device_config; b"" = p4sim's preloaded program
    tls: SwitchChannelTls | None = None  # None: plaintext P4Runtime


class SwitchConnection:
    """Keeps a finsy ``Switch`` connected; exposes write/read while the channel is up."""

    def __init__(self, target: SwitchTarget, *,
                 on_ready: Callable[[SwitchConnection], Awaitable[None]],
                 on_down: Callable[[], None]) -> None:
        self.target = target
        self._on_ready = on_ready
        self._on_down = on_down
        self._switch: fy.Switch | None = None
        self._task: asyncio.Task[None] | None = None
        self.connections = 0  # how many times the channel came up (tests, logs)

    @property
    def is_up(self) -> bool:
        """True while a primary channel is open."""
        switch = self._switch
        return switch is not None and switch.is_up and switch.is_primary

    def start(self) -> None:
        """Start the connect/reconnect loop in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="p4rt-connection")

    async def stop(self) -> None:
        """Close the channel and stop reconnecting."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = INITIAL_BACKOFF
        tls = self.target.tls
        options = fy.SwitchOptions(p4info=self.target.p4info, p4blob=self.target.device_config,
                                   device_id=self.target.device_id,
                                   channel_credentials=tls.credentials() if tls else None)
        reported: str | None = None  # the TLS problem last logged at ERROR (logged once)
        previous: str | None = None  # the TLS problem of the last attempt
        while True:
            switch = fy.Switch("switch", self.target.address, options)
            try:
                async with switch:
                    down = asyncio.Event()
                    # Losing the primary role is as good as losing the channel: writes would
                    # be refused, so reconnect (and reconcile once primary again).
                    for event in (SwitchEvent.CHANNEL_DOWN, SwitchEvent.BECOME_BACKUP):
                        switch.ee.on(event, lambda *_, flag=down: flag.set())
                    if not switch.is_primary:
                        raise SwitchUnavailable("another controller is primary")
                    self._switch = switch
                    self.connections += 1
                    log.info("P4Runtime channel to %s (device %d) is up, pipeline %s",
                             self.target.address, self.target.device_id,
                             switch.p4info.get_pipeline_info())
                    await self._on_ready(self)
                    backoff = INITIAL_BACKOFF
                    reported = previous = None
                    await down.wait()
                    log.warning("P4Runtime channel to %s went down (or lost the primary "
                                "role)", self.target.address)
            except asyncio.CancelledError:
                self._switch = None
                self._on_down()
                raise
            except Exception as error:  # noqa: BLE001 - any failure means: reconnect
                # A TLS problem is a configuration error: one ERROR line, not one per attempt,
                # and only once two attempts in a row agree (a switch going down mid-handshake
                # can look like a refusal once).
                problem = explain_switch_failure(tls, _describe(error))
                if problem is None:
                    log.warning("P4Runtime channel to %s: %s; retrying in %.1f s",
                                self.target.address, _describe(error), backoff)
                elif problem == reported:
                    log.debug("P4Runtime channel to %s: still %s", self.target.address, problem)
                elif problem == previous:
                    log.error("P4Runtime channel to %s: %s (retrying every %.0f s at most)",
                              self.target.address, problem, MAX_BACKOFF)
                    reported = problem
                else:
                    log.debug("P4Runtime channel to %s: %s", self.target.address, problem)
                previous = problem
            finally:
                self._switch = None
            self._on_down()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _live(self) -> fy.Switch:
        switch = self._switch
        if switch is None or not switch.is_up:
            raise SwitchUnavailable(f"no P4Runtime channel to {self.target.address}")
        return switch

    async def write(self, updates: Sequence[Any]) -> None:
        """One WriteRequest with ``updates`` (finsy update objects), in this order."""
        if not updates:
            return
        switch = self._live()
        try:
            await switch.write(list(updates))
        except fy.P4ClientError as error:
            details = error.details
            if details:
                failed = frozenset(index for index, detail in details.items()
                                   if detail.canonical_code != 0)
                text = "; ".join(f"update {index}: {detail.message}"
                                 for index, detail in sorted(details.items())
                                 if detail.canonical_code != 0)
                raise SwitchWriteFailed(f"switch refused: {text}", failed) from None
            if error.code == GRPCStatusCode.UNAVAILABLE:
                raise SwitchUnavailable(f"switch {self.target.address}: {error.message}") \
                    from None
            raise SwitchWriteFailed(f"switch refused the write: {error.code.name} "
                                    f"{error.message}", None) from None

    async def read(self, entities: Sequence[Any]) -> list[Any]:
        """One ReadRequest; every entity read back, decoded by finsy."""
        switch = self._live()
        try:
            return [entity async for entity in switch.read(list(entities))]  # type: ignore[attr-defined]
        except fy.P4ClientError as error:
            raise SwitchUnavailable(f"switch {self.target.address}: read failed: "
                                    f"{error.code.name} {error.message}") from None


def insert(entity: Any) -> Any:
    """An INSERT update of ``entity`` (a copy: finsy's ``+``/``-``/``~`` mutate the entity)."""
    return +copy.copy(entity)


def modify(entity: Any) -> Any:
    """A MODIFY update of a copy of ``entity``."""
    return ~copy.copy(entity)


def delete(entity: Any) -> Any:
    """A DELETE update of a copy of ``entity``."""
    return -copy.copy(entity)


def _describe(error: BaseException) -> str:
    if isinstance(error, fy.P4ClientError):
        return f"{error.code.name} {error.message}"
    return str(error) or type(error).__name__
