"""The process-wide metric writers of tracking, one per store (stores: ``mloop.backends``)."""

from __future__ import annotations

import atexit
import os
import sys
import threading

from mloop.backends import Backends, backends, current_settings
from mloop.store import Store
from mloop.tracking._writer import MetricWriter

__all__ = ["Backends", "backends", "current_settings", "flush_all", "writer_for"]

_lock = threading.RLock()
_writers: dict[int, MetricWriter] = {}


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


atexit.register(_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
