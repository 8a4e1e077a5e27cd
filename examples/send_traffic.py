#!/usr/bin/env python3
"""Send packets into the switch `make run` started on p4sim, and show what comes out, decoded.

    .venv/bin/python examples/send_traffic.py                    # 3 x UDP 2.2.2.2 -> 3.3.3.3
    .venv/bin/python examples/send_traffic.py --src 2001:db8::1 --dst 2001:db8::2   # plain IPv6
    .venv/bin/python examples/send_traffic.py --src 172.16.1.1 --dst 172.16.2.2 \\
        --geneve 500 --geneve-src 11.0.0.1 --geneve-dst 11.0.0.2 \\
        --decrypt 4587:_aes256gcm64:k4587.hex                    # example 1, tunnels 10002-10003
    .venv/bin/python examples/send_traffic.py --src 11.0.0.1 --dst 11.0.0.2 \\
        --esp 780 --cipher _aes256gcm64 --key-file k780.hex --nat-t   # example 1, 10000-10001

The packet is built inside out: a UDP datagram from --src to --dst (IPv4 or IPv6, as the
addresses are); with --geneve, wrapped in Geneve (outer --geneve-src -> --geneve-dst); with --esp,
ESP-encrypted by the remote peer's SA (SPI --esp, --cipher, key ‖ salt as hex text in
--key-file): tunnel mode when --tunnel-src/--tunnel-dst give the outer addresses, else transport
mode; --nat-t puts it in UDP 4500. The ESP is made by examples/esp_peer.py, an implementation
independent of the crypto worker, so decrypt tunnels can be exercised. docs/cli.md,
"send_traffic.py", has a command for every example.

It speaks BMv2's nanomsg packet protocol (what PTF's `--platform nn` speaks) to p4sim's
front-panel socket (`run/ports.ipc` in the state directory of the stack `make run` last
started, which its record names, so any directory works): each packet enters on --port; every
frame the switch sends out of a front-panel port within --listen seconds is printed with its
port, layer by layer; ESP whose SPI a --decrypt SA names is decrypted (ICV checked) and its inner
packet shown.
Exit status: 0, or 1 when --expect N frames did not come out, 2 bad arguments, 3 no switch.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import TextIO

import pynng
import yaml
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

sys.path.insert(0, str(Path(__file__).resolve().parent))  # esp_peer, beside this script

from esp_peer import EspError, PeerSa, decrypt, encrypt, esp_of, read_key_file  # noqa: E402

from p4sim.ports.nn_protocol import MsgType, NnProtocolError, decode, encode_frame  # noqa: E402

RUN_SOCKET = Path("run") / "ports.ipc"    # inside make run's state directory (scripts/run.sh)
HOST_MAC, SWITCH_MAC = "02:00:00:00:0c:01", "02:00:00:00:00:aa"
INNER_MACS = ("02:00:00:00:0c:02", "02:00:00:00:0c:03")   # the frame inside Geneve: src, dst
GENEVE_PORT = 6081
TEB = 0x6558                         # Geneve protocol type: an Ethernet frame follows
SEQ_EPOCH = 1767225600               # 2026-01-01 UTC: default ESP sequence numbers count from it


class UsageError(ValueError):
    """A bad option value; the message names the option."""


def _ip(src: str, dst: str, option: str) -> Packet:
    try:
        versions = {ip_address(src).version, ip_address(dst).version}
    except ValueError as error:
        raise UsageError(f"{option}: {error}") from None
    if len(versions) != 1:
        raise UsageError(f"{option}: {src} and {dst} are not the same IP version")
    return IPv6(src=src, dst=dst) if versions == {6} else IP(src=src, dst=dst, ttl=64)


@dataclass(frozen=True, kw_only=True)
class Traffic:
    """What to send: the inner datagram and the layers to wrap it in, outermost last."""

    src: str
    dst: str
    payload: str
    geneve: tuple[int, str, str] | None = None      # (VNI, outer source, outer destination)
    esp: PeerSa | None = None

    def packet(self, sequence: int, esp_seq: int) -> Packet:
        """The IP packet for the ``sequence``-th send (ESP sequence number ``esp_seq``)."""
        packet: Packet = (_ip(self.src, self.dst, "--src/--dst")
                          / UDP(sport=40000, dport=5000)
                          / Raw(f"{self.payload} {sequence}".encode()))
        if self.geneve is not None:
            vni, outer_src, outer_dst = self.geneve
            frame = Ether(src=INNER_MACS[0], dst=INNER_MACS[1]) / packet
            packet = (_ip(outer_src, outer_dst, "--geneve-src/--geneve-dst")
                      / UDP(sport=49999, dport=GENEVE_PORT, chksum=0)
                      / GENEVE(vni=vni, proto=TEB) / frame)
        packet = packet.__class__(bytes(packet))
        if self.esp is not None:
            packet = encrypt(self.esp, packet, seq=esp_seq)
        return packet

    def frame(self, sequence: int, esp_seq: int) -> bytes:
        return bytes(Ether(src=HOST_MAC, dst=SWITCH_MAC) / self.packet(sequence, esp_seq))


# ---- decoding what came out ------------------------------------------------------------------

def _payload_text(data: bytes) -> str:
    text = data.decode("ascii", "replace")
    if data and all(32 <= byte < 127 for byte in data):
        return f'"{text}"'
    return f"{len(data)} bytes"


def describe(frame: bytes, sas: dict[int, PeerSa], *, verb: str = "decrypted") -> list[str]:
    """The layers of ``frame``, outermost first, one short string each; ESP under a known SA is
    decrypted (ICV checked) and its contents follow, after ``ESP spi S seq N <verb> <cipher>``."""
    layers: list[str] = []
    packet: Packet | None = Ether(frame)
    while packet is not None and not isinstance(packet, Raw) and packet.name != "NoPayload":
        next_packet: Packet | None = packet.payload
        if isinstance(packet, Ether):
            layers.append(f"Ether {packet.src} > {packet.dst}")
        elif isinstance(packet, IP | IPv6):
            layers.append(f"{'IPv6' if isinstance(packet, IPv6) else 'IPv4'} "
                          f"{packet.src} > {packet.dst}")
            esp = esp_of(packet)
            if esp is not None:
                next_packet = None
                layers.extend(_esp_layers(packet, esp, sas, verb))
        elif isinstance(packet, UDP):
            layers.append(f"UDP {packet.sport} > {packet.dport}")
        elif isinstance(packet, GENEVE):
            layers.append(f"Geneve vni {packet.vni} options {len(packet.options)}")
        else:
            layers.append(packet.summary())
        packet = next_packet
    if isinstance(packet, Raw):
        layers.append(_payload_text(bytes(packet)))
    return layers


def _esp_layers(packet: Packet, esp: tuple[int, int], sas: dict[int, PeerSa],
                verb: str) -> list[str]:
    spi, seq = esp
    layers = []
    if isinstance(packet.payload, UDP):
        layers.append(f"UDP {packet.payload.sport} > {packet.payload.dport}")
    sa = sas.get(spi)
    if sa is None:
        return [*layers, f"ESP spi {spi} seq {seq} (encrypted; --decrypt {spi}:CIPHER:KEYFILE "
                         "shows it)"]
    try:
        opened = decrypt(sa, packet)
    except EspError as error:
        return [*layers, f"ESP spi {spi} seq {seq} (cannot decrypt: {error})"]
    head = f"ESP spi {spi} seq {seq} {verb} {sa.suite.name}"
    inner = describe(bytes(Ether() / opened.packet), sas, verb=verb)[1:]  # without the Ether
    if not opened.tunnel_mode:   # transport: the IP header is the one already shown
        inner = inner[1:]
    return [*layers, head, *inner]


# ---- command line ------------------------------------------------------------------------------

def default_socket() -> str:
    """The front-panel socket of the stack ``make run`` last started (its record, as tunnelctl
    reads it, so this works from any directory), else ``./state/run/ports.ipc``."""
    from tunnelctl.connection import MAKE_RUN_RECORD, config_dir

    state_dir = Path("state")
    try:
        record = yaml.safe_load((config_dir() / MAKE_RUN_RECORD).read_text()) or {}
        if isinstance(record, dict) and record.get("state_dir"):
            state_dir = Path(str(record["state_dir"]))
    except (OSError, yaml.YAMLError):
        pass
    return f"ipc://{(state_dir / RUN_SOCKET).resolve()}"


def _sa_from(spec: str) -> PeerSa:
    """``SPI:ENC_TYPE:KEYFILE`` -> the SA that decrypts what the switch sends out."""
    parts = spec.split(":", 2)
    if len(parts) != 3 or not parts[0].isdecimal():
        raise UsageError(f"--decrypt {spec!r}: expected SPI:ENC_TYPE:KEYFILE, e.g. "
                         "4587:_aes256gcm64:k4587.hex")
    spi, enc_type, key_file = parts
    try:
        return PeerSa.make(spi=int(spi), enc_type=enc_type, material=read_key_file(Path(key_file)))
    except EspError as error:
        raise UsageError(f"--decrypt {spi}: {error}") from None


def traffic_of(args: argparse.Namespace) -> Traffic:
    """The options as a Traffic (UsageError names the option that is wrong)."""
    geneve = None
    if args.geneve is not None:
        if not (args.geneve_src and args.geneve_dst):
            raise UsageError("--geneve needs --geneve-src and --geneve-dst (the outer addresses)")
        if not 0 <= args.geneve < 1 << 24:
            raise UsageError(f"--geneve {args.geneve}: a VNI is 0 ... {(1 << 24) - 1}")
        geneve = (args.geneve, args.geneve_src, args.geneve_dst)
    esp = None
    if args.esp is not None:
        if not args.key_file:
            raise UsageError("--esp needs --key-file (hex text of the SA's key and salt)")
        if bool(args.tunnel_src) != bool(args.tunnel_dst):
            raise UsageError("tunnel mode needs both --tunnel-src and --tunnel-dst")
        tunnel = (args.tunnel_src, args.tunnel_dst) if args.tunnel_src else None
        if tunnel is not None:
            _ip(*tunnel, "--tunnel-src/--tunnel-dst")
        try:
            esp = PeerSa.make(spi=args.esp, enc_type=args.cipher, tunnel=tunnel,
                              nat_t=args.nat_t, material=read_key_file(Path(args.key_file)))
        except EspError as error:
            raise UsageError(f"--esp {args.esp}: {error}") from None
    elif args.tunnel_src or args.tunnel_dst or args.nat_t:
        raise UsageError("--tunnel-src, --tunnel-dst and --nat-t describe ESP: give --esp SPI")
    traffic = Traffic(src=args.src, dst=args.dst, payload=args.payload, geneve=geneve, esp=esp)
    traffic.packet(0, 1)  # every address checked before anything is sent
    return traffic


def parser() -> argparse.ArgumentParser:
    doc = __doc__ or ""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(doc.split("\n\n")[2:]))
    socket = default_socket()
    p.add_argument("--socket", default=socket,
                   help="p4sim's front-panel nanomsg socket (default: that of the stack make "
                        f"run last started, from its record; now {socket})")
    p.add_argument("--port", type=int, default=0, help="ingress port (default 0)")
    p.add_argument("--count", type=int, default=3, help="packets to send (default 3)")
    p.add_argument("--listen", type=float, default=2.0,
                   help="seconds to collect what comes out after the last send (default 2)")
    p.add_argument("--expect", type=int, metavar="N",
                   help="stop listening once N frames came out; exit 1 if fewer did")
    packet = p.add_argument_group("the inner packet (UDP 40000 -> 5000)")
    packet.add_argument("--src", default="2.2.2.2", help="IPv4 or IPv6 source (default 2.2.2.2)")
    packet.add_argument("--dst", default="3.3.3.3", help="destination (default 3.3.3.3)")
    packet.add_argument("--payload", default="tunnel offload example packet",
                        help="payload text; the packet's number is appended")
    geneve = p.add_argument_group("Geneve around it")
    geneve.add_argument("--geneve", type=int, metavar="VNI", help="wrap in Geneve with this VNI")
    geneve.add_argument("--geneve-src", metavar="IP", help="outer source address")
    geneve.add_argument("--geneve-dst", metavar="IP", help="outer destination address")
    esp = p.add_argument_group("ESP around that (the remote peer's SA)")
    esp.add_argument("--esp", type=int, metavar="SPI", help="encrypt with the SA of this SPI")
    esp.add_argument("--cipher", default="_aes256gcm64", metavar="ENC_TYPE",
                     help="the tunnel's encryptionType (default _aes256gcm64)")
    esp.add_argument("--key-file", metavar="FILE",
                     help="hex text of the SA's key and salt (as in the tunnel's encryptionKey)")
    esp.add_argument("--tunnel-src", metavar="IP", help="tunnel mode: outer source address")
    esp.add_argument("--tunnel-dst", metavar="IP", help="tunnel mode: outer destination address")
    esp.add_argument("--nat-t", action="store_true", help="ESP in UDP 4500 (RFC 3948)")
    esp.add_argument("--seq", type=int, metavar="N",
                     help="first ESP sequence number (default: tenths of a second since "
                          "2026-01-01, so each run is above the last for the peer's replay "
                          "window)")
    p.add_argument("--decrypt", action="append", default=[], metavar="SPI:ENC_TYPE:KEYFILE",
                   help="decrypt ESP with this SPI that comes out (repeatable)")
    return p


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    stdout = out if out is not None else sys.stdout
    args = parser().parse_args(argv)
    try:
        traffic = traffic_of(args)
        sas = {sa.spi: sa for sa in map(_sa_from, args.decrypt)}
    except UsageError as error:
        print(f"send_traffic: {error}", file=sys.stderr)
        return 2
    first_seq = (args.seq if args.seq is not None
                 else int((time.time() - SEQ_EPOCH) * 10) % (1 << 32) or 1)
    try:
        socket = pynng.Pair0(dial=args.socket, recv_timeout=100, block_on_dial=True)
    except pynng.NNGException as error:
        print(f"send_traffic: cannot dial {args.socket}: {error} (is `make run` up?)",
              file=sys.stderr)
        return 3
    with socket:
        for sequence in range(args.count):
            socket.send(encode_frame(MsgType.PACKET_IN, args.port,
                                     traffic.frame(sequence, first_seq + sequence)))
        own = {traffic.esp.spi: traffic.esp} if traffic.esp is not None else {}
        sent = " / ".join(describe(traffic.frame(0, first_seq), own, verb="encrypted")[1:])
        print(f"sent {args.count} packet(s) into port {args.port}: {sent}", file=stdout)
        received = 0
        deadline = time.monotonic() + args.listen
        while time.monotonic() < deadline and (args.expect is None or received < args.expect):
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
            print(f"out port {message.port}: {' / '.join(describe(message.payload, sas))}",
                  file=stdout)
        print(f"{received} frame(s) came out", file=stdout)
    if args.expect is not None and received < args.expect:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
