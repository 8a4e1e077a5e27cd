"""scripts/p4info_diff.py (the CI drift check against p4c's P4Info): what counts as a difference.

Run just this file: .venv/bin/python -m pytest tests/tunnelctl/test_p4info_diff.py -q
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "p4info_diff.py"

P4INFO = """
tables {
  preamble { id: 33554433 name: "Ingress.tunnel_rules" alias: "tunnel_rules" }
  match_fields { id: 1 name: "prev_tunnel" bitwidth: 10 match_type: TERNARY }
  match_fields { id: 2 name: "dst_addr" bitwidth: 32 match_type: LPM }
  action_refs { id: 16777217 }
  action_refs { id: 16777218 }
  size: 1024
}
actions { preamble { id: 16777217 name: "Ingress.encap_geneve" alias: "encap_geneve" }
  params { id: 1 name: "vni" bitwidth: 24 } }
actions { preamble { id: 16777218 name: "NoAction" alias: "NoAction" } }
counters { preamble { id: 302055410 name: "Ingress.tunnel_in" alias: "tunnel_in" }
  spec { unit: BOTH } size: 1024 }
registers { preamble { id: 385931097 name: "Ingress.passes" alias: "passes" }
  type_spec { bitstring { bit { bitwidth: 8 } } } size: 1024 }
"""


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("p4info_diff", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_identical_files_agree_across_formats(tmp_path: Path) -> None:
    diff = _module()
    info = diff.load(_write(tmp_path / "a.txtpb", P4INFO))
    binary = tmp_path / "b.bin"
    binary.write_bytes(info.SerializeToString())
    assert diff.compare(info, diff.load(binary)) == []
    assert diff.main([str(tmp_path / "a.txtpb"), str(binary)]) == 0


def test_ids_widths_names_and_match_kinds_are_reported(tmp_path: Path) -> None:
    diff = _module()
    changed = (P4INFO.replace("bitwidth: 24", "bitwidth: 16")
               .replace("id: 302055410", "id: 302055411")
               .replace('name: "dst_addr" bitwidth: 32 match_type: LPM',
                        'name: "dst_addr" bitwidth: 32 match_type: TERNARY')
               .replace("bit { bitwidth: 8 }", "bit { bitwidth: 16 }")
               .replace('"Ingress.passes"', '"Ingress.pass_count"'))
    problems = diff.compare(diff.load(_write(tmp_path / "a.txt", P4INFO)),
                            diff.load(_write(tmp_path / "b.txt", changed)))
    assert problems == [
        "tables: 'Ingress.tunnel_rules': match field 'dst_addr' match_type LPM != TERNARY",
        "actions: 'Ingress.encap_geneve': param 'vni' bitwidth 24 != 16",
        "counters: 'Ingress.tunnel_in': id 0x1200fff2 != 0x1200fff3",
        "registers: 'Ingress.passes' only in the first file",
        "registers: 'Ingress.pass_count' only in the second file",
    ]


def test_everything_p4c_writes_is_compared(tmp_path: Path) -> None:
    # p4c's details the old comparison ignored: sizes, annotations, scopes, default actions,
    # initial entries, type_info
    diff = _module()
    info = diff.load(_write(tmp_path / "a.txt", P4INFO))
    changed = (P4INFO.replace("size: 1024\n}", "size: 2048\n}")
               .replace('action_refs { id: 16777218 }',
                        'action_refs { id: 16777218 annotations: "@defaultonly" '
                        'scope: DEFAULT_ONLY }\n'
                        '  initial_default_action { action_id: 16777218 }\n'
                        '  has_initial_entries: true')
               .replace('alias: "NoAction" }', 'alias: "NoAction" annotations: "@noWarn" }')
               + "type_info {}\n")
    problems = diff.compare(info, diff.load(_write(tmp_path / "b.txt", changed)))
    assert problems == [
        "tables: 'Ingress.tunnel_rules': action ref 0x01000002 scope TABLE_AND_DEFAULT != "
        "DEFAULT_ONLY",
        "tables: 'Ingress.tunnel_rules': action ref 0x01000002 annotations [] != "
        "['@defaultonly']",
        "tables: 'Ingress.tunnel_rules': initial_default_action only in the second file",
        "tables: 'Ingress.tunnel_rules': size 1024 != 2048",
        "tables: 'Ingress.tunnel_rules': has_initial_entries False != True",
        "actions: 'NoAction': annotations [] != ['@noWarn']",
        "type_info: only in the second file",
    ]


def test_entity_order_is_a_difference_unless_ignored(tmp_path: Path) -> None:
    diff = _module()
    info = diff.load(_write(tmp_path / "a.txt", P4INFO))
    swapped = type(info)()
    swapped.CopyFrom(info)
    swapped.actions[0].CopyFrom(info.actions[1])
    swapped.actions[1].CopyFrom(info.actions[0])
    assert diff.compare(info, swapped) == [
        "actions: order ['Ingress.encap_geneve', 'NoAction'] != "
        "['NoAction', 'Ingress.encap_geneve']"]
    assert diff.compare(info, swapped, ignore_order=True) == []


def test_command_line_exit_status_and_output(tmp_path: Path) -> None:
    first = _write(tmp_path / "a.txt", P4INFO)
    second = _write(tmp_path / "b.txt",
                    P4INFO.replace('id: 1 name: "vni"', 'id: 2 name: "vni"'))
    result = subprocess.run([sys.executable, str(SCRIPT), str(first), str(second)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout == "actions: 'Ingress.encap_geneve': param 'vni' id 1 != 2\n"
    assert "1 difference(s)" in result.stderr
    broken = _write(tmp_path / "c.txt", "tables { nonsense }")
    result = subprocess.run([sys.executable, str(SCRIPT), str(first), str(broken)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
