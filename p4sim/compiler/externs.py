# mypy: disable-error-code="misc"
# (each part is a mixin of `Compiler`; its methods say so with `self: Compiler`,
# which mypy reports under `misc` because the host class is not a protocol)
"""The extern library: what v1model's and core.p4's externs compile to.

Extern instances (counters, meters, registers, hashes, checksums, digests...) become
control-plane models with ids and globals bound at instantiation (`_C_*`, `_R_*`, `_M_*`); their
methods and the extern functions (`mark_to_drop`, `hash`, `verify_checksum`, `clone_preserving_
field_list`...) and `packet_in`/`packet_out` methods become calls into `p4sim.dataplane_lib`.
A new extern is added here and nowhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lark import Tree

from p4sim.compiler.declarations import annotation_int
from p4sim.compiler.symbols import Scope, Sym, Val
from p4sim.errors import (
    ArgumentCountError,
    P4TypeError,
    UnknownNameError,
    UnsupportedConstructError,
)
from p4sim.model import CounterModel, DigestModel, MeterModel, RegisterModel
from p4sim.p4types import (
    BitT,
    BoolT,
    EnumT,
    ErrorT,
    ExternT,
    HeaderT,
    HeaderUnionT,
    InfIntT,
    ListT,
    P4Type,
    StackT,
    StructT,
    VarbitT,
    VoidT,
    bit_width,
)
from p4sim.tree import ident, kids, norm_expr, py

if TYPE_CHECKING:
    from p4sim.compiler.driver import Compiler


class Externs:
    """Extern instances, methods and functions (a part of `Compiler`)."""

    def instantiate_extern(self: Compiler, loc: Tree, qname: str, n: str, tname: str, tnode: Tree,
                           args: Tree, scope: Scope) -> Sym:
        anns = self.annotations(kids(loc)[0])
        full = self.qualify(qname, n, anns)
        arglist = [a for a in kids(args) if a is not None]
        ext = self.externs.get(tname)
        if ext is None:
            raise self.fail(UnknownNameError, tnode, f"unknown extern type '{tname}'",
                            "instantiation")
        if len(arglist) not in ext.ctor_arities:
            raise self.fail(ArgumentCountError, args,
                            f"{tname} takes {sorted(ext.ctor_arities)} constructor arguments, "
                            f"got {len(arglist)}", "instantiation")
        pyname = py(full)
        explicit_id = self.ann_get(anns, "id")
        bindings: dict[str, P4Type] = {}
        if tnode.data == "specialized_type":
            targ_nodes = kids(kids(tnode)[1])
            if len(targ_nodes) != len(ext.type_params):
                raise self.fail(P4TypeError, tnode,
                                f"{tname} takes {len(ext.type_params)} type arguments, got "
                                f"{len(targ_nodes)} (v1model's API depends on V1MODEL_VERSION)",
                                "instantiation")
            bindings = {p: self.resolve_type(a)
                        for p, a in zip(ext.type_params, targ_nodes, strict=True)}
        sym = self._extern_sym(loc, tname, tnode, arglist, full, pyname, explicit_id, scope)
        sym.bindings = bindings
        return sym

    def _extern_sym(self: Compiler, loc: Tree, tname: str, tnode: Tree, arglist: list[Any],
                    full: str, pyname: str, explicit_id: tuple[object, ...] | None,
                    scope: Scope) -> Sym:
        if tname == "counter":
            size = self.const_eval(arglist[0])
            unit = self.counter_unit(arglist[1], scope)
            self.model.counters.append(CounterModel(name=full, size=size, unit=unit,
                                                    explicit_id=annotation_int(explicit_id)))
            return Sym("extern", ExternT("counter"), f"_C_{pyname}", info=full)
        if tname == "direct_counter":
            unit = self.counter_unit(arglist[0], scope)
            self.model.direct_counters.append(CounterModel(
                name=full, size=0, unit=unit, explicit_id=annotation_int(explicit_id)))
            return Sym("extern", ExternT("direct_counter"), f"_DC_{pyname}", info=full)
        if tname == "register":
            targs = kids(kids(tnode)[1]) if tnode.data == "specialized_type" else []
            if not targs:
                raise self.fail(P4TypeError, tnode, "register needs a type: register<bit<W>>",
                                "register")
            vt = self.resolve_type(targs[0])
            if not isinstance(vt, BitT):
                raise self.fail(UnsupportedConstructError, tnode,
                                f"register<{vt.show()}>: p4sim supports bit<W> registers",
                                "register")
            size = self.const_eval(arglist[0])
            it = self.resolve_type(targs[1]) if len(targs) > 1 else BitT(32)
            self.model.registers.append(RegisterModel(name=full, size=size, bitwidth=vt.width,
                                                      explicit_id=annotation_int(explicit_id)))
            return Sym("extern", ExternT("register"), f"_R_{pyname}", info=(full, vt, it))
        if tname == "meter":
            size = self.const_eval(arglist[0])
            unit = self.meter_unit(arglist[1], scope)
            self.model.meters.append(MeterModel(name=full, size=size, unit=unit,
                                                explicit_id=annotation_int(explicit_id)))
            return Sym("extern", ExternT("meter"), f"_M_{pyname}", info=full)
        if tname == "direct_meter":
            unit = self.meter_unit(arglist[0], scope)
            self.model.direct_meters.append(MeterModel(name=full, size=0, unit=unit,
                                                       explicit_id=annotation_int(explicit_id)))
            return Sym("extern", ExternT("direct_meter"), f"_DM_{pyname}", info=full)
        raise self.fail(UnsupportedConstructError, loc, f"extern {tname} is not supported",
                        tname)

    def meter_unit(self: Compiler, node: Any, scope: Scope) -> str:
        v = self.expr(node, scope)
        if not isinstance(v.type, EnumT) or v.type.name != "MeterType" or v.const is None:
            raise self.fail(P4TypeError, node, "expected a MeterType", "meter")
        return ["PACKETS", "BYTES"][v.const]

    def counter_unit(self: Compiler, node: Any, scope: Scope) -> str:
        v = self.expr(node, scope)
        if not isinstance(v.type, EnumT) or v.type.name != "CounterType" or v.const is None:
            raise self.fail(P4TypeError, node, "expected a CounterType", "counter")
        return ["PACKETS", "BYTES", "BOTH"][v.const]

    def packet_method(self: Compiler, kind: str, m: str, args: list[Any], scope: Scope,
                      node: Any) -> Val:
        if kind == "packet_in":
            if m == "extract":
                self.check_args(args, {1, 2}, node, "extract")
                target = norm_expr(args[0])
                v = self.expr(target, scope)
                if not isinstance(v.type, HeaderT):
                    raise self.fail(P4TypeError, args[0],
                                    f"extract needs a header, got {v.type.show()}", "extract")
                fn = f"X_{py(v.type.name)}"
                has_varbit = any(isinstance(f.type, VarbitT) for f in v.type.fields)
                if has_varbit != (len(args) == 2):
                    raise self.fail(ArgumentCountError, node,
                                    "extract of a header with a varbit takes 2 arguments, "
                                    "otherwise 1", "extract")
                extra = ""
                if len(args) == 2:
                    bits = self.expr(args[1], scope)
                    if not isinstance(bits.type, BitT | InfIntT):
                        raise self.fail(P4TypeError, args[1], "extract size must be bit<32>",
                                        "extract")
                    extra = f", {bits.code}"
                if target.data == "member" and ident(kids(target)[1]) == "next":
                    stack = self.expr(kids(target)[0], scope)
                    return Val(f"{fn}(P, {v.code}{extra}); {stack.code}.nxt += 1", VoidT())
                union_next = self.union_stack_next(target, scope)
                if union_next is not None:
                    # `us.next.x`: extract into the next union's member x, invalidate the other
                    # members, then push (BMv2's ParserOpExtractUnionStack)
                    stack_code, elem = union_next
                    u = self.gen.tmp("u")
                    member = ident(kids(target)[1])
                    off = "".join(f"; {u}.f_{f.name}._v = False" for f in elem.fields
                                  if f.name != member)
                    oob = self.error_code("StackOutOfBounds")
                    return Val(f"{u} = stack_next({stack_code}, {oob}); "
                               f"{fn}(P, {u}.f_{member}{extra}){off}; {stack_code}.nxt += 1",
                               VoidT())
                return Val(f"{fn}(P, {v.code}{extra}){self.union_siblings_off(target, scope)}",
                           VoidT())
            if m == "advance":
                self.check_args(args, {1}, node, "advance")
                v = self.coerce(self.expr(args[0], scope), BitT(32), args[0], "advance")
                err = self.error_code("PacketTooShort")
                if v.const is not None and v.const % 8 == 0:
                    return Val(f"advance(P, {v.code}, {err})", VoidT())
                # BMv2 (src/bm_sim/parser.cpp, ParserOpAdvance): a bit count that is not a whole
                # number of bytes is ParserInvalidArgument
                count = self.gen.tmp("adv")
                bad = self.error_code("ParserInvalidArgument")
                return Val(f"{count} = {v.code}\nif {count} % 8: raise ParserFailure({bad})\n"
                           f"advance(P, {count}, {err})", VoidT())
            raise self.fail(UnsupportedConstructError, node, f"packet_in.{m} is not supported",
                            f"packet_in.{m}")
        if m == "emit":
            self.check_args(args, {1}, node, "emit")
            v = self.expr(args[0], scope)
            # a header's bytes are made inline (header_value), not by a call per header
            return Val("\n".join(self.emit_code(v, args[0])) or "pass", VoidT())
        raise self.fail(UnknownNameError, node, f"packet_out has no method '{m}'", "packet_out")

    def emit_code(self: Compiler, v: Val, node: Any) -> list[str]:
        t = v.type
        if isinstance(t, HeaderT):
            if any(isinstance(f.type, VarbitT) for f in t.fields):
                return [f"if {v.code}._v: P.emitted.append(E_{py(t.name)}({v.code}))"]
            h = self.gen.tmp("h")
            return [f"{h} = {v.code}",
                    f"if {h}._v: P.emitted.append({self.header_value(t, h)}.to_bytes("
                    f"{t.fixed_width() // 8}, 'big'))"]
        if isinstance(t, StackT):
            if isinstance(t.elem, HeaderUnionT):  # each union's valid member, in order
                members = ", ".join(f"(u.f_{f.name}, E_{py(f.type.show())})"
                                    for f in t.elem.fields)
                return [f"[P.emitted.append(e(h)) for u in {v.code}.a for h, e in ({members},) "
                        f"if h._v] if {v.code}.live else None"]
            # an untouched stack (elements never made, HeaderStack.live) is all invalid
            return [f"[P.emitted.append(E_{py(t.elem.name)}(h)) for h in {v.code}.a if h._v] "
                    f"if {v.code}.live else None"]
        if isinstance(t, StructT | HeaderUnionT):
            out = []
            for f in t.fields:
                out += self.emit_code(Val(f"{v.code}.f_{f.name}", f.type), node)
            return out
        raise self.fail(P4TypeError, node, f"cannot emit {t.show()}", "emit")

    def extern_method(self: Compiler, sym: Sym, m: str, args: list[Any], scope: Scope, node: Any,
                      statement: bool) -> Val:
        ext = self.externs[sym.type.name]  # type: ignore[attr-defined]
        if m not in ext.methods:
            raise self.fail(UnknownNameError, node, f"{ext.name} has no method '{m}'", "call")
        self.check_args(args, ext.methods[m], node, f"{ext.name}.{m}")
        self.check_signature(f"{ext.name}.{m}", ext.signatures.get(m, []), args, scope,
                             sym.bindings)
        name = sym.type.name  # type: ignore[attr-defined]
        if name == "counter" and m == "count":
            i = self.expr(args[0], scope)
            return Val(f"{sym.code}.count({i.code}, len(P.data))", VoidT())
        if name == "direct_counter":
            return Val("pass", VoidT())  # counted on every hit of its table, as BMv2 does
        if name == "meter" and m == "execute_meter":
            i = self.expr(args[0], scope)
            target = self.expr(norm_expr(args[1]), scope)
            if not isinstance(target.type, BitT) or target.type.width < 2:
                raise self.fail(P4TypeError, args[1], "execute_meter needs a bit<W> result "
                                "with W >= 2", "meter")
            return Val(f"{target.code} = {sym.code}.execute({i.code}, len(P.data))", VoidT())
        if name == "direct_meter" and m == "read":
            target = self.expr(norm_expr(args[0]), scope)
            if not isinstance(target.type, BitT) or target.type.width < 2:
                raise self.fail(P4TypeError, args[0], "direct_meter.read needs a bit<W> result "
                                "with W >= 2", "meter")
            return Val(f"{target.code} = P.meter_color", VoidT())
        if name == "register":
            full, vt, it = sym.info
            if m == "write":
                i = self.expr(args[0], scope)
                v = self.coerce(self.expr(args[1], scope), vt, args[1], "register write")
                return Val(f"reg_write({sym.code}, {i.code}, {v.code})", VoidT())
            if len(args) == 2:
                out = norm_expr(args[0])
                target = self.expr(out, scope)
                self.coerce(Val("", vt), target.type, args[0], "register read")
                i = self.expr(args[1], scope)
                return Val(f"{target.code} = reg_read({sym.code}, {i.code})", VoidT())
            i = self.expr(args[0], scope)
            return Val(f"reg_read({sym.code}, {i.code})", vt)
        raise self.fail(UnsupportedConstructError, node, f"{name}.{m} is not supported",
                        f"{name}.{m}")

    def extern_function(self: Compiler, name: str, args: list[Any], scope: Scope, node: Any) -> Val:
        if name == "mark_to_drop":
            sm_code = self.expr(args[0], scope).code if args else "P.sm"  # () is deprecated
            return Val(f"{sm_code}.f_egress_spec = 511; {sm_code}.f_mcast_grp = 0", VoidT())
        if name == "verify":
            if not scope.find_states():
                raise self.fail(P4TypeError, node, "verify can only be called in a parser",
                                "verify")
            c = self.expr(args[0], scope)
            e = self.expr(args[1], scope)
            if not isinstance(c.type, BoolT) or not isinstance(e.type, ErrorT):
                raise self.fail(P4TypeError, node, "verify(bool, error)", "verify")
            return Val(f"if not {c.code}: raise ParserFailure({e.code})", VoidT())
        if name == "digest":
            self.coerce(self.expr(args[0], scope), BitT(32), args[0], "digest")
            data = self.expr(args[1], scope)
            if not isinstance(data.type, StructT) or not all(
                    isinstance(f.type, BitT | BoolT) for f in data.type.fields):
                raise self.fail(UnsupportedConstructError, args[1],
                                "digest data must be a struct of bit<W>/bool fields (its type "
                                "names the digest in the P4Info)", "digest")
            st = data.type
            if all(d.name != st.name for d in self.model.digests):
                self.model.digests.append(DigestModel(
                    name=st.name, fields=tuple((f.name, bit_width(f.type)) for f in st.fields)))
            values = "".join(
                f"int({data.code}.f_{f.name}), " if isinstance(f.type, BoolT)
                else f"{data.code}.f_{f.name}, " for f in st.fields)
            return Val(f"emit_digest(P, _DG_{py(st.name)}, ({values}))", VoidT())
        if name == "truncate":
            length = self.expr(args[0], scope)
            return Val(f"P.truncate_to = {length.code}", VoidT())
        if name in ("assert", "assume"):
            cond = self.expr(args[0], scope)
            file, line, _col = self.where(node)
            where = f"{name} failed at {file}:{line}"
            return Val(f"if not {cond.code}: raise P4AssertionFailure({where!r})", VoidT())
        if name in ("clone", "clone_preserving_field_list"):
            session = self.expr(args[1], scope)
            index = self.const_eval(args[2]) if len(args) == 3 else None
            return Val(f"P.clone = ({session.code}, {index!r})", VoidT())
        if name in ("recirculate_preserving_field_list", "resubmit_preserving_field_list"):
            idx = self.const_eval(args[0])
            attr = "recirculate" if name.startswith("recirculate") else "resubmit"
            return Val(f"P.{attr} = {idx}", VoidT())
        if name == "log_msg":
            fmt = self.expr(args[0], scope)
            if len(args) == 1:
                return Val(f"log_message({fmt.code})", VoidT())
            data = self.expr(args[1], scope)
            return Val(f"log_message({fmt.code}, {data.code})", VoidT())
        if name == "random":
            self.check_lvalue(norm_expr(args[0]), scope)
            target = self.expr(norm_expr(args[0]), scope)
            lo = self.coerce(self.expr(args[1], scope), target.type, args[1], "random")
            hi = self.coerce(self.expr(args[2], scope), target.type, args[2], "random")
            return Val(f"{target.code} = random_between({lo.code}, {hi.code})", VoidT())
        if name == "hash":
            self.check_lvalue(norm_expr(args[0]), scope)
            target = self.expr(norm_expr(args[0]), scope)
            algo = self.algo(args[1], scope)
            base = self.expr(args[2], scope)
            hash_data = self.data_bytes(args[3], self.data_items(args[3], scope))
            mx = self.expr(args[4], scope)
            w = bit_width(target.type)
            return Val(f"{target.code} = hash_result({algo!r}, {base.code}, {hash_data}, "
                       f"{mx.code}, {w})", VoidT())
        if name in ("verify_checksum", "update_checksum", "update_checksum_with_payload",
                    "verify_checksum_with_payload"):
            cond = self.expr(args[0], scope)
            if not isinstance(cond.type, BoolT):
                raise self.fail(P4TypeError, args[0], f"{name}: condition must be bool", name)
            items = self.data_items(args[1], scope)
            data_code = self.data_bytes(args[1], items)
            target = self.expr(norm_expr(args[2]), scope)
            algo = self.algo(args[3], scope)
            w = bit_width(target.type)
            if name.endswith("_with_payload"):
                # the payload: every byte the parser did not extract
                data_code = f"({data_code} + P.data[P.off:])"
            value = (f"{algo}({data_code})" if algo in ("crc16", "crc32", "csum16")
                     else f"compute_hash({algo!r}, {data_code}, {w})")
            packed = self.packed_fields(items)
            if algo == "csum16" and packed is not None and not name.endswith("_with_payload"):
                # fields only (an IPv4 header's, say): the checksum of the packed integer,
                # without making its bytes (dataplane_lib.csum16_value; odd bytes padded)
                number, nbytes = packed
                value = f"csum16_value({number}{' << 8' if nbytes % 2 else ''})"
            if name.startswith("verify_"):
                return Val(f"if {cond.code} and {value} != {target.code}: "
                           "P.sm.f_checksum_error = 1", VoidT())
            self.check_lvalue(norm_expr(args[2]), scope)
            if w < {"csum16": 16, "crc16": 16, "crc32": 32}.get(algo, 0):
                value = f"({value} & {(1 << w) - 1:#x})"  # BMv2 keeps the field's low bits
            return Val(f"if {cond.code}: {target.code} = {value}", VoidT())
        raise self.fail(UnsupportedConstructError, node, f"{name} is not supported", name)

    def algo(self: Compiler, node: Any, scope: Scope) -> str:
        v = self.expr(node, scope)
        if not isinstance(v.type, EnumT) or v.type.name != "HashAlgorithm" or v.const is None:
            raise self.fail(P4TypeError, node, "expected a HashAlgorithm", "hash")
        a = v.type.members[v.const]
        if a not in ("crc16", "crc32", "csum16", "identity", "xor16", "random"):
            raise self.fail(UnsupportedConstructError, node,
                            f"HashAlgorithm.{a} is not supported", "hash")
        return a

    def data_items(self: Compiler, node: Any, scope: Scope) -> list[Any]:
        """The values of hash or checksum data: a list's items, or the one value."""
        v = self.expr(node, scope)
        return list(v.node) if isinstance(v.type, ListT) else [v]

    def packed_fields(self: Compiler, items: list[Any]) -> tuple[str, int] | None:
        """Hash or checksum data made only of fixed-width fields (no header, no varbit) adding
        up to whole bytes: the one integer they pack into, MSB first, and its byte count."""
        if not items or any(isinstance(item.type, HeaderT | VarbitT) for item in items):
            return None
        widths = [bit_width(item.type) for item in items]
        total = sum(widths)
        if 0 in widths or total % 8:
            return None
        terms = []
        shift = total
        for item, w in zip(items, widths, strict=True):
            shift -= w
            code = f"int({item.code})" if isinstance(item.type, BoolT) else item.code
            terms.append(f"({code} << {shift})" if shift else code)
        return f"({' | '.join(terms)})", total // 8

    def data_bytes(self: Compiler, node: Any, items: list[Any]) -> str:
        """The bytes of hash or checksum data (`data_items`), as an expression."""
        packed = self.packed_fields(items)
        if packed is not None:  # fields packed bit by bit, inline when byte-aligned
            number, nbytes = packed
            return f"{number}.to_bytes({nbytes}, 'big')"
        parts = []
        for item in items:
            t = item.type
            if isinstance(t, HeaderT):
                parts.append(f"E_{py(t.name)}({item.code})")
                continue
            if isinstance(t, VarbitT):
                # a varbit field counts with its current width: (value, width) read at run time
                parts.append(f"{self.varbit_value(item)}")
                continue
            w = bit_width(t)
            if w == 0:
                raise self.fail(P4TypeError, node, f"cannot hash a {t.show()}", "hash data")
            parts.append(f"({item.code}, {w})")
        # headers are already bytes; fields not adding up to whole bytes are packed bit by bit
        if all(p.startswith("(") for p in parts):
            return f"pack_bits([{', '.join(parts)}])"
        if all(p.startswith("E_") for p in parts):
            return " + ".join(parts)
        raise self.fail(UnsupportedConstructError, node,
                        "hash/checksum data mixing whole headers and fields", "hash data")
