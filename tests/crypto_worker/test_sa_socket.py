"""The SA service socket: keys arrive over it, so nothing else may be bound, swapped or deleted.

Run just these: .venv/bin/python -m pytest tests/crypto_worker/test_sa_socket.py -q
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from crypto_worker.sa_table import SaTable
from crypto_worker.server import SaSocketError, WorkerSettings, create_server


def settings_for(path: Path) -> WorkerSettings:
    return WorkerSettings(sa_socket=str(path), nanomsg_url="ipc:///nonexistent")


@pytest.fixture
def private_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    return directory


def test_socket_is_owner_only(private_dir: Path) -> None:
    path = private_dir / "sa.sock"
    server = create_server(settings_for(path), SaTable())
    try:
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    finally:
        server.stop(None)


def test_a_stale_socket_is_replaced(private_dir: Path) -> None:
    path = private_dir / "sa.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()   # bound, never listening: what a killed worker leaves
    server = create_server(settings_for(path), SaTable())
    server.stop(None)


def test_a_live_socket_is_not_taken_over(private_dir: Path) -> None:
    path = private_dir / "sa.sock"
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(str(path))
    live.listen(1)
    try:
        with pytest.raises(SaSocketError, match="in use by a running process"):
            create_server(settings_for(path), SaTable())
        assert stat.S_ISSOCK(os.lstat(path).st_mode)   # still there
    finally:
        live.close()


def test_a_regular_file_is_never_deleted(private_dir: Path) -> None:
    path = private_dir / "sa.sock"
    path.write_text("not a socket")
    with pytest.raises(SaSocketError, match="is not a socket"):
        create_server(settings_for(path), SaTable())
    assert path.read_text() == "not a socket"


def test_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)   # not sticky: anyone could swap the socket
    with pytest.raises(SaSocketError, match="writable by others"):
        create_server(settings_for(shared / "sa.sock"), SaTable())
    assert not (shared / "sa.sock").exists()


def test_a_sticky_shared_directory_is_accepted(tmp_path: Path) -> None:
    shared = tmp_path / "sticky"
    shared.mkdir()
    shared.chmod(0o1777)
    server = create_server(settings_for(shared / "sa.sock"), SaTable())
    server.stop(None)
