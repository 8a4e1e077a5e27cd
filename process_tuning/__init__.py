"""Settings every long-running process of the product (controller, p4sim, crypto worker)
applies at start, kept in one place.

Each of them holds many long-lived objects (tunnels, table entries, SAs). With CPython's
default cyclic-GC thresholds (700, 10, 10) a stream of 20,000 CREATEs spent 2.2 s of p4sim's
6.4 s CPU and 1.9 s of the controller's 11.6 s in collections, nearly all full ones walking
every one of those objects; with the thresholds below, 0.16 s and 0.14 s (docs/operations.md
"Capacity and speed"). Cyclic garbage is still collected: a young collection after 50,000
allocations, a full one after 10 million.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> None:
    """Apply :data:`GC_THRESHOLDS` to this process."""
    gc.set_threshold(*GC_THRESHOLDS)
