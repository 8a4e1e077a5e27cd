"""An AF_PACKET socket on an interface inside a named network namespace.

Shared by the crypto worker's veth benchmark (bench/crypto/run.py) and its AF_PACKET test
(tests/crypto_worker/test_afpacket_port.py): both play the switch on one end of a veth pair in a
namespace they create with `ip netns add`. `setns` changes the namespace of the calling thread
only, so the socket is made in a short-lived thread and outlives it, bound in that namespace.
"""

from __future__ import annotations

import ctypes
import socket
import threading

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23


def socket_in_namespace(namespace: str, interface: str, *, ignore_outgoing: bool = False,
                        timeout: float | None = None) -> socket.socket:
    """A raw AF_PACKET socket bound to ``interface`` in ``namespace`` (/var/run/netns/NAME).

    ``ignore_outgoing`` asks the kernel not to hand back the frames this socket sends.
    """
    made: list[socket.socket] = []
    failure: list[BaseException] = []

    def make() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"/var/run/netns/{namespace}") as handle:
                if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            if ignore_outgoing:
                sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            sock.bind((interface, ETH_P_ALL))
            sock.settimeout(timeout)
            made.append(sock)
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller
            failure.append(error)

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return made[0]
