"""Primary/backup arbitration per role, as the spec's "Client Arbitration" sections define it.

Pure bookkeeping, no gRPC: each stream is a ``Controller``; ``Arbiter`` decides who is primary
for each role (the highest election id ever seen wins, ties with it keep or take the primary
role) and returns the advisory ``MasterArbitrationUpdate`` messages to send, addressed to the
controllers that must receive them. Roles carry full pipeline access; ``role.config`` is refused
because no role-configuration scheme is agreed with clients.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

import grpc

from p4sim.p4runtime.errors import P4RuntimeError
from p4sim.p4runtime.proto import p4r, rpc_code, rpc_status

Notifications = list[tuple["Controller", p4r.MasterArbitrationUpdate]]
_ids = itertools.count(1)


@dataclass(eq=False)
class Controller:
    """One live StreamChannel after its first accepted arbitration message."""

    role: str = ""
    election_id: int | None = None
    device_id: int = 0
    number: int = field(default_factory=lambda: next(_ids))


@dataclass
class _RoleState:
    controllers: list[Controller] = field(default_factory=list)
    primary: Controller | None = None
    highest: int | None = None


def election_id_of(message: p4r.MasterArbitrationUpdate | p4r.WriteRequest) -> int | None:
    if not message.HasField("election_id"):
        return None
    return (message.election_id.high << 64) | message.election_id.low


class Arbiter:
    """Arbitration state of one device; thread-safe."""

    def __init__(self, device_id: int) -> None:
        self.device_id = device_id
        self._roles: dict[str, _RoleState] = {}
        self._lock = threading.Lock()

    def update(self, controller: Controller | None,
               message: p4r.MasterArbitrationUpdate) -> tuple[Controller, Notifications]:
        """Handle an arbitration message of a new (``controller`` None) or live stream."""
        role = message.role.name if message.HasField("role") else ""
        election_id = election_id_of(message)
        if message.HasField("role") and message.role.HasField("config"):
            raise P4RuntimeError(grpc.StatusCode.INVALID_ARGUMENT,
                                 "role.config is not supported: roles have full pipeline access")
        with self._lock:
            if controller is None:
                if message.device_id != self.device_id:
                    raise P4RuntimeError(grpc.StatusCode.NOT_FOUND,
                                         f"device id {message.device_id} is not this device "
                                         f"({self.device_id})")
                state = self._roles.setdefault(role, _RoleState())
                self._check_unique(state, election_id, None)
                controller = Controller(role=role, election_id=election_id,
                                        device_id=message.device_id)
                state.controllers.append(controller)
            else:
                if message.device_id != controller.device_id:
                    raise P4RuntimeError(grpc.StatusCode.FAILED_PRECONDITION,
                                         f"device id {message.device_id} differs from this "
                                         f"stream's {controller.device_id}")
                if role != controller.role:
                    raise P4RuntimeError(grpc.StatusCode.FAILED_PRECONDITION,
                                         f"role {role!r} differs from this stream's "
                                         f"{controller.role!r}; open a new stream to change role")
                state = self._roles[role]
                self._check_unique(state, election_id, controller)
                controller.election_id = election_id
            return controller, self._elect(state, controller)

    def leave(self, controller: Controller) -> Notifications:
        """The stream of ``controller`` ended; announce a lost primary to the others."""
        with self._lock:
            state = self._roles.get(controller.role)
            if state is None or controller not in state.controllers:
                return []
            state.controllers.remove(controller)
            if state.primary is not controller:
                return []
            state.primary = None
            return [(c, self._advisory(state, c)) for c in state.controllers]

    def is_primary(self, role: str, election_id: int | None) -> bool:
        """Whether (role, election id) of a request names the current primary."""
        with self._lock:
            state = self._roles.get(role)
            return (state is not None and state.primary is not None and election_id is not None
                    and state.primary.election_id == election_id)

    def role_known(self, role: str) -> bool:
        with self._lock:
            return role == "" or role in self._roles

    def primaries(self) -> list[Controller]:
        with self._lock:
            return [s.primary for s in self._roles.values() if s.primary is not None]

    def _check_unique(self, state: _RoleState, election_id: int | None,
                      me: Controller | None) -> None:
        if election_id is None:
            return
        for other in state.controllers:
            if other is not me and other.election_id == election_id:
                raise P4RuntimeError(grpc.StatusCode.INVALID_ARGUMENT,
                                     f"election id {election_id} is already used by another "
                                     "controller of this role")

    def _elect(self, state: _RoleState, controller: Controller) -> Notifications:
        election_id = controller.election_id
        if election_id is not None and (state.highest is None or election_id >= state.highest):
            state.highest = election_id
            state.primary = controller
            return [(c, self._advisory(state, c)) for c in state.controllers]
        if state.primary is controller:  # downgraded itself
            state.primary = None
            return [(c, self._advisory(state, c)) for c in state.controllers]
        return [(controller, self._advisory(state, controller))]

    def _advisory(self, state: _RoleState, to: Controller) -> p4r.MasterArbitrationUpdate:
        message = p4r.MasterArbitrationUpdate(device_id=self.device_id)
        if to.role:
            message.role.name = to.role
        if state.highest is not None:
            message.election_id.high = state.highest >> 64
            message.election_id.low = state.highest & ((1 << 64) - 1)
        if state.primary is to:
            message.status.CopyFrom(rpc_status.Status(code=rpc_code.OK))
        elif state.primary is not None:
            message.status.CopyFrom(rpc_status.Status(
                code=rpc_code.ALREADY_EXISTS, message="a primary is connected; you are a backup"))
        else:
            message.status.CopyFrom(rpc_status.Status(
                code=rpc_code.NOT_FOUND, message="no primary is connected"))
        return message
