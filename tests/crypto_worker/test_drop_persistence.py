"""The worker's per-reason drop counters survive a restart: written to the durable state on a
writer thread (crypto_worker/drops.py, at most every flush interval), restored for a resumed SA
and for the drops that belong to no SA, zero for a fresh SA at a reused index, never lowered.
The same across a real SIGKILL of the worker process under the controller:
tests/controller_dp/test_dp_kill.py::test_worker_drop_counters_survive_a_sigkill.

Run just this file: .venv/bin/python -m pytest tests/crypto_worker/test_drop_persistence.py -q
"""

from __future__ import annotations

import time
from pathlib import Path

from cw_support import Keying, p4_decrypt_message, sa_config, scapy_sa
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw

from crypto_worker.ciphers import SUITE_BY_ENC_TYPE_NAME
from crypto_worker.drops import DropReason
from crypto_worker.processor import FrameProcessor
from crypto_worker.sa import Direction
from crypto_worker.sa_state import SaStateStore
from crypto_worker.sa_table import SaTable

GCM = SUITE_BY_ENC_TYPE_NAME["_aes256gcm128"]
OUTER = IP(src="203.0.113.1", dst="203.0.113.2")
FLUSH = 0.05


def _config(spi: int = 0x7002):
    return sa_config(sa_index=2, spi=spi, direction=Direction.DECRYPT, suite=GCM, tunnel=True,
                     nat_t=False)


def _frames(keys: Keying) -> tuple[bytes, bytes, bytes]:
    """(a good frame, the same frame with a bad ICV, a frame for an index nobody holds)."""
    sender = scapy_sa(GCM, keys, spi=0x7002, tunnel_header=OUTER, nat_t=False)
    inner = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=53) / Raw(b"d" * 30)
    good = p4_decrypt_message(sender.encrypt(inner, seq_num=1), sa_index=2, tunnel=True,
                              nat_t=False)[0]
    forged = bytearray(p4_decrypt_message(sender.encrypt(inner, seq_num=2), sa_index=2,
                                          tunnel=True, nat_t=False)[0])
    forged[-1] ^= 1
    unknown = p4_decrypt_message(sender.encrypt(inner, seq_num=3), sa_index=9, tunnel=True,
                                 nat_t=False)[0]
    return good, bytes(forged), unknown


def _wait(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.01)


def _crash(table: SaTable) -> None:
    """What SIGKILL leaves: no last flush, no close."""
    assert table._drop_writer is not None
    table._drop_writer._stop.set()
    table._drop_writer._thread.join()
    table._writer.shutdown(wait=True)
    table.store.close()


def test_drop_counts_survive_a_crash_and_only_grow(tmp_path: Path) -> None:
    keys = Keying.random(GCM)
    good, forged, unknown = _frames(keys)
    table = SaTable(SaStateStore.open(tmp_path), block=8, drop_flush_interval=FLUSH)
    table.add(_config(), keys.keys())
    processor = FrameProcessor(table)
    replies = processor.process_batch([good, good, good, forged, forged, unknown, b"\x00"])
    assert len(replies) == 1
    sa = table.get(2)
    assert sa is not None
    wanted = {DropReason.REPLAY: 2, DropReason.ICV_FAILURE: 2}
    assert sa.counters.drops == wanted
    identity = sa.reservation.identity
    # Written by the writer thread within a flush interval or so, not by the packet path.
    _wait(lambda: table.store.load_drops(identity) == wanted
          and table.store.load_worker_drops() == ({DropReason.MALFORMED: 1}, {9: 1}))
    _crash(table)

    again = SaTable(SaStateStore.open(tmp_path), block=8, drop_flush_interval=FLUSH)
    assert (again.unattributed_drops, again.unknown_sa_drops) == ({DropReason.MALFORMED: 1},
                                                                  {9: 1})
    again.add(_config(), keys.keys(), resume=True)
    resumed = again.get(2)
    assert resumed is not None and resumed.counters.drops == wanted
    FrameProcessor(again).process_batch([good, unknown])  # a replay now, and unknown again
    assert resumed.counters.drops == {DropReason.REPLAY: 3, DropReason.ICV_FAILURE: 2}
    assert again.unknown_sa_drops == {9: 2}
    again.close()  # a clean stop writes the last counts

    third = SaTable(SaStateStore.open(tmp_path), block=8, drop_flush_interval=FLUSH)
    third.add(_config(), keys.keys(), resume=True)
    resumed = third.get(2)
    assert resumed is not None
    assert resumed.counters.drops == {DropReason.REPLAY: 3, DropReason.ICV_FAILURE: 2}
    assert third.unknown_sa_drops == {9: 2}
    # Removed, then a new SA at the same index: its counts start from zero.
    third.remove(2)
    third.add(_config(spi=0x7004), Keying.random(GCM).keys())
    fresh = third.get(2)
    assert fresh is not None and fresh.counters.drops == {}
    # The removed SA resumed (an interrupted request undone): its counts continue.
    third.remove(2)
    third.add(_config(), keys.keys(), resume=True)
    back = third.get(2)
    assert back is not None
    assert back.counters.drops == {DropReason.REPLAY: 3, DropReason.ICV_FAILURE: 2}
    # The same SA added fresh (resume=false): from zero, in the store too.
    third.remove(2)
    third.add(_config(), keys.keys())
    assert third.store.load_drops(identity) == {}
    third.close()


def test_a_stored_count_is_never_lowered(tmp_path: Path) -> None:
    from crypto_worker.drops import DropSnapshot

    store = SaStateStore.open(tmp_path)
    store.save_drops(DropSnapshot(unattributed={DropReason.MALFORMED: 5}))
    store.save_drops(DropSnapshot(unattributed={DropReason.MALFORMED: 3}))
    assert store.load_worker_drops() == ({DropReason.MALFORMED: 5}, {})
    store.close()


def test_without_a_state_dir_no_writer_runs() -> None:
    table = SaTable()
    assert table._drop_writer is None
    table.close()


def test_only_dropping_sas_are_looked_at_and_removed_ones_are_forgotten(tmp_path: Path) -> None:
    """The writer's snapshot comes from the SAs that dropped (SaTable.dropping), not from a scan
    of every SA; an SA removed after dropping leaves that set, and a fresh SA at its index
    starts outside it. A resumed SA with stored drops is in it from the start."""
    keys = Keying.random(GCM)
    good, forged, _ = _frames(keys)
    table = SaTable(SaStateStore.open(tmp_path), block=8, drop_flush_interval=FLUSH)
    table.add(_config(), keys.keys())
    for index in range(3, 200):  # many idle SAs: none of them may appear
        table.add(sa_config(sa_index=index, spi=0x8000 + index, direction=Direction.DECRYPT,
                            suite=GCM, tunnel=True, nat_t=False), Keying.random(GCM).keys())
    processor = FrameProcessor(table)
    processor.process_batch([good, good])  # the second is a replay
    dropping = table.dropping()
    assert [sa.config.sa_index for sa in dropping] == [2]
    assert table._dropping == set(dropping)
    snapshot = table.drop_snapshot()
    assert [drops for _, drops in snapshot.by_sa] == [{DropReason.REPLAY: 1}]
    _wait(lambda: table.store.load_drops(dropping[0].reservation.identity)
          == {DropReason.REPLAY: 1})
    table.remove(2)
    assert table.dropping() == [] and table._dropping == set()
    table.add(_config(spi=0x7003), Keying.random(GCM).keys())
    assert table.dropping() == []
    table.close()

    resumed_table = SaTable(SaStateStore.open(tmp_path), block=8, drop_flush_interval=FLUSH)
    try:
        resumed_table.add(_config(), keys.keys(), resume=True)
        assert [sa.config.sa_index for sa in resumed_table.dropping()] == [2]
        processor = FrameProcessor(resumed_table)
        processor.process_batch([forged])
        resumed = resumed_table.get(2)
        assert resumed is not None
        # one more drop (replay or ICV: the resumed window starts past the stored mark)
        assert sum(resumed.counters.drops.values()) == 2
        assert resumed_table.drop_snapshot().by_sa[0][1] == resumed.counters.drops
    finally:
        resumed_table.close()
