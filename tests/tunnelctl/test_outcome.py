"""Pairing a createIpTunnel answer with the requests sent, and the one-line-per-failure report.

The server cases a running controller cannot easily be driven into (table full, a bit set with
no reason, more than 64 requests) are built here as response messages.
Run just this file: .venv/bin/python -m pytest tests/tunnelctl/test_outcome.py -q
"""

from __future__ import annotations

import io

from tunnelctl.client import CreateOutcome, outcome_of
from tunnelctl.output import print_outcome
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb


def _pair(requests: list[pb.ipTunnelRequest], reply: pb.createIpTunnelResponses) -> CreateOutcome:
    return outcome_of(requests, reply)


def _report(outcome: CreateOutcome) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    print_outcome(outcome, "created", [], out, err)
    return out.getvalue(), err.getvalue()


def test_table_full_fails_every_request_and_says_so_once_for_the_stream() -> None:
    requests = [pb.ipTunnelRequest(tunnelId=1), pb.ipTunnelRequest(tunnelId=2)]
    reply = pb.createIpTunnelResponses(requestStatus=pb._TUNNEL_TABLE_FULL)
    outcome = _pair(requests, reply)
    assert not outcome.ok
    out, err = _report(outcome)
    assert out == ""
    assert err.splitlines() == [
        "error: tunnels[0] tunnel 1: _TUNNEL_TABLE_FULL",
        "error: tunnels[1] tunnel 2: _TUNNEL_TABLE_FULL",
        "error: the server answered _TUNNEL_TABLE_FULL for the whole stream",
    ]


def test_unavailable_mid_stream_keeps_the_applied_requests_as_created() -> None:
    """The controller applies a stream in batches; a data-plane fault stops it after some, and
    only the requests from there on carry an error (controller/service.py _apply_plan)."""
    requests = [pb.ipTunnelRequest(tunnelId=i + 1) for i in range(3)]
    reply = pb.createIpTunnelResponses(requestStatus=pb._TUNNEL_TABLE_UNAVAILABLE,
                                       errorStatus=0b110)
    reply.responses.add(tunnelId=1)
    for tunnel_id in (2, 3):
        reply.responses.add(tunnelId=tunnel_id).error.errorString = (
            "not applied: the data plane is unavailable")
    outcome = _pair(requests, reply)
    assert [o.failed for o in outcome.outcomes] == [False, True, True]
    out, _ = _report(outcome)
    assert out == "created tunnels[0] tunnel 1\n"


def test_bitmask_marks_failures_even_without_a_reason() -> None:
    requests = [pb.ipTunnelRequest(tunnelId=1), pb.ipTunnelRequest(tunnelId=2)]
    reply = pb.createIpTunnelResponses(requestStatus=pb._TUNNEL_REJECTED, errorStatus=0b10)
    reply.responses.add(tunnelId=1)
    reply.responses.add(tunnelId=2)
    out, err = _report(_pair(requests, reply))
    assert out == "created tunnels[0] tunnel 1\n"
    assert err == "error: tunnels[1] tunnel 2: rejected (the server gave no reason)\n"


def test_failures_past_the_64_bit_mask_come_from_the_response_error() -> None:
    requests = [pb.ipTunnelRequest(tunnelId=i + 1) for i in range(70)]
    reply = pb.createIpTunnelResponses(requestStatus=pb._TUNNEL_REJECTED)
    for request in requests:
        reply.responses.add(tunnelId=request.tunnelId)
    failed = reply.responses[66]
    failed.error.errorString = "geneve.geneveEncap.vni: 16777216 does not fit 24 bits"
    failed.error.errorMessage.geneveError = pb.invalidGeneveField
    out, err = _report(_pair(requests, reply))
    assert len(out.splitlines()) == 69
    assert err == ("error: tunnels[66] tunnel 67: geneve.geneveEncap.vni: 16777216 does not fit "
                   "24 bits [invalidGeneveField]\n")


def test_server_allocated_id_is_reported() -> None:
    requests = [pb.ipTunnelRequest(tunnelId=0)]
    reply = pb.createIpTunnelResponses(requestStatus=pb._TUNNEL_ACCEPTED)
    reply.responses.add(tunnelId=501)
    outcome = _pair(requests, reply)
    assert outcome.ok
    assert _report(outcome) == ("created tunnels[0] tunnel 501\n", "")


def test_watch_rates_are_packets_per_second_since_the_last_refresh() -> None:
    from tunnelctl.commands import StatsSample, packet_rates

    before = StatsSample(taken=10.0, packets={7: (100, 50)})
    now = StatsSample(taken=12.0, packets={7: (160, 50), 8: (5, 5)})
    assert packet_rates(7, now, before) == ["30.0", "0.0"]
    assert packet_rates(8, now, before) == ["-", "-"]  # new tunnel: nothing to compare with
    assert packet_rates(7, now, None) == ["-", "-"]


def test_tables_right_align_numeric_columns_only() -> None:
    from tunnelctl.tables import render_table

    table = render_table(["ID", "KIND", "PPS"], [[7, "geneve-encap", "-"], [10000, "nat", "12.5"]])
    assert table == ("   ID  KIND           PPS\n"
                     "    7  geneve-encap     -\n"
                     "10000  nat           12.5\n")
