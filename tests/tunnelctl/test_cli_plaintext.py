"""``tunnelctl --insecure`` warns whenever plaintext would leave the machine.

Run just this file: .venv/bin/python -m pytest tests/tunnelctl/test_cli_plaintext.py -q
"""

from __future__ import annotations

import io

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
