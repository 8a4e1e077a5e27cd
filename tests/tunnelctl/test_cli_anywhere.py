"""tunnelctl from any directory: where the address and the trusted certificate come from, and one
line with the cause and the fixing flag for every connection or TLS failure (issue 14).

Run just this file: .venv/bin/python -m pytest tests/tunnelctl/test_cli_anywhere.py -q
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tc_support import (
    Controller,
    free_port,
    other_self_signed_cert,
    start_controller,
    stop,
)

ENV_NAMES = ("TUNNELOFFLOAD_STATE_DIR", "TUNNELCTL_STATE_DIR", "TUNNELCTL_SERVER")


def _tunnelctl(cwd: Path, home: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """tunnelctl as a user runs it: a new process, in ``cwd``, with only ``home``'s config."""
    clean = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    clean.update(XDG_CONFIG_HOME=str(home / "config"), XDG_STATE_HOME=str(home / "state"), **env)
    return subprocess.run([sys.executable, "-m", "tunnelctl", "--timeout", "5", *argv], cwd=cwd,
                          env=clean, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    process, running = start_controller(tmp_path_factory.mktemp("tls") / "state")
    try:
        ready = running.cli("health", "--wait", "30")
        assert ready.status == 0, ready.err + running.log.read_text()
        yield running
    finally:
        stop(process)


def test_state_dir_from_the_environment(tls_server: Controller, tmp_path: Path) -> None:
    result = _tunnelctl(tmp_path, tmp_path, "--server", tls_server.address, "list",
                        TUNNELOFFLOAD_STATE_DIR=str(tls_server.state_dir))
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "ID  KIND  MATCH  NEXT  DETAILS\n", "")


def test_server_and_ca_from_the_user_config_file(tls_server: Controller, tmp_path: Path) -> None:
    config = tmp_path / "config" / "tunneloffload" / "tunnelctl.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(f"server: {tls_server.address}\nca: {tls_server.cert}\n")
    result = _tunnelctl(tmp_path, tmp_path, "list")
    assert (result.returncode, result.stderr) == (0, "")

    config.write_text("sever: localhost:1\n")
    broken = _tunnelctl(tmp_path, tmp_path, "list")
    assert broken.returncode == 2
    assert broken.stderr == (f"error: {config}: unknown key(s) sever; known: server, state_dir, "
                             "ca, cert, key, server_name, metrics\n")


def test_make_run_record_is_the_last_resort(tls_server: Controller, tmp_path: Path) -> None:
    record = tmp_path / "config" / "tunneloffload" / "make-run.yaml"
    record.parent.mkdir(parents=True)
    record.write_text(f"server: {tls_server.address}\nstate_dir: {tls_server.state_dir}\n")
    assert _tunnelctl(tmp_path, tmp_path, "list").returncode == 0
    # The environment wins over the record: this state dir has no certificate.
    other = _tunnelctl(tmp_path, tmp_path, "list", TUNNELOFFLOAD_STATE_DIR=str(tmp_path / "x"))
    assert other.returncode == 3
    assert f"cannot read the trusted CA certificate {tmp_path / 'x'}/tls/server.crt" in (
        other.stderr)


def test_missing_file_is_reported_before_any_certificate(tmp_path: Path) -> None:
    result = _tunnelctl(tmp_path, tmp_path, "create", "-f", "nope.yaml")
    assert (result.returncode, result.stderr) == (2, "error: nope.yaml: no such file\n")


def test_bad_option_combinations_are_exit_2(tmp_path: Path) -> None:
    insecure = _tunnelctl(tmp_path, tmp_path, "--insecure", "--ca", "x.pem", "list")
    assert (insecure.returncode, insecure.stderr) == (
        2, "error: --insecure cannot be combined with --ca, --cert or --key\n")
    half = _tunnelctl(tmp_path, tmp_path, "--cert", "c.pem", "list")
    assert (half.returncode, half.stderr) == (
        2, "error: --cert and --key go together (mutual TLS needs both)\n")


def test_tls_failures_are_one_line_with_cause_and_flag(tls_server: Controller,
                                                       tmp_path: Path) -> None:
    other = tmp_path / "other.crt"
    other.write_bytes(other_self_signed_cert())
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    plain_process, plain = start_controller(tmp_path / "plain", "--insecure")
    try:
        assert plain.cli("--insecure", "health", "--wait", "30").status == 0
        where = tls_server.address
        cases = {
            "wrong CA": (["--server", where, "--ca", str(other)], "wrong CA: pass --ca"),
            "not PEM": (["--server", where, "--ca", str(junk)],
                        f"--ca {junk} is not a PEM certificate"),
            "plaintext server": (["--server", plain.address, "--ca", str(tls_server.cert)],
                                 "speaks plaintext gRPC, not TLS (a controller started with "
                                 "--insecure): pass --insecure"),
            "TLS server": (["--server", where, "--insecure"], "it probably expects TLS (drop "
                           "--insecure"),
            "server name": (["--server", where, "--ca", str(tls_server.cert), "--server-name",
                             "example.com"], "wrong server name: pass --server-name"),
            "not running": (["--server", f"localhost:{free_port()}", "--insecure"],
                            "nothing is listening at"),
        }
        for name, (argv, expected) in cases.items():
            result = _tunnelctl(tmp_path, tmp_path, *argv, "list")
            assert result.returncode == 3, name
            assert expected in result.stderr, (name, result.stderr)
            assert len(result.stderr.splitlines()) == 1, (name, result.stderr)
            assert "ssl_transport_security" not in result.stderr, name
    finally:
        stop(plain_process)
