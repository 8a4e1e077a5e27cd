"""tunnelctl commands that need no server: --dry-run, graph -f, argument and file errors.

Run just this file: .venv/bin/python -m pytest tests/tunnelctl/test_cli_offline.py -q
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from tunnelctl.__main__ import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Nothing listens here: a command that needed the server would fail with status 3.
NOWHERE = ["--server", "localhost:1", "--insecure", "--timeout", "1"]


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main([*NOWHERE, *argv], out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def test_dry_run_prints_wire_values_and_never_a_key() -> None:
    status, out, err = _run("create", "--dry-run", "-f", str(EXAMPLES / "1-ipsec-geneve.yaml"))
    assert (status, err) == (0, "")
    assert out.count("# tunnels[") == 4
    assert "destinationIp: 33554443" in out  # 11.0.0.2 as the API encodes it
    assert 'encryptionKey: "<secret len=36>"' in out
    key = "7802f0c4bfa70e38ad4f2952c40a70623f1fe5f2efc5248616681301562bc60edba49859"
    assert key not in out and key[:8] not in out
    assert 'sourceMac: "\\020 0@P`"' in out  # 10:20:30:40:50:60 as 6 raw bytes


def test_update_dry_run_needs_every_tunnel_id(tmp_path: Path) -> None:
    path = tmp_path / "update.yaml"
    path.write_text("- {tunnelId: 5, nextAction: FORWARD}\n- {nextAction: FORWARD}\n")
    status, out, err = _run("update", "--dry-run", "-f", str(path))
    assert (status, out) == (2, "")
    assert err == "error: tunnels[1].tunnelId: an UPDATE needs the tunnel's id\n"


def test_graph_of_a_file_needs_no_server() -> None:
    status, out, _ = _run("graph", "-f", str(EXAMPLES / "2-four-tunnel-chain.yaml"))
    assert status == 0
    assert out.splitlines()[0].startswith("20000 ipsec-decrypt TUNNEL _aes256gcm64 spi 980")
    assert len(out.splitlines()) == 4


def test_unreachable_server_is_status_3() -> None:
    status, out, err = _run("list")
    assert (status, out) == (3, "")
    assert err == ("error: cannot reach the controller at localhost:1: nothing is listening at "
                   "localhost:1 (is the controller running? start it with `make run` or "
                   "tunnel-offload-controller, or point --server at it)\n")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("argv", [["get"], ["get", "0"], ["rekey", "5", "--new-spi", "x"],
                                  ["stats", "--watch", "-2"], ["nonsense"]])
def test_bad_arguments_are_status_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(*argv)
    assert (status, out) == (2, "")
    # argparse's usage, then one line: "tunnelctl[ SUBCOMMAND]: error: ..."
    assert re.search(r"^tunnelctl( \w+)?: error: ", capsys.readouterr().err, re.MULTILINE)
