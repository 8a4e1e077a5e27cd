"""The chaining graph of the installed tunnels, as indented text, Graphviz DOT or Mermaid.

Two kinds of edge:

- ``chain``: rule B matches on ``tunnelId`` A, so B applies to what A emitted (explicit);
- ``re-match``: A recirculates packets whose new outer IPv4 addresses fall inside B's IP match and
  B names no previous tunnel, so B may apply to them (inferred from the rules, drawn dashed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tunnelctl import summary
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

__all__ = ["ChainGraph", "Edge", "build_graph", "render_dot", "render_mermaid", "render_text"]


@dataclass(frozen=True, kw_only=True)
class Edge:
    source: int
    target: int
    kind: str  # "chain" or "re-match"
    label: str


@dataclass(frozen=True, kw_only=True)
class Node:
    tunnel_id: int
    kind: str
    match: str
    details: str
    next_action: str


@dataclass(frozen=True, kw_only=True)
class ChainGraph:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def children(self, tunnel_id: int) -> list[Edge]:
        return [edge for edge in self.edges if edge.source == tunnel_id]

    def roots(self) -> list[Node]:
        """Tunnels no explicit chain leads into: where packets from the network start."""
        targets = {edge.target for edge in self.edges if edge.kind == "chain"}
        return [node for node in self.nodes if node.tunnel_id not in targets]


def build_graph(rules: Sequence[pb.ipTunnelRequest]) -> ChainGraph:
    """Nodes for ``rules`` (each with its ``tunnelId`` set) and the edges between them."""
    ordered = sorted(rules, key=lambda rule: rule.tunnelId)
    nodes = tuple(
        Node(tunnel_id=rule.tunnelId, kind=summary.describe_kind(rule),
             match=summary.describe_match(rule), details=summary.describe_details(rule),
             next_action=summary.next_action_name(rule))
        for rule in ordered
    )
    known = {rule.tunnelId for rule in ordered}
    edges: list[Edge] = []
    for rule in ordered:
        parent = rule.match_criteria.tunnelId
        if parent and parent in known:
            label = summary.describe_match(rule).removeprefix(f"after {parent}").strip(", ")
            edges.append(Edge(source=parent, target=rule.tunnelId, kind="chain", label=label))
    for producer in ordered:
        if producer.nextAction != pb.RECIRCULATE:
            continue
        outer = summary.emitted_ipv4(producer)
        if outer is None:
            continue
        for consumer in ordered:
            if consumer.tunnelId == producer.tunnelId or consumer.match_criteria.tunnelId:
                continue
            if summary.ipv4_match_covers(consumer, outer):
                edges.append(Edge(source=producer.tunnelId, target=consumer.tunnelId,
                                  kind="re-match",
                                  label=f"re-match {outer.source}->{outer.destination}"))
    return ChainGraph(nodes=nodes, edges=tuple(edges))


def render_text(graph: ChainGraph) -> str:
    """An indented tree from every root; a tunnel reached twice is printed once, then referenced."""
    by_id = {node.tunnel_id: node for node in graph.nodes}
    lines: list[str] = []
    printed: set[int] = set()

    def visit(node: Node, prefix: str, connector: str, edge: Edge | None) -> None:
        via = ""
        if edge is not None:
            via = f"[{edge.label}] " if edge.label else ""
            if edge.kind == "re-match":
                via = f"({edge.label}) "
        if node.tunnel_id in printed:
            lines.append(f"{prefix}{connector}{via}{node.tunnel_id} (see above)")
            return
        printed.add(node.tunnel_id)
        lines.append(f"{prefix}{connector}{via}{_node_line(node)}")
        children = graph.children(node.tunnel_id)
        child_prefix = prefix + ("    " if connector in ("", "└── ") else "│   ")
        if connector == "":
            child_prefix = prefix
        for position, child in enumerate(children):
            last = position == len(children) - 1
            visit(by_id[child.target], child_prefix, "└── " if last else "├── ", child)

    for root in graph.roots():
        if root.tunnel_id not in printed:
            visit(root, "", "", None)
    for node in graph.nodes:  # nodes only reachable through a cycle
        if node.tunnel_id not in printed:
            visit(node, "", "", None)
    return "\n".join(lines) + ("\n" if lines else "(no tunnels)\n")


def render_dot(graph: ChainGraph) -> str:
    """Graphviz DOT: boxes for tunnels, solid chain edges, dashed re-match edges."""
    lines = ["digraph tunnels {", "  rankdir=LR;", '  node [shape=box, fontname="monospace"];']
    for node in graph.nodes:
        label = "\\n".join(_dot_escape(part) for part in _node_parts(node))
        lines.append(f'  t{node.tunnel_id} [label="{label}"];')
    for edge in graph.edges:
        attributes = [f'label="{_dot_escape(edge.label)}"'] if edge.label else []
        if edge.kind == "re-match":
            attributes.append("style=dashed")
        suffix = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f"  t{edge.source} -> t{edge.target}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_mermaid(graph: ChainGraph) -> str:
    """A Mermaid flowchart: the same nodes and edges, dotted arrows for re-match."""
    lines = ["flowchart LR"]
    for node in graph.nodes:
        label = "<br/>".join(_mermaid_escape(part) for part in _node_parts(node))
        lines.append(f'  t{node.tunnel_id}["{label}"]')
    for edge in graph.edges:
        arrow = "-.->" if edge.kind == "re-match" else "-->"
        label = f"|{_mermaid_escape(edge.label)}|" if edge.label else ""
        lines.append(f"  t{edge.source} {arrow}{label} t{edge.target}")
    return "\n".join(lines) + "\n"


def _node_parts(node: Node) -> list[str]:
    parts = [f"{node.tunnel_id} {node.kind}", f"match: {node.match}"]
    if node.details:
        parts.append(node.details)
    parts.append(f"then {node.next_action}")
    return parts


def _node_line(node: Node) -> str:
    details = f" {node.details}" if node.details else ""
    return f"{node.tunnel_id} {node.kind}{details} (match {node.match}) -> {node.next_action}"


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _mermaid_escape(text: str) -> str:
    return text.replace('"', "#quot;").replace("|", "#124;").replace("->", "→")
