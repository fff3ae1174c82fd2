"""Alembic environment for mloop's metadata schema; run through mloop.store, not by hand."""

from __future__ import annotations

from alembic import context

from mloop.store._schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - alembic's own CLI, used to write new revisions
    from sqlalchemy import create_engine

    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "sqlite://")
    connection = engine.connect()

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
