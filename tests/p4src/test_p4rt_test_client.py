"""The tests' P4Runtime client (ptf_tests/p4rt_test_client.py) against p4sim's server: the calls
the suites rely on do what they say, including those only some suites use (direct counters:
test_geneve.py's test_rule_hits_count_per_entry).

Run just these: .venv/bin/python -m pytest tests/p4src/test_p4rt_test_client.py -q
"""

from __future__ import annotations

import finsy as fy
import pytest
from tunnel_dataplane import C, TunnelDataplane, program
from tunnel_scenarios import NEXT_HOP_MAC, ROUTER_MAC, plain_udp, routed

from ptf_tests.p4rt_test_client import P4RuntimeTestClient


def route(prefix: str, port: int) -> fy.P4TableEntry:
    return fy.P4TableEntry("routes_v4", match=fy.P4TableMatch(ipv4_dst=prefix),
                           action=fy.P4TableAction("set_next_hop", port=port, src_mac=ROUTER_MAC,
                                                   dst_mac=NEXT_HOP_MAC))


def test_modify_changes_the_action_of_the_installed_entry(dp: TunnelDataplane) -> None:
    dp.p4rt.insert([route("10.0.0.0/8", 2)])
    dp.p4rt.modify([route("10.0.0.0/8", 3)])
    sent = plain_udp()
    assert dp.send(0, sent) == [(3, bytes(routed(sent)))]
    (entry,) = dp.p4rt.read([fy.P4TableEntry("routes_v4")])
    assert entry.action.args["port"] == 3


def test_delete_and_delete_all_empty_the_table(dp: TunnelDataplane) -> None:
    dp.p4rt.insert([route("10.0.0.0/8", 2), route("172.16.0.0/12", 2), route("10.1.0.0/16", 4)])
    dp.p4rt.delete([route("10.1.0.0/16", 4)])
    assert len(dp.p4rt.read([fy.P4TableEntry("routes_v4")])) == 2
    dp.p4rt.delete_all("routes_v4")
    assert dp.p4rt.read([fy.P4TableEntry("routes_v4")]) == []
    assert dp.send(0, plain_udp()) == []
    assert dp.counter("drop_reasons", C("DROP_ROUTE_MISS"))[0] == 1


def test_counters_reads_many_cells_in_the_order_asked(dp: TunnelDataplane) -> None:
    for _ in range(2):
        assert dp.send(0, plain_udp()) == []   # no route
    miss = C("DROP_ROUTE_MISS")
    cells = dp.p4rt.counters("drop_reasons", [miss, 0, miss])
    assert [packets for packets, _ in cells] == [2, 0, 2]
    assert dp.p4rt.counters("drop_reasons", [0, miss]) == [cells[1], cells[0]]


def test_set_pipeline_empties_tables_and_zeroes_counters(dp: TunnelDataplane) -> None:
    dp.add_route("10.0.0.0/8", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)
    assert dp.send(0, plain_udp("192.0.2.1")) == []
    dp.p4rt.set_pipeline()
    assert dp.p4rt.read([fy.P4TableEntry("routes_v4")]) == []
    assert dp.counter("drop_reasons", C("DROP_ROUTE_MISS")) == (0, 0)


def test_a_wrong_name_is_refused_with_the_close_one(dp: TunnelDataplane) -> None:
    with pytest.raises(ValueError, match="Did you mean 'routes_v4'"):
        dp.add_entry("route_v4", "set_next_hop", match={"ipv4_dst": "10.0.0.0/8"},
                     params={"port": 2, "src_mac": ROUTER_MAC, "dst_mac": NEXT_HOP_MAC})


def test_a_client_that_cannot_be_primary_says_so(dp: TunnelDataplane) -> None:
    """The pooled client is primary with the default election id; one bidding lower is not."""
    with pytest.raises(RuntimeError, match="not primary"):
        P4RuntimeTestClient(dp.address, p4info=program().p4info, election_id=5)
    dp.add_route("10.0.0.0/8", port=2, src_mac=ROUTER_MAC, dst_mac=NEXT_HOP_MAC)  # still primary
