"""Which runs are active: a stack per thread (for nesting) and a set per process (for exit)."""

from __future__ import annotations

import threading
from typing import Protocol

from mloop.store import RunStatus


class _Endable(Protocol):
    def end(self, status: RunStatus = ..., *, error: str | None = ...) -> None: ...


_local = threading.local()
_lock = threading.Lock()
_all: list[_Endable] = []


def _stack() -> list[_Endable]:
    stack: list[_Endable] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def push(run: _Endable) -> None:
    """Make ``run`` the current run of this thread."""
    _stack().append(run)
    with _lock:
        _all.append(run)


def forget(run: _Endable) -> None:
    """Take an ended run off this thread's stack and the process's list."""
    stack = _stack()
    if run in stack:
        stack.remove(run)
    with _lock:
        if run in _all:
            _all.remove(run)


def current() -> _Endable | None:
    """This thread's innermost active run, if any."""
    stack = _stack()
    return stack[-1] if stack else None


def all_active() -> list[_Endable]:
    """Every run of this process that has not ended, newest last."""
    with _lock:
        return list(_all)
