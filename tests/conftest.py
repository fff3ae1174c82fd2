"""Fixtures shared by the whole suite: isolated settings, and real databases.

PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) tests skip with a reason when the
service is not there, unless MLOOP_REQUIRE_SERVICES=1 (set by .ci/run in CI): then they fail.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from mloop.store import SqlStore

PG_ADMIN_URL = os.environ.get(
    "MLOOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def services_required() -> bool:
    return os.environ.get("MLOOP_REQUIRE_SERVICES", "") not in ("", "0", "false")


def service_missing(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({type(error).__name__}: {error})"
    if services_required():
        pytest.fail(f"{message}, and MLOOP_REQUIRE_SERVICES=1 requires it", pytrace=False)
    pytest.skip(f"{message}; set MLOOP_REQUIRE_SERVICES=1 to make this a failure")


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own project folder; no MLOOP_* from the caller leaks in."""
    for name in list(os.environ):
        if name.startswith("MLOOP_") and name not in (
            "MLOOP_REQUIRE_SERVICES",
            "MLOOP_TEST_POSTGRES_URL",
        ):
            monkeypatch.delenv(name)
    home = tmp_path / "project"
    home.mkdir()
    monkeypatch.setenv("MLOOP_HOME", str(home))
    monkeypatch.chdir(home)
    return home


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[sa.Engine]:
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as error:
        engine.dispose()
        service_missing("PostgreSQL at 127.0.0.1:5432", error)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_url(postgres_admin: sa.Engine) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"mloop_test_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'meta' / 'mloop.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty metadata database of each backend the suite runs on."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    """An open, migrated metadata store on each backend."""
    opened = SqlStore(store_url)
    yield opened
    opened.close()


REDIS_URL = os.environ.get("MLOOP_TEST_REDIS_URL", "redis://127.0.0.1:6379")


@pytest.fixture(scope="session")
def redis_server() -> str:
    """The URL of the real Redis (without a database number); skips or fails if it is down."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        service_missing(f"Redis at {REDIS_URL}", error)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(autouse=True)
def _restore_import_state() -> Iterator[None]:
    """``load_pipelines`` leaves the project folder on ``sys.path`` and its file imported as the
    module ``pipelines`` (what a ``mloop run`` process needs, and its pool workers); one test's
    project must not be what the next test imports under those names."""
    path = list(sys.path)
    saved = {name: sys.modules.get(name) for name in ("pipelines", "features")}
    yield
    sys.path[:] = path
    for name, module in saved.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module
