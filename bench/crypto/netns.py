"""An AF_PACKET socket on an interface inside a named network namespace.

Shared by the crypto worker's veth benchmark (bench/crypto/run.py) and its AF_PACKET tests
(tests/crypto_worker/test_afpacket_*.py, test_workers.py): they play the switch on one end of a
veth pair in a namespace they create with `ip netns add` (`veth_namespace`). `setns` changes
the namespace of the calling thread only, so a socket is made in a short-lived thread and
outlives it, bound in that namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
T = TypeVar("T")


def in_namespace(namespace: str, make: Callable[[], T]) -> T:
    """`make()` run in network namespace ``namespace`` (/var/run/netns/NAME); what it returns
    (a socket, a port) stays bound there."""
    made: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"/var/run/netns/{namespace}") as handle:
                if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            made.append(make())
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller
            failure.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return made[0]


def socket_in_namespace(namespace: str, interface: str, *, ignore_outgoing: bool = False,
                        timeout: float | None = None) -> socket.socket:
    """A raw AF_PACKET socket bound to ``interface`` in ``namespace`` (/var/run/netns/NAME).

    ``ignore_outgoing`` asks the kernel not to hand back the frames this socket sends.
    """
    def make() -> socket.socket:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        if ignore_outgoing:
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        sock.bind((interface, ETH_P_ALL))
        sock.settimeout(timeout)
        return sock

    return in_namespace(namespace, make)


def _ip(*command: str) -> None:
    subprocess.run(["ip", *command], check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def veth_namespace(prefix: str, switch_side: str = "cw-switch",
                   crypto_side: str = "cw-crypto") -> Iterator[str]:
    """A new network namespace named ``prefix``-random holding a veth pair (MTU 9000, up, no
    IPv6: the kernel's ND/MLD frames would otherwise share the wire); deleted on exit.
    Raises OSError/CalledProcessError when namespaces cannot be made here."""
    namespace = f"{prefix}-{uuid.uuid4().hex[:8]}"
    _ip("netns", "add", namespace)
    try:
        _ip("-n", namespace, "link", "add", switch_side, "type", "veth", "peer", "name",
            crypto_side)
        for name in (switch_side, crypto_side):
            knob = f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6"
            _ip("netns", "exec", namespace, "sh", "-c",
                f"if [ -e {knob} ]; then echo 1 > {knob}; fi")
            _ip("-n", namespace, "link", "set", name, "mtu", "9000", "up")
        yield namespace
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False, timeout=30)
