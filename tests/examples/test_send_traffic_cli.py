"""examples/send_traffic.py without a switch: the packets it builds (read back with scapy and
the independent ESP peer), its default socket from make run's record, and its one-line
refusals (exit 2) and the missing switch (exit 3).

Run: .venv/bin/python -m pytest tests/examples/test_send_traffic_cli.py -q
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from examples_support import load_example_module
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

send_traffic = load_example_module("send_traffic")
esp_peer = load_example_module("esp_peer")

KEY = "ab" * 36


def run(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    out = io.StringIO()
    status = send_traffic.main(list(argv), out=out)
    return status, out.getvalue(), capsys.readouterr().err


def traffic(*argv: str) -> object:
    return send_traffic.traffic_of(send_traffic.parser().parse_args(list(argv)))


def test_esp_around_geneve_around_ipv6_is_what_the_peer_opens(tmp_path: Path) -> None:
    key = tmp_path / "k.hex"
    key.write_text(KEY[:38] + "\n")   # AES-128 key + 3-byte CCM salt
    built = traffic("--src", "2001:db8::1", "--dst", "2001:db8::2", "--geneve", "77",
                    "--geneve-src", "192.0.2.1", "--geneve-dst", "192.0.2.2", "--esp", "980",
                    "--key-file", str(key), "--tunnel-src", "12.0.0.1", "--tunnel-dst",
                    "12.0.0.2", "--cipher", "_aes128ccm96")
    frame = Ether(built.frame(4, 1234))
    assert (frame[IP].src, frame[IP].dst, frame[IP].proto) == ("12.0.0.1", "12.0.0.2", 50)
    sa = esp_peer.PeerSa.make(spi=980, enc_type="_aes128ccm96",
                              material=bytes.fromhex(KEY)[:19])
    opened = esp_peer.decrypt(sa, IP(bytes(frame[IP])))
    assert (opened.seq, opened.tunnel_mode) == (1234, True)
    geneve = opened.packet
    assert geneve[UDP].dport == 6081 and geneve[GENEVE].vni == 77
    inner = Ether(bytes(geneve[GENEVE].payload))
    assert (inner[IPv6].src, inner[IPv6].dst) == ("2001:db8::1", "2001:db8::2")
    assert bytes(inner[UDP].payload) == b"tunnel offload example packet 4"
    # What the sent line shows for it, and what an unknown SPI looks like coming out.
    assert send_traffic.describe(bytes(frame), {980: sa}, verb="encrypted")[1:4] == [
        "IPv4 12.0.0.1 > 12.0.0.2", "ESP spi 980 seq 1234 encrypted _aes128ccm96",
        "IPv4 192.0.2.1 > 192.0.2.2"]
    assert send_traffic.describe(bytes(frame), {})[-1].startswith(
        "ESP spi 980 seq 1234 (encrypted; --decrypt 980:")


def test_default_socket_is_make_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert send_traffic.default_socket() == f"ipc://{tmp_path}/state/run/ports.ipc"
    record = Path(os.environ["XDG_CONFIG_HOME"]) / "tunneloffload" / "make-run.yaml"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text("server: localhost:3443\nstate_dir: /srv/run-state\n")
    assert send_traffic.default_socket() == "ipc:///srv/run-state/run/ports.ipc"


@pytest.mark.parametrize("argv,message", [
    (["--esp", "5"], "--esp needs --key-file"),
    (["--geneve", "5", "--geneve-src", "1.1.1.1"], "--geneve needs --geneve-src and --geneve-dst"),
    (["--geneve", str(1 << 24), "--geneve-src", "1.1.1.1", "--geneve-dst", "2.2.2.2"],
     "a VNI is 0 ... 16777215"),
    (["--src", "2001:db8::1"], "2001:db8::1 and 3.3.3.3 are not the same IP version"),
    (["--nat-t"], "describe ESP: give --esp SPI"),
    (["--decrypt", "x:y"], "expected SPI:ENC_TYPE:KEYFILE"),
    (["--esp", "5", "--key-file", "/nonexistent/k.hex"], "key file /nonexistent/k.hex"),
    (["--esp", "5", "--key-file", "KEY", "--cipher", "_aes128gcm64"],
     "a 36-byte key does not fit _aes128gcm64"),
])
def test_bad_options_are_one_line(argv: list[str], message: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k.hex"
    key.write_text(KEY)
    argv = [str(key) if item == "KEY" else item for item in argv]
    status, out, err = run("--socket", f"ipc://{tmp_path}/none.ipc", *argv, capsys=capsys)
    assert status == 2 and out == ""
    assert err.startswith("send_traffic: ") and message in err and len(err.splitlines()) == 1
    assert KEY not in err


def test_no_switch_is_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # nng dials an ipc path nobody listens on with block_on_dial: refused at once.
    status, _, err = run("--socket", f"ipc://{tmp_path}/none.ipc", capsys=capsys)
    assert status == 3 and "cannot dial" in err and "make run" in err
