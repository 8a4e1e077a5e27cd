"""The ``p4sim`` command line: arguments, errors, p4info/check output, and a running switch.

Run: .venv/bin/python -m pytest tests/p4sim/test_cli.py -q
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pynng
import pytest
from google.protobuf import text_format

from p4sim.cli import main, parse_port
from p4sim.p4runtime.proto import p4i, p4r, p4r_grpc
from p4sim.ports.nn_protocol import MsgType, decode, encode_frame

REPO = Path(__file__).resolve().parents[2]
ROUTER = REPO / "ptf_tests" / "smoke" / "router.p4"


@pytest.fixture(scope="module")
def router_loads() -> None:
    from p4sim.program import load_program

    try:
        load_program(ROUTER)
    except Exception as error:  # noqa: BLE001 - the core is another helper's work in progress
        pytest.skip(f"p4sim cannot run {ROUTER.name} yet: {error}")


def test_port_bindings_parse_and_bad_ones_say_why():
    assert parse_port("64@ipc:///tmp/c.ipc").is_socket
    assert not parse_port("1@veth0").is_socket
    assert parse_port("0x10@veth1").port == 16
    for text, reason in (("veth0", "expected N@ADDR"), ("x@veth0", "'x' is not an integer"),
                         ("511@veth0", "port 511 outside 0..510")):
        with pytest.raises(Exception, match=reason):
            parse_port(text)


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "p4info", "check", "device-config"):
        assert command in out


def test_bad_arguments_exit_2_naming_the_argument(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["run", "x.p4", "--port", "1-veth0"])
    assert exited.value.code == 2
    assert "--port '1-veth0': expected N@ADDR" in capsys.readouterr().err


def test_a_port_bound_twice_is_refused(capsys):
    assert main(["run", "--port", "1@veth0", "--port", "1@veth1", "--no-p4runtime"]) == 2
    assert "port 1 is bound twice" in capsys.readouterr().err


def test_check_and_p4info(router_loads, capsys, tmp_path):
    assert main(["check", str(ROUTER)]) == 0
    assert capsys.readouterr().out.strip().endswith("router.p4: ok")
    assert main(["p4info", str(ROUTER)]) == 0
    p4info = text_format.Parse(capsys.readouterr().out, p4i.P4Info())
    assert [t.preamble.name for t in p4info.tables] == ["RouterIngress.ipv4_lpm"]
    target = tmp_path / "router.p4info.bin"
    assert main(["p4info", str(ROUTER), "--format", "binary", "-o", str(target)]) == 0
    assert p4i.P4Info.FromString(target.read_bytes()) == p4info


def test_check_reports_errors_as_file_line_column(capsys, tmp_path):
    broken = tmp_path / "broken.p4"
    broken.write_text("#include <core.p4>\n#include <v1model.p4>\nheader h_t { bit<8> x }\n")
    assert main(["check", str(broken)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{broken}:3:")
    assert "error:" in err
    assert main(["check", str(tmp_path / "missing.p4")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_device_config_names_or_carries_the_program(capsys):
    assert main(["device-config", str(ROUTER), "-D", "X=2"]) == 0
    named = json.loads(capsys.readouterr().out)
    assert named == {"defines": {"X": "2"}, "format": "p4sim/1", "program": str(ROUTER)}
    assert main(["device-config", str(ROUTER), "--embed"]) == 0
    carried = json.loads(capsys.readouterr().out)
    assert carried["main"] == "router.p4" and "router.p4" in carried["files"]


class RunningSwitch:
    """``python -m p4sim run ...`` as a child process; ready once it prints its ready line."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "p4sim", "run", *args], cwd=REPO, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        self.ready = self._wait_ready(timeout=30)

    def _wait_ready(self, timeout: float) -> str:
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"p4sim exited {self.process.returncode}: "
                                     f"{self.process.stderr.read()}")
            if selector.select(timeout=0.1):
                line = self.process.stdout.readline()
                if line.startswith("p4sim ready"):
                    return line.strip()
        raise AssertionError("p4sim did not print its ready line")

    @property
    def grpc_port(self) -> int:
        return int(self.ready.rsplit("grpc-port=", 1)[1])

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=10)
        return code, self.process.stderr.read()


def test_run_serves_p4runtime_and_the_packet_socket_and_traces_packets(router_loads, tmp_path):
    address = f"ipc://{tmp_path}/switch.ipc"
    switch = RunningSwitch(str(ROUTER), "--packet-socket", address, "--grpc-addr",
                           "127.0.0.1:0", "--device-id", "3", "--log-console",
                           "--log-level", "debug")
    try:
        assert "program=" in switch.ready and "router.p4" in switch.ready
        with grpc.insecure_channel(f"127.0.0.1:{switch.grpc_port}") as channel:
            stub = p4r_grpc.P4RuntimeStub(channel)
            request = p4r.GetForwardingPipelineConfigRequest
            got = stub.GetForwardingPipelineConfig(
                request(device_id=3, response_type=request.P4INFO_AND_COOKIE))
            assert got.config.p4info.tables[0].preamble.name == "RouterIngress.ipv4_lpm"
        with pynng.Pair0(dial=address, recv_timeout=300) as ptf:
            ptf.send(encode_frame(MsgType.PACKET_IN, 1, b"\x00" * 60))  # not IPv4: dropped
            info = info_request(ptf)
            assert info == (MsgType.INFO_REP, 1)
    finally:
        code, log = switch.stop()
    assert code == 0
    trace = [line for line in log.splitlines() if "p4sim.trace:" in line]
    assert trace and "port 1" in trace[0]  # the executor's per-packet trace, at debug level
    assert "frames_in=1, frames_out=0" in log


def info_request(sock: pynng.Pair0) -> tuple[MsgType, int]:
    """Ask for port 1's MAC like PTF does; the answer proves the frame before it was handled."""
    sock.send(b"\x05\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00")
    reply = decode(sock.recv())
    return reply.kind, reply.port


def test_run_without_a_program_waits_for_a_pipeline(tmp_path):
    switch = RunningSwitch("--grpc-addr", "127.0.0.1:0")
    try:
        assert "program=none" in switch.ready
        with grpc.insecure_channel(f"127.0.0.1:{switch.grpc_port}") as channel:
            stub = p4r_grpc.P4RuntimeStub(channel)
            got = stub.GetForwardingPipelineConfig(
                p4r.GetForwardingPipelineConfigRequest(device_id=1))
            assert not got.HasField("config")
    finally:
        code, log = switch.stop()
    assert code == 0
    assert "no packet I/O" in log


def test_run_reports_an_address_in_use_with_exit_3(tmp_path):
    address = f"ipc://{tmp_path}/busy.ipc"
    with pynng.Pair0(listen=address):
        done = subprocess.run([sys.executable, "-m", "p4sim", "run", "--packet-socket", address,
                               "--no-p4runtime"], cwd=REPO, capture_output=True, text=True,
                              timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 3
    assert f"cannot listen on packet socket {address!r}" in done.stderr
