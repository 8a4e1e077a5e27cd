"""Running p4c's STF packet tests (`*.stf`) against a program in p4sim, in process.

STF is the test format of p4c's BMv2 back end (`backends/bmv2/bmv2stf.py`): one command a line,
`#` starts a comment, keywords in any case.

- `packet PORT HEX...` sends a frame in on PORT (no HEX: an empty frame); `expect PORT HEX...`
  expects one out of PORT: hex digits, `*` matching any one digit, spaces ignored. The frame
  received may be longer than the expectation unless it ends in `$`. `expect PORT` alone allows
  any number of frames there.
- Expectations are checked after the whole file ran, per port in order: as many frames as
  expected on every port the file names, each matching its expectation. Like p4c's runner, which
  only opens an interface for a port named by a `packet` or `expect` line, frames sent to a port
  the file never names are not observed (they are listed as such in the report).
- `add TABLE [PRIORITY] FIELD:VALUE... ACTION(PARAM:VALUE, ...) [= HANDLE]` inserts an entry;
  `setdefault TABLE ACTION(...)` sets the default action. Tables, actions, match fields and
  parameters are found by their P4Info name, alias or a `.`-suffix of it, as the runner resolves
  BMv2 JSON names; `a$0.f` means `a[0].f`. Ternary values are `V&&&M` or hex/binary/octal digits
  with `*` for don't-care digits (every other digit masked in, the runner's `makeMask`); lpm
  values are `V/LEN` or digits with trailing `*`s (`makeLpm`); range values `LO->HI`. The STF
  priority is the runner's: the larger number wins, as in P4Runtime. Exact fields left out are
  0 (the runner's default key), other fields left out are wildcards.
- `mirroring_add SESSION PORT`, `mc_mgrp_create GROUP`, `mc_node_create RID PORT...`,
  `mc_node_associate GROUP HANDLE` are BMv2 CLI commands the runner passes through;
  `check_counter NAME(INDEX) [packets|bytes OP N]` checks an indexed counter; `wait` and
  `remove all` as in the runner. Any other command is an error (exit 2), never ignored.

`run_stf` returns an `StfResult`; `p4sim stf` prints its report and exits 0 (every expectation
met), 1 (wrong output) or 2 (the STF cannot be run: unknown table, bad syntax, ...).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from finsy.proto import p4i

from p4sim.program import Program
from p4sim.runtime import ActionCall, FieldMatch, Replica, TableEntry, TableState
from p4sim.switch import Switch

_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}


class StfError(Exception):
    """The STF file cannot be run against this program; str() is ``file:line: message``."""


@dataclass(frozen=True)
class Expectation:
    """One `expect` line: hex digits (upper case, `*` wildcards), exact length or prefix."""

    line: int
    digits: str
    exact_length: bool

    def mismatch(self, frame: bytes) -> str | None:
        """Why `frame` does not meet this expectation, or None when it does."""
        got = frame.hex().upper()
        if len(got) < len(self.digits):
            return f"frame too short: {len(got) // 2} bytes, expected {len(self.digits) / 2:g}"
        if self.exact_length and len(got) > len(self.digits):
            return f"frame too long: {len(got) // 2} bytes, expected {len(self.digits) / 2:g} ($)"
        for i, want in enumerate(self.digits):
            if want != "*" and want != got[i]:
                return f"differs at byte {i // 2} (hex digit {i}): expected {want}, got {got[i]}"
        return None


@dataclass
class StfResult:
    """What a run found. `ok` when every expectation is met and no check failed."""

    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    packets: int = 0
    expectations: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures

    def report(self) -> str:
        lines = [*self.failures, *self.notes]
        verdict = "PASS" if self.ok else "FAIL"
        lines.append(f"{verdict}: {self.packets} packets, {self.expectations} expectations, "
                     f"{len(self.failures)} failures")
        return "\n".join(lines)


def run_stf(program: Program, stf: Path) -> StfResult:
    """Run the STF file `stf` against a fresh Switch of `program`. Raises StfError."""
    return _Runner(program, stf).run(stf.read_text())


class _Runner:
    def __init__(self, program: Program, path: Path) -> None:
        self.program = program
        self.path = path
        self.switch = Switch(program)
        self.p4info = program.p4info
        self.result = StfResult()
        self.line = 0
        self.ports: set[int] = set()
        self.expected: dict[int, list[Expectation]] = {}
        self.any_count: set[int] = set()
        self.received: dict[int, list[tuple[int, bytes]]] = {}  # port -> (packet line, frame)
        self.mc_nodes: list[tuple[int, tuple[int, ...]]] = []  # handle -> (rid, ports)
        self.handles: dict[str, TableEntry] = {}

    def fail(self, message: str) -> StfError:
        return StfError(f"{self.path}:{self.line}: {message}")

    def run(self, text: str) -> StfResult:
        for self.line, raw in enumerate(text.splitlines(), start=1):
            command = raw.split("#", 1)[0].strip()
            if command:
                self.command(command)
        self.check_outputs()
        return self.result

    # -- commands ------------------------------------------------------------------------------

    def command(self, command: str) -> None:
        word, _, rest = command.partition(" ")
        word = word.lower()
        rest = rest.strip()
        handler = {
            "packet": self.packet, "expect": self.expect, "add": self.add,
            "setdefault": self.setdefault, "wait": lambda _: None, "remove": self.remove,
            "mirroring_add": self.mirroring_add, "mc_mgrp_create": self.mc_mgrp_create,
            "mc_node_create": self.mc_node_create, "mc_node_associate": self.mc_node_associate,
            "check_counter": self.check_counter,
        }.get(word)
        if handler is None:
            raise self.fail(f"unknown STF command {word!r}")
        handler(rest)

    def packet(self, rest: str) -> None:
        port, data = _port_and_data(rest, self.fail)  # no data: an empty frame, as p4c's runner
        try:
            # an odd last digit is a byte of its own (the runner's HexToByte reads "0" as 00)
            frame = bytes.fromhex(data[: len(data) & ~1]) + (
                bytes([int(data[-1], 16)]) if len(data) % 2 else b"")
        except ValueError:
            raise self.fail(f"packet data is not hex digits: {data!r}") from None
        self.ports.add(port)
        self.result.packets += 1
        before = self.switch.stats.dropped["runtime_error"]
        out = self.switch.process(port, frame)
        if self.switch.stats.dropped["runtime_error"] != before:
            self.result.failures.append(
                f"line {self.line}: p4sim dropped the packet on a run-time error")
        for egress, data_out in out:
            self.received.setdefault(egress, []).append((self.line, data_out))

    def expect(self, rest: str) -> None:
        port, data = _port_and_data(rest, self.fail)
        self.ports.add(port)
        if not data:
            self.any_count.add(port)
            return
        exact = data.endswith("$")
        digits = data.rstrip("$").upper()
        if not re.fullmatch(r"[0-9A-F*]*", digits):
            raise self.fail(f"expect data is not hex digits and '*': {data!r}")
        self.expected.setdefault(port, []).append(Expectation(self.line, digits, exact))
        self.result.expectations += 1

    def add(self, rest: str) -> None:
        rest, _, handle = rest.partition("=")
        table_name, _, rest = rest.strip().partition(" ")
        info, state = self.table(table_name)
        words = rest.split()
        priority = None
        if words and re.fullmatch(r"[0-9]+", words[0]):
            priority = int(words.pop(0))
        text = " ".join(words)
        paren = text.find("(")
        if paren < 0:
            raise self.fail(f"add {table_name}: no action call")
        key_words = text[:paren].split()
        action_text = key_words.pop() + text[paren:] if key_words else text
        matches = self.matches(info, key_words)
        needs_priority = any(mf.match_type not in (mf.EXACT, mf.LPM) for mf in info.match_fields)
        entry = TableEntry(
            table_id=state.table_id, matches=matches,
            priority=(priority or 0) + 1 if needs_priority else 0,
            action=self.action_call(info, action_text))
        try:
            state.insert(entry)
        except Exception as error:  # noqa: BLE001 - an EntryError, reported with the line
            raise self.fail(f"add {table_name}: {error}") from None
        if handle.strip():
            self.handles[handle.strip()] = entry

    def setdefault(self, rest: str) -> None:
        table_name, _, action_text = rest.partition(" ")
        info, state = self.table(table_name)
        try:
            state.set_default(self.action_call(info, action_text.strip()))
        except Exception as error:  # noqa: BLE001 - an EntryError, reported with the line
            raise self.fail(f"setdefault {table_name}: {error}") from None

    def remove(self, rest: str) -> None:
        if rest.lower() != "all":
            raise self.fail("only 'remove all' is supported")
        for state in self.switch.state.tables.values():
            for entry in list(state.entries()):
                state.delete(entry.key)

    def mirroring_add(self, rest: str) -> None:
        from p4sim.runtime import CloneSession

        session, port = _ints(rest, 2, self.fail)
        self.switch.state.clone_sessions[session] = CloneSession(
            session_id=session, replicas=(Replica(egress_port=port),))

    def mc_mgrp_create(self, rest: str) -> None:
        (group,) = _ints(rest, 1, self.fail)
        self.switch.state.multicast_groups.setdefault(group, ())

    def mc_node_create(self, rest: str) -> None:
        rid, *ports = _ints(rest, None, self.fail)
        self.mc_nodes.append((rid, tuple(ports)))

    def mc_node_associate(self, rest: str) -> None:
        group, handle = _ints(rest, 2, self.fail)
        if handle >= len(self.mc_nodes):
            raise self.fail(f"no multicast node handle {handle}")
        rid, ports = self.mc_nodes[handle]
        groups = self.switch.state.multicast_groups
        groups[group] = (*groups.get(group, ()),
                         *(Replica(egress_port=p, instance=rid) for p in ports))

    def check_counter(self, rest: str) -> None:
        m = re.fullmatch(r"([\w.$\[\]]+)\s*\(\s*(\w+)\s*\)\s*(?:(packets|bytes)\s*(\S+)\s*(\S+))?",
                         rest, re.IGNORECASE)
        if m is None:
            raise self.fail(f"check_counter: cannot parse {rest!r}")
        name, index, unit, op, number = m.groups()
        counter_id = _find(self.p4info.counters, name, "counter", self.fail)
        try:
            packets, nbytes = self.switch.state.counters[counter_id].read(int(index, 0))
        except Exception as error:  # noqa: BLE001 - a bad index, reported with the line
            raise self.fail(f"check_counter {name}({index}): {error}") from None
        value, want = (nbytes if (unit or "").lower() == "bytes" else packets), 0
        compare = _COMPARE.get(op or "==")
        if compare is None:
            raise self.fail(f"check_counter: unknown comparison {op!r}")
        if number is not None:
            want = int(number, 0)
        if not compare(value, want):
            self.result.failures.append(
                f"line {self.line}: counter {name}({index}) {unit or 'packets'} is {value}, "
                f"expected {op or '=='} {want}")

    # -- names ---------------------------------------------------------------------------------

    def table(self, name: str) -> tuple[p4i.Table, TableState]:
        table_id = _find(self.p4info.tables, name, "table", self.fail)
        info = next(t for t in self.p4info.tables if t.preamble.id == table_id)
        return info, self.switch.state.tables[table_id]

    def action_call(self, table_info: p4i.Table, text: str) -> ActionCall:
        m = re.fullmatch(r"([\w.$\[\]]+)\s*\((.*)\)", text.strip())
        if m is None:
            raise self.fail(f"cannot parse action call {text!r}")
        name, args_text = m.groups()
        ids = {ref.id for ref in table_info.action_refs}
        actions = [a for a in self.p4info.actions if a.preamble.id in ids]
        action_id = _find(actions, name, f"action of table {table_info.preamble.name}",
                          self.fail)
        action = next(a for a in actions if a.preamble.id == action_id)
        given: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in args_text.split(","))):
            pname, sep, value = part.partition(":")
            if not sep:
                raise self.fail(f"action argument {part!r} is not NAME:VALUE")
            given[pname.strip()] = self.number(value.strip())
        args = []
        for param in action.params:
            if param.name not in given:
                raise self.fail(f"action {action.preamble.name}: no value for {param.name!r}")
            args.append(given.pop(param.name) & ((1 << param.bitwidth) - 1))
        if given:
            raise self.fail(f"action {action.preamble.name} has no parameter "
                            f"{', '.join(map(repr, given))}")
        return ActionCall(action_id=action_id, args=tuple(args))

    def matches(self, table_info: p4i.Table, words: Iterable[str]) -> tuple[FieldMatch, ...]:
        fields = list(table_info.match_fields)
        given: dict[int, FieldMatch | None] = {}
        for word in words:
            key, sep, value = word.rpartition(":")
            if not sep:
                raise self.fail(f"key {word!r} is not FIELD:VALUE")
            mf = self.match_field(fields, key)
            given[mf.id] = self.field_match(mf, value)
        for mf in fields:
            if mf.id not in given and mf.match_type == mf.EXACT:
                given[mf.id] = FieldMatch(field_id=mf.id, kind="exact", value=0)
        return tuple(m for m in given.values() if m is not None)

    def match_field(self, fields: list[p4i.MatchField], key: str) -> p4i.MatchField:
        key = re.sub(r"\$([0-9]+)", r"[\1]", key)
        for mf in fields:
            if mf.name == key:
                return mf
        found = [mf for mf in fields if mf.name.endswith("." + key)]
        if len(found) == 1:
            return found[0]
        names = ", ".join(mf.name for mf in fields)
        raise self.fail(f"key field {key!r} {'is ambiguous' if found else 'not found'} "
                        f"(fields: {names})")

    def field_match(self, mf: p4i.MatchField, value: str) -> FieldMatch | None:
        width = mf.bitwidth
        full = (1 << width) - 1
        kind = mf.match_type
        if kind == mf.TERNARY:
            if "&&&" in value:
                v, m = (self.number(x) for x in value.split("&&&", 1))
            else:
                v, digit_mask = _digits_and_mask(value, self.fail)
                m = full if digit_mask is None else digit_mask
            m &= full
            return FieldMatch(field_id=mf.id, kind="ternary", value=v & m, mask=m) if m else None
        if kind == mf.LPM:
            if "/" in value:
                v_text, plen_text = value.split("/", 1)
                v, plen = self.number(v_text), int(plen_text, 0)
            else:
                v, plen = _lpm(value, self.fail)
            if plen > width:
                raise self.fail(f"prefix length {plen} exceeds {mf.name}'s {width} bits")
            if plen == 0:
                return None
            mask = full ^ ((1 << (width - plen)) - 1)
            return FieldMatch(field_id=mf.id, kind="lpm", value=v & mask, prefix_len=plen)
        if kind == mf.RANGE:
            lo_text, sep, hi_text = value.partition("->")
            lo = self.number(lo_text)
            hi = self.number(hi_text) if sep else lo
            return FieldMatch(field_id=mf.id, kind="range", value=lo, high=hi)
        v = self.number(value)
        if v > full:
            raise self.fail(f"value {value} does not fit {mf.name}'s {width} bits")
        if kind == mf.EXACT:
            return FieldMatch(field_id=mf.id, kind="exact", value=v)
        return FieldMatch(field_id=mf.id, kind="optional", value=v)

    def number(self, text: str) -> int:
        try:
            return int(text, 0) if not re.fullmatch(r"0[0-9]+", text) else int(text, 10)
        except ValueError:
            raise self.fail(f"not a number: {text!r}") from None

    # -- comparison ----------------------------------------------------------------------------

    def check_outputs(self) -> None:
        for port in sorted(set(self.received) - self.ports):
            self.result.notes.append(
                f"note: {len(self.received[port])} frames out of port {port}, which the STF "
                f"never names, not observed (as p4c's runner)")
        for port in sorted(self.ports):
            got = self.received.get(port, [])
            if port in self.any_count:
                if port in self.expected:
                    raise StfError(f"{self.path}: port {port} has both 'expect {port}' without "
                                   f"data and expectations with data")
                continue
            want = self.expected.get(port, [])
            if len(got) != len(want):
                self.result.failures.append(
                    f"port {port}: expected {len(want)} frames, got {len(got)}"
                    + "".join(f"\n  got (from packet at line {ln}): {f.hex().upper()}"
                              for ln, f in got)
                    + "".join(f"\n  expected (line {e.line}): {e.digits}" for e in want))
                continue
            for i, (exp, (ln, frame)) in enumerate(zip(want, got, strict=True)):
                why = exp.mismatch(frame)
                if why is not None:
                    self.result.failures.append(
                        f"port {port}, frame {i} (expect at line {exp.line}, packet at line "
                        f"{ln}): {why}\n  expected: {exp.digits}{'$' if exp.exact_length else ''}"
                        f"\n  got:      {frame.hex().upper()}")


def _port_and_data(rest: str, fail: Callable[[str], StfError]) -> tuple[int, str]:
    port_text, _, data = rest.partition(" ")
    if not port_text.isdigit():
        raise fail(f"port {port_text!r} is not a decimal number")
    return int(port_text), "".join(data.split())


def _ints(rest: str, count: int | None, fail: Callable[[str], StfError]) -> list[int]:
    try:
        values = [int(w, 0) for w in rest.split()]
    except ValueError:
        raise fail(f"expected numbers, got {rest!r}") from None
    if count is not None and len(values) != count or not values:
        raise fail(f"expected {count or 'some'} numbers, got {rest!r}")
    return values


_BASES = {"0x": (16, 4), "0b": (2, 1), "0o": (8, 3)}


def _digits_and_mask(text: str, fail: Callable[[str], StfError]) -> tuple[int, int | None]:
    """`0x12**` -> (0x1200, 0xFF00): the runner's makeMask (every digit given is masked in).
    A decimal value has no digit structure: it matches exactly (mask None)."""
    base = _BASES.get(text[:2].lower())
    if base is None:
        if "*" in text:
            raise fail(f"'*' in a decimal ternary value {text!r}")
        return int(text, 10), None
    radix, bits = base
    digits = text[2:]
    try:
        value = int(digits.replace("*", "0"), radix)
    except ValueError:
        raise fail(f"bad ternary value {text!r}") from None
    mask = 0
    for i, digit in enumerate(reversed(digits)):
        if digit != "*":
            mask |= ((1 << bits) - 1) << (i * bits)
    return value, mask


def _lpm(text: str, fail: Callable[[str], StfError]) -> tuple[int, int]:
    """`0x0A**` -> (0x0A00, 8): the runner's makeLpm (prefix = digits given x bits a digit);
    a decimal value is converted to hex digits first, as the runner does."""
    base = _BASES.get(text[:2].lower())
    if base is None:
        text = hex(int(text, 10))
        base = _BASES["0x"]
    radix, bits = base
    digits = text[2:]
    try:
        value = int(digits.replace("*", "0"), radix)
    except ValueError:
        raise fail(f"bad lpm value {text!r}") from None
    return value, (len(digits) - digits.count("*")) * bits


def _find(items: Iterable, name: str, what: str,  # type: ignore[type-arg]
          fail: Callable[[str], StfError]) -> int:
    """The P4Info id named `name`: exact name or alias first, then a unique `.`-suffix match
    (the runner's tableByName / actionByName)."""
    items = list(items)
    for item in items:
        if name in (item.preamble.name, item.preamble.alias):
            return int(item.preamble.id)
    found = [i for i in items if i.preamble.name.endswith("." + name)]
    if len(found) == 1:
        return int(found[0].preamble.id)
    if found:
        raise fail(f"{what} {name!r} is ambiguous: "
                   f"{', '.join(i.preamble.name for i in found)}")
    raise fail(f"no {what} {name!r}")
