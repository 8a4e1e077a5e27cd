"""Header stacks in controls, typedefs, serializable enums, int<W>, constant division, struct
copies and byte counters (programs/stacks_and_types.p4).

Frame: op, arg, then up to three non-zero item bytes ended by a zero byte (the terminator stays
in the payload). Output: op, arg, seven fact bytes, the valid items, the payload.
Run just this file: .venv/bin/python -m pytest tests/p4sim/test_stacks_and_types.py -q
"""

from __future__ import annotations

from p4sim_core_helpers import P4InfoNames, program

from p4sim.switch import Switch


def _facts(arg: int, op: int, last_index: int, copied: int = 0) -> bytes:
    signed = arg - 256 if arg & 0x80 else arg
    return bytes([3, last_index, (signed >> 2) & 0xFF, arg // 8, arg % 8, op, copied])


def _run(frame: bytes) -> tuple[Switch, list[tuple[int, bytes]]]:
    sw = Switch(program("stacks_and_types.p4"))
    return sw, sw.process(0, frame)


def test_push_front_shifts_items_and_keeps_order() -> None:
    _, out = _run(bytes([1, 0x90, 5, 6, 0, 0xEE]))
    # before: [5, 6, -], nextIndex 2; push_front(1): [0x90, 5, 6], nextIndex 3
    assert out == [(1, bytes([1, 0x90]) + _facts(0x90, 1, 2) + bytes([0x90, 5, 6, 0, 0xEE]))]


def test_push_front_on_a_full_stack_drops_the_last_item() -> None:
    _, out = _run(bytes([1, 9, 5, 6, 7, 0]))
    assert out == [(1, bytes([1, 9]) + _facts(9, 1, 2) + bytes([9, 5, 6, 0]))]


def test_pop_front_removes_the_first_item() -> None:
    _, out = _run(bytes([2, 25, 5, 6, 7, 0]))
    assert out == [(1, bytes([2, 25]) + _facts(25, 2, 1) + bytes([6, 7, 0]))]


def test_pop_front_of_an_empty_stack() -> None:
    _, out = _run(bytes([2, 0xFF, 0]))
    assert out == [(1, bytes([2, 0xFF]) + _facts(0xFF, 2, 0xFF) + bytes([0]))]


def test_struct_copy_and_byte_counter() -> None:
    sw, out = _run(bytes([3, 40, 1, 0]))
    assert out == [(1, bytes([3, 40]) + _facts(40, 3, 0, copied=47) + bytes([1, 0]))]
    counter = sw.state.counters[P4InfoNames(program("stacks_and_types.p4")).counter("op_bytes")]
    assert counter.read(3) == (1, 4)


def test_lookahead_past_the_end_is_packet_too_short_not_a_crash() -> None:
    _, out = _run(bytes([3, 1, 5]))  # no terminator: lookahead fails after item 5
    assert out[0][1][:2] == bytes([3, 1])
    assert out[0][1][-1] == 5
