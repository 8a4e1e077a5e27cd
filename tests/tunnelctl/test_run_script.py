"""`make run`'s launcher on the embedded target, end to end: scripts/run.sh TARGET=sim brings up
p4sim, the crypto worker and the controller; tunnelctl creates an example; packets sent with
examples/send_traffic.py come out encrypted and Geneve-encapsulated and move the counters; Ctrl-C
(SIGINT to the launcher's process group) stops every process it started.

Run just this file: .venv/bin/python -m pytest tests/tunnelctl/test_run_script.py -q
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tc_support import REPO, Controller, free_port


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory: the run's Unix and ipc sockets live under it, and socket paths are
    limited to about 100 bytes (pytest's tmp_path can be longer)."""
    path = Path(tempfile.mkdtemp(prefix="tcrun-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _p4runtime_answers(address: str, pki: Path | None) -> bool:
    """Whether p4sim answers Capabilities: plaintext (pki None) or with the controller's
    certificate from the run's switch-tls directory."""
    import grpc
    from finsy.proto import p4r, p4r_grpc

    channel = grpc.insecure_channel(address) if pki is None else grpc.secure_channel(
        address, grpc.ssl_channel_credentials(
            root_certificates=(pki / "ca.crt").read_bytes(),
            private_key=(pki / "controller.key").read_bytes(),
            certificate_chain=(pki / "controller.crt").read_bytes()))
    with channel:
        try:
            p4r_grpc.P4RuntimeStub(channel).Capabilities(p4r.CapabilitiesRequest(), timeout=10)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error
            return False
    return True


def test_run_sim_serves_and_ctrl_c_stops_everything(short_tmp: Path) -> None:
    state = short_tmp / "state"
    listen = f"localhost:{free_port()}"
    p4rt_addr = f"127.0.0.1:{free_port()}"
    metrics_addr = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "TARGET": "sim", "STATE_DIR": str(state), "LISTEN": listen,
           "P4RT_ADDR": p4rt_addr, "METRICS_ADDR": metrics_addr, "READY_TIMEOUT": "90",
           "XDG_CONFIG_HOME": str(short_tmp / "config")}
    output = short_tmp / "run.out"
    with output.open("wb") as sink:
        launcher = subprocess.Popen([str(REPO / "scripts" / "run.sh")], cwd=REPO, env=env,
                                    stdout=sink, stderr=subprocess.STDOUT,
                                    start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "stop:" not in output.read_text():
            assert launcher.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.2)
        text = output.read_text()
        pids = {name: int(pid) for name, pid in
                re.findall(r"run: started (\S+) \(pid (\d+)\)", text)}
        assert set(pids) == {"switch", "crypto-worker", "controller"}
        assert f"TunnelOffload is serving on {listen}" in text
        assert f"trust:    {state}/tls/server.crt" in text
        # run.sh's umask 077: what the run writes (logs, sockets, pipeline) is for its user only.
        for path in (state, state / "run", state / "logs", state / "logs" / "controller.log",
                     state / "run" / "device-config.json", state / "run" / "crypto-sa.sock"):
            assert path.stat().st_mode & 0o077 == 0, (path, oct(path.stat().st_mode))
        # The switch channel is mutual TLS by default: only the controller's certificate opens it.
        assert f"switch:   P4Runtime mutual TLS, certificates in {state}/switch-tls" in text
        pki = state / "switch-tls"
        assert all((pki / key).stat().st_mode & 0o077 == 0
                   for key in ("switch.key", "controller.key"))
        assert _p4runtime_answers(p4rt_addr, None) is False
        assert _p4runtime_answers(p4rt_addr, pki) is True

        # make run records where it is; tunnelctl elsewhere, with no options, finds it.
        record = short_tmp / "config" / "tunneloffload" / "make-run.yaml"
        assert (f"server: {listen}\nstate_dir: {state}\nmetrics: {metrics_addr}\n"
                in record.read_text())
        elsewhere = short_tmp / "elsewhere"
        elsewhere.mkdir()
        found = subprocess.run(
            [sys.executable, "-m", "tunnelctl", "capabilities"], cwd=elsewhere,
            env={k: v for k, v in env.items() if k not in ("TUNNELOFFLOAD_STATE_DIR",
                                                             "TUNNELCTL_STATE_DIR",
                                                             "TUNNELCTL_SERVER")},
            capture_output=True, text=True, timeout=60)
        assert found.returncode == 0, found.stderr
        # ... and the metrics endpoint make run turned on (stats --reasons reads it).
        reasons = subprocess.run(
            [sys.executable, "-m", "tunnelctl", "stats", "--reasons", "-o", "json"],
            cwd=elsewhere, env={k: v for k, v in env.items() if k != "TUNNELCTL_METRICS"},
            capture_output=True, text=True, timeout=60)
        assert reasons.returncode == 0, reasons.stderr
        assert "route_miss" in reasons.stdout.lower(), reasons.stdout
        assert f"metrics:  http://{metrics_addr}/metrics" in text

        server = Controller(address=listen, state_dir=state, log=state / "logs/controller.log")
        created = server.cli("create", "-f", str(REPO / "examples" / "3-rematch-chain.yaml"))
        assert created.status == 0, created.err
        assert sorted(server.tunnels()) == [30000, 30001]

        sent = subprocess.run(
            [sys.executable, str(REPO / "examples" / "send_traffic.py"), "--socket",
             f"ipc://{state}/run/ports.ipc", "--count", "3", "--listen", "5"],
            cwd=REPO, capture_output=True, text=True, timeout=120)
        assert sent.returncode == 0, sent.stderr
        frames = [line for line in sent.stdout.splitlines() if line.startswith("out port ")]
        # examples/routes.txt sends 10.10.10.10 (the Geneve outer destination) out of port 4.
        shape = re.compile(r"out port 4: Ether 02:00:00:00:00:aa > 02:00:00:00:0b:04 / "
                           r"IPv4 9\.9\.9\.9 > 10\.10\.10\.10 / UDP \d+ > 6081 / Geneve vni 701 "
                           r"options 1 / Ether 10:20:30:40:50:60 > 60:50:40:30:20:10 / "
                           r"IPv4 14\.0\.0\.2 > 14\.0\.0\.1 / ESP spi 50000 seq \d+ \(encrypted")
        assert len(frames) == 3 and all(shape.match(f) for f in frames), sent.stdout

        stats = server.cli("stats", "30000", "30001", "-o", "json")
        assert stats.status == 0, stats.err
        counters = {item["tunnelId"]: item["tunnelCounters"] for item in json.loads(stats.out)}
        assert counters[30000]["inPackets"] == counters[30000]["outPackets"] == 3
        assert counters[30001]["inPackets"] == counters[30001]["outPackets"] == 3

        os.killpg(launcher.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        # Ctrl-C is how a run ends: status 0, so `make run` does not report an error.
        assert launcher.wait(timeout=60) == 0, output.read_text()
        assert output.read_text().rstrip().endswith(f"run: stopped; state kept in {state}")
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [name for name, pid in pids.items() if _alive(pid)], output.read_text()
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
