"""The product without make: a wheel built from a copy of the checkout (no generated stubs in it),
installed into a fresh venv with its dependencies from the package index, runs from a directory
outside the checkout: both CLIs' --help, p4sim checks the P4 program shipped in the wheel, and a
detached controller started with its default state directory serves tunnelctl create/list.

Takes about a minute (a venv and a dependency install); needs the package index (CI has it).
Run just this file: .venv/bin/python -m pytest tests/packaging/test_wheel.py -q
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# What a fresh clone holds; generated or local files are left out, so the build must make them.
_LOCAL = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__",
                                ".pytest_cache", ".mypy_cache", ".ruff_cache")


def _not_source(directory: str, names: list[str]) -> set[str]:
    ignored = set(_LOCAL(directory, names))
    if Path(directory) == REPO:  # the stubs `make proto` generates, and make run's state
        ignored |= {"tunneloffload", "state"} & set(names)
    return ignored

pytestmark = pytest.mark.packaging


def _run(argv: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                            timeout=600, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{argv}\n{result.stdout}\n{result.stderr}"
    return result


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_wheel_in_a_fresh_venv_runs_outside_the_checkout(tmp_path: Path) -> None:
    source = tmp_path / "clone"
    shutil.copytree(REPO, source, ignore=_not_source)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist",
          source])
    (wheel,) = (tmp_path / "dist").glob("tunnel_offload-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel])

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "TUNNELOFFLOAD_STATE_DIR",
                        "TUNNELCTL_STATE_DIR", "TUNNELCTL_SERVER")}
    env.update(XDG_CONFIG_HOME=str(home / "config"), XDG_STATE_HOME=str(home / "state"),
               PYTHONUNBUFFERED="1")
    bin_ = venv / "bin"

    assert "create" in _run([bin_ / "tunnelctl", "--help"], cwd=elsewhere, env=env).stdout
    help_ = _run([bin_ / "tunnel-offload-controller", "--help"], cwd=elsewhere, env=env).stdout
    assert "--data-plane" in help_ and "XDG_STATE_HOME" in help_

    # The P4 program and its P4Info come with the package (the controller's --p4info default).
    locate = ("from controller.settings import DEFAULT_P4INFO, p4src_dir; "
              "print(p4src_dir()); print(DEFAULT_P4INFO.is_file())")
    p4src, is_file = _run([bin_ / "python", "-c", locate], cwd=elsewhere,
                          env=env).stdout.split()
    assert Path(p4src).is_relative_to(venv) and is_file == "True"
    checked = _run([bin_ / "p4sim", "check", Path(p4src) / "tunnel_offload.p4"], cwd=elsewhere,
                   env=env)
    assert checked.stdout.strip().endswith("tunnel_offload.p4: ok")

    listen = f"localhost:{_free_port()}"
    log = (tmp_path / "controller.log").open("wb")
    controller = subprocess.Popen([bin_ / "tunnel-offload-controller", "--listen", listen,
                                   "--data-plane", "detached"], cwd=elsewhere, env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        env["TUNNELCTL_SERVER"] = listen  # the state dir (and its certificate) is the default
        ready = subprocess.run([bin_ / "tunnelctl", "health", "--wait", "60"], cwd=elsewhere,
                               env=env, capture_output=True, text=True, timeout=120)
        assert ready.returncode == 0, ready.stderr + (tmp_path / "controller.log").read_text()
        example = elsewhere / "chain.yaml"
        shutil.copy(REPO / "examples" / "3-rematch-chain.yaml", example)
        _run([bin_ / "tunnelctl", "create", "-f", example.name], cwd=elsewhere, env=env)
        listed = _run([bin_ / "tunnelctl", "list"], cwd=elsewhere, env=env).stdout
        assert [line.split()[0] for line in listed.splitlines()[1:]] == ["30000", "30001"]
        assert (home / "state" / "tunneloffload" / "tls" / "server.crt").is_file()
    finally:
        controller.terminate()
        controller.wait(timeout=30)
        log.close()
