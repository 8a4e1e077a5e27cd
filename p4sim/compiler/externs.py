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
    UnsupportedConstructError,
)
from p4sim.model import CounterModel, DigestModel, MeterModel, RegisterModel
from p4sim.p4types import (
    BitT,
    BoolT,
    ExternT,
    HeaderT,
    HeaderUnionT,
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


# counters and meters: (unit enum, construct, unit names, the ProgramModel list, model, global)
_COUNTER_UNITS = ("PACKETS", "BYTES", "BOTH")
_METER_UNITS = ("PACKETS", "BYTES")
_COUNTING_EXTERNS: dict[str, tuple[str, str, tuple[str, ...], str, Any, str]] = {
    "counter": ("CounterType", "counter", _COUNTER_UNITS, "counters", CounterModel, "_C_"),
    "direct_counter": ("CounterType", "counter", _COUNTER_UNITS, "direct_counters",
                       CounterModel, "_DC_"),
    "meter": ("MeterType", "meter", _METER_UNITS, "meters", MeterModel, "_M_"),
    "direct_meter": ("MeterType", "meter", _METER_UNITS, "direct_meters", MeterModel, "_DM_"),
}


class Externs:
    """Extern instances, methods and functions (a part of `Compiler`)."""

    def instantiate_extern(self: Compiler, loc: Tree, qname: str, n: str, tname: str, tnode: Tree,
                           args: Tree, scope: Scope) -> Sym:
        anns = self.annotations(kids(loc)[0])
        full = self.qualify(qname, n, anns)
        arglist = [a for a in kids(args) if a is not None]
        ext = self.check_extern_instance(tname, tnode, args, arglist)
        pyname = py(full)
        explicit_id = self.ann_get(anns, "id")
        bindings: dict[str, P4Type] = {}
        if tnode.data == "specialized_type":
            bindings = {p: self.resolve_type(a)
                        for p, a in zip(ext.type_params, kids(kids(tnode)[1]), strict=True)}
        sym = self._extern_sym(loc, tname, tnode, arglist, full, pyname, explicit_id, scope)
        sym.bindings = bindings
        return sym

    def _extern_sym(self: Compiler, loc: Tree, tname: str, tnode: Tree, arglist: list[Any],
                    full: str, pyname: str, explicit_id: tuple[object, ...] | None,
                    scope: Scope) -> Sym:
        if tname in _COUNTING_EXTERNS:
            return self._counting_extern(tname, arglist, full, pyname, explicit_id, scope)
        if tname == "register":
            vt = self.register_value_type(tnode)
            targs = kids(kids(tnode)[1])
            size = self.const_eval(arglist[0])
            it = self.resolve_type(targs[1]) if len(targs) > 1 else BitT(32)
            self.model.registers.append(RegisterModel(name=full, size=size, bitwidth=vt.width,
                                                      explicit_id=annotation_int(explicit_id)))
            return Sym("extern", ExternT("register"), f"_R_{pyname}", info=(full, vt, it))
        raise self.fail(UnsupportedConstructError, loc, f"extern {tname} is not supported",
                        tname)

    def _counting_extern(self: Compiler, tname: str, arglist: list[Any], full: str, pyname: str,
                         explicit_id: tuple[object, ...] | None, scope: Scope) -> Sym:
        """`counter(size, CounterType.x)`, `meter(size, MeterType.x)` and their direct forms
        (no size: one cell per entry of the table they are attached to)."""
        enum, construct, units, models, model_cls, prefix = _COUNTING_EXTERNS[tname]
        size = 0 if tname.startswith("direct_") else self.const_eval(arglist[0])
        unit = units[self.check_enum_constant(arglist[-1], scope, enum, construct)[1]]
        getattr(self.model, models).append(model_cls(name=full, size=size, unit=unit,
                                                     explicit_id=annotation_int(explicit_id)))
        return Sym("extern", ExternT(tname), f"{prefix}{pyname}", info=full)

    def packet_method(self: Compiler, kind: str, m: str, args: list[Any], scope: Scope,
                      node: Any) -> Val:
        self.check_packet_method(kind, m, node)
        if kind == "packet_in":
            if m == "extract":
                header = self.check_extract(args, node, scope)
                target = norm_expr(args[0])
                v = self.expr(target, scope)
                fn = f"X_{py(header.name)}"
                extra = f", {self.expr(args[1], scope).code}" if len(args) == 2 else ""
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
        self.check_args(args, {1}, node, "emit")
        v = self.expr(args[0], scope)
        self.check_emit_type(v.type, args[0])
        # a header's bytes are made inline (header_value), not by a call per header
        return Val("\n".join(self.emit_code(v)) or "pass", VoidT())

    def emit_code(self: Compiler, v: Val) -> list[str]:
        """The statements emitting `v` (`checker_rules.check_emit_type` has checked it)."""
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
        assert isinstance(t, StructT | HeaderUnionT)
        out = []
        for f in t.fields:
            out += self.emit_code(Val(f"{v.code}.f_{f.name}", f.type))
        return out

    def extern_method(self: Compiler, sym: Sym, m: str, args: list[Any], scope: Scope, node: Any,
                      statement: bool) -> Val:
        self.check_extern_call(sym, m, args, scope, node)
        name = sym.type.name  # type: ignore[attr-defined]
        if name == "counter" and m == "count":
            i = self.expr(args[0], scope)
            return Val(f"{sym.code}.count({i.code}, len(P.data))", VoidT())
        if name == "direct_counter":
            return Val("pass", VoidT())  # counted on every hit of its table, as BMv2 does
        if name == "meter" and m == "execute_meter":
            i = self.expr(args[0], scope)
            target = self.expr(norm_expr(args[1]), scope)
            self.check_meter_result(target, args[1], "execute_meter")
            return Val(f"{target.code} = {sym.code}.execute({i.code}, len(P.data))", VoidT())
        if name == "direct_meter" and m == "read":
            target = self.expr(norm_expr(args[0]), scope)
            self.check_meter_result(target, args[0], "direct_meter.read")
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
            self.check_verify(args, scope, node)
            c = self.expr(args[0], scope)
            e = self.expr(args[1], scope)
            return Val(f"if not {c.code}: raise ParserFailure({e.code})", VoidT())
        if name == "digest":
            self.coerce(self.expr(args[0], scope), BitT(32), args[0], "digest")
            data = self.expr(args[1], scope)
            st = self.check_digest_data(data.type, args[1])
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
            self.check_lvalue(norm_expr(args[0]), scope, "result")
            target = self.expr(norm_expr(args[0]), scope)
            lo = self.coerce(self.expr(args[1], scope), target.type, args[1], "random")
            hi = self.coerce(self.expr(args[2], scope), target.type, args[2], "random")
            return Val(f"{target.code} = random_between({lo.code}, {hi.code})", VoidT())
        if name == "hash":
            self.check_lvalue(norm_expr(args[0]), scope, "result")
            target = self.expr(norm_expr(args[0]), scope)
            algo = self.check_hash_algorithm(args[1], scope)
            base = self.expr(args[2], scope)
            hash_data = self.data_bytes(args[3], self.data_items(args[3], scope))
            mx = self.expr(args[4], scope)
            w = bit_width(target.type)
            return Val(f"{target.code} = hash_result({algo!r}, {base.code}, {hash_data}, "
                       f"{mx.code}, {w})", VoidT())
        if name in ("verify_checksum", "update_checksum", "update_checksum_with_payload",
                    "verify_checksum_with_payload"):
            self.check_checksum_condition(name, args[0], scope)
            cond = self.expr(args[0], scope)
            items = self.data_items(args[1], scope)
            data_code = self.data_bytes(args[1], items)
            target = self.expr(norm_expr(args[2]), scope)
            algo = self.check_hash_algorithm(args[3], scope)
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
            self.check_lvalue(norm_expr(args[2]), scope, "checksum")
            if w < {"csum16": 16, "crc16": 16, "crc32": 32}.get(algo, 0):
                value = f"({value} & {(1 << w) - 1:#x})"  # BMv2 keeps the field's low bits
            return Val(f"if {cond.code}: {target.code} = {value}", VoidT())
        raise self.fail(UnsupportedConstructError, node, f"{name} is not supported", name)

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
        self.check_hash_data(node, items)
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
            parts.append(f"({item.code}, {bit_width(t)})")
        # headers are already bytes; fields not adding up to whole bytes are packed bit by bit
        if all(p.startswith("(") for p in parts):
            return f"pack_bits([{', '.join(parts)}])"
        return " + ".join(parts)  # whole headers only (`check_hash_data`)
