"""The checker's rules (p4sim/compiler/checker_rules.py): one small program per rule, each
with one defect, and the exact error it gets: class, construct, file:line:column and text.

Each case fills a placeholder of a valid skeleton (`@BODY@` in the ingress apply block,
`@LOCALS@` among its declarations, `@PSTATE@` in the parser's start state, `@DBODY@` in the
deparser, ...) or replaces a piece of it; the rest of the placeholders are left empty. Run just
this file:
.venv/bin/python -m pytest tests/p4sim/test_checker_rules.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest

from p4sim import errors
from p4sim.errors import P4Error
from p4sim.program import load_program

SKELETON = """#include <core.p4>
#include <v1model.p4>
header h_t { bit<8> a; bit<16> b; }
header hv_t { bit<8> n; varbit<32> v; }
struct headers_t { h_t h; hv_t hv; h_t[2] hs; }
struct meta_t { bit<8> m; bit<16> w; }
@DECLS@
parser Sub(packet_in pkt, inout headers_t hdr) { state start { transition accept; } }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    @PLOCALS@
    state start { @PSTATE@ pkt.extract(hdr.h); transition @TRANS@; }
    state next { transition accept; }
}
control V(inout headers_t hdr, inout meta_t meta) { apply { @VBODY@ } }
control Inner(inout headers_t hdr) { apply { } }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    action set(bit<8> v) { hdr.h.a = v; }
    action dir(inout bit<8> x, bit<8> v) { x = v; }
    @LOCALS@
    apply {
        @BODY@
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control C(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { @DBODY@ pkt.emit(hdr.h); } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""
PLACEHOLDERS = ("@DECLS@", "@PLOCALS@", "@PSTATE@", "@VBODY@", "@LOCALS@", "@BODY@", "@DBODY@")
TABLE = "table t { key = { hdr.h.a: exact; } actions = { set; } }"


def _program(tmp_path: Path, edits: dict[str, str]) -> Path:
    text = SKELETON
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new)
    for placeholder in PLACEHOLDERS:
        text = text.replace(placeholder, "")
    path = tmp_path / "prog.p4"
    path.write_text(text.replace("@TRANS@", "next"))
    return path


def test_skeleton_is_valid(tmp_path: Path) -> None:
    load_program(_program(tmp_path, {}))


# (edits, error class, construct, line, column, message)
CASES = [
    pytest.param(
        {"@PLOCALS@": "value_set<bit<8>>(4) vs;"},
        "UnsupportedConstructError", "value_set_decl", 10, 5,
        "value_set_decl in a parser is not supported",
        id="value_set"),
    pytest.param(
        {"@DECLS@": "type bit<8> nt_t;"},
        "UnsupportedConstructError", "type (new type) declaration", 7, 1,
        "type (new type) declaration is not supported by p4sim",
        id="newtype"),
    pytest.param(
        {"@DECLS@": "T f<T>(in T x) { return x; }"},
        "UnsupportedConstructError", "function", 7, 1,
        "generic function declarations are not supported",
        id="generic_fn"),
    pytest.param(
        {"@DECLS@": "header_union u_t { bit<8> x; }"},
        "P4TypeError", "header_union", 7, 20,
        "header_union member 'x' must be a header, not bit<8>",
        id="union_nonheader"),
    pytest.param(
        {"@DECLS@": "header_union u_t { h_t a; h_t a; }"},
        "DuplicateDeclarationError", "field", 7, 31,
        "duplicate declaration of field 'a'",
        id="union_dup"),
    pytest.param(
        {"@DECLS@": "struct s_t { bit<8> x; } header hh_t { s_t s; }"},
        "UnsupportedConstructError", "header", 7, 40,
        "header field 's': structs inside headers are not supported",
        id="hdr_struct_field"),
    pytest.param(
        {"@DECLS@": "header hh_t { error e; }"},
        "P4TypeError", "header", 7, 15,
        "header field 'e' must be bit<W>, int<W>, bool, a serializable enum or varbit, not error",
        id="hdr_error_field"),
    pytest.param(
        {"@DECLS@": "header hw_t { varbit<16> v; bit<8> x; }"},
        "UnsupportedConstructError", "header layout", 7, 1,
        "header 'hw_t': p4sim needs varbit only as the last field",
        id="varbit_not_last"),
    pytest.param(
        {"@DECLS@": "error { Foo, Foo }"},
        "DuplicateDeclarationError", "error", 7, 14,
        "duplicate declaration of error 'Foo'",
        id="dup_error"),
    pytest.param(
        {"@DECLS@": "struct ss_t { bit<8>[4] s; }"},
        "P4TypeError", "header stack", 7, 15,
        "stack of bit<8>: stack elements are headers or header unions",
        id="stack_of_bits"),
    pytest.param(
        {"@DECLS@": "header h_t { bit<8> z; }"},
        "DuplicateDeclarationError", "type", 7, 8,
        "duplicate declaration of type 'h_t'",
        id="dup_type"),
    pytest.param(
        {"@DECLS@": "header hx_t { bit<8> z; bit<8> z; }"},
        "DuplicateDeclarationError", "field", 7, 32,
        "duplicate declaration of field 'z'",
        id="dup_field"),
    pytest.param(
        {"@DECLS@": "const bit<8> K = 1; const bit<8> K = 2;"},
        "DuplicateDeclarationError", "constant", 7, 34,
        "duplicate declaration of constant 'K'",
        id="dup_const"),
    pytest.param(
        {"V1Switch(P(), V(), I(), E(), C(), D()) main;": "V1Switch(P(), V(), I(), E(), C()) main;"},
        "ArgumentCountError", "package", 27, 10, "V1Switch takes 6 arguments, got 5", id="main_5"),
    pytest.param(
        {"V1Switch(P(), V(),": "V1Switch(Q(), V(),"},
        "P4TypeError", "package", 27, 10,
        "V1Switch arguments must be instances like P()",
        id="main_unknown_parser"),
    pytest.param(
        {"E(), C(), D()) main": "E(), X(), D()) main"},
        "P4TypeError", "package", 27, 30,
        "V1Switch arguments must be instances like P()",
        id="main_unknown_control"),
    pytest.param(
        {
            "inout meta_t meta, inout standard_metadata_t sm) {\n    @PLOCALS@":
                "inout bit<8> meta, inout standard_metadata_t sm) {\n    @PLOCALS@",
        },
        "P4TypeError", "parser", 9, 1,
        "parser headers and metadata must be structs",
        id="meta_not_struct"),
    pytest.param(
        {"@PSTATE@": "exit;"},
        "P4TypeError", "exit", 11, 19, "exit is not allowed in a parser", id="exit_parser"),
    pytest.param(
        {"@DECLS@": "void f() { exit; }", "@BODY@": "f();"},
        "P4TypeError", "exit", 7, 12, "exit is not allowed in a function", id="exit_function"),
    pytest.param(
        {"@BODY@": "for (bit<8> x in hdr.hs) { }"},
        "UnsupportedConstructError", "for-in loop", 21, 9,
        "`for (x in ...)` loops are not supported (the three-part `for (init; cond; update)` is)",
        id="for_in"),
    pytest.param(
        {"@BODY@": "break;"},
        "P4TypeError", "break", 21, 9, "break outside a for loop", id="break_outside"),
    pytest.param(
        {"@BODY@": "continue;"},
        "P4TypeError", "continue", 21, 9, "continue outside a for loop", id="continue_outside"),
    pytest.param(
        {"@PSTATE@": "return;"},
        "P4TypeError", "return", 11, 19, "return is not allowed in a parser", id="return_parser"),
    pytest.param(
        {"@DECLS@": "bit<8> f() { return; }", "@BODY@": "hdr.h.a = f();"},
        "P4TypeError", "return", 7, 14,
        "return without a value in a function returning bit<8>",
        id="return_novalue_fn"),
    pytest.param(
        {"@BODY@": "return 1;"},
        "P4TypeError", "return", 21, 9,
        "return with a value outside a function",
        id="return_value_apply"),
    pytest.param(
        {"@DECLS@": "void f() { return 1; }", "@BODY@": "f();"},
        "P4TypeError", "return", 7, 12,
        "return with a value in a void function",
        id="return_value_void"),
    pytest.param(
        {"@LOCALS@": TABLE, "@BODY@": "switch (t.apply().action_run) { 1: { } }"},
        "P4TypeError", "switch", 21, 41,
        "switch on action_run needs action names as labels",
        id="switch_label_expr"),
    pytest.param(
        {"@BODY@": "switch (hdr.h.a) { 1: { } 1: { } }"},
        "DuplicateDeclarationError", "switch", 21, 35,
        "duplicate switch label '1'",
        id="switch_dup_label"),
    pytest.param(
        {"@LOCALS@": TABLE, "@BODY@": "switch (t.apply().action_run) { set: { } set: { } }"},
        "DuplicateDeclarationError", "switch", 21, 50,
        "duplicate switch label 'set'",
        id="switch_dup_action"),
    pytest.param(
        {"@BODY@": "switch (hdr.h.a) { default: 2: { } }"},
        "P4TypeError", "switch", 21, 28, "default cannot fall through", id="switch_default_fall"),
    pytest.param(
        {"@BODY@": "hdr.h = {1};"},
        "P4TypeError", "assignment", 21, 17, "h_t has 2 fields, the list 1", id="list_count"),
    pytest.param(
        {"@BODY@": "hdr.h = {a = 1, c = 2};"},
        "UnknownNameError", "structure expression", 21, 25,
        "h_t has no field 'c'",
        id="struct_unknown_field"),
    pytest.param(
        {"@BODY@": "hdr.h = {a = 1, a = 2, b = 3};"},
        "DuplicateDeclarationError", "structure expression", 21, 25,
        "field 'a' given twice",
        id="struct_dup_field"),
    pytest.param(
        {"@BODY@": "hdr.h = {a = 1};"},
        "P4TypeError", "structure expression", 21, 17,
        "structure expression for h_t misses b",
        id="struct_missing"),
    pytest.param(
        {"@DECLS@": "void f(in bit<8> x) { }", "@BODY@": "f();"},
        "ArgumentCountError", "call", 21, 9,
        "function f takes 1 arguments, got 0",
        id="fn_argcount"),
    pytest.param(
        {"@DECLS@": "void f(in bit<8> x, in bit<8> y) { }", "@BODY@": "f(1, y = 2);"},
        "P4TypeError", "named arguments", 21, 9,
        "function f: arguments must be all named or all positional",
        id="fn_named_mixed"),
    pytest.param(
        {"@DECLS@": "void f(in bit<8> x) { }", "@BODY@": "f(z = 2);"},
        "UnknownNameError", "named arguments", 21, 11,
        "function f has no parameter 'z'",
        id="fn_named_unknown"),
    pytest.param(
        {"@DECLS@": "void f(in bit<8> x, in bit<8> y) { }", "@BODY@": "f(x = 1, x = 2);"},
        "DuplicateDeclarationError", "named arguments", 21, 18,
        "argument 'x' given twice",
        id="fn_named_dup"),
    pytest.param(
        {"@DECLS@": "void f(in bit<8> x, in bit<8> y) { }", "@BODY@": "f(x = 1, z = 2);"},
        "UnknownNameError", "named arguments", 21, 18,
        "function f has no parameter 'z'",
        id="fn_named_missing"),
    pytest.param(
        {"@DECLS@": "void f(in bit<8> x) { }", "@BODY@": "f(_);"},
        "P4TypeError", "don't-care argument", 21, 11,
        "function f: `_` for parameter 'x', which is not out or inout",
        id="fn_dontcare_in"),
    pytest.param(
        {"@DECLS@": "void f(inout h_t x) { }", "@BODY@": "f(meta);"},
        "P4TypeError", "call", 21, 11,
        "function f: argument 'x' must be h_t, got meta_t",
        id="fn_struct_arg"),
    pytest.param(
        {"@DECLS@": "void f(in bit<8> x) { }", "@BODY@": "f(hdr.h.b);"},
        "P4TypeError", "argument", 21, 11,
        "cannot use bit<16> as bit<8> to function f's parameter 'x' without a cast",
        id="fn_scalar_width"),
    pytest.param(
        {"@DECLS@": "void f(in bit<8> x) { x = 1; }", "@BODY@": "f(1);"},
        "P4TypeError", "assignment", 7, 23,
        "cannot assign to 'x': it is an `in` parameter",
        id="fn_in_param_write"),
    pytest.param(
        {"@BODY@": "set();"},
        "ArgumentCountError", "call", 21, 9,
        "action set takes 1 arguments, got 0",
        id="action_direct_argcount"),
    pytest.param(
        {"@BODY@": "set(hdr.h.b);"},
        "P4TypeError", "argument", 21, 13,
        "cannot use bit<16> as bit<8> to action set's parameter 'v' without a cast",
        id="action_direct_width"),
    pytest.param(
        {"@BODY@": "foo();"},
        "UnknownNameError", "call", 21, 9, "unknown function 'foo'", id="unknown_fn"),
    pytest.param(
        {"@BODY@": "resubmit({hdr.h.a});"},
        "UnsupportedConstructError", "resubmit", 21, 9,
        "resubmit (deprecated; use resubmit_preserving_field_list) with a non-empty field list is "
        "not supported by p4sim",
        id="resubmit_list"),
    pytest.param(
        {"@BODY@": "resubmit();"},
        "ArgumentCountError", "call", 21, 9,
        "resubmit takes 1 arguments, got 0",
        id="resubmit_count"),
    pytest.param(
        {"@BODY@": "clone3(CloneType.I2E, 1, {hdr.h.a});"},
        "UnsupportedConstructError", "clone3", 21, 9,
        "clone3 with a non-empty field list is not supported by p4sim",
        id="clone3_list"),
    pytest.param(
        {"@BODY@": "mark_to_drop(meta);"},
        "P4TypeError", "call", 21, 22,
        "mark_to_drop: argument 'standard_metadata' must be standard_metadata_t, got meta_t",
        id="mark_to_drop_type"),
    pytest.param(
        {"@BODY@": "mark_to_drop(sm, sm);"},
        "ArgumentCountError", "call", 21, 9,
        "mark_to_drop takes 0 or 1 arguments, got 2",
        id="mark_to_drop_count"),
    pytest.param(
        {"@BODY@": "hash(meta.m, 5, 16w0, {hdr.h.a}, 16w10);"},
        "P4TypeError", "call", 21, 22,
        "cannot use int as HashAlgorithm to hash's parameter 'algo' without a cast",
        id="hash_algo"),
    pytest.param(
        {"@BODY@": "hash(meta.m, HashAlgorithm.crc32_custom, 16w0, {hdr.h.a}, 16w10);"},
        "UnsupportedConstructError", "hash", 21, 22,
        "HashAlgorithm.crc32_custom is not supported",
        id="hash_algo_unsupported"),
    pytest.param(
        {"@BODY@": "hash(meta.m, HashAlgorithm.crc16, 16w0, {hdr.h, hdr.h.a}, 16w10);"},
        "UnsupportedConstructError", "hash data", 21, 49,
        "hash/checksum data mixing whole headers and fields",
        id="hash_mixing"),
    pytest.param(
        {"@BODY@": "hash(meta.m, HashAlgorithm.crc16, 16w0, {sm.parser_error}, 16w10);"},
        "P4TypeError", "hash data", 21, 49, "cannot hash a error", id="hash_error"),
    pytest.param(
        {"@BODY@": "verify(true, error.NoError);"},
        "P4TypeError", "verify", 21, 9,
        "verify can only be called in a parser",
        id="verify_outside"),
    pytest.param(
        {"@PSTATE@": "verify(1, error.NoError);"},
        "P4TypeError", "call", 11, 26,
        "cannot use int as bool to verify's parameter 'check' without a cast",
        id="verify_types"),
    pytest.param(
        {"@PSTATE@": "verify(true, 1);"},
        "P4TypeError", "call", 11, 32,
        "cannot use int as error to verify's parameter 'toSignal' without a cast",
        id="verify_types2"),
    pytest.param(
        {"@BODY@": "digest(1, hdr.h.a);"},
        "UnsupportedConstructError", "digest", 21, 19,
        "digest data must be a struct of bit<W>/bool fields (its type names the digest in the "
        "P4Info)",
        id="digest_scalar"),
    pytest.param(
        {"@BODY@": "digest(1, hdr);"},
        "UnsupportedConstructError", "digest", 21, 19,
        "digest data must be a struct of bit<W>/bool fields (its type names the digest in the "
        "P4Info)",
        id="digest_struct_nested"),
    pytest.param(
        {"@VBODY@": "verify_checksum(1w1, {hdr.h.a}, hdr.h.b, HashAlgorithm.csum16);"},
        "P4TypeError", "call", 14, 77,
        "cannot use bit<1> as bool to verify_checksum's parameter 'condition' without a cast",
        id="checksum_cond"),
    pytest.param(
        {"@VBODY@": "verify_checksum(hdr.h.a, {hdr.h.a}, hdr.h.b, HashAlgorithm.csum16);"},
        "P4TypeError", "call", 14, 77,
        "cannot use bit<8> as bool to verify_checksum's parameter 'condition' without a cast",
        id="checksum_cond2"),
    pytest.param(
        {"@LOCALS@": "counter(1) c;"},
        "ArgumentCountError", "instantiation", 19, 13,
        "counter takes [2] constructor arguments, got 1",
        id="counter_arity"),
    pytest.param(
        {"@LOCALS@": "counter<bit<8>, bit<8>>(4, CounterType.packets) c;"},
        "P4TypeError", "instantiation", 19, 5,
        "counter takes 0 type arguments, got 2 (v1model's API depends on V1MODEL_VERSION)",
        id="counter_typeargs"),
    pytest.param(
        {"@LOCALS@": "counter(4, 1) c;"},
        "P4TypeError", "counter", 19, 16, "expected a CounterType", id="counter_unit"),
    pytest.param(
        {"@LOCALS@": "counter(4, MeterType.packets) c;"},
        "P4TypeError", "counter", 19, 16, "expected a CounterType", id="counter_unit2"),
    pytest.param(
        {"@LOCALS@": "meter(4, CounterType.packets) m;"},
        "P4TypeError", "meter", 19, 14, "expected a MeterType", id="meter_unit"),
    pytest.param(
        {"@LOCALS@": "direct_counter(MeterType.bytes) dc;"},
        "P4TypeError", "counter", 19, 20, "expected a CounterType", id="direct_counter_unit"),
    pytest.param(
        {"@LOCALS@": "direct_meter<bit<8>>(CounterType.bytes) dm;"},
        "P4TypeError", "meter", 19, 26, "expected a MeterType", id="direct_meter_unit"),
    pytest.param(
        {"@LOCALS@": "register(4) r;"},
        "P4TypeError", "register", 19, 5,
        "register needs a type: register<bit<W>>",
        id="register_notype"),
    pytest.param(
        {"@LOCALS@": "register<bool>(4) r;"},
        "UnsupportedConstructError", "register", 19, 5,
        "register<bool>: p4sim supports bit<W> registers",
        id="register_bool"),
    pytest.param(
        {"@LOCALS@": "counter(4, CounterType.packets) c;", "@BODY@": "c.foo();"},
        "UnknownNameError", "call", 21, 9,
        "counter has no method 'foo'",
        id="extern_unknown_method"),
    pytest.param(
        {"@LOCALS@": "counter(4, CounterType.packets) c;", "@BODY@": "c.count();"},
        "ArgumentCountError", "call", 21, 9,
        "counter.count takes 1 arguments, got 0",
        id="extern_argcount"),
    pytest.param(
        {"@LOCALS@": "counter(4, CounterType.packets) c;", "@BODY@": "c.count(hdr.h);"},
        "P4TypeError", "call", 21, 17,
        "cannot use h_t as bit<32> to counter.count's parameter 'index' without a cast",
        id="extern_argtype"),
    pytest.param(
        {
            "@LOCALS@": "meter(4, MeterType.packets) m; bit<1> r1;",
            "@BODY@": "m.execute_meter(0, r1);",
        },
        "P4TypeError", "meter", 21, 28,
        "execute_meter needs a bit<W> result with W >= 2",
        id="execute_meter_result"),
    pytest.param(
        {
            "@LOCALS@": "direct_meter<bit<1>>(MeterType.packets) dm; bit<1> r1;",
            "@BODY@": "dm.read(r1);",
        },
        "P4TypeError", "meter", 21, 17,
        "direct_meter.read needs a bit<W> result with W >= 2",
        id="direct_meter_read"),
    pytest.param(
        {"@LOCALS@": "register<bit<8>>(4) r;", "@BODY@": "r.write(0, hdr.h.b);"},
        "P4TypeError", "call", 21, 20,
        "cannot use bit<16> as bit<8> to register.write's parameter 'value' without a cast",
        id="register_write_type"),
    pytest.param(
        {"@LOCALS@": "register<bit<8>>(4) r;", "@BODY@": "r.read(hdr.h.b, 0);"},
        "P4TypeError", "call", 21, 16,
        "cannot use bit<16> as bit<8> to register.read's parameter 'result' without a cast",
        id="register_read_type"),
    pytest.param(
        {"@PSTATE@": "pkt.extract(meta);"},
        "P4TypeError", "extract", 11, 31,
        "extract needs a header, got meta_t",
        id="extract_nonheader"),
    pytest.param(
        {"@PSTATE@": "pkt.extract(hdr.hv);"},
        "ArgumentCountError", "extract", 11, 19,
        "extract of a header with a varbit takes 2 arguments, otherwise 1",
        id="extract_varbit_1"),
    pytest.param(
        {"@PSTATE@": "pkt.extract(hdr.h, 32w8);"},
        "ArgumentCountError", "extract", 11, 19,
        "extract of a header with a varbit takes 2 arguments, otherwise 1",
        id="extract_fixed_2"),
    pytest.param(
        {"@PSTATE@": "pkt.extract(hdr.hv, true);"},
        "P4TypeError", "extract", 11, 39, "extract size must be bit<32>", id="extract_size_type"),
    pytest.param(
        {"@PSTATE@": "pkt.extract();"},
        "ArgumentCountError", "call", 11, 19,
        "extract takes 1 or 2 arguments, got 0",
        id="extract_count"),
    pytest.param(
        {"@PSTATE@": "pkt.length();"},
        "UnsupportedConstructError", "packet_in.length", 11, 19,
        "packet_in.length is not supported",
        id="packet_in_length"),
    pytest.param(
        {"@DBODY@": "pkt.foo();"},
        "UnknownNameError", "packet_out", 26, 55,
        "packet_out has no method 'foo'",
        id="packet_out_foo"),
    pytest.param(
        {"@DBODY@": "pkt.emit(hdr.h.a);"},
        "P4TypeError", "emit", 26, 64, "cannot emit bit<8>", id="emit_bits"),
    pytest.param(
        {"@DBODY@": "pkt.emit();"},
        "ArgumentCountError", "call", 26, 55, "emit takes 1 arguments, got 0", id="emit_count"),
    pytest.param(
        {"@PSTATE@": "pkt.advance(hdr.h);"},
        "P4TypeError", "advance", 11, 31,
        "cannot use h_t as bit<32> without a cast",
        id="advance_type"),
    pytest.param(
        {
            "@LOCALS@": "table t { key = { hdr.h.a: foo; } actions = { set; } }",
            "@BODY@": "t.apply();",
        },
        "UnknownNameError", "table key", 19, 32, "unknown match kind 'foo'", id="key_kind_unknown"),
    pytest.param(
        {
            "@LOCALS@": "table t { key = { hdr.h.a: selector; } actions = { set; } }",
            "@BODY@": "t.apply();",
        },
        "UnsupportedConstructError", "table key", 19, 32,
        "match kind 'selector' is not supported",
        id="key_kind_selector"),
    pytest.param(
        {
            "@LOCALS@": "table t { key = { sm.parser_error: exact; } actions = { set; } }",
            "@BODY@": "t.apply();",
        },
        "UnsupportedConstructError", "error table key", 19, 23,
        "table key of type error (its P4Runtime width is not modelled)",
        id="key_error"),
    pytest.param(
        {
            "@LOCALS@": "table t { key = { hdr.h.a: exact; } actions = { nope; } }",
            "@BODY@": "t.apply();",
        },
        "UnknownNameError", "table actions", 19, 53, "unknown action 'nope'", id="actions_unknown"),
    pytest.param(
        {
            "@LOCALS@": "table t { key = { hdr.h.a: exact; } actions = { set; set; } }",
            "@BODY@": "t.apply();",
        },
        "DuplicateDeclarationError", "table actions", 19, 58,
        "action 'set' listed twice",
        id="actions_twice"),
    pytest.param(
        {
            "@LOCALS@": "table t { key = { hdr.h.a: exact; } actions = { dir; } }",
            "@BODY@": "t.apply();",
        },
        "ArgumentCountError", "table actions", 19, 53,
        "action 'dir' in a table binds its 1 directional parameters, got 0 arguments",
        id="actions_bind_count"),
    pytest.param(
        {
            "@LOCALS@": "table t { key = { hdr.h.a: exact; } actions = { set(1); } }",
            "@BODY@": "t.apply();",
        },
        "ArgumentCountError", "table actions", 19, 53,
        "action 'set' in a table binds its 0 directional parameters, got 1 arguments",
        id="actions_bind_extra"),
    pytest.param(
        {
            "@LOCALS@":
                "counter(4, CounterType.packets) c; table t { key = { hdr.h.a: exact; } actions = "
                "{ set; } counters = c; }",
            "@BODY@": "t.apply();",
        },
        "P4TypeError", "table", 19, 106, "counters = needs a direct_counter", id="counters_prop"),
    pytest.param(
        {
            "@LOCALS@":
                "meter(4, MeterType.packets) m; table t { key = { hdr.h.a: exact; } actions = { "
                "set; } meters = m; }",
            "@BODY@": "t.apply();",
        },
        "P4TypeError", "table", 19, 100, "meters = needs a direct_meter", id="meters_prop"),
    pytest.param(
        {
            "@LOCALS@": "table t { key = { hdr.h.a: exact; } actions = { set; } counters = 1; }",
            "@BODY@": "t.apply();",
        },
        "P4TypeError", "table", 19, 71,
        "counters = needs a direct_counter",
        id="counters_prop_expr"),
    pytest.param(
        {
            "@LOCALS@":
                "table t { key = { hdr.h.a: exact; } actions = { set; } support_timeout = 1; }",
            "@BODY@": "t.apply();",
        },
        "P4TypeError", "table property", 19, 78,
        "support_timeout must be true or false",
        id="timeout_int"),
    pytest.param(
        {
            "@LOCALS@":
                "table t { key = { hdr.h.a: exact; } actions = { set; } support_timeout = true; }",
            "@BODY@": "t.apply();",
        },
        "UnsupportedConstructError", "table property", 19, 60,
        "support_timeout = true (entry idle timeouts) is not supported",
        id="timeout_true"),
    pytest.param(
        {
            "@LOCALS@": "table t { key = { hdr.h.a: exact; } actions = { set; } foo = 1; }",
            "@BODY@": "t.apply();",
        },
        "UnsupportedConstructError", "table property", 19, 60,
        "table property 'foo' is not supported",
        id="prop_unknown"),
    pytest.param(
        {
            "@LOCALS@":
                "table t { key = { hdr.h.a: exact; } actions = { set; } entries = { 1: set(1); } }",
            "@BODY@": "t.apply();",
        },
        "UnsupportedConstructError", "table entries", 19, 60,
        "non-const entries are not supported",
        id="entries_nonconst"),
    pytest.param(
        {
            "@LOCALS@":
                "table t { key = { hdr.h.a: ternary; } actions = { set; } const entries = { "
                "@priority(-1) 1 &&& 1: set(1); } }",
            "@BODY@": "t.apply();",
        },
        "P4TypeError", "table entries", 19, 80,
        "@priority needs one non-negative integer",
        id="priority_bad"),
    pytest.param(
        {
            "@LOCALS@":
                "table t { key = { hdr.h.a: ternary; } actions = { set; } const entries = { "
                "@priority(1, 2) 1 &&& 1: set(1); } }",
            "@BODY@": "t.apply();",
        },
        "P4TypeError", "table entries", 19, 80,
        "@priority needs one non-negative integer",
        id="priority_two"),
    pytest.param(
        {
            "@LOCALS@":
                "table t { key = { hdr.h.a: exact; } actions = { set; } const entries = { (1, 2): "
                "set(1); } }",
            "@BODY@": "t.apply();",
        },
        "P4TypeError", "table entries", 19, 78,
        "entry has 2 key values, table has 1 keys",
        id="entry_keycount"),
    pytest.param(
        {
            "@LOCALS@":
                "table t { key = { hdr.h.a: exact; } actions = { set; } const entries = { 1: "
                "set(); } }",
            "@BODY@": "t.apply();",
        },
        "ArgumentCountError", "action call", 19, 78,
        "action set takes 1 arguments, got 0",
        id="entry_action_count"),
    pytest.param(
        {
            "@LOCALS@":
                "table t { key = { hdr.h.a: exact; } actions = { set; } const entries = { 1: "
                "set(hdr.h.a); } }",
            "@BODY@": "t.apply();",
        },
        "P4TypeError", "action", 19, 85,
        "action argument must be constant",
        id="entry_action_nonconst"),
    pytest.param(
        {
            "@LOCALS@":
                "table t { key = { hdr.h.a: exact; } actions = { set; } const entries = { hdr.h.a: "
                "set(1); } }",
            "@BODY@": "t.apply();",
        },
        "P4TypeError", "table entries", 19, 78,
        "entry key must be constant",
        id="entry_key_nonconst"),
    pytest.param(
        {
            "@LOCALS@":
                "table t { key = { hdr.h.a: exact; } actions = { set; } default_action = "
                "dir(hdr.h.a, 1); }",
            "@BODY@": "t.apply();",
        },
        "UnknownNameError", "default_action", 19, 77,
        "action 'dir' is not in the table's actions",
        id="default_unlisted"),
    pytest.param(
        {
            "@LOCALS@":
                "table t { key = { hdr.h.a: exact; } actions = { set; } default_action = set(); }",
            "@BODY@": "t.apply();",
        },
        "ArgumentCountError", "action call", 19, 77,
        "action set takes 1 arguments, got 0",
        id="default_count"),
    pytest.param(
        {
            "@LOCALS@":
                "table t { key = { hdr.h.a: exact; } actions = { set; } default_action = "
                "set(hdr.h.a); }",
            "@BODY@": "t.apply();",
        },
        "P4TypeError", "action", 19, 81, "action argument must be constant", id="default_nonconst"),
    pytest.param(
        {
            "@LOCALS@":
                "table t { key = { hdr.h.a: exact; } actions = { set; } default_action = "
                "set(16w1); }",
            "@BODY@": "t.apply();",
        },
        "P4TypeError", "action argument", 19, 81,
        "cannot use bit<16> as bit<8> without a cast",
        id="default_width"),
    pytest.param(
        {"@LOCALS@": TABLE, "@BODY@": "t.apply(); t.apply();"},
        "UnsupportedConstructError", "table apply", 21, 20,
        "table I.t is applied more than once; p4c's BMv2 back end rejects that (\"requires a "
        "cycle\"), use one apply or a copy of the table",
        id="apply_twice"),
    pytest.param(
        {"@LOCALS@": TABLE, "@BODY@": "t.foo();"},
        "UnknownNameError", "table", 21, 9, "table has no method 'foo'", id="apply_method"),
    pytest.param(
        {"@LOCALS@": TABLE, "@BODY@": "t.apply(1);"},
        "ArgumentCountError", "call", 21, 9, "apply takes 0 arguments, got 1", id="apply_args"),
    pytest.param(
        {
            "@LOCALS@": TABLE
            + " action a2() { t.apply(); } table t2 { key = { hdr.h.a: exact; } actions = { a2; "
            + "} }",
            "@BODY@": "t2.apply();",
        },
        "UnsupportedConstructError", "table apply", 19, 76,
        "table applied from an action",
        id="apply_from_action"),
    pytest.param(
        {"state start { @PSTATE@": "state begin { @PSTATE@"},
        "UnknownNameError", "parser", 9, 1, "parser P has no state 'start'", id="no_start"),
    pytest.param(
        {
            "state next { transition accept; }":
                "state next { transition accept; } state next { transition accept; }",
        },
        "DuplicateDeclarationError", "state", 12, 39,
        "duplicate declaration of state 'next'",
        id="dup_state"),
    pytest.param(
        {"@TRANS@": "select(hdr.h.a) { (1, 2): next; default: accept; }"},
        "P4TypeError", "select", 11, 69, "select has 1 keys, this case 2", id="select_count"),
    pytest.param(
        {"@TRANS@": "select(hdr.h.a) { 16w1: next; default: accept; }"},
        "P4TypeError", "select", 11, 69,
        "cannot use bit<16> as bit<8> without a cast",
        id="select_width"),
    pytest.param(
        {"@TRANS@": "select(hdr.h.a) { 1: nowhere; default: accept; }"},
        "UnknownNameError", "transition", 11, 72,
        "unknown parser state 'nowhere'",
        id="select_unknown_state"),
    pytest.param(
        {"@TRANS@": "nowhere"},
        "UnknownNameError", "transition", 11, 51,
        "unknown parser state 'nowhere'",
        id="unknown_state"),
    pytest.param(
        {"@PLOCALS@": "Sub(1) s;"},
        "UnsupportedConstructError", "parser constructor parameters", 10, 9,
        "parser Sub: constructor arguments are not supported",
        id="subparser_ctor_args"),
    pytest.param(
        {"@PLOCALS@": "Sub() s;", "@PSTATE@": "s.foo(pkt, hdr);"},
        "UnknownNameError", "parser", 11, 19, "parser has no method 'foo'", id="subparser_method"),
    pytest.param(
        {"@PLOCALS@": "Sub() s;", "@PSTATE@": "s.apply(pkt);"},
        "ArgumentCountError", "call", 11, 19,
        "Sub.apply takes 2 arguments, got 1",
        id="subparser_count"),
    pytest.param(
        {"@PLOCALS@": "Sub() s;", "@PSTATE@": "s.apply(hdr.h, hdr);"},
        "P4TypeError", "parser apply", 11, 27,
        "Sub.apply: argument 'pkt' must be the packet_in",
        id="subparser_pkt"),
    pytest.param(
        {"@PLOCALS@": "Sub() s;", "@PSTATE@": "s.apply(pkt, meta);"},
        "P4TypeError", "call", 11, 32,
        "Sub.apply: argument 'hdr' must be headers_t, got meta_t",
        id="subparser_hdr"),
    pytest.param(
        {"@PLOCALS@": "Sub() s;", "@PSTATE@": "s.apply(pkt = pkt, hdrs = hdr);"},
        "UnknownNameError", "named arguments", 11, 38,
        "Sub.apply has no parameter 'hdrs'",
        id="subparser_named"),
    pytest.param(
        {"@PLOCALS@": "counter(4, CounterType.packets) c;"},
        "UnsupportedConstructError", "instantiation", 10, 5,
        "instantiation in a parser is not supported",
        id="parser_local_unsupported"),
    pytest.param(
        {
            "@DECLS@":
                "parser Sub2(packet_in pkt)(bit<8> x) { state start { transition accept; } }",
            "@PLOCALS@": "Sub2(1) s;",
        },
        "UnsupportedConstructError", "parser constructor parameters", 10, 10,
        "parser Sub2: constructor arguments are not supported",
        id="parser_ctor_params"),
    pytest.param(
        {
            "control Inner(inout headers_t hdr)": "control Inner(inout headers_t hdr)(bit<8> x)",
            "@LOCALS@": "Inner(1) inn;",
            "@BODY@": "inn.apply(hdr);",
        },
        "UnsupportedConstructError", "control constructor parameters", 19, 11,
        "control Inner: constructor argument for 'x' must be a control instance declared before it",
        id="control_ctor_param"),
    pytest.param(
        {"@LOCALS@": "Inner(1) inn;", "@BODY@": "inn.apply(hdr);"},
        "ArgumentCountError", "control constructor parameters", 19, 5,
        "control Inner takes 0 constructor arguments, got 1",
        id="control_ctor_count"),
    pytest.param(
        {"@LOCALS@": "Inner() inn;", "@BODY@": "inn.foo(hdr);"},
        "UnknownNameError", "control", 21, 9, "control has no method 'foo'", id="control_method"),
    pytest.param(
        {"@LOCALS@": "Inner() inn;", "@BODY@": "inn.apply();"},
        "ArgumentCountError", "call", 21, 9,
        "Inner.apply takes 1 arguments, got 0",
        id="control_argcount"),
    pytest.param(
        {"@LOCALS@": "Inner() inn;", "@BODY@": "inn.apply(meta);"},
        "P4TypeError", "call", 21, 19,
        "Inner.apply: argument 'hdr' must be headers_t, got meta_t",
        id="control_argtype"),
    pytest.param(
        {"@BODY@": "Inner.apply(meta);"},
        "P4TypeError", "call", 21, 21,
        "Inner.apply: argument 'hdr' must be headers_t, got meta_t",
        id="control_direct"),
    pytest.param(
        {"@LOCALS@": "void g() { }"},
        "UnsupportedConstructError", "function declaration", 19, 5,
        "function declaration is not supported",
        id="control_local_fn"),
    pytest.param(
        {"@LOCALS@": "bit<8> x; bit<8> x;"},
        "DuplicateDeclarationError", "variable", 19, 22,
        "duplicate declaration of variable 'x'",
        id="var_dup"),
    pytest.param(
        {"@BODY@": "bit<8> y = 1; bit<8> y = 2;"},
        "DuplicateDeclarationError", "variable", 21, 30,
        "duplicate declaration of variable 'y'",
        id="var_dup_stmt"),
    pytest.param(
        {"@BODY@": "h_t y = meta;"},
        "P4TypeError", "initializer", 21, 17,
        "cannot initialize h_t with meta_t",
        id="var_init_type"),
    pytest.param(
        {"@BODY@": "hdr.h = meta;"},
        "P4TypeError", "assignment", 21, 9, "cannot assign meta_t to h_t", id="assign_struct"),
    pytest.param(
        {"@BODY@": "hdr.h.setValid(1);"},
        "ArgumentCountError", "call", 21, 9,
        "setValid takes 0 arguments, got 1",
        id="header_method_args"),
    pytest.param(
        {"@DECLS@": "void f(in h_t x) { x.setValid(); }", "@BODY@": "f(hdr.h);"},
        "P4TypeError", "assignment", 7, 20,
        "cannot assign to 'x': it is an `in` parameter",
        id="header_in_param"),
    pytest.param(
        {"@BODY@": "hdr.hs.push_front();"},
        "ArgumentCountError", "call", 21, 9,
        "push_front takes 1 arguments, got 0",
        id="stack_push_count"),
    pytest.param(
        {"@DECLS@": "header_union u_t { h_t a; }", "@BODY@": "hdr.h.isValid(1);"},
        "ArgumentCountError", "call", 21, 9,
        "isValid takes 0 arguments, got 1",
        id="union_isvalid_args"),
    pytest.param(
        {"@PSTATE@": "pkt.lookahead<hv_t>();"},
        "UnsupportedConstructError", "lookahead", 11, 33,
        "lookahead<hv_t>: p4sim supports lookahead of bit<W> and of fixed-size headers",
        id="lookahead_stmt_varbit"),
    pytest.param(
        {"@BODY@": "random(meta.m, 16w0, 8w10);"},
        "P4TypeError", "random", 21, 24,
        "cannot use bit<16> as bit<8> without a cast",
        id="random_type"),
    pytest.param(
        {"@BODY@": "truncate(hdr.h);"},
        "P4TypeError", "call", 21, 18,
        "cannot use h_t as bit<32> to truncate's parameter 'length' without a cast",
        id="truncate_type"),
    pytest.param(
        {"@BODY@": "assert(1);"},
        "P4TypeError", "call", 21, 16,
        "cannot use int as bool to assert's parameter 'check' without a cast",
        id="assert_type"),
    pytest.param(
        {"@BODY@": "clone(1, 1);"},
        "P4TypeError", "call", 21, 15,
        "cannot use int as CloneType to clone's parameter 'type' without a cast",
        id="clone_type"),
    # -- out/inout arguments must be lvalues (p4c's TypeInference: arg->leftValue) ---------
    pytest.param(
        {"@DECLS@": "void f(out bit<8> x) { x = 1; }", "@BODY@": "f(8w1);"},
        "P4TypeError", "argument", 21, 11,
        "8w1: Read-only value used for out/inout parameter 'x'",
        id="out_arg_literal"),
    pytest.param(
        {"@DECLS@": "void f(inout bit<8> x) { }", "@BODY@": "f(meta.m + 1);"},
        "P4TypeError", "argument", 21, 11,
        "meta.m + 1: Read-only value used for out/inout parameter 'x'",
        id="inout_arg_sum"),
    pytest.param(
        {"@DECLS@": "void f(inout bit<8> x) { }", "@BODY@": "f((bit<8>)hdr.h.b);"},
        "P4TypeError", "argument", 21, 11,
        "(bit<8>)hdr.h.b: Read-only value used for out/inout parameter 'x'",
        id="inout_arg_cast"),
    pytest.param(
        {"@DECLS@": "void f(out bit<8> x) { x = 1; }",
         "@BODY@": "f(hdr.h.isValid() ? meta.m : hdr.h.a);"},
        "P4TypeError", "argument", 21, 11,
        "hdr.h.isValid() ? meta.m : hdr.h.a: Read-only value used for out/inout parameter 'x'",
        id="out_arg_ternary"),
    pytest.param(
        {"@DECLS@": "void f(out bit<16> x) { x = 1; }", "@BODY@": "f(meta.m ++ hdr.h.a);"},
        "P4TypeError", "argument", 21, 11,
        "meta.m ++ hdr.h.a: Read-only value used for out/inout parameter 'x'",
        id="out_arg_concat"),
    pytest.param(
        {"@DECLS@": "bit<8> g() { return 1; } void f(out bit<8> x) { x = 1; }",
         "@BODY@": "f(g());"},
        "P4TypeError", "argument", 21, 11,
        "g(): Read-only value used for out/inout parameter 'x'",
        id="out_arg_call"),
    pytest.param(
        {"@DECLS@": "void f(out bit<32> x) { x = 1; }", "@BODY@": "f(hdr.hs.size);"},
        "P4TypeError", "argument", 21, 11,
        "hdr.hs.size: Read-only value used for out/inout parameter 'x'",
        id="out_arg_stack_size"),
    pytest.param(
        {"@DECLS@": "void f(out error x) { x = error.NoError; }",
         "@BODY@": "f(error.NoError);"},
        "P4TypeError", "argument", 21, 11,
        "error.NoError: Read-only value used for out/inout parameter 'x'",
        id="out_arg_error_member"),
    pytest.param(
        {"@BODY@": "dir(8w3, 8w1);"},
        "P4TypeError", "argument", 21, 13,
        "8w3: Read-only value used for out/inout parameter 'x'",
        id="action_inout_literal"),
    pytest.param(
        {"@BODY@": "random(meta.m + 8w0, 8w0, 8w10);"},
        "P4TypeError", "argument", 21, 16,
        "meta.m + 8w0: Read-only value used for out/inout parameter 'result'",
        id="random_result_expr"),
    pytest.param(
        {"@BODY@": "hash(8w0, HashAlgorithm.crc16, 8w0, { hdr.h.a }, 16w256);"},
        "P4TypeError", "argument", 21, 14,
        "8w0: Read-only value used for out/inout parameter 'result'",
        id="hash_result_literal"),
    pytest.param(
        {"@DECLS@": "control Q(inout bit<8> x) { apply { } }",
         "@LOCALS@": "Q() q;", "@BODY@": "q.apply(meta.m |+| 1);"},
        "P4TypeError", "argument", 21, 17,
        "meta.m |+| 1: Read-only value used for out/inout parameter 'x'",
        id="control_apply_inout_expr"),
    # -- table keys are scalars (p4c: "Key %1% field type must be a scalar type; it cannot be
    # %2%") ----------------------------------------------------------------------------------
    pytest.param(
        {"@LOCALS@": "table tk { key = { hdr.h: exact; } actions = { set; } }"},
        "P4TypeError", "table key", 19, 24,
        "Key hdr.h field type must be a scalar type; it cannot be header h_t",
        id="key_header"),
    pytest.param(
        {"@LOCALS@": "table tk { key = { meta: exact; } actions = { set; } }"},
        "P4TypeError", "table key", 19, 24,
        "Key meta field type must be a scalar type; it cannot be struct meta_t",
        id="key_struct"),
    pytest.param(
        {"@LOCALS@": "table tk { key = { hdr.hs: exact; } actions = { set; } }"},
        "P4TypeError", "table key", 19, 24,
        "Key hdr.hs field type must be a scalar type; it cannot be h_t[2]",
        id="key_stack"),
]

# Writable arguments that must keep compiling: variables, parameters, members, elements,
# slices, stack elements and headers in place.
LVALUES = [
    pytest.param("void f(inout bit<8> x) { }", "f(meta.m);", id="member"),
    pytest.param("void f(out bit<4> x) { x = 1; }", "f(meta.m[3:0]);", id="slice"),
    pytest.param("void f(inout bit<8> x) { }", "f(hdr.hs[1].a);", id="stack_element_field"),
    pytest.param("void f(inout h_t x) { }", "f(hdr.hs[0]);", id="stack_element"),
    pytest.param("void f(inout headers_t x) { }", "f(hdr);", id="whole_parameter"),
    pytest.param("void f(out bit<8> x) { x = 1; }", "bit<8> v; f(v); meta.m = v;",
                 id="local_variable"),
    pytest.param("void f(out bit<16> x) { x = 1; }", "f(hdr.h.b);", id="header_field"),
    pytest.param("void f(inout bit<8> x) { }", "f((meta.m));", id="parenthesized"),
]


@pytest.mark.parametrize(("decls", "body"), LVALUES)
def test_writable_arguments_compile(tmp_path: Path, decls: str, body: str) -> None:
    load_program(_program(tmp_path, {"@DECLS@": decls, "@BODY@": body}))


@pytest.mark.parametrize(("edits", "cls", "construct", "line", "column", "message"), CASES)
def test_rule(tmp_path: Path, edits: dict[str, str], cls: str, construct: str, line: int,
              column: int, message: str) -> None:
    path = _program(tmp_path, edits)
    with pytest.raises(P4Error) as info:
        load_program(path)
    error = info.value
    assert type(error) is getattr(errors, cls)
    assert (error.construct, error.line, error.column, error.message) == (
        construct, line, column, message)
    assert str(error) == f"{path}:{line}:{column}: error: {message}"
