"""controller/read_messages.stats_responses: a getAllIpTunnelsStats page built from bytes is the
message protobuf builds field by field (zero tunnels exactly as the baseline server encodes
them), for consecutive and scattered ids of every varint width.

Run just this file: .venv/bin/python -m pytest tests/controller/test_stats_pages.py -q
"""

from __future__ import annotations

import pytest

from controller import read_messages
from controller.dataplane import SparseCounters, TunnelCounters
from controller.read_messages import counters_to_proto, stats_responses
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb


def _field_by_field(ids: list[int], nonzero: dict[int, TunnelCounters]
                    ) -> pb.ipTunnelStatsResponses:
    message = pb.ipTunnelStatsResponses()
    for tunnel_id in ids:
        item = message.responses.add(tunnelId=tunnel_id, tunnelCounters=pb.counters())
        if tunnel_id in nonzero:
            counters_to_proto(nonzero[tunnel_id], item.tunnelCounters)
    return message


PAGES = [list(range(1, 101)), list(range(90, 290)), list(range(16_300, 16_500)),
         list(range(2**21 - 50, 2**21 + 50)), [5, 9, 1000, 2**40, 2**64 - 1], [0, 1, 2], [7],
         []]


@pytest.mark.parametrize("ids", PAGES, ids=lambda ids: f"{len(ids)}@{ids[:1]}")
@pytest.mark.parametrize("counted", ["none", "one", "every third"])
def test_a_page_is_the_same_bytes_as_built_field_by_field(ids: list[int], counted: str) -> None:
    nonzero = {"none": {}, "one": {ids[len(ids) // 2]: TunnelCounters(in_packets=3)} if ids
               else {}, "every third": {tunnel_id: TunnelCounters(out_bytes=tunnel_id + 1)
                                        for tunnel_id in ids[::3]}}[counted]
    page = stats_responses(ids, SparseCounters(ids, nonzero))
    expected = _field_by_field(ids, nonzero)
    assert page == expected
    assert page.SerializeToString() == expected.SerializeToString()
    # any Mapping works too (the detached data plane's, a test's dict)
    plain = {tunnel_id: nonzero.get(tunnel_id, TunnelCounters()) for tunnel_id in ids}
    assert stats_responses(ids, plain) == expected


def test_a_zero_tunnel_is_encoded_as_the_baseline_server_does() -> None:
    """bench/control/baseline_server.py answers ipTunnelStatsResponse(tunnelId=i,
    tunnelCounters=counters()): the same bytes, so the wire cost is the same."""
    ids = list(range(1, 301))
    baseline = pb.ipTunnelStatsResponses(responses=[
        pb.ipTunnelStatsResponse(tunnelId=i, tunnelCounters=pb.counters()) for i in ids])
    assert stats_responses(ids, SparseCounters(ids, {})).SerializeToString() == (
        baseline.SerializeToString())


def test_consecutive_ids_keep_nothing_per_id() -> None:
    read_messages._zero_elements.clear()
    ids = list(range(1, 20_001))
    for first in range(0, len(ids), 100):
        stats_responses(ids[first:first + 100], SparseCounters(ids[first:first + 100], {}))
    assert len(read_messages._zero_elements) <= 2 * 200 + 3  # one sample per run, not per id


def test_the_per_id_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(read_messages, "ZERO_ELEMENTS_KEPT", 64)
    read_messages._zero_elements.clear()
    scattered = list(range(1, 2000, 2))
    stats_responses(scattered, SparseCounters(scattered, {}))
    assert len(read_messages._zero_elements) <= 64
