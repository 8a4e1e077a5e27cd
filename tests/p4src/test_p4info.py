"""The checked-in P4Info must be exactly what the P4 source generates, and say what the
controller relies on (names, sizes from sizes.p4).

These read the P4Info p4sim's front end generates (`program()`), not a running switch: they check
the program, and program nothing, so they do not go through the P4Runtime test client.

Run just these: .venv/bin/python -m pytest tests/p4src/test_p4info.py -q
Regenerate after a deliberate change:
    .venv/bin/python -m p4sim p4info p4src/tunnel_offload.p4 -o p4src/tunnel_offload.p4info.txtpb
"""

from __future__ import annotations

import difflib

from tunnel_dataplane import P4INFO_FILE, C, program


def _by_suffix(items, suffix: str):  # noqa: ANN001, ANN202 - protobuf repeated fields
    (found,) = [i for i in items if i.preamble.name.split(".")[-1] == suffix]
    return found


def test_checked_in_p4info_matches_source() -> None:
    generated = program().p4info_text()
    checked_in = P4INFO_FILE.read_text()
    if generated != checked_in:
        diff = "".join(difflib.unified_diff(checked_in.splitlines(True),
                                            generated.splitlines(True),
                                            "checked-in", "generated", n=2))
        raise AssertionError(f"{P4INFO_FILE.name} drifted from p4src/; regenerate it:\n{diff}")


def test_tunnel_rules_keys_are_the_stable_names() -> None:
    table = _by_suffix(program().p4info.tables, "tunnel_rules")
    assert [f.name for f in table.match_fields] == [
        "ingress_port", "prev_tunnel", "dst_mac", "src_mac", "ip_version", "ipv4_src",
        "ipv4_dst", "ipv6_src", "ipv6_dst", "tunnel_header", "esp_spi", "geneve_vni",
        "geneve_protocol", "vxlan_vni", "inner_dst_mac", "inner_src_mac", "inner_ip_version",
        "inner_ipv4_src", "inner_ipv4_dst", "inner_ipv6_src", "inner_ipv6_dst"]
    assert table.size == C("TUNNEL_RULES_SIZE")


def test_esp_endpoints_keys_are_the_outer_keys_of_tunnel_rules() -> None:
    # A decrypt tunnel's rule match without its SPI: the same names, so one match dict serves
    # both tables (controller/pipeline.py).
    p4info = program().p4info
    endpoints = [f.name for f in _by_suffix(p4info.tables, "esp_endpoints").match_fields]
    rules = {f.name: f for f in _by_suffix(p4info.tables, "tunnel_rules").match_fields}
    assert endpoints == ["ingress_port", "prev_tunnel", "dst_mac", "src_mac", "ip_version",
                         "ipv4_src", "ipv4_dst", "ipv6_src", "ipv6_dst"]
    for field in _by_suffix(p4info.tables, "esp_endpoints").match_fields:
        assert (field.bitwidth, field.match_type) == (rules[field.name].bitwidth,
                                                      rules[field.name].match_type)


def test_sizes_come_from_sizes_p4() -> None:
    p4info = program().p4info
    assert _by_suffix(p4info.tables, "decrypt_sas").size == C("MAX_SAS")
    assert _by_suffix(p4info.tables, "esp_endpoints").size == C("MAX_TUNNELS")
    assert _by_suffix(p4info.tables, "routes_v4").size == C("ROUTES_V4_SIZE")
    assert _by_suffix(p4info.tables, "routes_v6").size == C("ROUTES_V6_SIZE")
    for name in ("tunnel_in", "tunnel_out", "tunnel_drop_in", "tunnel_drop_out"):
        assert _by_suffix(p4info.counters, name).size == C("MAX_TUNNELS")
    assert _by_suffix(p4info.counters, "drop_reasons").size == C("DROP_REASON_COUNT")
    options = _by_suffix(p4info.actions, "encap_geneve_v4")
    widths = {p.name: p.bitwidth for p in options.params}
    assert widths["options"] == C("GENEVE_OPTION_BITS") == 32 * C("MAX_GENEVE_OPTION_WORDS")
    assert C("MAX_GENEVE_OPTION_WORDS") == C("MAX_GENEVE_OPTIONS") * (
        1 + C("MAX_GENEVE_OPTION_DATA") // 4)


def test_capability_sizes_are_annotated_on_tunnel_rules() -> None:
    table = _by_suffix(program().p4info.tables, "tunnel_rules")
    assert set(table.preamble.annotations) == {
        f"@max_geneve_options({C('MAX_GENEVE_OPTIONS')})",
        f"@max_geneve_option_data({C('MAX_GENEVE_OPTION_DATA')})",
        f"@max_passes({C('MAX_PASSES')})"}


def test_reason_codes_fit_their_counters() -> None:
    drops = [v for k, v in _consts("DROP_")]
    parser = [v for k, v in _consts("PARSER_ERROR_") if k != "PARSER_ERROR_REASON_COUNT"]
    assert max(drops) < C("DROP_REASON_COUNT") and len(set(drops)) == len(drops)
    assert max(parser) < C("PARSER_ERROR_REASON_COUNT") and len(set(parser)) == len(parser)


def _consts(prefix: str) -> list[tuple[str, int]]:
    from tunnel_dataplane import p4_constants
    return [(k, v) for k, v in p4_constants().items()
            if k.startswith(prefix) and not k.endswith("_COUNT")]


def test_p4c_details_are_written() -> None:
    # what p4c-bm2-ss writes and an earlier generator left out (issue 16)
    p4info = program().p4info
    actions = {a.preamble.id: a for a in p4info.actions}
    default_only = [a.preamble.name.split(".")[-1] for a in p4info.actions
                    if "@defaultonly" in a.preamble.annotations]
    assert sorted(default_only) == ["reject_no_route", "reject_unknown_spi", "skip_tunnel"]
    for table in p4info.tables:
        refs = [r for r in table.action_refs if r.scope == r.DEFAULT_ONLY]
        assert [list(r.annotations) for r in refs] == [["@defaultonly"]]
        # every table here has a `const default_action`: both fields name the same action
        assert table.initial_default_action.action_id == table.const_default_action_id
        assert table.const_default_action_id in actions
        assert not table.initial_default_action.arguments
        assert not table.has_initial_entries
    assert p4info.HasField("type_info")
    assert [t.preamble.name.split(".")[-1] for t in p4info.tables] == [
        "tunnel_rules", "esp_endpoints", "decrypt_sas", "routes_v4",
        "routes_v6"]  # declaration order, like p4c
