"""Engines for SQLite and PostgreSQL, and translation of driver errors into mloop's tree.

SQLite is set up for many writers in many processes: WAL journal, ``synchronous=NORMAL``,
foreign keys on, a busy timeout, and write transactions that start with ``BEGIN IMMEDIATE`` so
two writers never deadlock upgrading a read lock (the usual source of "database is locked").
"""

from __future__ import annotations

import contextlib
import importlib.util
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import ConnectionPoolEntry

from mloop.errors import (
    ConfigError,
    MissingExtraError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
)

T = TypeVar("T")

_WRITE = "mloop_write"


def normalize_uri(uri: str) -> str:
    """Pick the driver mloop supports for each database (psycopg 3 for PostgreSQL)."""
    if uri.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + uri.split("://", 1)[1]
    return uri


def create_engine(uri: str, *, busy_timeout: float = 60.0, create: bool = True) -> Engine:
    """An engine for a ``sqlite:///`` or ``postgresql+psycopg://`` URI, configured for mloop.

    With ``create=False`` a SQLite file that does not exist is a NotFoundError, not a new file.
    """
    uri = normalize_uri(uri)
    try:
        url = make_url(uri)
    except exc.ArgumentError as error:
        raise ConfigError(
            f"tracking URI {uri!r} is not a database URL; use sqlite:///path/to/mloop.db "
            "or postgresql://user@host:5432/dbname"
        ) from error
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, busy_timeout, create)
    if backend == "postgresql":
        if importlib.util.find_spec("psycopg") is None:
            raise MissingExtraError("psycopg", "postgres", "A PostgreSQL metadata store")
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    raise ConfigError(
        f"tracking URI {uri!r}: mloop stores metadata in SQLite or PostgreSQL, not {backend!r}"
    )


def _sqlite_engine(url: sa.URL, busy_timeout: float, create: bool) -> Engine:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise ConfigError(
            "an in-memory SQLite store cannot be shared by the background writer; "
            "use a file: sqlite:///path/to/mloop.db"
        )
    path = Path(database).expanduser()
    if not create and not path.exists():
        raise NotFoundError(no_store_message(str(path)))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"cannot create the folder for the SQLite store {path}: {error}"
        ) from error
    engine = sa.create_engine(
        url.set(database=str(path)),
        connect_args={"timeout": busy_timeout, "check_same_thread": False},
        pool_size=4,
        max_overflow=8,
    )
    timeout_ms = int(busy_timeout * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take transaction control from the driver so BEGIN can be IMMEDIATE for writers.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def no_store_message(where: str) -> str:
    """What to say when a store is opened for reading and holds nothing yet."""
    return (
        f"no mloop store at {where}: nothing has been recorded here yet (mloop demo, or "
        "mloop.start_run in a script, records runs); to read another store, set "
        "MLOOP_TRACKING_URI or run from its project folder"
    )


def _is_transient(error: exc.DBAPIError) -> bool:
    text = str(error.orig).lower()
    return (
        "database is locked" in text
        or "database is busy" in text
        or "deadlock detected" in text
        or "could not serialize" in text
    )


def with_retries(engine: Engine, action: Callable[[], T], *, what: str, attempts: int = 8) -> T:
    """Run ``action``, retrying transient lock errors with jittered backoff; translate errors."""
    delay = 0.01
    for attempt in range(attempts):
        try:
            return action()
        except exc.OperationalError as error:
            if _is_transient(error) and attempt < attempts - 1:
                time.sleep(delay * (1 + random.random()))  # noqa: S311 - jitter, not crypto
                delay = min(delay * 2, 1.0)
                continue
            raise StoreUnavailableError(
                f"metadata store {_safe_url(engine)} could not {what}: {error.orig}. "
                "Check that the database is reachable and not held by another process."
            ) from error
        except exc.DBAPIError as error:
            if isinstance(error, exc.IntegrityError):
                raise
            raise StoreError(f"metadata store could not {what}: {error.orig}") from error
    raise AssertionError("unreachable")  # pragma: no cover


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction (BEGIN IMMEDIATE on SQLite), committed on exit."""
    with engine.connect().execution_options(**{_WRITE: True}) as conn, conn.begin():
        yield conn


def _safe_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
