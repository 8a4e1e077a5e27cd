"""The tunnelctl sub-commands. Each takes the parsed arguments and an opened client, prints, and
returns the process exit status (see ``Exit``)."""

from __future__ import annotations

import argparse
import stat
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import TextIO, TypeVar

import grpc
from google.protobuf import text_format

from tunnelctl import graph, summary, wire_values
from tunnelctl.client import CreateOutcome, TunnelClient, error_codes
from tunnelctl.connection import (
    METRICS_ENV,
    ConnectionError_,
    explain_unreachable,
    open_channel,
    resolve_defaults,
    settings_from_args,
)
from tunnelctl.document import load_documents, parse_requests
from tunnelctl.output import dump, print_outcome, readable_list
from tunnelctl.readable import InputError, to_readable
from tunnelctl.reasons import MetricsUnavailable, read_drop_reasons
from tunnelctl.tables import render_table
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

__all__ = ["Exit", "needs_server", "run_command"]


class Exit(IntEnum):
    """Exit statuses, documented in docs/cli.md."""

    OK = 0
    REJECTED = 1  # the server refused a request, or a tunnel does not exist
    USAGE = 2  # bad arguments or a bad input file (argparse uses 2 as well)
    UNREACHABLE = 3  # no connection, TLS failure, deadline exceeded, server not serving


T = TypeVar("T")
Command = Callable[[argparse.Namespace, "TunnelClient | None", TextIO, TextIO], Exit]


def cmd_capabilities(args: argparse.Namespace, client: TunnelClient | None, out: TextIO,
                     err: TextIO) -> Exit:
    dump(to_readable(_need(client).capabilities()), args.output, out)
    return Exit.OK


def cmd_create(args: argparse.Namespace, client: TunnelClient | None, out: TextIO,
               err: TextIO) -> Exit:
    return _send_file(args, client, out, err, operation=pb._CREATE, verb="created")


def cmd_update(args: argparse.Namespace, client: TunnelClient | None, out: TextIO,
               err: TextIO) -> Exit:
    return _send_file(args, client, out, err, operation=pb._UPDATE, verb="updated")


def cmd_delete(args: argparse.Namespace, client: TunnelClient | None, out: TextIO,
               err: TextIO) -> Exit:
    client = _need(client)
    if sum((bool(args.tunnel_ids), bool(args.file), bool(args.all))) > 1:
        raise InputError("delete", "give tunnel ids, -f FILE or --all, not more than one")
    if args.file:
        # Reverse file order: the tunnels chained from others come later in a file, and must go
        # first, because the server refuses to delete a tunnel others still chain from.
        rules = parse_requests(load_documents(args.file), operation=pb._CREATE)
        ids = [rule.tunnelId for rule in reversed(rules)]
        if 0 in ids:
            raise InputError(args.file, "every tunnel needs a tunnelId to be deleted by file")
    elif args.all:
        ids = _children_first(_server_rules(client))
        if not ids:
            out.write("no tunnels to delete\n")
            return Exit.OK
    else:
        ids = list(args.tunnel_ids)
    if not ids:
        raise InputError("delete", "name tunnel ids, -f FILE or --all")
    requests = [pb.ipTunnelRequest(tunnelId=tunnel_id, operation=pb._DELETE) for tunnel_id in ids]
    outcome = client.send(requests)
    print_outcome(outcome, "deleted", [], out, err, from_file=False)
    return Exit.OK if outcome.ok else Exit.REJECTED


def cmd_get(args: argparse.Namespace, client: TunnelClient | None, out: TextIO,
            err: TextIO) -> Exit:
    client = _need(client)
    found = []
    status = Exit.OK
    for tunnel_id in args.tunnel_ids:
        response = _per_tunnel(client.get, tunnel_id, err)
        if response is None or _report_error(response, tunnel_id, err):
            status = Exit.REJECTED
            continue
        found.append(to_readable(response))
    if found:
        dump(found if len(found) > 1 else found[0], args.output, out)
    return status


def cmd_list(args: argparse.Namespace, client: TunnelClient | None, out: TextIO,
             err: TextIO) -> Exit:
    responses = list(_need(client).all_tunnels(args.page_size))
    if args.output != "table":
        dump(readable_list(responses), args.output, out)
        return Exit.OK
    rows = []
    for response in responses:
        rule = response.ipTunnel
        rows.append([response.tunnelId, summary.describe_kind(rule), summary.describe_match(rule),
                     summary.next_action_name(rule), summary.describe_details(rule)])
    out.write(render_table(["ID", "KIND", "MATCH", "NEXT", "DETAILS"], rows))
    return Exit.OK


def cmd_stats(args: argparse.Namespace, client: TunnelClient | None, out: TextIO,
              err: TextIO) -> Exit:
    if args.reasons:
        return _print_reasons(args, out, err)
    client = _need(client)
    refreshes = 0
    previous: StatsSample | None = None
    while True:
        status, previous = _print_stats(args, client, out, err, previous)
        refreshes += 1
        if args.watch is None or (args.count and refreshes >= args.count):
            return status
        try:
            time.sleep(args.watch)
        except KeyboardInterrupt:
            return status


def cmd_rekey(args: argparse.Namespace, client: TunnelClient | None, out: TextIO,
              err: TextIO) -> Exit:
    client = _need(client)
    # Arguments first: nothing is read or sent when the command line is incomplete.
    key = b""
    if args.retire_spi:
        if args.new_spi is not None or args.new_key or args.new_key_file:
            raise InputError("--retire-spi", "retiring old SAs is a step of its own; drop "
                                             "--new-spi/--new-key")
    else:
        if args.new_spi is None:
            raise InputError("--new-spi", "the new SPI is required (or use --retire-spi)")
        key = _read_key(args, err)
    response = _per_tunnel(client.get, args.tunnel_id, err)
    if response is None or _report_error(response, args.tunnel_id, err):
        return Exit.REJECTED
    kind = summary.describe_kind(response.ipTunnel)
    if args.retire_spi:
        if kind != "ipsec-decrypt":
            raise InputError("--retire-spi", f"tunnel {args.tunnel_id} is {kind}; only a decrypt "
                                             "tunnel holds several SAs")
        return _retire(client, args.tunnel_id, args.retire_spi, out, err)
    sa = pb.IPSecSAParams(spi=args.new_spi, encryptionKey=key)
    if kind == "ipsec-encrypt":
        # One UPDATE swaps the SA; mode, cipher and tunnel IPs stay as they are.
        request = pb.ipTunnelRequest(tunnelId=args.tunnel_id, operation=pb._UPDATE)
        request.ipsecTunnel.ipsecEnc.ipsecSA.CopyFrom(sa)
        outcome = client.send([request])
        print_outcome(outcome, f"rekeyed (encrypt SA now spi {args.new_spi})", [kind], out, err,
                      from_file=False)
        return Exit.OK if outcome.ok else Exit.REJECTED
    if kind != "ipsec-decrypt":
        raise InputError("tunnel_id", f"tunnel {args.tunnel_id} is {kind}, not an IPsec tunnel")
    old_spis = list(args.old_spi) if args.old_spi else [
        existing.spi for existing in response.ipTunnel.ipsecTunnel.ipsecDec.ipsecSAs
        if existing.spi != args.new_spi]
    # Make before break: the new SA is live beside the old ones before any old one goes.
    sa.operation = pb._CREATE
    request = pb.ipTunnelRequest(tunnelId=args.tunnel_id, operation=pb._UPDATE)
    request.ipsecTunnel.ipsecDec.ipsecSAs.append(sa)
    outcome = client.send([request])
    print_outcome(outcome, f"added decrypt SA spi {args.new_spi} to", [kind], out, err,
                  from_file=False)
    if not outcome.ok:
        return Exit.REJECTED
    if args.keep_old or not old_spis:
        if old_spis:
            spi_flags = " ".join(f"--retire-spi {spi}" for spi in old_spis)
            out.write(f"old SA(s) kept; retire later with: tunnelctl rekey {args.tunnel_id} "
                      f"{spi_flags}\n")
        return Exit.OK
    out.write(f"grace period {args.grace:g}s before retiring spi "
              f"{', '.join(map(str, old_spis))}\n")
    out.flush()
    try:
        time.sleep(args.grace)
    except KeyboardInterrupt:
        spi_flags = " ".join(f"--retire-spi {spi}" for spi in old_spis)
        err.write(f"interrupted: both SAs stay installed; retire later with: tunnelctl rekey "
                  f"{args.tunnel_id} {spi_flags}\n")
        return Exit.REJECTED
    return _retire(client, args.tunnel_id, old_spis, out, err)


def cmd_graph(args: argparse.Namespace, client: TunnelClient | None, out: TextIO,
              err: TextIO) -> Exit:
    if args.file:
        rules = parse_requests(load_documents(args.file), operation=pb._CREATE)
    else:
        rules = _server_rules(_need(client))
    chain = graph.build_graph(rules)
    render = {"text": graph.render_text, "dot": graph.render_dot,
              "mermaid": graph.render_mermaid}[args.format]
    out.write(render(chain))
    return Exit.OK


def cmd_health(args: argparse.Namespace, client: TunnelClient | None, out: TextIO,
               err: TextIO) -> Exit:
    """Poll the standard gRPC health service until SERVING or ``--wait`` seconds pass.

    The channel is opened inside the loop: right after start-up the controller may not have
    written its certificate yet, and that is "not ready", not an error.
    """
    deadline = time.monotonic() + args.wait
    settings = settings_from_args(args)
    while True:
        try:
            channel = open_channel(settings)
        except ConnectionError_ as error:
            last = str(error)
        else:
            try:
                last = TunnelClient(channel, timeout=args.timeout).health(args.service)
            except grpc.RpcError as error:
                last = explain_unreachable(settings, error.code(), error.details() or "")
            finally:
                channel.close()
        if last == "SERVING":
            out.write("SERVING\n")
            return Exit.OK
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            err.write(f"error: not serving after {args.wait:g}s ({last})\n")
            return Exit.UNREACHABLE
        time.sleep(min(0.2, remaining))


COMMANDS: dict[str, Command] = {
    "capabilities": cmd_capabilities,
    "create": cmd_create,
    "update": cmd_update,
    "delete": cmd_delete,
    "get": cmd_get,
    "list": cmd_list,
    "stats": cmd_stats,
    "rekey": cmd_rekey,
    "graph": cmd_graph,
    "health": cmd_health,
}

def needs_server(args: argparse.Namespace) -> bool:
    if args.command == "stats":
        return not args.reasons  # --reasons reads the metrics endpoint only
    if args.command == "graph":
        return not args.file
    if args.command in ("create", "update"):
        return not args.dry_run
    return args.command != "health"  # health opens its own channel, retrying


def run_command(args: argparse.Namespace, client: TunnelClient | None, out: TextIO,
                err: TextIO) -> Exit:
    return COMMANDS[args.command](args, client, out, err)


def _send_file(args: argparse.Namespace, client: TunnelClient | None, out: TextIO,
               err: TextIO, *, operation: int, verb: str) -> Exit:
    notes: list[str] = []
    requests = parse_requests(load_documents(args.file), operation=operation, notes=notes)
    for note in notes:
        err.write(f"note: {note}\n")
    if operation == pb._UPDATE:
        for index, request in enumerate(requests):
            if not request.tunnelId:
                raise InputError(f"tunnels[{index}].tunnelId", "an UPDATE needs the tunnel's id")
    if args.dry_run:
        # The exact messages that would be sent, in protobuf text format (wire values: IPv4 as
        # the fixed32 integers, bytes escaped). Keys are redacted even here.
        for index, request in enumerate(requests):
            shown = _without_keys(request)
            out.write(f"# tunnels[{index}]\n{text_format.MessageToString(shown)}")
        return Exit.OK
    outcome = _need(client).send(requests)
    print_outcome(outcome, verb, [summary.describe_kind(r) for r in requests], out, err)
    if not outcome.ok and getattr(args, "atomic", False):
        _roll_back(_need(client), outcome, out, err)
    return Exit.OK if outcome.ok else Exit.REJECTED


def _roll_back(client: TunnelClient, outcome: CreateOutcome, out: TextIO, err: TextIO) -> None:
    """``create --atomic``: the server refused part of the file, so delete what this command
    created (chained tunnels first: the reverse of the file order) and say so."""
    created = [item.tunnel_id for item in outcome.outcomes if not item.failed and item.tunnel_id]
    if not created:
        err.write("atomic: nothing was created, nothing to undo\n")
        return
    undo = client.send([pb.ipTunnelRequest(tunnelId=tunnel_id, operation=pb._DELETE)
                        for tunnel_id in reversed(created)])
    left = [item.tunnel_id for item in undo.outcomes if item.failed]
    removed = [t for t in reversed(created) if t not in left]
    if removed:
        err.write(f"atomic: the file was not applied; deleted the tunnel(s) this command created: "
                  f"{', '.join(map(str, removed))}\n")
    for item in undo.outcomes:
        if item.failed:
            err.write(f"error: atomic: could not delete tunnel {item.tunnel_id} this command "
                      f"created: {item.reason} (delete it by hand)\n")


@dataclass(frozen=True, kw_only=True)
class StatsSample:
    """One stats refresh: when it was taken and each tunnel's (in, out) packet counts."""

    taken: float
    packets: dict[int, tuple[int, int]]


def _print_stats(args: argparse.Namespace, client: TunnelClient, out: TextIO, err: TextIO,
                 previous: StatsSample | None) -> tuple[Exit, StatsSample]:
    """Print one refresh; with --watch, add packets/s since ``previous`` (the counters moving)."""
    status = Exit.OK
    responses: list[pb.ipTunnelStatsResponse] = []
    if args.tunnel_ids:
        for tunnel_id in args.tunnel_ids:
            response = _per_tunnel(client.stats, tunnel_id, err)
            if response is None or _report_error(response, tunnel_id, err):
                status = Exit.REJECTED
            else:
                responses.append(response)
    else:
        responses = list(client.all_stats(args.page_size))
    sample = StatsSample(taken=time.monotonic(), packets={
        r.tunnelId: (r.tunnelCounters.inPackets, r.tunnelCounters.outPackets) for r in responses})
    if args.output != "table":
        dump(readable_list(responses), args.output, out)
        out.flush()
        return status, sample
    headers = ["ID", "IN_PKTS", "IN_BYTES", "OUT_PKTS", "OUT_BYTES", "IN_DROPS", "OUT_DROPS"]
    if args.watch is not None:
        headers += ["IN_PPS", "OUT_PPS"]
        if out.isatty():
            out.write("\x1b[H\x1b[2J")
        out.write(f"every {args.watch:g}s  {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC\n")
    rows: list[list[object]] = []
    for response in responses:
        counters = response.tunnelCounters
        row: list[object] = [response.tunnelId, counters.inPackets, counters.inBytes,
                             counters.outPackets, counters.outBytes, counters.inPacketsDrops,
                             counters.outPacketsDrops]
        if args.watch is not None:
            row += packet_rates(response.tunnelId, sample, previous)
        rows.append(row)
    out.write(render_table(headers, rows))
    out.flush()
    return status, sample


def _print_reasons(args: argparse.Namespace, out: TextIO, err: TextIO) -> Exit:
    """``stats --reasons``: the drops by reason of the controller's metrics endpoint."""
    if args.watch is not None:
        raise InputError("--reasons", "--watch is not supported with --reasons")
    if args.metrics is None:
        resolve_defaults(args)
    if not args.metrics:
        raise InputError("--reasons", "drops by reason are read from the controller's metrics "
                                      "endpoint (the API has no field for them): give --metrics "
                                      "HOST:PORT (the controller's --metrics-addr), or set "
                                      f"${METRICS_ENV} or metrics: in tunnelctl.yaml")
    try:
        reasons = read_drop_reasons(args.metrics, timeout=args.timeout)
    except MetricsUnavailable as error:
        err.write(f"error: {error}\n")
        return Exit.UNREACHABLE
    if args.output != "table":
        dump(reasons.readable(args.tunnel_ids), args.output, out)
        return Exit.OK
    rows = reasons.rows(args.tunnel_ids)
    if not rows:
        out.write("no drops\n")
    else:
        out.write(render_table(["SOURCE", "TUNNEL", "REASON", "PACKETS"], rows))
    return Exit.OK


def packet_rates(tunnel_id: int, now: StatsSample, before: StatsSample | None) -> list[object]:
    """Packets per second in and out since the last refresh; "-" when there is none to compare."""
    if before is None or tunnel_id not in before.packets or now.taken <= before.taken:
        return ["-", "-"]
    elapsed = now.taken - before.taken
    return [f"{(new - old) / elapsed:.1f}" for new, old in
            zip(now.packets[tunnel_id], before.packets[tunnel_id], strict=True)]


def _retire(client: TunnelClient, tunnel_id: int, spis: Sequence[int], out: TextIO,
            err: TextIO) -> Exit:
    request = pb.ipTunnelRequest(tunnelId=tunnel_id, operation=pb._UPDATE)
    for spi in spis:
        request.ipsecTunnel.ipsecDec.ipsecSAs.append(
            pb.IPSecSAParams(spi=spi, operation=pb._DELETE))
    outcome = client.send([request])
    print_outcome(outcome, f"retired decrypt SA spi {', '.join(map(str, spis))} of", [], out, err,
                  from_file=False)
    return Exit.OK if outcome.ok else Exit.REJECTED


def _read_key(args: argparse.Namespace, err: TextIO) -> bytes:
    """The new key from ``--new-key-file`` (``-`` = stdin, so it need touch neither the disk nor
    the process list) or ``--new-key``; warns when the key file is readable by other users."""
    if bool(args.new_key) == bool(args.new_key_file):
        raise InputError("--new-key", "give the new key with exactly one of --new-key HEX or "
                                      "--new-key-file FILE")
    option = "--new-key-file" if args.new_key_file else "--new-key"
    if args.new_key_file == "-":
        text = sys.stdin.read()
    elif args.new_key_file:
        path = Path(args.new_key_file)
        try:
            text = path.read_text(encoding="ascii")
            mode = stat.S_IMODE(path.stat().st_mode)
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not ASCII hex text"
            raise InputError(option, f"cannot read {args.new_key_file}: {reason}") from None
        if mode & 0o044:
            err.write(f"tunnelctl: warning: key file {path} is readable by group or others "
                      f"(mode {mode:o}); chmod 600 it\n")
    else:
        text = args.new_key
    try:
        return wire_values.encode_key(text)
    except wire_values.CodecError as error:
        raise InputError(option, str(error)) from None


def _per_tunnel(rpc: Callable[[int], T], tunnel_id: int, err: TextIO) -> T | None:
    """Call a per-tunnel rpc; a NOT_FOUND / INVALID_ARGUMENT answer is that tunnel's error line,
    so the other ids of the command still get their answer."""
    try:
        return rpc(tunnel_id)
    except grpc.RpcError as error:
        code = error.code()
        if code not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
            raise
        err.write(f"error: tunnel {tunnel_id}: {error.details()} [{code.name}]\n")
        return None


def _report_error(response: pb.ipTunnelResponse | pb.ipTunnelStatsResponse, tunnel_id: int,
                  err: TextIO) -> bool:
    if response.HasField("error") and response.error.errorString:
        codes = error_codes(response.error)
        suffix = f" [{', '.join(codes)}]" if codes else ""
        err.write(f"error: tunnel {tunnel_id}: {response.error.errorString}{suffix}\n")
        return True
    return False


def _server_rules(client: TunnelClient) -> list[pb.ipTunnelRequest]:
    """Every tunnel the server holds, as rules whose ``tunnelId`` is the tunnel's id."""
    rules = []
    for response in client.all_tunnels():
        rule = pb.ipTunnelRequest()
        rule.CopyFrom(response.ipTunnel)
        rule.tunnelId = response.tunnelId or rule.tunnelId
        rules.append(rule)
    return rules


def _children_first(rules: Sequence[pb.ipTunnelRequest]) -> list[int]:
    """Tunnel ids ordered so that every tunnel comes before the one it chains from."""
    chain = graph.build_graph(rules)
    order: list[int] = []
    seen: set[int] = set()

    def visit(tunnel_id: int) -> None:
        if tunnel_id in seen:
            return
        seen.add(tunnel_id)
        for edge in chain.children(tunnel_id):
            if edge.kind == "chain":
                visit(edge.target)
        order.append(tunnel_id)

    for node in chain.nodes:
        visit(node.tunnel_id)
    return order


def _without_keys(request: pb.ipTunnelRequest) -> pb.ipTunnelRequest:
    shown = pb.ipTunnelRequest()
    shown.CopyFrom(request)
    sas = []
    if shown.ipsecTunnel.HasField("ipsecEnc"):
        sas.append(shown.ipsecTunnel.ipsecEnc.ipsecSA)
    sas.extend(shown.ipsecTunnel.ipsecDec.ipsecSAs)
    for sa in sas:
        if sa.encryptionKey:
            sa.encryptionKey = wire_values.redact_key(sa.encryptionKey).encode()
    return shown


def _need(client: TunnelClient | None) -> TunnelClient:
    if client is None:
        raise RuntimeError("this command needs a server connection")
    return client
