"""p4sim's P4Runtime server: ``create_server(device, settings)`` serves ``p4.v1.P4Runtime`` for a
``Device`` (see docs/p4sim.md, section "P4Runtime")."""

from p4sim.p4runtime.device import Device
from p4sim.p4runtime.server import ServerSettings, create_server

__all__ = ["Device", "ServerSettings", "create_server"]
