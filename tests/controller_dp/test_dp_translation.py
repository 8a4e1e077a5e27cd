"""Each API call becomes P4Runtime writes: read the switch back after every call."""

from __future__ import annotations

from ctl_builders import delete, geneve_encap, ipsec_dec, ipsec_enc, match_ipv4
from ctl_client import create

from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb


async def test_create_programs_rules_and_sas(controller, v1, reader) -> None:
    routes = reader.entries("routes_v4")
    assert len(routes) == 2
    answer = await create(v1, geneve_encap(10), ipsec_dec(11, spi=780))
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    rules = reader.entries("tunnel_rules")
    print(rules)
    assert len(rules) == 2
    sas = reader.entries("decrypt_sas")
    print(sas)
    assert len(sas) == 1
    answer = await create(v1, delete(10), delete(11))
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    assert reader.entries("tunnel_rules") == []
