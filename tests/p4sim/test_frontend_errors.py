"""Front-end errors: every error class, with file:line:column and the construct named.

Each case writes a small program (a valid skeleton with one defect) and checks the exact
position and message. Run just this file:
.venv/bin/python -m pytest tests/p4sim/test_frontend_errors.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest

from p4sim.errors import (
    ArgumentCountError,
    DuplicateDeclarationError,
    P4Error,
    P4SyntaxError,
    P4TypeError,
    PreprocessorError,
    UnknownNameError,
    UnsupportedConstructError,
)
from p4sim.program import load_program

SKELETON = """#include <core.p4>
#include <v1model.p4>
header h_t { bit<8> a; bit<16> b; }
struct headers_t { h_t h; }
struct meta_t { bit<8> m; }
DECLS
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.h); transition accept; }
}
control V(inout headers_t hdr, inout meta_t meta) { apply { } }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    action set(bit<8> v) { hdr.h.a = v; }
    LOCALS
    apply {
        BODY
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control C(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.h); } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""
BODY_LINE, LOCALS_LINE, DECLS_LINE = (
    SKELETON.splitlines().index(line) + 1 for line in ("        BODY", "    LOCALS", "DECLS"))


def _program(tmp_path: Path, body: str = "", locals_: str = "", decls: str = "") -> Path:
    text = SKELETON.replace("DECLS", decls).replace("LOCALS", locals_).replace("BODY", body)
    path = tmp_path / "prog.p4"
    path.write_text(text)
    return path


def _error(path: Path) -> P4Error:
    with pytest.raises(P4Error) as info:
        load_program(path)
    return info.value


def test_skeleton_is_valid(tmp_path: Path) -> None:
    load_program(_program(tmp_path, body="hdr.h.a = 1;"))


@pytest.mark.parametrize(
    ("body", "cls", "column", "message", "construct"),
    [
        ("hdr.h.a = hdr.h.b;", P4TypeError, 19,
         "cannot use bit<16> as bit<8> to hdr.h.a without a cast", "assignment"),
        ("hdr.h.b = (bit<16>)hdr.h.a[8:1];", P4TypeError, 28,
         "slice [8:1] out of range for bit<8>", "slice"),
        ("if (hdr.h.a == hdr.h.b) { }", P4TypeError, 13,
         "operator ==: operands are bit<8> and bit<16> (different widths need a cast)",
         "expression"),
        ("if (hdr.h.a) { }", P4TypeError, 13, "if condition is bit<8>, not bool", "if"),
        ("hdr.h.c = 1;", UnknownNameError, 15, "h_t has no field 'c'", "member"),
        ("x = 1;", UnknownNameError, 9, "unknown name 'x'", "expression"),
        ("set();", ArgumentCountError, 9, "action set takes 1 arguments, got 0", "call"),
        ("mark_to_drop(sm, sm);", ArgumentCountError, 9,
         "mark_to_drop takes 0 or 1 arguments, got 2", "call"),
        ("bit<8> x = 1; bit<8> x = 2;", DuplicateDeclarationError, 30,
         "duplicate declaration of variable 'x'", "variable"),
        ("mark_to_drop(meta);", P4TypeError, 22,
         "mark_to_drop: argument 'standard_metadata' must be standard_metadata_t, got meta_t",
         "call"),
        ("hash(hdr.h.a, 5, 8w0, { hdr.h.b }, 8w4);", P4TypeError, 23,
         "cannot use int as HashAlgorithm to hash's parameter 'algo' without a cast", "call"),
        ("digest(32w1, hdr.h.a);", UnsupportedConstructError, 22,
         "digest data must be a struct of bit<W>/bool fields (its type names the digest in the "
         "P4Info)", "digest"),
        ("hdr.h.a = 1", P4SyntaxError, 5, "syntax error: unexpected '}'", "syntax"),
    ],
)
def test_body_errors(tmp_path: Path, body: str, cls: type[P4Error], column: int, message: str,
                     construct: str) -> None:
    err = _error(_program(tmp_path, body=body))
    assert type(err) is cls
    expected_line = BODY_LINE + (1 if cls is P4SyntaxError else 0)
    assert (err.file, err.line, err.column) == (str(tmp_path / "prog.p4"), expected_line, column)
    assert err.message == message
    assert err.construct == construct
    assert str(err) == f"{tmp_path / 'prog.p4'}:{expected_line}:{column}: error: {message}"


def test_unknown_action_in_table(tmp_path: Path) -> None:
    table = "table t { key = { hdr.h.a: exact; } actions = { set; missing; } }"
    err = _error(_program(tmp_path, locals_=table, body="t.apply();"))
    assert isinstance(err, UnknownNameError)
    assert err.line == LOCALS_LINE and err.message == "unknown action 'missing'"


def test_table_applied_twice_is_refused_like_p4c(tmp_path: Path) -> None:
    table = "table t { key = { hdr.h.a: exact; } actions = { set; } }"
    err = _error(_program(tmp_path, locals_=table,
                          body="if (hdr.h.a == 1) { t.apply(); } else { t.apply(); }"))
    assert isinstance(err, UnsupportedConstructError)
    assert err.message.startswith("table I.t is applied more than once")
    assert (err.line, err.column) == (BODY_LINE, 49)


def test_stack_next_outside_a_parser(tmp_path: Path) -> None:
    decls = "header i_t { bit<8> v; }\nstruct more_t { i_t[2] items; }"
    err = _error(_program(tmp_path, decls=decls, locals_="more_t m;",
                          body="m.items.last.v = 1;"))
    assert isinstance(err, P4TypeError)
    assert err.message == ("'last' of a header stack can only be used in a parser "
                           "(as p4c requires)")


def test_verify_outside_a_parser(tmp_path: Path) -> None:
    err = _error(_program(tmp_path, body="verify(true, error.NoMatch);"))
    assert isinstance(err, P4TypeError)
    assert err.message == "verify can only be called in a parser"


def test_exit_in_a_parser(tmp_path: Path) -> None:
    path = _program(tmp_path)
    path.write_text(path.read_text().replace("transition accept;", "exit; transition accept;", 1))
    err = _error(path)
    assert isinstance(err, P4TypeError) and err.message == "exit is not allowed in a parser"


def test_state_without_transition_rejects(tmp_path: Path) -> None:
    from p4sim.switch import Switch

    path = _program(tmp_path, body="hdr.h.a = 9;")
    path.write_text(path.read_text().replace(" transition accept; }", " }", 1))
    assert Switch(load_program(path)).process(0, b"\x01\x02\x03") == [(0, b"\x09\x02\x03")]


def test_default_action_argument_count(tmp_path: Path) -> None:
    table = "table t { key = { hdr.h.a: exact; } actions = { set; } default_action = set(); }"
    err = _error(_program(tmp_path, locals_=table, body="t.apply();"))
    assert isinstance(err, ArgumentCountError)
    assert err.message == "action set takes 1 arguments, got 0"


def test_unsupported_match_kind(tmp_path: Path) -> None:
    table = "table t { key = { hdr.h.a: selector; } actions = { set; } }"
    err = _error(_program(tmp_path, locals_=table, body="t.apply();"))
    assert isinstance(err, UnsupportedConstructError)
    assert err.message == "match kind 'selector' is not supported"


def test_extern_method_arguments(tmp_path: Path) -> None:
    locals_ = "counter(4, CounterType.packets) c; register<bit<8>>(4) r;"
    err = _error(_program(tmp_path, locals_=locals_, body="c.count();"))
    assert isinstance(err, ArgumentCountError)
    assert err.message == "counter.count takes 1 arguments, got 0"
    err = _error(_program(tmp_path, locals_=locals_, body="r.write(0, hdr.h.b);"))
    assert isinstance(err, P4TypeError)
    assert err.message == ("cannot use bit<16> as bit<8> to register.write's parameter 'value' "
                           "without a cast")
    err = _error(_program(tmp_path, locals_=locals_, body="c.count(hdr.h.a);"))
    assert isinstance(err, P4TypeError)  # v1model 20180101: counter.count(in bit<32> index)
    assert err.message == ("cannot use bit<8> as bit<32> to counter.count's parameter 'index' "
                           "without a cast")
    err = _error(_program(tmp_path, locals_=locals_, body="r.frob(1);"))
    assert isinstance(err, UnknownNameError) and err.message == "register has no method 'frob'"


def test_v1model_version_selects_the_extern_api(tmp_path: Path) -> None:
    new_api = "register<bit<8>, bit<8>>(4) r;"
    err = _error(_program(tmp_path, locals_=new_api))
    assert isinstance(err, P4TypeError)
    assert err.message == ("register takes 1 type arguments, got 2 (v1model's API depends on "
                           "V1MODEL_VERSION)")
    path = _program(tmp_path, locals_=new_api + " counter<bit<8>>(4, CounterType.packets) c;",
                    body="r.write(hdr.h.a, 1); c.count(hdr.h.a); sm.egress_spec = (PortId_t)2;")
    path.write_text("#define V1MODEL_VERSION 20200408\n" + path.read_text())
    load_program(path)


def test_register_without_type_argument(tmp_path: Path) -> None:
    err = _error(_program(tmp_path, locals_="register(4) r;"))
    assert isinstance(err, P4TypeError)
    assert (err.line, err.message) == (LOCALS_LINE, "register needs a type: register<bit<W>>")


def test_idle_timeout_is_refused_not_ignored(tmp_path: Path) -> None:
    table = "table t { key = { hdr.h.a: exact; } actions = { set; } support_timeout = FLAG; }"
    load_program(_program(tmp_path, locals_=table.replace("FLAG", "false"), body="t.apply();"))
    err = _error(_program(tmp_path, locals_=table.replace("FLAG", "true"), body="t.apply();"))
    assert isinstance(err, UnsupportedConstructError)
    assert err.message == "support_timeout = true (entry idle timeouts) is not supported"


@pytest.mark.parametrize(
    ("decls", "cls", "message"),
    [
        ("header h_t { bit<8> x; }", DuplicateDeclarationError,
         "duplicate declaration of type 'h_t'"),
        ("header u_t { bit<8> x; bit<8> x; }", DuplicateDeclarationError,
         "duplicate declaration of field 'x'"),
        ("header_union u_t { h_t a; bit<8> b; }", P4TypeError,
         "header_union member 'b' must be a header, not bit<8>"),
        ("header odd_t { varbit<8> v; bit<8> x; }", UnsupportedConstructError,
         "header 'odd_t': p4sim needs varbit only as the last field"),
        ("const bit<8> K = 300; const bit<8> K = 1;", DuplicateDeclarationError,
         "duplicate declaration of constant 'K'"),
        ("T f<T>(in T x) { return x; }", UnsupportedConstructError,
         "generic function declarations are not supported"),
    ],
)
def test_declaration_errors(tmp_path: Path, decls: str, cls: type[P4Error], message: str) -> None:
    err = _error(_program(tmp_path, decls=decls))
    assert type(err) is cls
    assert err.line == DECLS_LINE and err.message == message


def test_assignment_to_constant_and_action_parameter(tmp_path: Path) -> None:
    err = _error(_program(tmp_path, decls="const bit<8> K = 1;", body="K = 2;"))
    assert isinstance(err, P4TypeError) and err.message == "cannot assign to constant 'K'"


def test_writing_an_in_parameter(tmp_path: Path) -> None:
    path = _program(tmp_path)
    path.write_text(path.read_text().replace("apply { pkt.emit(hdr.h); }",
                                             "apply { hdr.h.setInvalid(); pkt.emit(hdr.h); }"))
    err = _error(path)
    assert isinstance(err, P4TypeError)
    assert err.message == "cannot assign to 'hdr': it is an `in` parameter"


def test_unknown_parser_state(tmp_path: Path) -> None:
    path = _program(tmp_path)
    path.write_text(path.read_text().replace("transition accept;", "transition nowhere;", 1))
    err = _error(path)
    assert isinstance(err, UnknownNameError) and err.message == "unknown parser state 'nowhere'"
    assert err.line == 8


def test_error_in_included_file_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "bad.p4").write_text("// helper\n\nconst bit<8> Z = nope;\n")
    err = _error(_program(tmp_path, decls='#include "inc/bad.p4"'))
    assert isinstance(err, UnknownNameError)
    assert err.file.endswith("inc/bad.p4") and err.line == 3
    assert err.message == "unknown name 'nope'"


@pytest.mark.parametrize(
    ("decls", "message"),
    [
        ('#include "missing.p4"', '#include "missing.p4": file not found'),
        ("#include <psa.p4>", "<psa.p4>: p4sim provides only <core.p4> and <v1model.p4>"),
        ("#endif", "#endif without #if"),
        ("#frobnicate", "unknown directive #frobnicate"),
        ("#ifdef X", "#if/#ifdef without #endif"),
    ],
)
def test_preprocessor_errors(tmp_path: Path, decls: str, message: str) -> None:
    err = _error(_program(tmp_path, decls=decls))
    assert isinstance(err, PreprocessorError)
    assert err.message == message and err.line == DECLS_LINE


def test_defines_and_conditionals(tmp_path: Path) -> None:
    decls = "#ifdef WIDE\nconst bit<8> K = 2;\n#else\nconst bit<8> K = 1;\n#endif"
    body = "hdr.h.a = K + PLUS_ONE(1);"
    path = _program(tmp_path, decls=decls + "\n#define PLUS_ONE(x) ((x) + 1)", body=body)
    from p4sim.switch import Switch

    narrow = Switch(load_program(path)).process(0, b"\x00\x00\x00")
    wide = Switch(load_program(path, defines={"WIDE": "1"})).process(0, b"\x00\x00\x00")
    assert narrow[0][1][0] == 3 and wide[0][1][0] == 4


def test_table_without_default_action_misses_to_no_action(tmp_path: Path) -> None:
    from finsy.proto import p4i

    from p4sim.switch import Switch

    table = "table t { key = { hdr.h.a: exact; } actions = { set; } }"
    program = load_program(_program(tmp_path, locals_=table, body="t.apply();"))
    (info,) = program.p4info.tables
    no_action = next(a for a in program.p4info.actions if a.preamble.name == "NoAction")
    scopes = {ref.id: ref.scope for ref in info.action_refs}
    assert scopes[no_action.preamble.id] == p4i.ActionRef.DEFAULT_ONLY
    assert not info.const_default_action_id
    assert Switch(program).process(0, b"\x05\x00\x00") == [(0, b"\x05\x00\x00")]
