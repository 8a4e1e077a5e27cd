"""How ``tunnelctl rekey`` takes the new key: a file it warns about when others can read it, or
stdin (``--new-key-file -``), so the key need not touch the disk or the process list.

Run just this file: .venv/bin/python -m pytest tests/tunnelctl/test_cli_key_input.py -q
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from tc_support import REPO, Controller

from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

NEW_KEY = "cd" * 36


def _create_encrypt_example(server: Controller) -> None:
    result = server.cli("create", "-f", str(REPO / "examples" / "1-ipsec-geneve.yaml"))
    assert result.status == 0, result.err


def _encrypt_spi(server: Controller) -> int:
    return server.tunnels()[10003].ipsecTunnel.ipsecEnc.ipsecSA.spi


def test_a_key_file_others_can_read_is_warned_about(server: Controller, tmp_path: Path) -> None:
    _create_encrypt_example(server)
    key_file = tmp_path / "new.key"
    key_file.write_text(NEW_KEY + "\n")
    key_file.chmod(0o644)
    loose = server.cli("rekey", "10003", "--new-spi", "4600", "--new-key-file", str(key_file))
    assert loose.status == 0, loose.err
    assert f"key file {key_file} is readable by group or others (mode 644)" in loose.err
    assert NEW_KEY not in loose.err + loose.out
    # A second rekey needs a fresh key: the first one is retired with its SA (never reused).
    key_file.write_text("ef" * 36 + "\n")
    key_file.chmod(0o600)
    private = server.cli("rekey", "10003", "--new-spi", "4601", "--new-key-file", str(key_file))
    assert (private.status, private.err) == (0, "")
    assert _encrypt_spi(server) == 4601


def test_the_key_can_come_from_stdin(server: Controller,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _create_encrypt_example(server)
    monkeypatch.setattr("sys.stdin", io.StringIO(NEW_KEY + "\n"))
    result = server.cli("rekey", "10003", "--new-spi", "4602", "--new-key-file", "-")
    assert (result.status, result.err) == (0, "")
    assert NEW_KEY not in result.out
    assert _encrypt_spi(server) == 4602
    assert server.tunnels()[10003].ipsecTunnel.ipsecEnc.encryptionType == pb._aes256gcm64
