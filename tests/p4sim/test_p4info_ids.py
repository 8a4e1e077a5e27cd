"""P4Runtime ids as p4c allocates them, checked against the ids of a p4c-generated P4Info (the
`PreQosPipe` program's, quoted in a public Go test, package pfcpiface) and NoAction's.

Run just this file: .venv/bin/python -m pytest tests/p4sim/test_p4info_ids.py -q
"""

from __future__ import annotations

import pytest
from p4sim_core_helpers import program

from p4sim.ids import IdAllocator, jenkins_one_at_a_time
from p4sim.model import ActionModel, ControllerHeaderModel, CounterModel, ProgramModel


@pytest.mark.parametrize(
    ("prefix", "name", "p4c_id"),
    [
        (0x01, "NoAction", 21257015),
        (0x01, "PreQosPipe.Acl.set_port", 30494847),
        (0x02, "PreQosPipe.Routing.routes_v4", 39015874),
        (0x12, "PreQosPipe.pre_qos_counter", 315693181),
        (0x13, "acls", 325583051),
        (0x17, "ddn_digest_t", 396224266),
        (0x04, "packet_out_t", 75327753),
        (0x04, "packet_in_t", 80671331),
    ],
)
def test_hash_matches_p4c(prefix: int, name: str, p4c_id: int) -> None:
    assert (prefix << 24) | (jenkins_one_at_a_time(name.encode()) & 0xFFFFFF) == p4c_id


def test_controller_headers_hash_their_type_name() -> None:
    model = ProgramModel(controller_headers=[
        ControllerHeaderModel(name="packet_in", header_type="packet_in_t", fields=())])
    IdAllocator(model).assign()
    assert model.controller_headers[0].id == 80671331


def test_explicit_ids_win_and_collisions_probe() -> None:
    model = ProgramModel(
        actions={"a": ActionModel(name="a", params=(), explicit_id=7),
                 "b": ActionModel(name="b", params=())},
        counters=[CounterModel(name="c", size=1, unit="BOTH", explicit_id=0x12000042)])
    taken = (0x01 << 24) | (jenkins_one_at_a_time(b"b") & 0xFFFFFF)
    model.actions["a"].explicit_id = taken  # force a collision with b's hash
    IdAllocator(model).assign()
    assert model.actions["a"].id == taken
    assert model.actions["b"].id == taken + 1
    assert model.counters[0].id == 0x12000042


def test_program_ids_carry_the_type_prefix() -> None:
    info = program("externs.p4").p4info
    assert {h.preamble.id >> 24 for h in info.controller_packet_metadata} == {0x04}
    assert {r.preamble.id >> 24 for r in info.registers} == {0x16}
