"""The process-wide defaults tracking uses: settings, stores and their metric writers.

Everything here is reachable as arguments too (``start_run(store=..., artifacts=...)``), so
tests and embedding applications never need to patch it.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from dataclasses import dataclass

from mloop.artifacts import ArtifactStore, open_artifact_store
from mloop.config import Settings, load_settings
from mloop.store import Store, open_store
from mloop.tracking._writer import MetricWriter

_lock = threading.RLock()
_stores: dict[tuple[str, float], Store] = {}
_artifact_stores: dict[str, ArtifactStore] = {}
_writers: dict[int, MetricWriter] = {}
_settings: dict[tuple[str, tuple[tuple[str, str], ...]], Settings] = {}


@dataclass(frozen=True)
class Backends:
    """The stores one run writes to, and the settings they came from."""

    settings: Settings
    store: Store
    artifacts: ArtifactStore


def backends(
    store: Store | None = None,
    artifacts: ArtifactStore | None = None,
    settings: Settings | None = None,
    *,
    create: bool = True,
) -> Backends:
    """Settings and stores in force: the ones passed in, else those the settings name.

    ``create=False`` is for readers: a metadata store that does not exist yet raises
    NotFoundError instead of being created.
    """
    settings = settings or current_settings()
    with _lock:
        if store is None:
            key = (settings.resolved_tracking_uri(), settings.sqlite_busy_timeout)
            store = _stores.get(key)
            if store is None:
                store = _stores[key] = open_store(key[0], busy_timeout=key[1], create=create)
        if artifacts is None:
            uri = settings.resolved_artifact_uri()
            artifacts = _artifact_stores.get(uri)
            if artifacts is None:
                artifacts = _artifact_stores[uri] = open_artifact_store(uri)
    return Backends(settings, store, artifacts)


def current_settings() -> Settings:
    """The settings for the current folder and MLOOP_* variables (cached while they stay)."""
    key = (
        os.getcwd(),
        tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("MLOOP_"))),
    )
    with _lock:
        cached = _settings.get(key)
    if cached is None:
        cached = load_settings()
        with _lock:
            if len(_settings) > 64:
                _settings.clear()
            _settings[key] = cached
    return cached


def writer_for(store: Store, interval: float) -> MetricWriter:
    """The metric writer of ``store`` in this process (created on first use)."""
    with _lock:
        writer = _writers.get(id(store))
        if writer is None or writer.store is not store:
            writer = _writers[id(store)] = MetricWriter(store, interval=interval)
        return writer


def flush_all() -> None:
    """Write every buffered metric of every store now."""
    with _lock:
        writers = list(_writers.values())
    for writer in writers:
        writer.flush()


def _at_exit() -> None:
    with _lock:
        writers = list(_writers.values())
    for writer in writers:
        try:
            writer.stop()
        except Exception as error:  # noqa: BLE001 - the interpreter is exiting: report, go on
            print(
                f"mloop: {writer.pending()} buffered metrics could not be written at exit: {error}",
                file=sys.stderr,
            )


def _after_fork_in_child() -> None:
    # A forked child must not share the parent's connections or its (absent) writer thread.
    global _lock
    _lock = threading.RLock()
    _writers.clear()
    _stores.clear()
    _artifact_stores.clear()
    _settings.clear()


atexit.register(_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
