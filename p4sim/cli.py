"""The ``p4sim`` command: run a P4 program as a switch, print its P4Info, or check it.

    p4sim run PROGRAM.p4 --packet-socket ipc:///tmp/p4sim.ipc --port 64@ipc:///tmp/crypto.ipc \\
        --grpc-addr 127.0.0.1:9559 --device-id 1 --cpu-port 255 --log-console \\
        --grpc-server-ssl --grpc-server-cert switch.crt --grpc-server-key switch.key \\
        --grpc-server-with-client-auth --grpc-server-cacert ca.crt
    p4sim p4info PROGRAM.p4 [-o FILE] [--format text|json|binary]
    p4sim check PROGRAM.p4
    p4sim device-config PROGRAM.p4 [--embed]

Exit status: 0 on success, 1 when the P4 program has errors (printed as file:line:col), 2 for
bad command-line arguments, 3 when the switch cannot start (address in use, no interface).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from google.protobuf import json_format, text_format
from google.protobuf.message import Message

from p4sim.errors import P4Error
from process_tuning import tune_gc

if TYPE_CHECKING:  # imported lazily at run time so `--help` and `check` start fast
    import grpc

    from p4sim.p4runtime.device import Device
    from p4sim.p4runtime.tls import ServerTls
    from p4sim.ports import PacketPump
    from p4sim.program import Program

logger = logging.getLogger("p4sim")

MAX_PORT = 510  # 511 is v1model's drop port
EXIT_P4_ERROR, EXIT_USAGE, EXIT_START = 1, 2, 3


@dataclass(frozen=True, kw_only=True)
class PortBinding:
    """``--port N@ADDR`` (a nanomsg address, has "://") or ``--port N@IFACE`` (AF_PACKET)."""

    port: int
    target: str

    @property
    def is_socket(self) -> bool:
        return "://" in self.target


def parse_port(text: str) -> PortBinding:
    number, sep, target = text.partition("@")
    if not sep or not target:
        raise argparse.ArgumentTypeError(
            f"--port {text!r}: expected N@ADDR (nanomsg, e.g. 64@ipc:///tmp/crypto.ipc) "
            "or N@IFACE (e.g. 1@veth0)")
    try:
        port = int(number, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--port {text!r}: port number {number!r} is not an integer") from None
    if not 0 <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"--port {text!r}: port {port} outside 0..{MAX_PORT}")
    return PortBinding(port=port, target=target)


def parse_define(text: str) -> tuple[str, str]:
    name, _, value = text.partition("=")
    if not name.isidentifier():
        raise argparse.ArgumentTypeError(f"-D {text!r}: {name!r} is not a macro name")
    return name, value or "1"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p4sim",
        description="An embedded v1model target: runs P4_16 source with BMv2's semantics, "
                    "serves P4Runtime and BMv2's nanomsg packet protocol.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="run a program as a switch",
        description="Run PROGRAM as a v1model switch. Without PROGRAM the switch waits for "
                    "SetForwardingPipelineConfig (like simple_switch_grpc --no-p4).")
    run.add_argument("program", nargs="?", type=Path, metavar="PROGRAM.p4")
    run.add_argument("--packet-socket", metavar="ADDR",
                     help="nanomsg PAIR address the switch listens on for every port without "
                          "its own binding, in BMv2 --packet-in format "
                          "(e.g. ipc:///tmp/p4sim.ipc); PTF dials it with --platform nn")
    run.add_argument("--port", dest="ports", action="append", type=parse_port, default=[],
                     metavar="N@ADDR|N@IFACE",
                     help="bind port N to its own nanomsg socket ADDR (contains ://) or to "
                          "the Linux interface IFACE (AF_PACKET); repeatable")
    run.add_argument("--pcap", type=Path, metavar="DIR",
                     help="write one pcap per port and direction into DIR (created 0700; "
                          "files 0600): NAME_in.pcap, NAME_out.pcap, NAME the interface of an "
                          "N@IFACE port, else portN (as BMv2 --pcap)")
    run.add_argument("--enforce-ports", action="store_true",
                     help="on the packet socket, accept frames only on ports the client added "
                          "and set up (BMv2 --enforce-ports)")
    run.add_argument("--grpc-addr", default="127.0.0.1:9559", metavar="HOST:PORT",
                     help="P4Runtime server address (default %(default)s; port 0 picks one)")
    run.add_argument("--no-p4runtime", action="store_true", help="do not serve P4Runtime")
    tls = run.add_argument_group(
        "P4Runtime TLS", "simple_switch_grpc's options; without --grpc-server-ssl P4Runtime is "
                         "plaintext and any local process may become primary")
    tls.add_argument("--grpc-server-ssl", action="store_true",
                     help="serve P4Runtime over TLS (needs --grpc-server-cert and -key)")
    tls.add_argument("--grpc-server-cert", type=Path, metavar="PEM",
                     help="the server's certificate chain")
    tls.add_argument("--grpc-server-key", type=Path, metavar="PEM",
                     help="the private key of --grpc-server-cert (not readable by others)")
    tls.add_argument("--grpc-server-cacert", type=Path, metavar="PEM",
                     help="the CA client certificates must verify against")
    tls.add_argument("--grpc-server-with-client-auth", action="store_true",
                     help="refuse every client without a certificate that verifies against "
                          "--grpc-server-cacert (mutual TLS)")
    run.add_argument("--device-id", type=int, default=1, metavar="N",
                     help="P4Runtime device id (default %(default)s)")
    run.add_argument("--cpu-port", type=int, default=None, metavar="N",
                     help="port whose frames are PacketIn/PacketOut (BMv2 --cpu-port)")
    run.add_argument("-D", dest="defines", action="append", type=parse_define, default=[],
                     metavar="NAME[=VALUE]", help="preprocessor define")
    run.add_argument("--log-console", action="store_true",
                     help="log to stderr; at --log-level debug this includes a per-packet trace")
    run.add_argument("--log-level", default="info",
                     choices=["debug", "info", "warning", "error"],
                     help="log level with --log-console (default %(default)s)")

    p4info = commands.add_parser("p4info", help="print the P4Info of a program",
                                 description="Print the P4Info p4sim generates for PROGRAM.")
    p4info.add_argument("program", type=Path, metavar="PROGRAM.p4")
    p4info.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="write to FILE instead of stdout")
    p4info.add_argument("--format", choices=["text", "json", "binary"], default="text",
                        help="text proto (default, as p4c's .p4info.txt), JSON, or binary")
    p4info.add_argument("-D", dest="defines", action="append", type=parse_define, default=[],
                        metavar="NAME[=VALUE]", help="preprocessor define")

    check = commands.add_parser("check", help="run the front end only",
                                description="Parse and check PROGRAM; print errors as "
                                            "file:line:col: error: message.")
    check.add_argument("program", type=Path, metavar="PROGRAM.p4")
    check.add_argument("-D", dest="defines", action="append", type=parse_define, default=[],
                       metavar="NAME[=VALUE]", help="preprocessor define")
    check.add_argument("--dump", action="store_true",
                       help="print the generated Python module instead of 'ok'")

    stf = commands.add_parser(
        "stf", help="run a p4c STF packet test against a program",
        description="Load PROGRAM, apply TEST.stf's table entries and packets in process (as "
                    "p4c's BMv2 STF runner does) and compare the frames out with its 'expect' "
                    "lines. Exit 0 when all match, 1 on wrong output, 2 when the STF cannot "
                    "be run (and 1 when PROGRAM does not load).")
    stf.add_argument("program", type=Path, metavar="PROGRAM.p4")
    stf.add_argument("stf", type=Path, metavar="TEST.stf")
    stf.add_argument("-D", dest="defines", action="append", type=parse_define, default=[],
                     metavar="NAME[=VALUE]", help="preprocessor define")

    devconf = commands.add_parser(
        "device-config", help="print a p4_device_config for SetForwardingPipelineConfig",
        description="Print the JSON p4_device_config that names PROGRAM (or, with --embed, "
                    "carries its directory's .p4 files) for SetForwardingPipelineConfig.")
    devconf.add_argument("program", type=Path, metavar="PROGRAM.p4")
    devconf.add_argument("--embed", action="store_true", help="carry the source files")
    devconf.add_argument("-D", dest="defines", action="append", type=parse_define, default=[],
                         metavar="NAME[=VALUE]", help="preprocessor define")
    return parser




def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        tune_gc()  # process_tuning: fewer full collections
        return _run(args)
    if args.command == "device-config":
        from p4sim.p4runtime.device_config import make_device_config

        sys.stdout.write(make_device_config(args.program, defines=dict(args.defines),
                                            embed=args.embed).decode() + "\n")
        return 0
    program = _load(args.program, dict(args.defines))
    if program is None:
        return EXIT_P4_ERROR
    for warning in program.warnings:  # on stderr, like p4c; they do not fail the check
        print(warning, file=sys.stderr)
    if args.command == "stf":
        return _stf(program, args.stf)
    if args.command == "check":
        if args.dump:
            sys.stdout.write(program.compiled.source)
        else:
            print(f"{args.program}: ok")
        return 0
    return _write_p4info(program.p4info, args.format, args.output)


def _load(path: Path, defines: dict[str, str]) -> Program | None:
    from p4sim.program import load_program

    if not path.is_file():
        print(f"p4sim: {path}: no such file", file=sys.stderr)
        return None
    try:
        return load_program(path, defines=defines)
    except P4Error as error:
        print(error, file=sys.stderr)
        return None


def _stf(program: Program, test: Path) -> int:
    from p4sim.stf import StfError, run_stf

    if not test.is_file():
        print(f"p4sim: {test}: no such file", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = run_stf(program, test)
    except StfError as error:
        print(f"p4sim: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(result.report())
    return 0 if result.ok else 1


def _write_p4info(p4info: Message, fmt: str, output: Path | None) -> int:
    if fmt == "binary":
        data = p4info.SerializeToString()
    elif fmt == "json":
        data = json_format.MessageToJson(p4info).encode() + b"\n"
    else:
        data = text_format.MessageToString(p4info).encode()
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
    return 0


def _configure_logging(args: argparse.Namespace) -> None:
    level = getattr(logging, args.log_level.upper()) if args.log_console else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pynng").setLevel(max(level, logging.INFO))  # its pipe events are noise


class SwitchRunner:
    """The running pieces of ``p4sim run``: device, packet ports, P4Runtime server."""

    def __init__(self, device: Device, dataplane: PacketPump, server: grpc.Server | None,
                 grpc_port: int | None, tls: ServerTls | None = None) -> None:
        self.device = device
        self.dataplane = dataplane
        self.server = server
        self.grpc_port = grpc_port
        self.tls = tls

    @classmethod
    def start(cls, args: argparse.Namespace, program: Program | None) -> SwitchRunner:
        from p4sim.p4runtime.device import Device
        from p4sim.p4runtime.server import ServerSettings, create_server
        from p4sim.p4runtime.tls import server_credentials
        from p4sim.ports import AfPacketPort, NnPacketSocket, PacketPump, PcapCapture
        from p4sim.ports.nn_socket import limit_nng_threads

        tls = None if args.no_p4runtime else _server_tls(args)
        # Files are checked before anything binds: a bad certificate is one start-up error.
        credentials = server_credentials(tls) if tls is not None else None
        limit_nng_threads()  # before the first socket opens

        device = Device(device_id=args.device_id, cpu_port=args.cpu_port,
                        default_program=program)
        if logger.isEnabledFor(logging.DEBUG):
            trace_log = logging.getLogger("p4sim.trace")
            device.trace = lambda line: trace_log.debug("%s", line)
        if program is not None:
            device.commit(device.verify(program.p4info, b"", None))
        transports = {}
        device_socket = None
        try:
            for binding in args.ports:
                transports[binding.port] = (
                    NnPacketSocket(binding.target, port=binding.port) if binding.is_socket
                    else AfPacketPort(binding.target, port=binding.port))
            if args.packet_socket:
                device_socket = NnPacketSocket(args.packet_socket,
                                               enforce_ports=args.enforce_ports)
        except OSError:
            for transport in transports.values():
                transport.close()
            raise
        capture = None
        if args.pcap is not None:
            capture = PcapCapture(args.pcap, port_names={
                b.port: b.target for b in args.ports if not b.is_socket})
            logger.info("writing pcap files of every port to %s", args.pcap)
        dataplane = PacketPump(device, device_socket=device_socket, port_transports=transports,
                              capture=capture)
        device.transmit = dataplane.transmit
        server = None
        grpc_port = None
        if not args.no_p4runtime:
            try:
                server, grpc_port = create_server(device, ServerSettings(
                    address=args.grpc_addr, credentials=credentials))
            except (OSError, RuntimeError) as error:
                dataplane.stop()
                raise OSError(f"P4Runtime address {args.grpc_addr}: {error}") from error
            server.start()
            logger.info("P4Runtime server on %s, port %d (device id %d), %s", args.grpc_addr,
                        grpc_port, args.device_id,
                        "plaintext" if tls is None else f"{tls.describe()} ({tls.cert})")
        dataplane.start()
        if not dataplane.transports:
            logger.warning("no --packet-socket and no --port: the switch has no packet I/O")
        return cls(device, dataplane, server, grpc_port, tls)

    def ready_line(self) -> str:
        running = self.device.running
        program = running.pipeline.program.source_path if running else "none"
        grpc_part = "grpc=off"
        if self.grpc_port:  # grpc-port stays the last word: scripts read it from the end
            tls = ("off" if self.tls is None else "client-auth" if self.tls.client_auth
                   else "on")
            grpc_part = f"tls={tls} grpc-port={self.grpc_port}"
        return f"p4sim ready: program={program} {grpc_part}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=1).wait()
        self.dataplane.stop()
        logger.info("stopped; dataplane %s", self.dataplane.stats())
        running = self.device.running
        if running is not None:
            stats = running.switch.stats
            logger.info("switch: received %d, transmitted %d, dropped %s", stats.received,
                        stats.transmitted, dict(stats.dropped))
        if self.device.frames_without_pipeline:
            logger.info("frames dropped while no pipeline was set: %d",
                        self.device.frames_without_pipeline)


def _server_tls(args: argparse.Namespace) -> ServerTls | None:
    from p4sim.p4runtime.tls import server_tls

    return server_tls(ssl=args.grpc_server_ssl, cert=args.grpc_server_cert,
                      key=args.grpc_server_key, cacert=args.grpc_server_cacert,
                      client_auth=args.grpc_server_with_client_auth)


def _run(args: argparse.Namespace) -> int:
    _configure_logging(args)
    seen: set[int] = set()
    for binding in args.ports:
        if binding.port in seen:
            print(f"p4sim: port {binding.port} is bound twice", file=sys.stderr)
            return EXIT_USAGE
        seen.add(binding.port)
    if args.cpu_port is not None and not 0 <= args.cpu_port <= MAX_PORT:
        print(f"p4sim: --cpu-port {args.cpu_port} outside 0..{MAX_PORT}", file=sys.stderr)
        return EXIT_USAGE
    from p4sim.p4runtime.tls import TlsConfigError

    try:
        tls = _server_tls(args)
    except TlsConfigError as error:
        print(f"p4sim: {error}", file=sys.stderr)
        return EXIT_USAGE
    if tls is not None and tls.cacert is not None and not tls.client_auth:
        logger.warning("--grpc-server-cacert without --grpc-server-with-client-auth: clients "
                       "are not asked for a certificate")
    program = None
    if args.program is not None:
        program = _load(args.program, dict(args.defines))
        if program is None:
            return EXIT_P4_ERROR
    try:
        runner = SwitchRunner.start(args, program)
    except (OSError, TlsConfigError) as error:
        print(f"p4sim: cannot start: {error}", file=sys.stderr)
        return EXIT_START
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(runner.ready_line(), flush=True)
    stop.wait()
    runner.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
