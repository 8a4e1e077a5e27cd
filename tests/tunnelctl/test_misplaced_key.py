"""A key written in the wrong place of a tunnel file must not be echoed by the error about it.

Run just this file: .venv/bin/python -m pytest tests/tunnelctl/test_misplaced_key.py -q
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tunnelctl.__main__ import main

KEY = "7802f0c4bfa70e38ad4f2952c40a70623f1fe5f2efc5248616681301562bc60edba49859"

MISPLACED = {
    "as an SA": "ipsecTunnel: {ipsecDec: {ipsecSAs: ['KEY']}}",
    "as an SPI": "ipsecTunnel: {ipsecEnc: {ipsecSA: {spi: 'KEY'}}}",
    "as a tunnel type": "ipsecTunnel: {ipsecEnc: {tunnelType: 'KEY'}}",
    "as an IPv4 address": "match_criteria: {ipv4Match: {sourceIp: 'KEY'}}",
    "as an IPv6 address": "match_criteria: {ipv6Match: {sourceIp: 'KEY'}}",
    "as a MAC": "match_criteria: {macMatch: {sourceMac: 'KEY'}}",
}


@pytest.mark.parametrize("body", MISPLACED.values(), ids=MISPLACED.keys())
def test_the_error_shows_the_length_not_the_key(tmp_path: Path, body: str) -> None:
    path = tmp_path / "tunnel.yaml"
    path.write_text("tunnelId: 5\n" + body.replace("KEY", KEY) + "\n")
    out, err = io.StringIO(), io.StringIO()
    status = main(["--server", "localhost:1", "--insecure", "create", "--dry-run", "-f",
                   str(path)], out=out, err=err)
    assert status == 2, (out.getvalue(), err.getvalue())
    text = out.getvalue() + err.getvalue()
    assert text.startswith("error: ")
    assert KEY[:16] not in text


def test_short_bad_values_are_still_quoted(tmp_path: Path) -> None:
    path = tmp_path / "tunnel.yaml"
    path.write_text("tunnelId: 5\nipsecTunnel: {ipsecEnc: {ipsecSA: {spi: 'x12'}}}\n")
    err = io.StringIO()
    assert main(["create", "--dry-run", "-f", str(path)], out=io.StringIO(), err=err) == 2
    assert "expected an integer, got 'x12'" in err.getvalue()
