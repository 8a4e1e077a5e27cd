"""`make bench-rekey` still works end to end, and what it checks holds at a low rate: through
the processes `make run` starts (p4sim, crypto worker, controller), an encrypt tunnel carries a
steady stream while `tunnelctl rekey` swaps its SA twice, and every frame comes out once,
encrypted under one of the tunnel's SAs, none lost and none in clear. A short run at 400
frames/s, so it checks function, not speed (latency is printed, not asserted).

Run just this file: .venv/bin/python -m pytest tests/crypto_worker/test_rekey_bench_smoke.py -q
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_rekeys_under_traffic_lose_nothing_and_leak_nothing() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.packets.rekey", "--rate", "400", "--seconds", "7",
         "--rekey-every", "3"],
        capture_output=True, text=True, timeout=240, cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    fields = dict(re.findall(r"(\w+)=([\d./]+)", summary))
    assert fields["sent"] == "2800", summary
    assert fields["received"] == "2800", summary
    assert (fields["lost"], fields["duplicated"], fields["clear"]) == ("0", "0", "0"), summary
    assert fields["rekeys"] == "2/2", summary
    # Frames went out under at least two SAs: the rekeys took effect during the stream.
    used = [line for line in result.stdout.splitlines()
            if re.match(r"spi \d+: [1-9]\d* frames", line)]
    assert len(used) >= 2, result.stdout
