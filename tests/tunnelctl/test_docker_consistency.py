"""The Docker files cannot run here (no engine), so their consistency with the code is checked
statically: every option the compose file and the BMv2 workflow pass to our programs exists in
that program's --help, the compose build targets exist in the Dockerfile, and `make images` tags
what compose runs.

Run just this file: .venv/bin/python -m pytest tests/tunnelctl/test_docker_consistency.py -q
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
DOCKERFILE = (REPO / "docker" / "Dockerfile").read_text()
WORKFLOW = (REPO / ".github" / "workflows" / "bmv2.yml").read_text()

# The module behind each program name the files use.
PROGRAMS = {"tunnel-offload-controller": "controller", "controller": "controller",
            "crypto_worker": "crypto_worker", "tunnelctl": "tunnelctl"}


@cache
def _help(module: str, command: str = "") -> str:
    argv = [sys.executable, "-m", module, *([command] if command else []), "--help"]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _options(words: list[str]) -> list[str]:
    return [word for word in words if word.startswith("--")]


def _assert_known(module: str, options: list[str], words: Sequence[str] = ()) -> None:
    text = _help(module)
    if module == "tunnelctl" and "health" in words:  # the sub-command's own options
        text += _help(module, "health")
    missing = [option for option in options if not re.search(rf"{re.escape(option)}\b", text)]
    assert not missing, f"{module} --help has no {missing}"


@pytest.mark.parametrize("service", ["crypto-worker", "controller"])
def test_compose_commands_use_existing_options(service: str) -> None:
    command = [str(word) for word in COMPOSE["services"][service]["command"]]
    program = command[0] if command[0] != "python3-netraw" else command[2]
    _assert_known(PROGRAMS[program], _options(command))


@pytest.mark.parametrize("service", ["crypto-worker", "controller"])
def test_compose_health_checks_use_existing_options(service: str) -> None:
    test = [str(word) for word in COMPOSE["services"][service]["healthcheck"]["test"]]
    assert test[:2] == ["CMD", "tunnelctl"]
    assert "health" in test
    _assert_known("tunnelctl", _options(test), test)


def test_compose_build_targets_exist_and_make_images_tags_them() -> None:
    makefile = (REPO / "Makefile").read_text()
    tag = re.search(r"^IMAGE_TAG \?= (\S+)$", makefile, re.MULTILINE)
    assert tag is not None
    for service in COMPOSE["services"].values():
        build = service.get("build")
        if build is None:
            continue
        assert re.search(rf"^FROM \S+ AS {build['target']}$", DOCKERFILE, re.MULTILINE)
        image = service["image"]
        assert image == f"tunnel-offload/{build['target']}:{tag.group(1)}"
        assert f"--target {build['target']} --tag tunnel-offload/{build['target']}:" in makefile


def test_workflow_starts_our_programs_with_existing_options() -> None:
    for module in ("controller", "crypto_worker", "tunnelctl"):
        # Each `python -m MODULE ...` command, with its continuation lines.
        for match in re.finditer(rf"-m {module} (.*?)(?<!\\)\n", WORKFLOW, re.DOTALL):
            words = match.group(1).replace("\\\n", " ").split()
            _assert_known(module, _options(words), words)


def test_p4c_image_is_pinned_to_a_release() -> None:
    pins = re.findall(r"^ARG \w+_IMAGE=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert pins and all(re.fullmatch(r"[\w./-]+:\d+(\.\d+)+(-[\w-]+)?", pin) for pin in pins), pins


def test_compose_switch_channel_uses_the_files_switch_pki_writes() -> None:
    from controller.switch_pki import SwitchPki

    services = COMPOSE["services"]
    pki_command = [str(word) for word in services["switch-pki"]["command"]]
    assert pki_command[:3] == ["python", "-m", "controller.switch_pki"]
    written = SwitchPki.in_directory(Path(pki_command[3]))
    controller = [str(word) for word in services["controller"]["command"]]
    given = {controller[i]: Path(controller[i + 1]) for i in range(len(controller) - 1)
             if controller[i] in ("--switch-ca", "--switch-cert", "--switch-key")}
    assert given == {"--switch-ca": written.ca_cert, "--switch-cert": written.controller_cert,
                     "--switch-key": written.controller_key}
    # The switch mounts that directory where its entry point reads ca.crt/switch.crt/switch.key.
    switch = services["switch"]
    tls_dir = switch["environment"]["GRPC_TLS_DIR"]
    [mount] = [v for v in switch["volumes"] if f":{tls_dir}:" in v]
    assert mount == "${STATE_DIR:-../state}/switch-tls:" + tls_dir + ":ro", mount
    assert services["switch-pki"]["volumes"] == [
        "${STATE_DIR:-../state}:/var/lib/tunnel-offload/state"]
    assert written.ca_cert.parent == Path("/var/lib/tunnel-offload/state/switch-tls")
    assert switch["depends_on"]["switch-pki"]["condition"] == "service_completed_successfully"
    entrypoint = (REPO / "docker" / "switch-entrypoint.sh").read_text()
    for option in ("--grpc-server-ssl", "--grpc-server-with-client-auth",
                   "--grpc-server-cert $GRPC_TLS_DIR/switch.crt",
                   "--grpc-server-key $GRPC_TLS_DIR/switch.key",
                   "--grpc-server-cacert $GRPC_TLS_DIR/ca.crt"):
        assert option in entrypoint, option
