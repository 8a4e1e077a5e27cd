"""The tunnel-style program (programs/tunnel.p4) end to end on p4sim's Switch.

Covers ternary rules with priorities, Geneve encap/decap with header copies, setValid and
setInvalid, a header stack (push_front/pop_front, .next), recirculation with a preserved field
list, verify/update checksums, indexed and direct counters, exit/return, parser errors.
Run just this file: .venv/bin/python -m pytest tests/p4sim/test_tunnel_program.py -q
"""

from __future__ import annotations

from p4sim_core_helpers import P4InfoNames, program
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from p4sim.switch import Switch

MASK32 = 0xFFFFFFFF


def _switch() -> tuple[Switch, P4InfoNames]:
    prog = program("tunnel.p4")
    return Switch(prog), P4InfoNames(prog)


def _plain(dst: str = "10.0.0.2", ttl: int = 64) -> Ether:
    return (Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02")
            / IP(src="10.0.0.1", dst=dst, ttl=ttl) / UDP(sport=1234, dport=80)
            / Raw(b"hello tunnel"))


def _ip_checksum_ok(frame: bytes) -> bool:
    ip = Ether(frame)[IP]
    stored = ip.chksum
    ip.chksum = None
    return IP(bytes(ip))[IP].chksum == stored


def test_forward_decrements_ttl_and_fixes_checksum() -> None:
    sw, ids = _switch()
    sw.state.tables[ids.table("tunnel_rules")].insert(
        ids.entry("tunnel_rules", "forward", (3, 1), priority=10,
                  dst=("ternary", 0x0A000002, MASK32)))
    pkt = _plain()
    out = sw.process(1, bytes(pkt))
    expected = pkt.copy()
    expected[IP].ttl = 63
    expected[IP].chksum = None
    assert out == [(3, bytes(Ether(bytes(expected))))]
    assert _ip_checksum_ok(out[0][1])
    counter = sw.state.counters[ids.counter("rule_hits")]
    assert counter.read(1) == (1, len(pkt))


def test_higher_priority_rule_wins_and_direct_counter_counts() -> None:
    sw, ids = _switch()
    table = sw.state.tables[ids.table("tunnel_rules")]
    broad = ids.entry("tunnel_rules", "forward", (4, 2), priority=1,
                      dst=("ternary", 0x0A000000, 0xFF000000))
    narrow = ids.entry("tunnel_rules", "forward", (5, 3), priority=20,
                       dst=("ternary", 0x0A000002, MASK32))
    table.insert(broad)
    table.insert(narrow)
    assert [p for p, _ in sw.process(1, bytes(_plain("10.0.0.2")))] == [5]
    assert [p for p, _ in sw.process(1, bytes(_plain("10.9.9.9")))] == [4]
    direct = sw.state.direct_counters[ids.direct_counter("rules_counter")]
    assert direct.read(narrow.key)[0] == 1
    assert direct.read(broad.key)[0] == 1


def test_miss_drops_with_default_action_and_is_counted() -> None:
    sw, ids = _switch()
    assert sw.process(1, bytes(_plain())) == []
    assert sw.stats.dropped["ingress_drop"] == 1


def test_encap_geneve_layout_matches_scapy() -> None:
    sw, ids = _switch()
    sw.state.tables[ids.table("tunnel_rules")].insert(
        ids.entry("tunnel_rules", "encap_geneve",
                  (0xC0A80001, 0xC0A80002, 0x123456, 0xDEADBEEF, 7, 4), priority=5,
                  dst=("ternary", 0x0A000002, MASK32)))
    inner = _plain()
    out = sw.process(2, bytes(inner))
    assert [p for p, _ in out] == [7]
    frame = out[0][1]
    parsed = Ether(frame)
    assert parsed[IP].src == "192.168.0.1" and parsed[IP].dst == "192.168.0.2"
    assert parsed[IP].ttl == 64 and parsed[IP].len == len(frame) - 14
    assert _ip_checksum_ok(frame)
    assert parsed[UDP].dport == 6081 and parsed[UDP].len == len(frame) - 34
    gen = parsed[GENEVE]
    assert gen.vni == 0x123456 and gen.optionlen == 2 and gen.proto == 0x6558
    # option: class 0x0104, type 1, length 1 word, data 0xDEADBEEF
    opt = bytes(gen)[8:16]
    assert opt == bytes.fromhex("0104" "01" "01" "deadbeef")
    # the inner frame follows unchanged (TTL is not touched on encap)
    assert bytes(gen)[16:] == bytes(inner)


def test_decap_recirculates_and_second_pass_forwards() -> None:
    sw, ids = _switch()
    table = sw.state.tables[ids.table("tunnel_rules")]
    table.insert(ids.entry("tunnel_rules", "decap_and_recirculate", (6,), priority=9,
                           dst_port=("ternary", 6081, 0xFFFF), passes=("ternary", 0, 0xFF)))
    table.insert(ids.entry("tunnel_rules", "forward", (9, 7), priority=8,
                           passes=("ternary", 1, 0xFF)))
    inner = _plain("172.16.0.9", ttl=20)
    outer = (Ether(src="00:00:00:00:00:0a", dst="00:00:00:00:00:0b")
             / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=5000, dport=6081)
             / GENEVE(vni=42, proto=0x6558, optionlen=2)
             / Raw(bytes.fromhex("0104010100000001")) / inner)
    out = sw.process(0, bytes(outer))
    assert sw.stats.recirculated == 1
    assert [p for p, _ in out] == [9]
    expected = Ether(src="00:00:00:00:00:0a", dst="00:00:00:00:00:0b") / inner[IP].copy()
    # egress decrements the TTL on both passes: simple_switch sets instance_type back to
    # NORMAL before egress, so IS_RECIRCULATED is false there even on the recirculated pass
    expected[IP].ttl = 18
    expected[IP].chksum = None
    assert out[0][1] == bytes(Ether(bytes(expected)))
    hits = sw.state.counters[ids.counter("rule_hits")]
    assert hits.read(6)[0] == 1 and hits.read(7)[0] == 1


def test_bad_checksum_and_parser_error_are_dropped() -> None:
    sw, ids = _switch()
    sw.state.tables[ids.table("tunnel_rules")].insert(
        ids.entry("tunnel_rules", "forward", (3, 1), priority=1,
                  dst=("ternary", 0, 0)))
    good = bytes(_plain())
    bad = bytearray(good)
    bad[24] ^= 0xFF  # IPv4 header checksum
    assert sw.process(1, bytes(bad)) == []
    truncated = good[:20]  # IPv4 header cut short: PacketTooShort
    assert sw.process(1, truncated) == []
    assert sw.process(1, good) != []
    assert sw.stats.dropped["ingress_drop"] == 2


def test_geneve_option_stack_overflow_sets_parser_error() -> None:
    sw, ids = _switch()
    sw.state.tables[ids.table("tunnel_rules")].insert(
        ids.entry("tunnel_rules", "forward", (3, 1), priority=1, dst=("ternary", 0, 0)))
    options = bytes.fromhex("0104010100000001") * 3  # three options, the stack holds two
    pkt = (Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=1, dport=6081)
           / GENEVE(vni=1, proto=0x6558, optionlen=6) / Raw(options) / _plain())
    assert sw.process(0, bytes(pkt)) == []
    assert sw.stats.dropped["ingress_drop"] == 1


def test_trace_reports_parser_states_tables_and_recirculation() -> None:
    sw, ids = _switch()
    lines: list[str] = []
    sw.trace = lines.append
    table = sw.state.tables[ids.table("tunnel_rules")]
    table.insert(ids.entry("tunnel_rules", "decap_and_recirculate", (6,), priority=9,
                           dst_port=("ternary", 6081, 0xFFFF), passes=("ternary", 0, 0xFF)))
    outer = (Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=5000, dport=6081)
             / GENEVE(vni=42, proto=0x6558) / _plain())
    sw.process(0, bytes(outer))
    text = "\n".join(lines)
    assert "parser TunnelParser: state parse_geneve at byte 42" in text
    assert ("table TunnelIngress.tunnel_rules: hit -> "
            "TunnelIngress.decap_and_recirculate") in text
    assert "recirculate with field list 1" in text
    assert "table TunnelIngress.tunnel_rules: miss -> TunnelIngress.drop" in text


def test_recirculated_pass_has_ingress_port_zero_as_in_simple_switch() -> None:
    # simple_switch resets all metadata of a recirculated copy and restores only the field list,
    # so standard_metadata.ingress_port reads 0 on that pass, whatever port the frame came in on.
    sw, ids = _switch()
    lines: list[str] = []
    sw.trace = lines.append
    table = sw.state.tables[ids.table("tunnel_rules")]
    table.insert(ids.entry("tunnel_rules", "decap_and_recirculate", (6,), priority=9,
                           dst_port=("ternary", 6081, 0xFFFF), passes=("ternary", 0, 0xFF)))
    outer = (Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=5000, dport=6081)
             / GENEVE(vni=42, proto=0x6558) / _plain())
    sw.process(3, bytes(outer))
    passes = [line for line in lines if line.startswith("pass: ")]
    assert passes[0].startswith("pass: port 3 instance_type 0 ")
    assert passes[1].startswith("pass: port 0 instance_type 4 ")
    assert sw.stats.recirculated == 1
