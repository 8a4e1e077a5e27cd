"""Durable tunnel state: an embedded SQLite database in the state directory.

All tunnels are loaded into memory at start-up (at most ``max_tunnels``) and changes are written
through in one transaction per batch of requests: :meth:`TunnelStore.stage_batch` opens it, the
data plane programs the batch (saving allocations and retired keys inside the same
transaction), and :meth:`StagedBatch.commit` writes the tunnels of the requests the data plane
applied and commits once, so a request is never half-applied and a batch costs one commit
(:meth:`TunnelStore.stage` is the batch of one). The live encrypt keys of the committed tunnels
are indexed by fingerprint (:attr:`TunnelStore.live_keys`), and decrypt SPIs and chains by
tunnel (:class:`controller.tunnel_view.TunnelIndex`), kept per commit. Tunnel definitions
are stored as JSON without keys; each SA's key is sealed (``controller.sealing``) in its own row.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import os
import sqlite3
import stat
from collections.abc import Callable, Mapping, Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from types import MappingProxyType
from typing import Any

from controller import model
from controller.allocation import Allocation
from controller.dataplane import TunnelChange, TunnelCounters
from controller.keys import SaKey
from controller.sealing import KeySealer, SealingError
from controller.tunnel_view import TunnelIndex, TunnelView

log = logging.getLogger(__name__)

DATABASE_FILE = "tunnels.sqlite3"
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tunnels (
    tunnel_id TEXT PRIMARY KEY,          -- decimal: ids are uint64, SQLite integers are int64
    definition TEXT NOT NULL             -- JSON of model.Tunnel, keys replaced by their SPI
);
CREATE TABLE IF NOT EXISTS sealed_keys (
    tunnel_id TEXT NOT NULL REFERENCES tunnels(tunnel_id) ON DELETE CASCADE,
    spi INTEGER NOT NULL,
    sealed BLOB NOT NULL,                -- controller.sealing: nonce || AES-GCM ciphertext
    PRIMARY KEY (tunnel_id, spi)
);
CREATE TABLE IF NOT EXISTS allocations (  -- data-plane indices (controller.allocation)
    tunnel_id TEXT PRIMARY KEY,
    tunnel_index INTEGER NOT NULL,
    sa_indexes TEXT NOT NULL             -- JSON [[spi, sa_index], ...]
);
CREATE TABLE IF NOT EXISTS retired_keys (  -- encrypt keys that protected traffic and are gone
    fingerprint BLOB PRIMARY KEY         -- KeySealer.fingerprint: keyed HMAC, never the key
);
CREATE TABLE IF NOT EXISTS counter_baselines (  -- controller.counter_baselines
    tunnel_id TEXT PRIMARY KEY,
    base TEXT NOT NULL,                  -- JSON of TunnelCounters: figures before the last reset
    last TEXT NOT NULL                   -- JSON of TunnelCounters: the last raw reading
);
CREATE TABLE IF NOT EXISTS journal (     -- requests between the data-plane writes and the answer
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    request_index INTEGER NOT NULL,
    operation TEXT NOT NULL,
    tunnel_id TEXT NOT NULL,
    state TEXT NOT NULL                  -- 'applying' (before the writes) | 'applied' (committed)
);
"""

_MODEL_CLASSES: dict[str, type] = {
    name: value for name, value in vars(model).items()
    if isinstance(value, type) and dataclasses.is_dataclass(value)
}
_MODEL_ENUMS: dict[str, type[enum.IntEnum]] = {
    name: value for name, value in vars(model).items()
    if isinstance(value, type) and issubclass(value, enum.IntEnum)
}


# Field names per model dataclass, looked up once (a tunnel is serialized per commit).
_FIELD_NAMES: dict[type, tuple[str, ...]] = {
    cls: tuple(field.name for field in dataclasses.fields(cls)) for cls in _MODEL_CLASSES.values()
}


_PLAIN = frozenset({int, str, bool, type(None)})  # exact types: an IntEnum is not plain
_JSON = json.JSONEncoder(sort_keys=True)  # json.dumps(..., sort_keys=True), built once


def _to_json(value: object) -> Any:
    """Tagged JSON for the frozen model dataclasses (keys never included)."""
    if type(value) in _PLAIN:  # most values: checked first (a tunnel is serialized per commit)
        return value
    if isinstance(value, SaKey):
        raise TypeError("secrets are sealed separately, never serialized")
    if isinstance(value, model.SecurityAssociation):
        return {"__type__": "SecurityAssociation", "spi": value.spi}
    names = _FIELD_NAMES.get(type(value))
    if names is not None:
        data: dict[str, Any] = {"__type__": type(value).__name__}
        for name in names:
            data[name] = _to_json(getattr(value, name))
        return data
    if isinstance(value, enum.IntEnum):
        return {"__enum__": type(value).__name__, "name": value.name}
    if isinstance(value, IPv4Address | IPv6Address):
        return {"__ip__": str(value)}
    if isinstance(value, bytes):
        return {"__bytes__": value.hex()}
    if isinstance(value, tuple):
        return [_to_json(item) for item in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    raise TypeError(f"cannot store {type(value).__name__}")


def _from_json(data: Any, secret_for: Callable[[int], SaKey]) -> Any:
    if isinstance(data, list):
        return tuple(_from_json(item, secret_for) for item in data)
    if not isinstance(data, dict):
        return data
    if "__ip__" in data:
        return ip_address(data["__ip__"])
    if "__bytes__" in data:
        return bytes.fromhex(data["__bytes__"])
    if "__enum__" in data:
        return _MODEL_ENUMS[data["__enum__"]][data["name"]]
    type_name = data["__type__"]
    if type_name == "SecurityAssociation":
        return model.SecurityAssociation(spi=data["spi"], secret=secret_for(data["spi"]))
    fields = {name: _from_json(value, secret_for) for name, value in data.items()
              if name != "__type__"}
    return _MODEL_CLASSES[type_name](**fields)


class StagedChange:
    """A change written inside an open transaction; exactly one of commit/rollback follows.

    ``journal`` is the request's journal row (:meth:`TunnelStore.journal_begin`): the commit
    marks it 'applied' in the same transaction, a rollback deletes it."""

    def __init__(self, store: TunnelStore, change: TunnelChange, journal: int | None) -> None:
        self._store = store
        self.change = change
        self._journal = journal

    def commit(self) -> None:
        """Make the change durable and visible to readers."""
        self._store._commit(self.change, self._journal)

    def rollback(self) -> None:
        """Discard the change; the database and the in-memory view are as before."""
        self._store._rollback(self._journal)


class StagedBatch:
    """An open transaction for a batch of requests; :meth:`commit` or :meth:`rollback` ends it.

    The data plane writes allocations and retired keys into it while it programs the batch;
    :meth:`commit` then adds the tunnels of the requests that were applied, marks their journal
    rows 'applied', deletes the rows of the others, and commits once."""

    def __init__(self, store: TunnelStore) -> None:
        self._store = store

    def commit(self, applied: Sequence[tuple[TunnelChange, int | None]],
               dropped: Sequence[int | None]) -> None:
        """Make ``applied`` durable and visible; forget the journal rows in ``dropped``."""
        self._store._commit_batch(applied, dropped)

    def rollback(self, journals: Sequence[int | None]) -> None:
        """Discard the batch; the database and the in-memory view are as before."""
        self._store._rollback_many(journals)


class TunnelStore:
    """SQLite-backed tunnel store with an in-memory, read-only view for the service."""

    def __init__(self, path: Path, sealer: KeySealer) -> None:
        self.path = path
        self._sealer = sealer
        # Private like the store key: definitions hold no keys, but they describe the network.
        # SQLite creates the -wal and -shm files with the database file's mode.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            mode = stat.S_IMODE(file.stat().st_mode) if file.exists() else 0
            if mode & 0o077:
                raise PermissionError(f"{file} is accessible by group or others (mode "
                                      f"{mode:o}); run chmod 600")
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")  # a committed tunnel survives power loss
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))
        try:
            self._tunnels: dict[int, model.Tunnel] = self._load()
            self._retired: set[bytes] = {bytes(row[0]) for row in self._db.execute(
                "SELECT fingerprint FROM retired_keys")}
            self._live_keys: dict[bytes, tuple[int, int]] = {}
            for tunnel in self._tunnels.values():
                self._index_keys(None, tunnel)
            self._index = TunnelIndex(self._tunnels)
        except BaseException:
            self._db.close()
            raise
        log.info("store %s: %d tunnel(s) loaded", path, len(self._tunnels))
        self._report_journal()

    def _report_journal(self) -> None:
        """Log every request the last run left in the journal (it stopped — crashed — between a
        request's data-plane writes and the client's answer), then clear the journal.

        'applying': the writes had started, the store never committed: the request did not
        happen, and reconciliation removes whatever of it reached the switch or the worker.
        'applied': committed (and programmed) but the client was never told."""
        rows = self._db.execute("SELECT stream, request_index, operation, tunnel_id, state "
                                "FROM journal ORDER BY seq").fetchall()
        for stream, index, operation, tunnel_id, state in rows:
            if state == "applied":
                log.warning("stream %s request %d (%s tunnel %s) was applied but never "
                            "acknowledged: the controller stopped before answering; the tunnel "
                            "is as that request left it", stream, index, operation, tunnel_id)
            else:
                log.warning("stream %s request %d (%s tunnel %s) was being applied when the "
                            "controller stopped and was not committed: it did not happen; "
                            "reconciliation restores the switch and the crypto worker to the "
                            "store", stream, index, operation, tunnel_id)
        if rows:
            self._db.execute("DELETE FROM journal")

    def journal_begin(self, stream: str, request_index: int, change: TunnelChange) -> int:
        """Record (durably, before any data-plane write) that a request is being applied."""
        cursor = self._db.execute(
            "INSERT INTO journal (stream, request_index, operation, tunnel_id, state) "
            "VALUES (?, ?, ?, ?, 'applying')",
            (stream, request_index, change.operation.name, str(change.tunnel_id)))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def journal_begin_many(self, stream: str, items: list[tuple[int, TunnelChange]]
                           ) -> list[int]:
        """:meth:`journal_begin` for a batch of (request index, change): one commit, relaxed
        (:meth:`_relaxed`)."""
        self._relaxed(True)
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # AUTOINCREMENT's counter: sequence numbers are never reused
                first = self._db.execute(
                    "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'journal'), "
                    "0)").fetchone()[0] + 1
                self._db.executemany(
                    "INSERT INTO journal (seq, stream, request_index, operation, tunnel_id, "
                    "state) VALUES (?, ?, ?, ?, ?, 'applying')",
                    [(first + position, stream, index, change.operation.name,
                      str(change.tunnel_id))
                     for position, (index, change) in enumerate(items)])
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        finally:
            self._relaxed(False)
        return list(range(first, first + len(items)))

    def journal_clear(self, stream: str) -> None:
        """The stream's answer is on its way: forget its journal rows."""
        self._relaxed(True)
        try:
            self._db.execute("DELETE FROM journal WHERE stream = ?", (stream,))
        finally:
            self._relaxed(False)

    def _relaxed(self, on: bool) -> None:
        """Journal rows are committed without an fsync (``synchronous = NORMAL``; in WAL mode
        a commit is then durable across a crash of the controller, which is what the journal
        reports, but not across power loss — and a switch and worker that lost power come back
        empty and are reconciled from the tunnels anyway). The tunnels' own commit
        (:meth:`StagedBatch.commit`) stays ``FULL``, fsynced before the client is answered,
        and makes the relaxed journal rows written before it durable too (one WAL). This
        saves two of the three fsyncs of a stream (~0.9 ms each here)."""
        self._db.execute(f"PRAGMA synchronous = {'NORMAL' if on else 'FULL'}")

    def journal(self) -> list[tuple[str, int, str, int, str]]:
        """(stream, request index, operation, tunnel id, state) rows (tests)."""
        return [(stream, index, operation, int(tunnel_id), state)
                for stream, index, operation, tunnel_id, state in self._db.execute(
                    "SELECT stream, request_index, operation, tunnel_id, state FROM journal "
                    "ORDER BY seq")]

    def _load(self) -> dict[int, model.Tunnel]:
        sealed: dict[tuple[int, int], bytes] = {
            (int(tunnel_id), spi): blob for tunnel_id, spi, blob in
            self._db.execute("SELECT tunnel_id, spi, sealed FROM sealed_keys")
        }
        tunnels: dict[int, model.Tunnel] = {}
        for tunnel_id_text, definition in self._db.execute(
                "SELECT tunnel_id, definition FROM tunnels"):
            tunnel_id = int(tunnel_id_text)

            def secret_for(spi: int, tunnel_id: int = tunnel_id) -> SaKey:
                blob = sealed.get((tunnel_id, spi))
                if blob is None:
                    raise SealingError(f"no sealed key for tunnel {tunnel_id} spi {spi}")
                return self._sealer.open(blob, tunnel_id=tunnel_id, spi=spi)

            tunnel = _from_json(json.loads(definition), secret_for)
            tunnels[tunnel_id] = tunnel
        return tunnels

    @property
    def tunnels(self) -> Mapping[int, model.Tunnel]:
        """The committed tunnels by id (read-only view)."""
        return MappingProxyType(self._tunnels)

    def stage(self, change: TunnelChange, journal: int | None = None) -> StagedChange:
        """Write ``change`` in a new transaction and leave it open for commit or rollback."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._write(change)
        except BaseException:
            self._rollback(journal)
            raise
        return StagedChange(self, change, journal)

    def stage_batch(self) -> StagedBatch:
        """Open the transaction of a batch (module doc)."""
        self._db.execute("BEGIN IMMEDIATE")
        return StagedBatch(self)

    def _write(self, change: TunnelChange) -> None:
        self._write_many([change])

    def _write_many(self, changes: Sequence[TunnelChange]) -> None:
        """The rows of ``changes``, in order: each tunnel's old rows deleted (unless it had
        none), its new ones inserted — consecutive inserts in one executemany per table."""
        tunnels: list[tuple[str, str]] = []
        sealed: list[tuple[str, int, bytes]] = []

        def flush() -> None:
            if tunnels:
                self._db.executemany("INSERT INTO tunnels VALUES (?, ?)", tunnels)
                self._db.executemany("INSERT INTO sealed_keys VALUES (?, ?, ?)", sealed)
                tunnels.clear()
                sealed.clear()

        for change in changes:
            key = str(change.tunnel_id)
            if change.before is not None or change.tunnel_id in self._tunnels:  # else no rows
                flush()
                self._db.execute("DELETE FROM sealed_keys WHERE tunnel_id = ?", (key,))
                self._db.execute("DELETE FROM tunnels WHERE tunnel_id = ?", (key,))
            if change.after is not None:
                tunnels.append(self._tunnel_row(change.after))
                sealed += self._sealed_rows(change.after)
        flush()

    def _commit_batch(self, applied: Sequence[tuple[TunnelChange, int | None]],
                      dropped: Sequence[int | None]) -> None:
        try:
            self._write_many([change for change, _ in applied])
            self._db.executemany("UPDATE journal SET state = 'applied' WHERE seq = ?",
                                 [(seq,) for _, seq in applied if seq is not None])
            self._db.executemany("DELETE FROM journal WHERE seq = ?",
                                 [(seq,) for seq in dropped if seq is not None])
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback_many([seq for _, seq in applied] + list(dropped))
            raise
        for change, _ in applied:
            self._apply_in_memory(change)

    def _rollback_many(self, journals: Sequence[int | None]) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        self._db.executemany("DELETE FROM journal WHERE seq = ?",
                             [(seq,) for seq in journals if seq is not None])

    def _apply_in_memory(self, change: TunnelChange) -> None:
        self._index_keys(change.before, change.after)
        self._index.move(self._tunnels.get(change.tunnel_id), change.after)
        if change.after is None:
            self._tunnels.pop(change.tunnel_id, None)
        else:
            self._tunnels[change.tunnel_id] = change.after

    def _index_keys(self, before: model.Tunnel | None, after: model.Tunnel | None) -> None:
        """Move the live-key index from ``before`` to ``after`` (encrypt tunnels only)."""
        for tunnel, live in ((before, False), (after, True)):
            if tunnel is not None and isinstance(tunnel.body, model.IpsecEncrypt):
                fingerprint = self._sealer.fingerprint(tunnel.body.sa.secret)
                if live:
                    self._live_keys[fingerprint] = (tunnel.tunnel_id, tunnel.body.sa.spi)
                elif self._live_keys.get(fingerprint, (None,))[0] == tunnel.tunnel_id:
                    del self._live_keys[fingerprint]

    def view(self) -> TunnelView:
        """The committed tunnels as a stream's starting view (indexed, nothing copied)."""
        return TunnelView(self._tunnels, self._index)

    @property
    def live_keys(self) -> Mapping[bytes, tuple[int, int]]:
        """Fingerprint → (tunnel id, spi) of every committed encrypt SA (read-only)."""
        return MappingProxyType(self._live_keys)

    @staticmethod
    def _tunnel_row(tunnel: model.Tunnel) -> tuple[str, str]:
        return (str(tunnel.tunnel_id), _JSON.encode(_to_json(tunnel)))

    def _sealed_rows(self, tunnel: model.Tunnel) -> list[tuple[str, int, bytes]]:
        key = str(tunnel.tunnel_id)
        return [(key, sa.spi, self._sealer.seal(sa.secret, tunnel_id=tunnel.tunnel_id,
                                                spi=sa.spi))
                for sa in tunnel.security_associations]

    def _commit(self, change: TunnelChange, journal: int | None) -> None:
        if journal is not None:
            self._db.execute("UPDATE journal SET state = 'applied' WHERE seq = ?", (journal,))
        self._db.execute("COMMIT")
        self._apply_in_memory(change)

    def _rollback(self, journal: int | None) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        if journal is not None:
            self._db.execute("DELETE FROM journal WHERE seq = ?", (journal,))

    @property
    def in_transaction(self) -> bool:
        """True while a request's change is staged and not yet committed or rolled back."""
        return self._db.in_transaction

    def fingerprint(self, secret: SaKey) -> bytes:
        """The keyed fingerprint of an SA secret (:meth:`KeySealer.fingerprint`)."""
        return self._sealer.fingerprint(secret)

    def is_retired(self, fingerprint: bytes) -> bool:
        """True when an encrypt SA under this key has left the worker (never install it again)."""
        return fingerprint in self._retired

    def retire(self, fingerprint: bytes) -> None:
        """Retire a key for good — inside the request's transaction when one is open (it then
        commits with the request; the in-memory set keeps it either way: the SA is gone)."""
        self._retired.add(fingerprint)
        self._db.execute("INSERT OR IGNORE INTO retired_keys VALUES (?)", (fingerprint,))

    def load_allocations(self) -> dict[int, Allocation]:
        """The data-plane indices of every tunnel that has them."""
        return {int(tunnel_id): Allocation(tunnel_index=index, sa_pairs=tuple(
                    (int(spi), int(sa_index)) for spi, sa_index in json.loads(pairs)))
                for tunnel_id, index, pairs in self._db.execute(
                    "SELECT tunnel_id, tunnel_index, sa_indexes FROM allocations")}

    def save_allocation(self, tunnel_id: int, allocation: Allocation | None) -> None:
        """Record (or forget) a tunnel's indices — inside the request's open transaction when
        called from the data plane during :meth:`stage` … commit, so both commit together."""
        key = str(tunnel_id)
        if allocation is None:
            self._db.execute("DELETE FROM allocations WHERE tunnel_id = ?", (key,))
        else:  # one statement: the row replaced (tunnel_id is the primary key)
            self._db.execute("INSERT OR REPLACE INTO allocations VALUES (?, ?, ?)", (
                key, allocation.tunnel_index,
                json.dumps([list(pair) for pair in allocation.sa_pairs])))

    def load_baselines(self) -> dict[int, tuple[TunnelCounters, TunnelCounters]]:
        """Every tunnel's counter baseline and last raw reading."""
        return {int(tunnel_id): (TunnelCounters(**json.loads(base)),
                                 TunnelCounters(**json.loads(last)))
                for tunnel_id, base, last in self._db.execute(
                    "SELECT tunnel_id, base, last FROM counter_baselines")}

    def save_baselines(self, rows: Mapping[int, tuple[TunnelCounters, TunnelCounters] | None]
                       ) -> None:
        """Write (or, for None, forget) baselines — in the open request transaction if any,
        else in one transaction of their own (a stats page of new tunnels is one commit, not
        two per tunnel)."""
        own = not self._db.in_transaction
        if own:
            self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("DELETE FROM counter_baselines WHERE tunnel_id = ?",
                                 [(str(tunnel_id),) for tunnel_id in rows])
            self._db.executemany("INSERT INTO counter_baselines VALUES (?, ?, ?)", [
                (str(tunnel_id), json.dumps(dataclasses.asdict(row[0])),
                 json.dumps(dataclasses.asdict(row[1])))
                for tunnel_id, row in rows.items() if row is not None])
        except BaseException:
            if own:
                self._db.execute("ROLLBACK")
            raise
        if own:
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the database (the next start reloads everything from disk)."""
        self._db.close()
