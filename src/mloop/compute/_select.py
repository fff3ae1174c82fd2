"""Choosing an executor from an argument or from the ``compute:`` settings."""

from __future__ import annotations

from mloop.compute._executor import Executor
from mloop.compute._inprocess import InProcessExecutor
from mloop.compute._process import ProcessPoolExecutor
from mloop.compute._ray import RayExecutor
from mloop.config import Settings, load_settings
from mloop.errors import InvalidValueError

__all__ = ["BACKENDS", "get_executor"]

BACKENDS = ("inprocess", "process", "ray")


def get_executor(
    backend: str | None = None,
    *,
    address: str | None = None,
    max_workers: int | None = None,
    settings: Settings | None = None,
) -> Executor:
    """A new executor: ``backend`` (inprocess, process or ray), else ``compute.backend`` from
    mloop.yaml / MLOOP_COMPUTE (default: process).

        with get_executor() as executor:
            futures = [executor.submit(train, fold) for fold in range(5)]

    ``address`` and ``max_workers`` default to ``compute.address`` and ``compute.max_workers``.
    """
    compute = (settings or load_settings()).compute
    backend = compute.backend if backend is None else backend
    if backend not in BACKENDS:
        raise InvalidValueError(
            f"unknown compute backend {backend!r}; use one of {', '.join(BACKENDS)}"
        )
    workers = compute.max_workers if max_workers is None else max_workers
    if backend == "ray":
        return RayExecutor(compute.address if address is None else address, max_workers=workers)
    if address:
        raise InvalidValueError(
            f"address={address!r} is for the ray backend only, not {backend!r}; drop it or "
            "use backend='ray'"
        )
    if backend == "process":
        return ProcessPoolExecutor(workers)
    return InProcessExecutor()
