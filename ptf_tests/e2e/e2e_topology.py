"""Where packets enter and leave in the end-to-end tests, and the MACs the switch writes.

The routes are read from `routes.txt`, the routes file run.sh gives the controller (format of
controller/routes.py, docs/operations.md), so the tests expect frames exactly where the
controller was told to send them. Port 0 is where the tests send; addresses no route covers
(192.0.2.0/24) are where tests check that a packet is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROUTES_FILE = Path(__file__).with_name("routes.txt")
SEND_PORT = 0
HOST_MAC = "02:00:00:00:00:01"      # the sender's MAC
SWITCH_MAC = "02:00:00:00:00:fe"    # the switch's MAC as the sender addresses it


@dataclass(frozen=True, kw_only=True)
class Route:
    port: int
    src_mac: str
    dst_mac: str


def _read_routes() -> dict[str, Route]:
    routes = {}
    for line in ROUTES_FILE.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            prefix, port, src_mac, dst_mac = fields
            routes[prefix] = Route(port=int(port), src_mac=src_mac, dst_mac=dst_mac)
    return routes


ROUTES = _read_routes()
_BY_PORT = {route.port: route for route in ROUTES.values()}


def port_of(prefix: str) -> int:
    """The port of the route for `prefix` (as written in routes.txt)."""
    return ROUTES[prefix].port


def next_hop_mac(port: int) -> str:
    """The destination MAC of the route out of `port`."""
    return _BY_PORT[port].dst_mac


def router_mac(port: int) -> str:
    """The source MAC the switch writes on frames routed out of `port`."""
    return _BY_PORT[port].src_mac
