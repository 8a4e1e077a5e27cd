"""Printing: readable YAML/JSON of messages, and the one-line-per-failure error report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

import yaml
from google.protobuf.message import Message

from tunnelctl.client import CreateOutcome
from tunnelctl.readable import to_readable

__all__ = ["dump", "print_outcome", "readable_list"]


def readable_list(messages: Sequence[Message]) -> list[dict[str, Any]]:
    return [to_readable(message) for message in messages]


def dump(data: Any, fmt: str, stream: TextIO) -> None:
    """Write ``data`` as YAML (block style, field order kept) or indented JSON."""
    if fmt == "json":
        stream.write(json.dumps(data, indent=2) + "\n")
    else:
        stream.write(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def print_outcome(outcome: CreateOutcome, verb: str, kinds: Sequence[str], out: TextIO,
                  err: TextIO, *, from_file: bool = True) -> None:
    """One line per request: what happened to it; failures go to ``err`` with field and reason.

    ``kinds`` describes each request sent (e.g. ``ipsec-decrypt``) so a line is clear on its own;
    ``from_file`` adds the request's place in the file (``tunnels[2]``).
    """
    for item in outcome.outcomes:
        kind = kinds[item.index] if item.index < len(kinds) else ""
        where = f"tunnels[{item.index}] " if from_file else ""
        who = f"{where}tunnel {item.tunnel_id}" + (f" ({kind})" if kind else "")
        if item.failed:
            codes = f" [{', '.join(item.error_codes)}]" if item.error_codes else ""
            err.write(f"error: {who}: {item.reason}{codes}\n")
        else:
            out.write(f"{verb} {who}\n")
    if not outcome.ok and outcome.status != "_TUNNEL_REJECTED":
        err.write(f"error: the server answered {outcome.status} for the whole stream\n")
