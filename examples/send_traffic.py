#!/usr/bin/env python3
"""Send packets into the switch `make run` started on p4sim, and show what comes out.

    .venv/bin/python examples/send_traffic.py                      # 3 packets 2.2.2.2 -> 3.3.3.3
    .venv/bin/python examples/send_traffic.py --src 11.0.0.1 --dst 11.0.0.2 --count 10

It speaks BMv2's nanomsg packet-in protocol (what PTF's `--platform nn` speaks) to p4sim's
front-panel socket (`state/run/ports.ipc`): each packet is a plain IPv4/UDP frame entering on
`--port`; every frame the switch sends back out of a front-panel port within `--listen` seconds
is printed with its port. With examples/3-rematch-chain.yaml created, 2.2.2.2 -> 3.3.3.3 is
encrypted by tunnel 30000 (ESP in tunnel mode, 14.0.0.2 -> 14.0.0.1), re-matched by tunnel 30001
and leaves Geneve-encapsulated towards 10.10.10.10 on the port examples/routes.txt gives it; then
`tunnelctl stats 30000 30001` shows the counters that moved.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pynng
from scapy.contrib.geneve import GENEVE  # noqa: F401 - binds UDP 6081, so summaries show Geneve
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from p4sim.ports.nn_protocol import MsgType, NnProtocolError, decode, encode_frame

DEFAULT_SOCKET = f"ipc://{Path('state/run/ports.ipc').resolve()}"


def build_frame(src: str, dst: str, sequence: int) -> bytes:
    packet = (Ether(src="02:00:00:00:0c:01", dst="02:00:00:00:00:aa")
              / IP(src=src, dst=dst, ttl=64)
              / UDP(sport=40000, dport=5000)
              / Raw(f"tunnel offload example packet {sequence}".encode()))
    return bytes(packet)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--socket", default=DEFAULT_SOCKET,
                        help=f"p4sim's front-panel nanomsg socket (default {DEFAULT_SOCKET})")
    parser.add_argument("--port", type=int, default=0, help="ingress port (default 0)")
    parser.add_argument("--src", default="2.2.2.2", help="IPv4 source (default 2.2.2.2)")
    parser.add_argument("--dst", default="3.3.3.3", help="IPv4 destination (default 3.3.3.3)")
    parser.add_argument("--count", type=int, default=3, help="packets to send (default 3)")
    parser.add_argument("--listen", type=float, default=2.0,
                        help="seconds to collect what comes out after the last send (default 2)")
    args = parser.parse_args(argv)

    try:
        socket = pynng.Pair0(dial=args.socket, recv_timeout=100, block_on_dial=True)
    except pynng.NNGException as error:
        print(f"send_traffic: cannot dial {args.socket}: {error} (is `make run` up?)",
              file=sys.stderr)
        return 3
    with socket:
        for sequence in range(args.count):
            socket.send(encode_frame(MsgType.PACKET_IN, args.port,
                                     build_frame(args.src, args.dst, sequence)))
        print(f"sent {args.count} packet(s) {args.src} -> {args.dst} into port {args.port}")
        received = 0
        deadline = time.monotonic() + args.listen
        while time.monotonic() < deadline:
            try:
                message = decode(socket.recv())
            except pynng.Timeout:
                continue
            except NnProtocolError as error:
                print(f"send_traffic: unreadable message from the switch: {error}",
                      file=sys.stderr)
                continue
            if message.kind is not MsgType.PACKET_OUT:
                continue
            received += 1
            print(f"out port {message.port}: {Ether(message.payload).summary()}")
        print(f"{received} frame(s) came out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
