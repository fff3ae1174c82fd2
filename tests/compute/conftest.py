"""One local Ray for the whole session (starting Ray takes seconds), and the executors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

RAY_CPUS = 2


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """A local Ray with 2 CPUs, started once; every Ray test is in xdist group 'ray'."""
    import ray

    if not ray.is_initialized():
        ray.init(
            num_cpus=RAY_CPUS,
            include_dashboard=False,
            object_store_memory=80 * 1024**2,
            log_to_driver=False,
            # Workers import the test tasks by name, like the pool's workers do.
            runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).parents[1])}},
        )
    yield ray
    ray.shutdown()


def make_executor(backend: str, request: pytest.FixtureRequest, **options: Any) -> Any:
    from mloop.compute import InProcessExecutor, ProcessPoolExecutor, RayExecutor

    if backend == "inprocess":
        return InProcessExecutor()
    if backend == "process":
        return ProcessPoolExecutor(options.get("max_workers", 2))
    request.getfixturevalue("ray_session")
    return RayExecutor(**options)


# Ray tests run in one xdist worker so that the session starts Ray once.
BACKENDS = [
    "inprocess",
    "process",
    pytest.param("ray", marks=pytest.mark.xdist_group("ray")),
]


@pytest.fixture(params=BACKENDS)
def executor(request: pytest.FixtureRequest) -> Iterator[Any]:
    made = make_executor(request.param, request)
    yield made
    made.shutdown(wait=True, cancel_futures=True)
