"""Fixtures for the events tests: a clocked store, a receiver, quick background workers."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from mloop.events import _soon
from mloop.store import SqlStore

from .helpers import Clock, Receiver


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def clocked(store_url: str, clock: Clock) -> Iterator[SqlStore]:
    """A metadata store (each backend) whose time is ``clock``."""
    opened = SqlStore(store_url, clock=clock)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_store(sqlite_url: str, clock: Clock) -> Iterator[SqlStore]:
    """A SQLite store whose time is ``clock``, for tests whose subject is not the SQL."""
    opened = SqlStore(sqlite_url, clock=clock)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def checker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    """One SQLite store for a module's input-validation tests (they write nothing)."""
    opened = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('checks') / 'mloop.db'}")
    yield opened
    opened.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def quick_background(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Background workers that linger briefly and trust a cached answer briefly."""
    monkeypatch.setattr(_soon, "LINGER", 0.3)
    monkeypatch.setattr(_soon, "PRESENCE_TTL", 0.3)
    yield
    assert _soon.wait_idle(10), "a background delivery worker is still running"


@pytest.fixture
def soon(store: SqlStore) -> Iterator[SqlStore]:
    """``store``, for tests that start background delivery: its workers are gone before the
    store is closed."""
    yield store
    assert _soon.wait_idle(10), "a background delivery worker is still running"
