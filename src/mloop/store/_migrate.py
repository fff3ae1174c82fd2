"""Bring a database to the schema this mloop understands, once, whoever opens it first.

Opening a store reads ``alembic_version`` with one query; Alembic is imported and run only
when the schema is missing or older. Concurrent first opens are serialized by the database
itself (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), and a schema written
by a newer mloop is refused instead of being half-understood.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from mloop.errors import NotFoundError, SchemaVersionError
from mloop.store._engine import no_store_message, with_retries, write_transaction

# Every revision this code knows, oldest first; the last is the head. A test checks that this
# matches the revisions in migrations/versions.
KNOWN_REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004")
SCHEMA_HEAD = KNOWN_REVISIONS[-1]
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_PG_LOCK_KEY = 0x6D6C6F6F70  # "mloop"


def current_revision(conn: Connection) -> str | None:
    """The revision recorded in the database, or None when it has no mloop schema yet."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return None if row is None else str(row[0])


def _check_known(revision: str | None, engine: Engine) -> None:
    if revision is not None and revision not in KNOWN_REVISIONS:
        raise SchemaVersionError(
            f"the metadata store {engine.url.render_as_string(hide_password=True)} has schema "
            f"revision {revision!r}, written by a newer mloop than this one (which knows up to "
            f"{SCHEMA_HEAD!r}); upgrade mloop: pip install -U mloop"
        )


def ensure_schema(engine: Engine, *, create: bool = True) -> None:
    """Create or upgrade the schema to SCHEMA_HEAD; a no-op costing one query when current.

    With ``create=False`` a database without an mloop schema is a NotFoundError.
    """

    def read() -> str | None:
        with engine.connect() as conn:
            return current_revision(conn)

    revision = with_retries(engine, read, what="read its schema version")
    _check_known(revision, engine)
    if revision == SCHEMA_HEAD:
        return
    if revision is None and not create:
        raise NotFoundError(no_store_message(engine.url.render_as_string(hide_password=True)))
    with_retries(engine, lambda: _upgrade(engine), what="create or upgrade its schema")


def _upgrade(engine: Engine) -> None:
    from alembic import command  # only needed the first time a database is opened
    from alembic.config import Config

    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        # Another process may have migrated while this one waited for the lock.
        revision = current_revision(conn)
        _check_known(revision, engine)
        if revision == SCHEMA_HEAD:
            return
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = conn
        command.upgrade(config, SCHEMA_HEAD)
