"""The chaining graph: explicit chains, inferred re-match edges, and the three renderings.

Run just this file: .venv/bin/python -m pytest tests/tunnelctl/test_graph.py -q
"""

from __future__ import annotations

from pathlib import Path

from tunnelctl import graph
from tunnelctl.document import load_documents, parse_requests
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _graph(name: str) -> graph.ChainGraph:
    rules = parse_requests(load_documents(str(EXAMPLES / name)), operation=pb._CREATE)
    return graph.build_graph(rules)


def _edges(chain: graph.ChainGraph) -> set[tuple[int, int, str]]:
    return {(edge.source, edge.target, edge.kind) for edge in chain.edges}


def test_four_tunnel_chain_is_a_path() -> None:
    chain = _graph("2-four-tunnel-chain.yaml")
    assert _edges(chain) == {(20000, 20001, "chain"), (20001, 20002, "chain"),
                             (20002, 20003, "chain")}
    assert [node.tunnel_id for node in chain.roots()] == [20000]


def test_rematch_edge_is_inferred_from_the_new_outer_ips() -> None:
    chain = _graph("3-rematch-chain.yaml")
    assert _edges(chain) == {(30000, 30001, "re-match")}
    dot = graph.render_dot(chain)
    assert 't30000 -> t30001 [label="re-match 14.0.0.2->14.0.0.1", style=dashed];' in dot
    mermaid = graph.render_mermaid(chain)
    assert "  t30000 -.->|re-match 14.0.0.2→14.0.0.1| t30001" in mermaid


def test_forward_rules_produce_no_rematch_edge() -> None:
    # 40001 emits 9.9.9.9 -> 10.10.10.10 but FORWARDs; no rule should be linked after it.
    chain = _graph("4-fan-out.yaml")
    assert _edges(chain) == {(40000, 40001, "chain"), (40000, 40002, "chain")}


def test_text_tree_of_the_fan_out() -> None:
    text = graph.render_text(_graph("4-fan-out.yaml")).splitlines()
    assert text[0].startswith("40000 ipsec-decrypt TUNNEL_NAT_TRAVERSAL _aes256gcm64 spi 80000")
    assert text[1].startswith("├── [15.0.0.2/32->15.0.0.1/32] 40001 geneve-encap vni 701")
    assert text[2].startswith("└── [16.0.0.2/32->16.0.0.1/32] 40002 geneve-encap vni 702")
    assert len(text) == 3


def test_dot_and_mermaid_list_every_node() -> None:
    chain = _graph("1-ipsec-geneve.yaml")
    dot = graph.render_dot(chain)
    mermaid = graph.render_mermaid(chain)
    for tunnel_id in (10000, 10001, 10002, 10003):
        assert f"  t{tunnel_id} [label=\"{tunnel_id} " in dot
        assert f'  t{tunnel_id}["{tunnel_id} ' in mermaid
    assert dot.startswith("digraph tunnels {") and dot.rstrip().endswith("}")
    assert mermaid.startswith("flowchart LR\n")
    assert "  t10000 --> t10001" in mermaid and "  t10002 --> t10003" in mermaid


def test_labels_are_escaped() -> None:
    rule = pb.ipTunnelRequest(tunnelId=1, nextAction=pb.FORWARD)
    rule.match_criteria.ingressInterface = 'a"b|c'
    rule.geneve.geneveDecap.SetInParent()
    assert 'in a\\"b|c' in graph.render_dot(graph.build_graph([rule]))
    assert "in a#quot;b#124;c" in graph.render_mermaid(graph.build_graph([rule]))


def test_empty_graph_text() -> None:
    assert graph.render_text(graph.build_graph([])) == "(no tunnels)\n"
