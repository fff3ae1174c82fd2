"""Module-level tasks that worker processes and Ray workers can import by name."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any


def add(a: int, b: int, *, times: int = 1) -> int:
    return (a + b) * times


def fail_deep(message: str) -> None:
    _inner_failure(message)


def _inner_failure(message: str) -> None:
    raise ValueError(message)


class StubbornError(Exception):
    """An exception that cannot be rebuilt from its args (so it does not unpickle)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"code {code}: {reason}")


def fail_unpicklable() -> None:
    raise StubbornError(7, "no way back")


def identity(value: Any) -> Any:
    return value


def rendezvous(folder: str, me: str, other: str, timeout: float = 60.0) -> bool:
    """Mark ``me`` as started, then wait for ``other``: True only if both ran at the same time."""
    Path(folder, me).touch()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Path(folder, other).exists():
            return True
        time.sleep(0.01)
    return False


def wait_for(path: str, timeout: float = 60.0) -> str:
    """Block until ``path`` exists (released by the test), then return it."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)
    return path


def interval(seconds: float) -> tuple[float, float]:
    """When this task ran: (start, end) wall-clock times."""
    start = time.time()
    time.sleep(seconds)
    return start, time.time()


def assigned_cpus() -> float:
    import ray

    return float(ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0))


def kill_myself() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def pid() -> int:
    return os.getpid()


def make_lock() -> Any:
    import threading

    return threading.Lock()
