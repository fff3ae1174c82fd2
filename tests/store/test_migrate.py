"""Schema creation, the version check, and concurrent first opens."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from mloop.errors import SchemaVersionError
from mloop.store import SqlStore
from mloop.store._migrate import KNOWN_REVISIONS, MIGRATIONS_DIR, SCHEMA_HEAD
from mloop.store._schema import metadata


def test_known_revisions_match_the_migration_scripts() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(config)
    assert script.get_current_head() == SCHEMA_HEAD
    walked = [rev.revision for rev in script.walk_revisions()]
    assert list(reversed(walked)) == list(KNOWN_REVISIONS)


def test_migrations_build_exactly_the_declared_schema(store_url: str) -> None:
    SqlStore(store_url).close()
    engine = sa.create_engine(store_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        inspector = sa.inspect(engine)
        tables = set(inspector.get_table_names()) - {"alembic_version"}
        assert tables == set(metadata.tables)
        for table in metadata.sorted_tables:
            columns = {c["name"] for c in inspector.get_columns(table.name)}
            assert columns == set(table.columns.keys()), table.name
            indexes = {i["name"] for i in inspector.get_indexes(table.name)}
            assert indexes >= {i.name for i in table.indexes}, table.name
    finally:
        engine.dispose()


def test_a_newer_schema_is_refused_with_advice(store_url: str) -> None:
    SqlStore(store_url).close()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    with pytest.raises(SchemaVersionError, match=r"'9999'.*newer mloop.*pip install -U mloop"):
        SqlStore(store_url)


def test_reopening_does_not_migrate_again(store_url: str) -> None:
    store = SqlStore(store_url)
    exp = store.get_or_create_experiment("keep")
    store.close()
    again = SqlStore(store_url)
    assert again.get_experiment("keep") == exp
    again.close()


def _open(url: str, report: Path) -> None:
    try:
        store = SqlStore(url)
        store.get_or_create_experiment("same")
        store.close()
    except BaseException as error:
        report.write_text(f"{type(error).__name__}: {error}")
        raise


def test_concurrent_first_opens_migrate_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    ctx = multiprocessing.get_context("spawn")
    reports = [tmp_path / f"error-{i}.txt" for i in range(4)]
    procs = [ctx.Process(target=_open, args=(url, report)) for report in reports]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    errors = [r.read_text() for r in reports if r.exists()]
    assert errors == []
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    store = SqlStore(url)
    assert [e.name for e in store.list_experiments()] == ["same"]
    store.close()


def test_a_reader_does_not_create_a_store(store_url: str, tmp_path: Path) -> None:
    from mloop.errors import NotFoundError

    if store_url.startswith("sqlite"):
        missing = f"sqlite:///{tmp_path / 'nowhere' / 'mloop.db'}"
        with pytest.raises(NotFoundError, match="nothing has been recorded here yet"):
            SqlStore(missing, create=False)
        assert not (tmp_path / "nowhere").exists()
        return
    with pytest.raises(NotFoundError, match="no mloop store"):
        SqlStore(store_url, create=False)  # an empty PostgreSQL database: left empty
    engine = sa.create_engine(store_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    SqlStore(store_url).close()
    SqlStore(store_url, create=False).close()  # once it exists, readers open it
