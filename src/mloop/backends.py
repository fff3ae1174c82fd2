"""The process-wide defaults every component reaches the stores through.

``backends()`` resolves the settings in force (``mloop.yaml`` upwards from the current folder,
then ``MLOOP_*`` variables) to one metadata store and one artifact store, opened once per
process and shared by tracking, the registry and the feature store. Everything here can also be
passed explicitly (``start_run(store=..., artifacts=...)``, ``load_model(..., store=...)``), so
tests and embedding applications never need to patch it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from mloop.artifacts import ArtifactStore, open_artifact_store
from mloop.config import Settings, load_settings
from mloop.store import Store, open_store

__all__ = ["Backends", "backends", "current_settings"]

_lock = threading.RLock()
_stores: dict[tuple[str, float], Store] = {}
_artifact_stores: dict[str, ArtifactStore] = {}
_settings: dict[tuple[str, tuple[tuple[str, str], ...]], Settings] = {}


@dataclass(frozen=True)
class Backends:
    """The stores a piece of work reads and writes, and the settings they came from."""

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


def _after_fork_in_child() -> None:
    # A forked child must not share the parent's database connections.
    global _lock
    _lock = threading.RLock()
    _stores.clear()
    _artifact_stores.clear()
    _settings.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
