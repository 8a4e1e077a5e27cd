"""Where packets enter and leave in the end-to-end tests, and the MACs the switch writes.

The routes here are the ones `routes.txt` (the controller's routes file for this suite) installs;
a test that expects a frame on a port names the route that sends it there. Port 0 is where the
tests send; no route covers the addresses tests use to check that a packet is dropped.
"""

from __future__ import annotations

SEND_PORT = 0
HOST_MAC = "02:00:00:00:00:01"      # the sender's MAC
SWITCH_MAC = "02:00:00:00:00:fe"    # the switch's MAC as the sender addresses it
ROUTER_MAC = "02:00:00:00:00:aa"    # the source MAC of every routed frame (routes.txt)

# Destination prefix -> port (routes.txt); next_hop_mac(port) is the route's destination MAC.
ROUTES = {
    "172.16.0.0/16": 1,     # decrypted / plain inner traffic
    "6.6.6.6/32": 2,        # reference scenario 1: Geneve 5.5.5.5 -> 6.6.6.6
    "11.0.0.1/32": 3,       # reference scenario 1: ESP 11.0.0.2 -> 11.0.0.1
    "8.8.8.8/32": 4,        # reference scenario 2: ESP of Geneve 7.7.7.7 -> 8.8.8.8
    "10.10.10.10/32": 5,    # reference scenarios 3 and 4: Geneve 9.9.9.9 -> 10.10.10.10
    "12.12.12.12/32": 6,    # reference scenario 4: Geneve 11.11.11.11 -> 12.12.12.12
    "198.51.100.0/24": 7,   # ESP tunnels of the life-cycle and interop tests
}


def next_hop_mac(port: int) -> str:
    """The destination MAC routes.txt gives the next hop behind `port`."""
    return f"02:00:00:00:0a:{port:02x}"


def port_of(prefix: str) -> int:
    return ROUTES[prefix]
