"""The embedded online store: one SQLite file, one table per feature view.

``online_views`` lists the views and ``online_layouts`` the lists of feature names records
follow (see ``_codec``). Each view's records live in their own table, named from a hash of the
view name because SQLite folds the case of table names ("Users" and "users" are two views but
could not be two tables)::

    CREATE TABLE fv_<sha256 of the view name, 24 hex digits> (
        key TEXT PRIMARY KEY,        -- the entity key's canonical JSON
        event_ms INTEGER NOT NULL,   -- event time of the source row
        layout TEXT NOT NULL,        -- online_layouts.id: the feature names of the values
        vals BLOB NOT NULL           -- the values, a MessagePack array
    ) WITHOUT ROWID

(Tables made by schema version 1 declare ``vals TEXT`` and hold JSON text; SQLite keeps a
BLOB in them as it is, and the reader takes both.)

Measured with 3 views of 100,000 records: a 1-key read takes 3.9 µs in SQLite with a table per
view and 7.3 µs with one table keyed by (view, key); a 100-key read 154 µs against 290 µs.
Schema version 2 (values as MessagePack instead of JSON text) needs no change to the tables of
version 1; the version says that an mloop which reads only JSON must not open the file.

Writers and readers in many threads and processes: the journal is WAL, so readers never wait
and always see a committed state; every thread gets its own connection; a write is one
``BEGIN IMMEDIATE`` transaction, so a writer that dies halfway leaves nothing behind.
``synchronous=NORMAL``: a power cut may lose the last writes, never corrupt the file (the
online store can be materialized again).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mloop.errors import ConfigError, SchemaVersionError, StoreError, StoreUnavailableError

from ._base import EntityKey, OnlineRead
from ._codec import (
    Batch,
    Reader,
    Record,
    check_view,
    empty_read,
    encode_key,
    pack_records,
)

__all__ = ["SqliteOnlineStore"]

SCHEMA_VERSION = 2
# Keys per SELECT; batch sizes are rounded up to a power of two (padding with a repeated key)
# so a handful of prepared statements serves every batch size.
_MAX_CHUNK = 4096
_MMAP_SIZE = 1 << 30

_UPSERT = """
INSERT INTO {table} (key, event_ms, layout, vals) VALUES (?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE
SET event_ms = excluded.event_ms, layout = excluded.layout, vals = excluded.vals
WHERE excluded.event_ms >= {table}.event_ms
"""

_CREATE_VIEW_TABLE = """
CREATE TABLE IF NOT EXISTS {table} (
    key TEXT PRIMARY KEY,
    event_ms INTEGER NOT NULL,
    layout TEXT NOT NULL,
    vals BLOB NOT NULL
) WITHOUT ROWID
"""

# Stores whose connections a forked child must not touch (see _forget_connections_after_fork).
_OPEN_STORES: weakref.WeakSet[SqliteOnlineStore] = weakref.WeakSet()
_INHERITED: list[object] = []


class SqliteOnlineStore:
    """The online store in one SQLite file; safe to share between threads and processes.

    >>> store = SqliteOnlineStore("/srv/churn/.mloop/online.db")  # doctest: +SKIP
    >>> store.write("customer", [(42,)], [[0.5, "gold"]], ["spend", "tier"], [1714557600000])
    1
    >>> store.read("customer", [(42,), (7,)], ["tier"]).values  # doctest: +SKIP
    [['gold'], [None]]
    """

    def __init__(self, path_or_uri: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        self.path = _file_path(path_or_uri)
        self.uri = f"sqlite:///{self.path.as_posix()}"
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: dict[int, sqlite3.Connection] = {}  # by thread id, to close them all
        self._closed = False
        self._tables: dict[str, str] = {}
        self._selects: dict[tuple[str, int], str] = {}
        self._reader = Reader(self._load_layout)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"cannot create the folder of the online store {self.path}: {error}"
            ) from error
        try:
            self._migrate(self._connection())
        except BaseException:
            self.close()
            raise
        _OPEN_STORES.add(self)

    def __repr__(self) -> str:
        return f"SqliteOnlineStore({str(self.path)!r})"

    def write(
        self,
        view: str,
        keys: Sequence[EntityKey],
        values: Sequence[Sequence[Any]],
        features: Sequence[str],
        event_times_ms: Sequence[int],
    ) -> int:
        """Upsert one record per key in one transaction; returns how many records were stored.

        A record older than the stored one is skipped (and not counted); an equal event time
        replaces it.
        """
        return self.write_batch(pack_records(view, keys, values, features, event_times_ms))

    def write_batch(self, batch: Batch) -> int:
        """Write a batch made by ``pack_records`` or ``pack_arrow``, like ``write``."""
        view, layout, packed = batch
        if not packed:
            return 0
        table = self._table(view)
        conn = self._connection()
        try:
            with _transaction(conn):
                conn.execute(_CREATE_VIEW_TABLE.format(table=table))
                conn.execute(
                    "INSERT OR IGNORE INTO online_views (view, table_name) VALUES (?, ?)",
                    (view, table),
                )
                conn.execute(
                    "INSERT OR IGNORE INTO online_layouts (id, features) VALUES (?, ?)", layout
                )
                before = conn.total_changes
                # In key order, the B-tree is filled page after page instead of at random
                # places: 100,000 records went in 2x faster.
                conn.executemany(
                    _UPSERT.format(table=table),
                    [(key, event_ms, layout.id, data) for key, event_ms, data in sorted(packed)],
                )
                return conn.total_changes - before
        except sqlite3.Error as error:
            raise self._error(error, f"writing {len(packed)} records to view {view!r}") from error

    def read(self, view: str, keys: Sequence[EntityKey], features: Sequence[str]) -> OnlineRead:
        """The stored values of ``features`` for each key, in ``keys`` order, in one query."""
        table = self._tables.get(view) if type(view) is str else None
        if table is None:
            table = self._table(check_view(view))
        names = self._reader.checked(features)
        encoded = [encode_key(key) for key in keys]
        if not encoded:
            return empty_read()
        conn = self._connection()
        try:
            try:
                found = self._fetch(conn, table, encoded)
            except sqlite3.OperationalError:
                if self._exists(conn, table):
                    raise
                found = {}  # nothing was ever written to this view, or it was dropped
        except sqlite3.Error as error:
            raise self._error(error, f"reading view {view!r}") from error
        return self._reader.build(encoded, found, names)

    def drop_view(self, view: str) -> None:
        """Forget every record of ``view``; a view that holds nothing is not an error."""
        table = self._table(check_view(view))
        conn = self._connection()
        try:
            with _transaction(conn):
                conn.execute(f"DROP TABLE IF EXISTS {table}")
                conn.execute("DELETE FROM online_views WHERE view = ?", (view,))
        except sqlite3.Error as error:
            raise self._error(error, f"dropping view {view!r}") from error

    def close(self) -> None:
        """Close every thread's connection; call it once no thread uses the store any more."""
        with self._lock:
            self._closed = True
            connections, self._connections = list(self._connections.values()), {}
            self._local = threading.local()
        for conn in connections:
            conn.close()

    # -- connections ------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        return conn if conn is not None else self._connect()

    def _connect(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"the online store {self.path} is closed; open it again")
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,  # transactions are begun explicitly, IMMEDIATE for writes
                check_same_thread=False,  # used by one thread only; close() may run elsewhere
                cached_statements=512,
            )
            conn.execute("PRAGMA synchronous = NORMAL")
            # Reads through a memory map instead of a read() per page: a random 100-key read
            # of 100,000 records took 500 µs instead of 770 µs. Address space only, not memory.
            conn.execute(f"PRAGMA mmap_size = {_MMAP_SIZE}")
        except sqlite3.Error as error:
            raise self._error(error, "opening the database") from error
        self._local.conn = conn
        with self._lock:
            # A thread id is reused once its thread has ended: close that thread's connection.
            old = self._connections.get(threading.get_ident())
            self._connections[threading.get_ident()] = conn
        if old is not None:
            old.close()
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == SCHEMA_VERSION:
                return
            if version > SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"the online store {self.path} has schema version {version}, newer than "
                    f"this mloop understands ({SCHEMA_VERSION}); upgrade mloop"
                )
            if version == 1:  # 2 reads what 1 wrote: only the version changes
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                return
            conn.execute("PRAGMA journal_mode = WAL")  # kept in the file from now on
            with _transaction(conn):
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS online_views "
                    "(view TEXT PRIMARY KEY, table_name TEXT NOT NULL UNIQUE) WITHOUT ROWID"
                )
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS online_layouts "
                    "(id TEXT PRIMARY KEY, features TEXT NOT NULL) WITHOUT ROWID"
                )
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as error:
            raise self._error(error, "creating its tables") from error

    # -- queries ----------------------------------------------------------------------------

    def _table(self, view: str) -> str:
        table = self._tables.get(view)
        if table is None:
            digest = hashlib.sha256(view.encode("utf-8")).hexdigest()[:24]
            table = f"fv_{digest}"  # hex: safe in SQL as it is
            if len(self._tables) > 10_000:
                self._tables.clear()
            self._tables[view] = table
        return table

    def _fetch(self, conn: sqlite3.Connection, table: str, keys: list[str]) -> dict[str, Record]:
        if len(keys) == 1:  # the common serving case, kept short
            row = conn.execute(self._select(table, 1), keys).fetchone()
            return {} if row is None else {row[0]: row}
        unique = list(dict.fromkeys(keys))
        if len(unique) <= _MAX_CHUNK:
            rows = conn.execute(self._select(table, len(unique)), _padded(unique)).fetchall()
        else:
            rows = []
            with _transaction(conn, "BEGIN"):  # one snapshot for all the chunks
                for start in range(0, len(unique), _MAX_CHUNK):
                    chunk = unique[start : start + _MAX_CHUNK]
                    rows += conn.execute(self._select(table, len(chunk)), _padded(chunk))
        return {row[0]: row for row in rows}

    def _select(self, table: str, count: int) -> str:
        size = 1 << (count - 1).bit_length()
        sql = self._selects.get((table, size))
        if sql is None:
            where = "key = ?" if size == 1 else f"key IN ({', '.join('?' * size)})"
            sql = f"SELECT key, event_ms, layout, vals FROM {table} WHERE {where}"
            if len(self._selects) > 10_000:
                self._selects.clear()
            self._selects[(table, size)] = sql
        return sql

    def _load_layout(self, layout: str) -> str | None:
        try:
            row = (
                self._connection()
                .execute("SELECT features FROM online_layouts WHERE id = ?", (layout,))
                .fetchone()
            )
        except sqlite3.Error as error:
            raise self._error(error, f"reading layout {layout}") from error
        return None if row is None else str(row[0])

    @staticmethod
    def _exists(conn: sqlite3.Connection, table: str) -> bool:
        row = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        return row is not None

    def _error(self, error: sqlite3.Error, doing: str) -> StoreError:
        code = getattr(error, "sqlite_errorcode", None)
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return StoreUnavailableError(
                f"the online store {self.path} stayed locked by another writer for "
                f"{self._busy_timeout:g} s while {doing}; retry when the other write has ended"
            )
        if code == sqlite3.SQLITE_NOTADB:
            return StoreError(
                f"{self.path} is not a SQLite database, so it cannot be the online store; "
                "point the online store at another file"
            )
        return StoreError(f"the online store {self.path} failed while {doing}: {error}")


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
    conn.execute(begin)
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def _padded(keys: list[str]) -> list[str]:
    missing = (1 << (len(keys) - 1).bit_length()) - len(keys)
    return keys + [keys[-1]] * missing if missing else keys


def _file_path(path_or_uri: str | os.PathLike[str]) -> Path:
    text = os.fspath(path_or_uri)
    if text.startswith("sqlite://"):
        text = text.removeprefix("sqlite://").removeprefix("/")
    if text in ("", ":memory:") or text.startswith("file:"):
        raise ConfigError(
            f"online store {os.fspath(path_or_uri)!r}: name a database file, like "
            "sqlite:///path/to/online.db or path/to/online.db (an in-memory database cannot be "
            "shared by the threads of a server)"
        )
    # Absolute, so that every thread's connection opens the same file whatever the cwd.
    return Path(text).expanduser().absolute()


def _forget_connections_after_fork() -> None:
    # A SQLite connection must not be used, nor closed, in a forked child: keep the inherited
    # ones alive and untouched, and let each store open new ones.
    for store in list(_OPEN_STORES):
        _INHERITED.append(store._connections)
        store._connections = {}
        store._local = threading.local()


os.register_at_fork(after_in_child=_forget_connections_after_fork)
