"""Start-up resolution of the journal (controller/journal_recovery.py), on the real store: an
interrupted DELETE is finished, an interrupted CREATE is not applied, committed requests stay.
The same with real processes and kill -9: tests/controller_dp/test_dp_journal.py.

Run just this file: .venv/bin/python -m pytest tests/controller/test_journal_recovery.py -q
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from controller.allocation import Allocation
from controller.dataplane import TunnelChange, TunnelCounters
from controller.journal_recovery import RecoveringStore
from controller.keys import SaKey
from controller.model import (
    Cipher,
    IpsecEncrypt,
    Match,
    NextAction,
    Operation,
    SecurityAssociation,
    Tunnel,
    TunnelMode,
)
from controller.sealing import KeySealer, load_or_create_store_key
from controller.store import DATABASE_FILE, TunnelStore


def _encrypt(tunnel_id: int, spi: int) -> Tunnel:
    secret = SaKey(key=os.urandom(32), salt=os.urandom(4))
    return Tunnel(tunnel_id=tunnel_id, match=Match(), next_action=NextAction.FORWARD,
                  body=IpsecEncrypt(mode=TunnelMode.TRANSPORT, cipher=Cipher.AES256_GCM64,
                                    sa=SecurityAssociation(spi=spi, secret=secret)))


def test_an_interrupted_delete_is_finished_and_an_interrupted_create_is_not_applied(
        tmp_path: Path, caplog) -> None:
    sealer = KeySealer(load_or_create_store_key(tmp_path))
    path = tmp_path / DATABASE_FILE
    store = TunnelStore(path, sealer)
    kept, doomed = _encrypt(1, 4587), _encrypt(2, 4588)
    for tunnel in (kept, doomed):
        change = TunnelChange(operation=Operation.CREATE, before=None, after=tunnel)
        staged = store.stage(change)
        store.save_allocation(tunnel.tunnel_id, Allocation(
            tunnel_index=tunnel.tunnel_id, sa_pairs=((tunnel.body.sa.spi, tunnel.tunnel_id),)))
        staged.commit()
    store.save_baselines({2: (TunnelCounters(in_packets=5), TunnelCounters(in_packets=7))})
    # A stream: request 0 (CREATE 3) committed, request 1 (DELETE 2) interrupted mid-way.
    created = TunnelChange(operation=Operation.CREATE, before=None, after=_encrypt(3, 4589))
    store.stage(created, store.journal_begin("s1", 0, created)).commit()
    deleted = TunnelChange(operation=Operation.DELETE, before=doomed, after=None)
    store.journal_begin("s1", 1, deleted)
    store.stage(deleted)  # the data plane was being written when the process died
    store.close()

    caplog.set_level(logging.WARNING)
    store = RecoveringStore(path, sealer)
    messages = [record.getMessage() for record in caplog.records]
    assert sorted(store.tunnels) == [1, 3]
    assert sorted(store.load_allocations()) == [1]  # (3 had none in this unit test)
    assert 2 not in store.load_baselines()
    assert store.is_retired(store.fingerprint(doomed.body.sa.secret))
    assert not store.is_retired(store.fingerprint(kept.body.sa.secret))
    assert store.journal() == []
    assert any("request 1 (DELETE tunnel 2) was interrupted by the stop; finished at start-up"
               in message for message in messages), messages
    # The store's own report then names it (with request 0) as applied, never acknowledged.
    for text in ("request 0 (CREATE tunnel 3) was applied but never acknowledged",
                 "request 1 (DELETE tunnel 2) was applied but never acknowledged"):
        assert any(text in message for message in messages), (text, messages)
    store.close()
    # Reopened: durable, nothing left to resolve.
    caplog.clear()
    store = RecoveringStore(path, sealer)
    assert sorted(store.tunnels) == [1, 3] and store.journal() == []
    assert not [r for r in caplog.records if "request" in r.getMessage()]
    store.close()


def test_an_interrupted_create_or_update_is_left_to_reconciliation(tmp_path: Path,
                                                                   caplog) -> None:
    sealer = KeySealer(load_or_create_store_key(tmp_path))
    path = tmp_path / DATABASE_FILE
    store = TunnelStore(path, sealer)
    old = _encrypt(1, 4587)
    store.stage(TunnelChange(operation=Operation.CREATE, before=None, after=old)).commit()
    update = TunnelChange(operation=Operation.UPDATE, before=old, after=_encrypt(1, 4590))
    store.journal_begin("s2", 0, update)
    store.stage(update)
    store.close()

    caplog.set_level(logging.WARNING)
    store = RecoveringStore(path, sealer)
    assert store.tunnels[1].body.sa.spi == 4587  # type: ignore[union-attr]
    assert store.journal() == []
    messages = [record.getMessage() for record in caplog.records]
    assert any("request 0 (UPDATE tunnel 1) was being applied" in message
               for message in messages), messages
    assert not any("finished at start-up" in message for message in messages)
    store.close()
