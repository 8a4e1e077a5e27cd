"""Tunnel files for ``tunnelctl create/update -f``: YAML or JSON, one or many tunnels.

Accepted shapes (YAML may also hold several ``---`` documents, each of these shapes):

- ``{tunnels: [ {...}, {...} ]}`` — the form the examples use;
- a list of tunnels;
- one tunnel mapping.

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


def parse_requests(tunnels: list[Any], *, operation: int) -> list[pb.ipTunnelRequest]:
    """Build one ``ipTunnelRequest`` per readable tunnel, all with ``operation``.

    A tunnel may leave ``operation`` out or spell the same one; any other value is refused, so
    ``create -f`` can never delete by accident.
    """
    requests: list[pb.ipTunnelRequest] = []
    wanted = pb.OPERATION.Name(operation)
    for index, tunnel in enumerate(tunnels):
        path = f"tunnels[{index}]"
        request = from_readable(tunnel, pb.ipTunnelRequest(), path)
        if request.operation not in (pb._NONE, operation):
            raise InputError(f"{path}.operation",
                             f"{pb.OPERATION.Name(request.operation)} does not belong in a file "
                             f"sent as {wanted}")
        request.operation = operation  # type: ignore[assignment]
        requests.append(request)
    return requests
