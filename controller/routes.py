"""The routes file (``--routes``): the forwarding tables' entries, one route per line.

Format (docs/operations.md)::

    # prefix            port  source MAC          next-hop MAC
    10.0.0.0/8          2     02:00:00:00:00:01   02:00:00:00:01:02
    0.0.0.0/0           3     02:00:00:00:00:01   02:00:00:00:01:03
    2001:db8::/32       2     02:00:00:00:00:01   02:00:00:00:01:02

Blank lines and ``#`` comments are ignored. Every error names the file, the line and the value.
"""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path

from controller.pipeline import Route

MAX_PORT = 511


class RoutesFileError(ValueError):
    """A routes file line that cannot be used."""


def _mac(text: str, where: str) -> bytes:
    parts = text.split(":")
    if len(parts) != 6 or not all(len(part) == 2 for part in parts):
        raise RoutesFileError(f"{where}: {text!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    try:
        return bytes(int(part, 16) for part in parts)
    except ValueError:
        raise RoutesFileError(f"{where}: {text!r} is not a MAC address") from None


def parse_routes(text: str, *, source: str = "routes") -> list[Route]:
    """Parse routes-file text; duplicate prefixes are refused."""
    routes: list[Route] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{source}:{number}"
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 4:
            raise RoutesFileError(f"{where}: {len(fields)} fields; expected PREFIX PORT "
                                  "SRC_MAC DST_MAC")
        prefix_text, port_text, src_text, dst_text = fields
        try:
            network = ip_network(prefix_text, strict=True)
        except ValueError as error:
            raise RoutesFileError(f"{where}: prefix {prefix_text!r}: {error}") from None
        if not port_text.isdecimal() or int(port_text) > MAX_PORT:
            raise RoutesFileError(f"{where}: port {port_text!r} is not 0 … {MAX_PORT}")
        if str(network) in seen:
            raise RoutesFileError(f"{where}: prefix {network} is listed twice")
        seen.add(str(network))
        routes.append(Route(address=network.network_address, length=network.prefixlen,
                            port=int(port_text), src_mac=_mac(src_text, where),
                            dst_mac=_mac(dst_text, where)))
    return routes


def load_routes(path: Path) -> list[Route]:
    """Read and parse a routes file."""
    try:
        text = path.read_text()
    except OSError as error:
        raise RoutesFileError(f"--routes {str(path)!r}: {error.strerror}") from None
    return parse_routes(text, source=str(path))
