"""Durable SA state: reserved sequence-number blocks, replay high-water marks, retired keys.

Why SQLite (stdlib `sqlite3`) in WAL mode with `synchronous=FULL`, not a hand-written journal:
every commit is written and fsynced before `commit()` returns, a crash in the middle of one
leaves the previous state (atomic commits, checksummed WAL frames), and the few rows (one per SA
identity) need no compaction logic of ours. A commit costs one fsync; it happens once per
reservation block, never per packet (crypto_worker/reservation.py), off the packet thread.

An SA is identified by (sa_index, spi, fingerprint); the fingerprint is HMAC-SHA256 of the key
and salt under a random 32-byte secret kept in the state directory (file `fingerprint.secret`,
0600), so the database holds no key material and a stolen database alone cannot be used to test
key guesses. Each row holds `durable_limit`: outbound, the last sequence number reserved (none
above it was ever used); inbound, the replay high-water mark (no sequence number above it was ever
accepted). A row is never deleted: when the SA is removed it is marked retired. An encrypt row
for a key means that key has numbered packets, so a fresh SA with that key is refused (its
sequence numbers would restart: AES-GCM/CCM nonce reuse); a resume of the same identity is
allowed, removed or not, because it continues above the durable limit (`resume`).

The same database keeps the drop counters by reason (crypto_worker/drops.py writes them at most
every few hundred milliseconds, off the packet thread): a live SA's under its identity, and the
drops that belong to no SA. They only grow; a resumed SA continues from its own, a fresh SA (a
reused index included) starts from zero, and a removed SA's go with it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import sqlite3
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from crypto_worker.drops import DropReason, DropSnapshot
from crypto_worker.sa import Direction, SaKeys

log = logging.getLogger(__name__)

SECRET_FILE = "fingerprint.secret"
DATABASE_FILE = "sa-state.sqlite"
_SECRET_BYTES = 32
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sa_state (
    sa_index INTEGER NOT NULL,
    spi INTEGER NOT NULL,
    fingerprint BLOB NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('encrypt', 'decrypt')),
    durable_limit BLOB NOT NULL,  -- 8 bytes big-endian: ESN sequence numbers exceed INTEGER
    retired INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sa_index, spi, fingerprint, direction)
);
CREATE INDEX IF NOT EXISTS sa_state_by_key ON sa_state (fingerprint, direction);
CREATE TABLE IF NOT EXISTS sa_drops (  -- per-reason drop counts of a live SA (drops.py)
    sa_index INTEGER NOT NULL,
    spi INTEGER NOT NULL,
    fingerprint BLOB NOT NULL,
    direction TEXT NOT NULL,
    reason TEXT NOT NULL,                -- DropReason value (the proto's name)
    packets INTEGER NOT NULL,
    PRIMARY KEY (sa_index, spi, fingerprint, direction, reason)
);
CREATE TABLE IF NOT EXISTS worker_drops (  -- drops that belong to no SA (drops.py)
    kind TEXT NOT NULL CHECK (kind IN ('unattributed', 'unknown_sa')),
    key TEXT NOT NULL,                   -- DropReason value, or the unknown sa_index
    packets INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
);
"""
_IDENTITY = "sa_index = ? AND spi = ? AND fingerprint = ? AND direction = ?"


class StateStoreError(Exception):
    """The durable state cannot be read or written (disk full, I/O error, bad permissions)."""


class SaStateRefused(Exception):
    """The request contradicts the durable state (retired or used key, nothing to resume)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SaIdentity:
    """Which durable row an SA owns; never the key itself."""

    sa_index: int
    spi: int
    fingerprint: bytes
    direction: Direction


def _identity_args(identity: SaIdentity) -> tuple[object, ...]:
    return (identity.sa_index, identity.spi, identity.fingerprint, identity.direction.value)


def _pack(value: int) -> bytes:
    return value.to_bytes(8, "big")


def _unpack(blob: bytes) -> int:
    return int.from_bytes(blob, "big")


def _private_directory(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.stat(path)
    if info.st_uid != os.getuid():
        raise StateStoreError(f"state_dir: {str(path)!r} belongs to uid {info.st_uid}")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_secret(directory: Path) -> bytes:
    path = directory / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_bytes()
        if len(secret) != _SECRET_BYTES:
            raise StateStoreError(f"state_dir: {str(path)!r} is not a {_SECRET_BYTES}-byte "
                                  "secret") from None
        os.chmod(path, 0o600)
        return secret
    secret = os.urandom(_SECRET_BYTES)
    try:
        os.write(fd, secret)
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_directory(directory)
    return secret


class SaStateStore:
    """The durable rows of every SA identity; thread-safe (one connection, one lock)."""

    def __init__(self, connection: sqlite3.Connection, secret: bytes, where: str) -> None:
        self._db = connection
        self._secret = secret
        self._lock = threading.Lock()
        self.where = where
        self.durable = False  # open() sets it: the state outlives the process
        self._db.executescript(_SCHEMA)

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> SaStateStore:
        """Opens (creating 0700/0600 if needed) the store in `directory`."""
        path = Path(directory)
        try:
            _private_directory(path)
            secret = _load_secret(path)
            database = path / DATABASE_FILE
            os.close(os.open(database, os.O_RDWR | os.O_CREAT, 0o600))  # SQLite's WAL/SHM
            os.chmod(database, 0o600)  # files take the database file's mode
            connection = sqlite3.connect(database, check_same_thread=False,
                                         isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            store = cls(connection, secret, str(path))
            store.durable = True
            _fsync_directory(path)
        except (OSError, sqlite3.Error) as error:
            raise StateStoreError(f"state_dir: {str(path)!r}: {error}") from error
        log.info("durable SA state in %s", path)
        return store

    @classmethod
    def in_memory(cls) -> SaStateStore:
        """A store that forgets everything at exit: for in-process tests and benchmarks, and for
        a worker started without --state-dir (which then logs that restarts are not covered)."""
        return cls(sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None),
                   os.urandom(_SECRET_BYTES), "memory")

    def identity(self, sa_index: int, spi: int, direction: Direction,
                 keys: SaKeys) -> SaIdentity:
        key, salt = keys.key.reveal(), keys.salt.reveal()
        digest = hmac.new(self._secret, bytes((len(key),)) + key + salt, hashlib.sha256).digest()
        return SaIdentity(sa_index=sa_index, spi=spi, fingerprint=digest, direction=direction)

    def _write(self, statements: list[tuple[str, tuple[object, ...]]]) -> None:
        """Runs the statements as one transaction, committed and fsynced before returning."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for sql, args in statements:
                        self._db.execute(sql, args)
                    self._commit()
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except (OSError, sqlite3.Error) as error:
                raise StateStoreError(f"durable SA state in {self.where}: {error}") from error

    def _commit(self) -> None:
        """COMMIT (with synchronous=FULL: written and fsynced); a seam for fault tests."""
        self._db.execute("COMMIT")

    def _key_used(self, identity: SaIdentity) -> tuple[bool, bool]:
        """(a row of this key exists in this direction, one of them is retired)."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*), COALESCE(MAX(retired), 0) FROM sa_state "
                "WHERE fingerprint = ? AND direction = ?",
                (identity.fingerprint, identity.direction.value),
            ).fetchone()
        return bool(row[0]), bool(row[1])

    def begin(self, identity: SaIdentity, limit: int) -> None:
        """A new SA: refused for an encrypt key that has numbered packets before; records the
        first reservation (`limit`) durably."""
        self.check_new(identity)
        self.write(self.begin_statements(identity, limit))

    def write(self, statements: list[tuple[str, tuple[object, ...]]]) -> None:
        """Runs statements (of :meth:`begin_statements` …) as one durable transaction: a batch
        of SAs costs one commit and one fsync (crypto_worker.sa_table.SaTable.add_many)."""
        self._write(statements)

    def check_new(self, identity: SaIdentity) -> None:
        """Raises SaStateRefused when a new SA under this key must not be installed (an
        encrypt key that has numbered packets before); reads only."""
        if identity.direction is Direction.ENCRYPT:
            used, retired = self._key_used(identity)
            if retired:
                raise SaStateRefused(
                    f"key retired: sa_index {identity.sa_index} spi {identity.spi}: this encrypt "
                    "key protected traffic of an SA that was removed; its sequence numbers "
                    "would restart (nonce reuse): use a new key")
            if used:
                raise SaStateRefused(
                    f"key retired: sa_index {identity.sa_index} spi {identity.spi}: this encrypt "
                    "key has numbered packets before (durable state exists); re-install it "
                    "with resume=true at its own sa_index and spi, or use a new key")

    @staticmethod
    def begin_statements(identity: SaIdentity, limit: int
                         ) -> list[tuple[str, tuple[object, ...]]]:
        """The writes of :meth:`begin`: the first reservation, no drops from an older SA."""
        return [(
            "INSERT INTO sa_state (sa_index, spi, fingerprint, direction, durable_limit) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET durable_limit = excluded."
            "durable_limit, retired = 0",
            (identity.sa_index, identity.spi, identity.fingerprint, identity.direction.value,
             _pack(limit)),
        ), (f"DELETE FROM sa_drops WHERE {_IDENTITY}", _identity_args(identity))]

    def resume(self, identity: SaIdentity) -> int:
        """The durable limit of an SA installed before, removed or not; a removed one is live
        again from here on (its row un-retired in the same call, so the limit can be raised).

        Resuming is safe whether or not the SA was removed: outbound numbering goes on above
        the limit (no nonce is used twice) and inbound everything at or below it is refused (no
        replay). It is what lets the controller undo a request it was killed in the middle of
        (an encrypt rekey that had already removed the old SA: docs/operations.md)."""
        with self._lock:
            row = self._db.execute(
                f"SELECT durable_limit, retired FROM sa_state WHERE {_IDENTITY}",
                _identity_args(identity)).fetchone()
        if row is None:
            raise SaStateRefused(
                f"no durable state for sa_index {identity.sa_index} spi {identity.spi} "
                f"({identity.direction.value}) with this key; install it as a new SA "
                "(resume=false) with a new key")
        if row[1]:
            self._write([(f"UPDATE sa_state SET retired = 0 WHERE {_IDENTITY}",
                          _identity_args(identity))])
            log.info("sa_index %s spi %s (%s): resuming an SA that was removed, above its "
                     "durable limit", identity.sa_index, identity.spi, identity.direction.value)
        return _unpack(row[0])

    def extend(self, identity: SaIdentity, limit: int) -> None:
        """Raises the durable limit to `limit` (never lowers it; a removed SA's row stays)."""
        self._write([(
            "UPDATE sa_state SET durable_limit = ? WHERE sa_index = ? AND spi = ? AND "
            "fingerprint = ? AND direction = ? AND retired = 0 AND durable_limit < ?",
            (_pack(limit), identity.sa_index, identity.spi, identity.fingerprint,
             identity.direction.value, _pack(limit)),
        )])

    def release(self, identity: SaIdentity) -> None:
        """The SA was removed: its row is kept, retired (an encrypt key is never installed
        fresh again; a resume continues above the limit, refusing replays below it), and so
        are its drop counts (a resume continues from them; a fresh SA clears them)."""
        self._write(self.release_statements(identity))

    @staticmethod
    def release_statements(identity: SaIdentity) -> list[tuple[str, tuple[object, ...]]]:
        """The writes of :meth:`release`."""
        return [(f"UPDATE sa_state SET retired = 1 WHERE {_IDENTITY}",
                 _identity_args(identity))]

    # ---- drop counters (crypto_worker/drops.py writes them; a resumed SA reads its own) -----

    def save_drops(self, snapshot: DropSnapshot) -> None:
        """Raise the stored counts to the snapshot's (never lowers one) in one transaction.
        An SA's counts are stored only while its state row is live: a removed SA's are gone
        with it, so an index reused later starts from zero."""
        statements: list[tuple[str, tuple[object, ...]]] = []
        for identity, drops in snapshot.by_sa:
            for reason, count in drops.items():
                statements.append((
                    "INSERT INTO sa_drops (sa_index, spi, fingerprint, direction, reason, "
                    "packets) SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM sa_state "
                    f"WHERE {_IDENTITY} AND retired = 0) ON CONFLICT DO UPDATE SET "
                    "packets = MAX(packets, excluded.packets)",
                    (*_identity_args(identity), reason.value, count,
                     *_identity_args(identity))))
        for kind, counts in (("unattributed", {r.value: n for r, n in
                                               snapshot.unattributed.items()}),
                             ("unknown_sa", {str(i): n for i, n in snapshot.unknown_sa.items()})):
            for key, count in counts.items():
                statements.append((
                    "INSERT INTO worker_drops (kind, key, packets) VALUES (?, ?, ?) ON CONFLICT "
                    "DO UPDATE SET packets = MAX(packets, excluded.packets)", (kind, key, count)))
        if statements:
            self._write(statements)

    def load_drops(self, identity: SaIdentity) -> dict[DropReason, int]:
        """The stored drop counts of one SA (a resumed SA continues from them)."""
        with self._lock:
            rows = self._db.execute(f"SELECT reason, packets FROM sa_drops WHERE {_IDENTITY}",
                                    _identity_args(identity)).fetchall()
        return {DropReason(reason): packets for reason, packets in rows}

    def load_worker_drops(self) -> tuple[dict[DropReason, int], dict[int, int]]:
        """The stored unattributed drops by reason and unknown-SA drops by sa_index."""
        with self._lock:
            rows = self._db.execute("SELECT kind, key, packets FROM worker_drops").fetchall()
        unattributed = {DropReason(key): n for kind, key, n in rows if kind == "unattributed"}
        unknown = {int(key): n for kind, key, n in rows if kind == "unknown_sa"}
        return unattributed, unknown

    def close(self) -> None:
        with self._lock:
            self._db.close()
