"""Where each worker process keeps its durable SA state inside --state-dir.

One process (`--workers 1`) keeps it in the directory itself, as it always has. With N > 1
processes, process i owns the SAs with `sa_index mod N == i` (crypto_worker/fanout.py) and keeps
their state in `worker-i/` (a store of its own: crypto_worker/sa_state.py), and the file
`workers` records N. Each SA's sequence blocks and replay marks are therefore in the directory
of the process that owns it for this N only: started with another N, an SA's new owner would
find no state for it (a resume refused; worse, a used encrypt key not recognised), so a
directory written with one N is refused with another, naming both.
"""

from __future__ import annotations

import os
from pathlib import Path

from crypto_worker.sa_state import DATABASE_FILE, StateStoreError

MEMBERS_FILE = "workers"


def child_state_dir(state_dir: str, index: int) -> str:
    return str(Path(state_dir) / f"worker-{index}")


def _recorded(path: Path) -> int:
    """The N recorded in `path`/workers; 1 if there is none."""
    try:
        text = (path / MEMBERS_FILE).read_text()
    except FileNotFoundError:
        return 1
    try:
        return int(text.strip())
    except ValueError:
        raise StateStoreError(f"state_dir: {str(path / MEMBERS_FILE)!r} does not hold a "
                              f"number of worker processes: {text[:20]!r}") from None


def check_layout(state_dir: str, members: int) -> None:
    """Refuses a state directory written for another number of processes; records `members`
    (N > 1) in a new one."""
    path = Path(state_dir)
    recorded = _recorded(path) if path.is_dir() else None
    if recorded is None or (recorded == 1 and not (path / DATABASE_FILE).exists()):
        recorded = None  # nothing stored yet: any N may start here
    if recorded is not None and recorded != members:
        raise StateStoreError(
            f"--workers {members}: state_dir {state_dir!r} holds the SA state of "
            f"{recorded} worker process{'es' if recorded > 1 else ''} (each SA's state is kept "
            f"by the process that owns it, sa_index mod N); start with --workers {recorded}")
    if members > 1 and recorded is None:
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path / MEMBERS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, f"{members}\n".encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as error:
            raise StateStoreError(f"state_dir: {state_dir!r}: {error}") from error
