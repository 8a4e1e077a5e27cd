"""Tunnel files for ``tunnelctl create/update -f``: YAML or JSON, one or many tunnels.

Accepted shapes (YAML may also hold several ``---`` documents, each of these shapes):

- ``{tunnels: [ {...}, {...} ]}`` — the form the examples use;
- a list of tunnels;
- one tunnel mapping.

What ``get``/``list -o yaml|json`` print (``{tunnelId, ipTunnel: {...}, tunnelCounters}``) is
accepted too: the ``ipTunnel`` inside is sent and the read-only fields are dropped with a note.

Duplicate keys are an error rather than "last one wins": in a security configuration a silently
dropped line is a bug waiting to happen.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tunnelctl.readable import InputError, from_readable
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

__all__ = ["load_documents", "parse_requests"]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise InputError(f"line {key_node.start_mark.line + 1}", f"duplicate key {key!r}")
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _unique_json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    for key, value in pairs:
        if key in mapping:
            raise InputError("JSON", f"duplicate key {key!r}")
        mapping[key] = value
    return mapping


def load_documents(path: str) -> list[dict[str, Any]]:
    """Read ``path`` (``-`` = stdin) and return the tunnel mappings it holds, in order."""
    if path == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise InputError(path, f"cannot read: {error.strerror}") from None
    return tunnels_from_text(text, json_only=path.endswith(".json"), source=path)


def tunnels_from_text(
    text: str, *, json_only: bool = False, source: str = "-"
) -> list[dict[str, Any]]:
    """Parse YAML (a superset of JSON) or strict JSON text into a list of tunnel mappings."""
    try:
        if json_only:
            documents = [json.loads(text, object_pairs_hook=_unique_json_object)]
        else:
            loaded = yaml.load_all(text, Loader=_StrictLoader)
            documents = [doc for doc in loaded if doc is not None]
    except json.JSONDecodeError as error:
        raise InputError(f"{source}:{error.lineno}", f"not valid JSON: {error.msg}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(error, "problem", None) or str(error)
        raise InputError(where, f"not valid YAML: {problem}") from None
    tunnels: list[dict[str, Any]] = []
    for document in documents:
        if isinstance(document, Mapping) and "tunnels" in document:
            extra = sorted(str(key) for key in document if key != "tunnels")
            if extra:
                raise InputError(source, f"unknown top-level key(s) {', '.join(extra)}; "
                                         "expected only 'tunnels'")
            items = document["tunnels"]
            if not isinstance(items, list):
                raise InputError("tunnels", "expected a list of tunnels")
            tunnels.extend(items)
        elif isinstance(document, list):
            tunnels.extend(document)
        elif isinstance(document, Mapping):
            tunnels.append(dict(document))
        else:
            raise InputError(source, "expected a tunnel, a list of tunnels or {tunnels: [...]}")
    if not tunnels:
        raise InputError(source, "holds no tunnels")
    return tunnels


# The fields of a read (ipTunnelResponse) around the tunnel itself; only the server sets them.
_READ_ONLY = tuple(f.name for f in pb.ipTunnelResponse.DESCRIPTOR.fields
                   if f.name not in ("tunnelId", "ipTunnel"))


def _from_read_output(tunnel: Any, path: str, notes: list[str]) -> Any:
    """The tunnel inside a ``get``/``list`` item; anything else unchanged."""
    if not isinstance(tunnel, Mapping) or "ipTunnel" not in tunnel:
        return tunnel
    beside = sorted(str(k) for k in tunnel if k not in ("tunnelId", "ipTunnel", *_READ_ONLY))
    if beside:
        raise InputError(f"{path}.ipTunnel", "'ipTunnel' wraps a tunnel only in get/list output "
                         f"(beside tunnelId, {', '.join(_READ_ONLY)}), not beside "
                         f"{', '.join(beside)}; write the tunnel's fields directly")
    inner = tunnel["ipTunnel"]
    if not isinstance(inner, Mapping):
        raise InputError(f"{path}.ipTunnel", "expected the tunnel's fields (a mapping)")
    inner = dict(inner)
    outer_id = tunnel.get("tunnelId")
    if outer_id is not None and inner.setdefault("tunnelId", outer_id) != outer_id:
        raise InputError(f"{path}.tunnelId", f"{outer_id} differs from ipTunnel.tunnelId "
                         f"{inner['tunnelId']}")
    ignored = [name for name in _READ_ONLY if name in tunnel]
    note = f"{path}: get/list output: sending its ipTunnel"
    if ignored:
        note += f", ignoring the read-only {', '.join(ignored)}"
    if _keyless_sas(inner):
        note += " (reads never show keys: add each SA's encryptionKey before sending)"
    notes.append(note)
    return inner


def _keyless_sas(value: Any) -> int:
    """How many SAs (``ipsecSA``/``ipsecSAs`` entries) under ``value`` carry no key."""
    if isinstance(value, list):
        return sum(_keyless_sas(item) for item in value)
    if not isinstance(value, Mapping):
        return 0
    count = 0
    for key, item in value.items():
        if key in ("ipsecSA", "ipsecSAs"):
            sas = item if isinstance(item, list) else [item]
            count += sum(1 for sa in sas if isinstance(sa, Mapping) and "encryptionKey" not in sa)
        else:
            count += _keyless_sas(item)
    return count


def parse_requests(tunnels: list[Any], *, operation: int,
                   notes: list[str] | None = None) -> list[pb.ipTunnelRequest]:
    """Build one ``ipTunnelRequest`` per readable tunnel, all with ``operation``.

    A tunnel may leave ``operation`` out or spell the same one; any other value is refused, so
    ``create -f`` can never delete by accident. ``notes`` collects what was done to get/list
    output to make it a request.
    """
    requests: list[pb.ipTunnelRequest] = []
    wanted = pb.OPERATION.Name(operation)
    notes = [] if notes is None else notes
    for index, tunnel in enumerate(tunnels):
        path = f"tunnels[{index}]"
        request = from_readable(_from_read_output(tunnel, path, notes), pb.ipTunnelRequest(),
                                path)
        if request.operation not in (pb._NONE, operation):
            raise InputError(f"{path}.operation",
                             f"{pb.OPERATION.Name(request.operation)} does not belong in a file "
                             f"sent as {wanted}")
        request.operation = operation  # type: ignore[assignment]
        requests.append(request)
    return requests
