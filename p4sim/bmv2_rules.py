"""Programs p4c-bm2-ss refuses although they are valid P4_16: refused here the same way.

p4sim could run these programs, but the BMv2 path (docker/) could not compile them, so a
program that works on p4sim and fails in the Docker set-up would be a trap. The rules and the
reason texts are p4c-bm2-ss 1.2.5.16's:

- run-time `/` and `%`: BMv2's back end has no division; p4c folds constant operands and turns a
  division or modulo by a constant power of two into a shift or a mask (its strength reduction),
  and refuses anything else with ``[--Werror=invalid] ... could not evaluate expression at
  compilation time``;
- `recirculate_preserving_field_list` only in the egress control and
  `resubmit_preserving_field_list` only in the ingress control (``[--Werror=target-error]``; the
  text for recirculate is p4c's own, which names 'resubmit').
  `clone_preserving_field_list` is accepted in both (ingress-to-egress and egress-to-egress).

The checks read the syntax tree only (no types), which is enough: both rules are about where a
construct appears and whether its operands are literals or constants.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lark import Token, Tree

from p4sim.errors import P4Error
from p4sim.preprocess import Preprocessed
from p4sim.tree import ident, kids

# extern -> (the only stage where p4c-bm2-ss accepts it, p4c's reason text)
_STAGE_ONLY = {
    "recirculate_preserving_field_list": ("egress", "'resubmit' can only be invoked in egress"),
    "resubmit_preserving_field_list": ("ingress", "'resubmit' can only be invoked in ingress"),
}
_V1SWITCH_STAGES = {2: "ingress", 3: "egress"}  # V1Switch(parser, verify, ingress, egress, ...)
_CONSTANT_LEAVES = {"int_lit", "true_lit", "false_lit", "type_member", "error_member"}


class TargetRefusal(P4Error):
    """Valid P4 that p4c-bm2-ss refuses; `message` starts with p4c's ``[--Werror=...]`` tag."""


def check(tree: Tree, pre: Preprocessed) -> None:
    """Raise `TargetRefusal` (file:line:column, p4c's reason) for the first refused construct."""
    constants = {ident(kids(node)[2]) for node in tree.iter_subtrees()
                 if node.data == "const_decl"}
    for node in tree.iter_subtrees_topdown():
        if node.data in ("div", "mod"):
            left, right = kids(node)
            if _is_constant(left, constants) and _is_constant(right, constants):
                continue
            if _is_power_of_two_literal(right):
                continue
            raise _refusal(pre, node, "[--Werror=invalid]",
                           f"{_text(pre, node)}: could not evaluate expression at compilation "
                           "time")
    for stage, body in _staged_bodies(tree):
        for call, name in _extern_calls(body):
            allowed, reason = _STAGE_ONLY.get(name, (stage, ""))
            if allowed != stage:
                raise _refusal(pre, call, "[--Werror=target-error]",
                               f"{reason} {_text(pre, call).rstrip(';').strip()}")


def _refusal(pre: Preprocessed, node: Tree, tag: str, message: str) -> TargetRefusal:
    file, line = pre.origin(node.meta.line)
    return TargetRefusal(f"{tag} {message}", file=file, line=line, column=node.meta.column,
                         construct="target")


def _text(pre: Preprocessed, node: Tree) -> str:
    return " ".join(pre.text[node.meta.start_pos:node.meta.end_pos].split())


def _is_constant(node: Any, constants: set[str]) -> bool:
    if isinstance(node, Token):
        return True
    if node.data in _CONSTANT_LEAVES:
        return True
    if node.data == "name_ref":
        return ident(kids(node)[0]) in constants
    if node.data in ("member", "index", "slice", "call", "lookahead_call", "constructor"):
        return False
    if node.data == "cast":
        return _is_constant(kids(node)[-1], constants)
    return all(_is_constant(child, constants) for child in kids(node))


def _is_power_of_two_literal(node: Any) -> bool:
    if not isinstance(node, Tree) or node.data != "int_lit":
        return False
    text = str(node.children[0]).replace("_", "")
    value_text = text.split("w", 1)[-1] if "w" in text else text
    if "s" in value_text:  # signed literal: p4c does not reduce int<> division
        return False
    try:
        value = int(value_text, 0)
    except ValueError:
        return False
    return value > 0 and value & (value - 1) == 0


def _staged_bodies(tree: Tree) -> Iterator[tuple[str, Tree]]:
    """(stage, control or global action declaration) for every one reachable from ingress or
    egress: control instances nested in a control inherit its stage, and a top-level action
    takes the stage of every control that names it."""
    controls = {ident(kids(d)[1]): d for d in tree.children if d.data == "control_decl"}
    actions = {ident(kids(d)[1]): d for d in tree.children if d.data == "action_decl"}
    stages: dict[str, set[str]] = {}
    for decl in tree.children:
        if decl.data != "instantiation" or _type_name(kids(decl)[1]) != "V1Switch":
            continue
        args = [a for a in kids(kids(decl)[2]) if isinstance(a, Tree)]
        for index, stage in _V1SWITCH_STAGES.items():
            if index < len(args) and args[index].data == "constructor":
                _mark(str(kids(args[index])[0]), stage, controls, stages)
    for name, found in stages.items():
        for stage in found:
            yield stage, controls[name]
            names = {str(tok) for tok in controls[name].scan_values(
                lambda v: isinstance(v, Token))}
            for action_name in names & actions.keys():
                yield stage, actions[action_name]


def _mark(name: str, stage: str, controls: dict[str, Tree], stages: dict[str, set[str]]) -> None:
    if name not in controls or stage in stages.setdefault(name, set()):
        return
    stages[name].add(stage)
    for local in controls[name].children:
        if isinstance(local, Tree) and local.data == "instantiation":
            _mark(_type_name(kids(local)[1]), stage, controls, stages)


def _type_name(node: Any) -> str:
    if isinstance(node, Token):
        return str(node)
    tokens = [str(t) for t in node.scan_values(lambda v: isinstance(v, Token))]
    return tokens[0] if tokens else ""


def _extern_calls(body: Tree) -> Iterator[tuple[Tree, str]]:
    for node in body.iter_subtrees_topdown():
        if node.data == "call_statement":
            target = kids(node)[0]
            if isinstance(target, Tree) and target.data == "lv_name":
                yield node, ident(kids(target)[0])
