"""tunnelctl: the command-line client of the TunnelOffload API (docs/cli.md).

With no connection options it reaches the controller ``make run`` started, from any directory:
the address and the state directory (whose generated certificate it trusts) come from the
environment, the per-user config file or ``make run``'s record (tunnelctl/connection.py).
"""

from __future__ import annotations

import argparse
import os
import sys

# gRPC's C core logs TLS handshake failures itself; tunnelctl reports each as one line instead.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")
from collections.abc import Sequence
from typing import TextIO

import grpc

from tunnelctl.client import TunnelClient
from tunnelctl.commands import Exit, needs_server, run_command
from tunnelctl.connection import (
    DEFAULT_SERVER,
    DEFAULT_STATE_DIR,
    GENERATED_CERT_NAME,
    ConnectionError_,
    ConnectionSettings,
    UsageError_,
    check_options,
    explain_unreachable,
    key_file_warning,
    open_channel,
    plaintext_warning,
    settings_from_args,
)
from tunnelctl.readable import InputError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tunnelctl",
        description="Drive a TunnelOffload controller: create, inspect, rekey and delete tunnels.",
        epilog="Exit status: 0 ok, 1 the server refused a request, 2 bad arguments or input file, "
               "3 server unreachable or not serving. See docs/cli.md.")
    connection = parser.add_argument_group(
        "connection (defaults: env, then ~/.config/tunneloffload/tunnelctl.yaml, then the "
        "controller `make run` last started; docs/cli.md)")
    connection.add_argument("-s", "--server",
                            help="controller address HOST:PORT (env TUNNELCTL_SERVER; "
                                 f"default {DEFAULT_SERVER})")
    connection.add_argument("--state-dir",
                            help="the controller's --state-dir; its generated certificate "
                                 f"({GENERATED_CERT_NAME}) is trusted when --ca is not given "
                                 f"(env TUNNELOFFLOAD_STATE_DIR; default {DEFAULT_STATE_DIR})")
    connection.add_argument("--ca", help="PEM file of the CA (or self-signed certificate) to "
                                         "trust, like the server's --tls-cert")
    connection.add_argument("--cert", help="client certificate PEM for mutual TLS (the server's "
                                           "--tls-client-ca must trust it)")
    connection.add_argument("--key", help="client private key PEM for mutual TLS")
    connection.add_argument("--server-name", help="TLS name to verify instead of the host in "
                                                  "--server")
    connection.add_argument("--insecure", action="store_true",
                            help="plaintext gRPC, for a server started with --insecure")
    connection.add_argument("--timeout", type=float, default=10.0,
                            help="deadline of each rpc in seconds (default 10)")

    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    capabilities = commands.add_parser("capabilities", help="what the device supports")
    _output_option(capabilities, ("yaml", "json"), "yaml")

    for name, verb in (("create", "create"), ("update", "update")):
        sub = commands.add_parser(name, help=f"{verb} the tunnels described in a YAML/JSON file")
        sub.add_argument("-f", "--file", required=True,
                         help="YAML or JSON file with one or more tunnels ('-' = stdin)")
        sub.add_argument("--dry-run", action="store_true",
                         help="check the file and print the requests in protobuf text format "
                              "(wire values), without a server")
        if name == "create":
            sub.add_argument("--atomic", action="store_true",
                             help="the whole file or nothing: every tunnel is checked before "
                                  "any is sent, and if the server refuses one, the tunnels this "
                                  "command created are deleted again")

    get = commands.add_parser("get", help="show tunnels by id (keys are never shown)")
    get.add_argument("tunnel_ids", nargs="+", type=_tunnel_id, metavar="ID")
    _output_option(get, ("yaml", "json"), "yaml")

    listing = commands.add_parser("list", help="all tunnels, one line each")
    _output_option(listing, ("table", "yaml", "json"), "table")
    listing.add_argument("--page-size", type=int, default=0,
                         help="tunnelsPerRequest of getAllIpTunnels (0 = one page)")

    stats = commands.add_parser("stats", help="counters of some or all tunnels")
    stats.add_argument("tunnel_ids", nargs="*", type=_tunnel_id, metavar="ID")
    _output_option(stats, ("table", "yaml", "json"), "table")
    stats.add_argument("--page-size", type=int, default=0,
                       help="tunnelsPerRequest of getAllIpTunnelsStats (0 = one page)")
    stats.add_argument("-w", "--watch", type=_seconds, nargs="?", const=2.0, default=None,
                       metavar="SECONDS", help="refresh every SECONDS (default 2) until Ctrl-C")
    stats.add_argument("--count", type=int, default=0,
                       help="with --watch: stop after this many refreshes")
    stats.add_argument("--reasons", action="store_true",
                       help="drops by reason (switch and crypto worker), read from the "
                            "controller's metrics endpoint, not the API (docs/cli.md)")
    stats.add_argument("--metrics", metavar="HOST:PORT",
                       help="with --reasons: the controller's --metrics-addr, or a URL (env "
                            "TUNNELCTL_METRICS; config file key metrics:)")

    delete = commands.add_parser("delete", help="delete tunnels by id, by file, or all")
    delete.add_argument("tunnel_ids", nargs="*", type=_tunnel_id, metavar="ID")
    which = delete.add_mutually_exclusive_group()
    which.add_argument("-f", "--file", help="delete the tunnels a create file describes "
                                            "(in reverse order, chained tunnels first)")
    which.add_argument("--all", action="store_true",
                       help="delete every tunnel, chained tunnels before their parents")

    rekey = commands.add_parser(
        "rekey", help="make-before-break rekey of an IPsec tunnel",
        description="Encrypt tunnel: one UPDATE swaps in the new SA. Decrypt tunnel: an UPDATE "
                    "adds the new SA (_CREATE) beside the old one; after --grace seconds another "
                    "UPDATE removes the old SPI(s) (_DELETE). --keep-old stops after the add; "
                    "--retire-spi does the removal later.")
    rekey.add_argument("tunnel_id", type=_tunnel_id, metavar="ID")
    rekey.add_argument("--new-spi", dest="new_spi", type=_uint32, help="SPI of the new SA")
    rekey.add_argument("--new-key", dest="new_key",
                       help="new key as hex text (visible in the process list; prefer "
                            "--new-key-file)")
    rekey.add_argument("--new-key-file", dest="new_key_file",
                       help="file holding the new key as hex text (- reads stdin); keep it "
                            "chmod 600, a group/world-readable file is warned about")
    rekey.add_argument("--grace", type=_seconds, default=30.0,
                       help="decrypt: seconds both SAs stay live before the old is removed "
                            "(default 30)")
    rekey.add_argument("--keep-old", action="store_true",
                       help="decrypt: add the new SA and leave the old one(s) installed")
    rekey.add_argument("--old-spi", type=_uint32, action="append",
                       help="decrypt: the SPI(s) to retire (default: every other SA of the "
                            "tunnel)")
    rekey.add_argument("--retire-spi", type=_uint32, action="append",
                       help="decrypt: only remove these SPI(s) now (the second half of a rekey)")

    graph = commands.add_parser("graph", help="the chaining graph of the tunnels")
    graph.add_argument("--format", choices=("text", "dot", "mermaid"), default="text")
    graph.add_argument("-f", "--file", help="draw the tunnels of a file instead of the server's")

    health = commands.add_parser("health", help="wait until the controller reports SERVING")
    health.add_argument("--wait", type=_seconds, default=0.0,
                        help="keep polling up to SECONDS (default: ask once)")
    health.add_argument("--service", default="",
                        help="health service name to check (default: the whole server)")
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    """Run one command; returns the exit status (see ``Exit``)."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    channel = None
    settings = None
    try:
        client = None
        _check_input_file(args)
        if needs_server(args):
            settings = settings_from_args(args)
            check_options(settings)
            for warning in (plaintext_warning(settings), key_file_warning(settings)):
                if warning is not None:
                    err.write(f"tunnelctl: {warning}\n")
            channel = open_channel(settings)
            client = TunnelClient(channel, timeout=args.timeout)
        return int(run_command(args, client, out, err))
    except (InputError, UsageError_) as error:
        err.write(f"error: {error}\n")
        return int(Exit.USAGE)
    except ConnectionError_ as error:
        err.write(f"error: {error}\n")
        return int(Exit.UNREACHABLE)
    except grpc.RpcError as error:
        return int(_report_rpc_error(error, settings, err))
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader (`| head`) went away: not an error of ours. Keep Python from complaining
        # again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(Exit.OK)
    finally:
        if channel is not None:
            channel.close()


def _check_input_file(args: argparse.Namespace) -> None:
    """A missing ``-f`` file is the error to report, before any certificate or connection."""
    path = getattr(args, "file", None)
    if path and path != "-" and not os.path.isfile(path):
        reason = "is a directory" if os.path.isdir(path) else "no such file"
        raise InputError(path, reason)


def _report_rpc_error(error: grpc.RpcError, settings: ConnectionSettings | None,
                      err: TextIO) -> Exit:
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else str(error)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        server = settings.server if settings else "?"
        cause = explain_unreachable(settings, code, details or "") if settings else details
        err.write(f"error: cannot reach the controller at {server}: {cause}\n")
        return Exit.UNREACHABLE
    name = code.name if code is not None else "ERROR"
    err.write(f"error: the controller answered {name}: {details}\n")
    return Exit.REJECTED


def _tunnel_id(text: str) -> int:
    value = _uint(text, 0xFFFFFFFFFFFFFFFF)
    if value == 0:
        raise argparse.ArgumentTypeError("tunnel id 0 means 'allocate one'; name a real id")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 <= value < 1e6:
        raise argparse.ArgumentTypeError(f"{value:g} seconds is out of range 0..1e6")
    return value


def _uint32(text: str) -> int:
    return _uint(text, 0xFFFFFFFF)


def _uint(text: str, limit: int) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value <= limit:
        raise argparse.ArgumentTypeError(f"{value} is out of range 0..{limit}")
    return value


def _output_option(parser: argparse.ArgumentParser, choices: tuple[str, ...], default: str) -> None:
    parser.add_argument("-o", "--output", choices=choices, default=default,
                        help=f"output format (default {default})")


if __name__ == "__main__":
    sys.exit(main())
