"""``tunnelctl --insecure`` warns whenever plaintext would leave the machine, and a client key
others can read is warned about.

Run just this file: .venv/bin/python -m pytest tests/tunnelctl/test_cli_plaintext.py -q
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tunnelctl.__main__ import main


def _run(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main([*argv], out=out, err=err)
    return status, err.getvalue()


@pytest.mark.parametrize("server", ["192.0.2.1:1", "[2001:db8::1]:1", "controller.example:1"])
def test_insecure_to_another_host_is_warned(server: str) -> None:
    status, err = _run("--server", server, "--insecure", "--timeout", "0.3", "list")
    assert status == 3  # nothing listens there
    first = err.splitlines()[0]
    assert first == (f"tunnelctl: warning: --insecure: requests to {server}, SA keys included, "
                     "travel unencrypted and the server is not authenticated")


@pytest.mark.parametrize("server", ["localhost:1", "127.0.0.1:1", "[::1]:1", "unix:/nonexistent"])
def test_insecure_on_this_machine_is_not_warned(server: str) -> None:
    status, err = _run("--server", server, "--insecure", "--timeout", "0.3", "list")
    assert status == 3
    assert "warning" not in err and err.startswith("error: cannot reach the controller")


def test_a_client_key_others_can_read_is_warned_about(tmp_path: Path) -> None:
    files = {name: tmp_path / name for name in ("ca.pem", "client.pem", "client.key")}
    for path in files.values():
        path.write_text("not used: nothing listens\n")
    argv = ["--server", "localhost:1", "--ca", str(files["ca.pem"]), "--cert",
            str(files["client.pem"]), "--key", str(files["client.key"]), "--timeout", "0.3",
            "list"]
    files["client.key"].chmod(0o640)
    status, err = _run(*argv)
    assert status == 3
    assert err.splitlines()[0] == (f"tunnelctl: warning: client key {files['client.key']} is "
                                   "accessible by group or others (mode 640); chmod 600 it")
    files["client.key"].chmod(0o600)
    status, err = _run(*argv)
    assert status == 3 and "warning" not in err
