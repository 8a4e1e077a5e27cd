"""The benchmark still runs end to end (worker entry point, nanomsg, SA service) and prints its
table and closing ratio line; a small packet count, so it checks function, not speed.

Run just this file: .venv/bin/python -m pytest tests/crypto_worker/test_bench_smoke.py -q
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_prints_every_case_and_the_ratio_line() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "crypto" / "run.py"), "--packets", "2000"],
        capture_output=True, text=True, timeout=170, check=False, cwd=REPO,
    )
    assert result.returncode == 0, (result.stdout, result.stderr[-4000:])
    lines = result.stdout.strip().splitlines()
    cases = [line.split() for line in lines if re.match(r"^(encrypt|decrypt)\s+\d+\s", line)]
    assert sorted((c[0], int(c[1])) for c in cases) == sorted(
        (op, size) for op in ("encrypt", "decrypt") for size in (64, 512, 1400))
    assert all(float(c[-1]) > 0 for c in cases)
    assert re.fullmatch(r"ratio_64=\d+\.\d{3} ratio_1400=\d+\.\d{3}", lines[-1]), lines[-1]
