"""What only Ray does: schedule by resources, cancel running tasks, lose a worker."""

from __future__ import annotations

import time
from typing import Any

import pytest

from mloop.compute import RayExecutor, Resources
from mloop.errors import ResourcesUnavailableError, WorkerLostError

from . import tasks

pytestmark = pytest.mark.xdist_group("ray")

WAIT = 120


@pytest.fixture
def ray_executor(ray_session: Any) -> Any:
    executor = RayExecutor()
    yield executor
    executor.shutdown(cancel_futures=True)


def test_an_existing_ray_is_joined_not_restarted(ray_executor: RayExecutor) -> None:
    assert ray_executor.max_workers == 2  # the session's Ray has 2 CPUs
    ray_executor.shutdown()
    import ray

    assert ray.is_initialized()  # it was not this executor's to stop


def test_a_task_gets_the_cpus_it_asked_for(ray_executor: RayExecutor) -> None:
    two = ray_executor.submit(tasks.assigned_cpus, resources=Resources(cpu=2))
    half = ray_executor.submit(tasks.assigned_cpus, resources=Resources(cpu=0.5))
    assert two.result(timeout=WAIT) == 2.0
    assert half.result(timeout=WAIT) == 0.5


def test_tasks_that_need_every_cpu_run_one_after_another(ray_executor: RayExecutor) -> None:
    everything = Resources(cpu=2)
    futures = [ray_executor.submit(tasks.interval, 0.3, resources=everything) for _ in range(2)]
    (_, e1), (s2, _) = sorted(f.result(timeout=WAIT) for f in futures)
    assert e1 <= s2, "two tasks each holding both CPUs ran at the same time"


def test_a_gpu_the_cluster_lacks_fails_fast(ray_executor: RayExecutor) -> None:
    started = time.monotonic()
    future = ray_executor.submit(tasks.add, 1, 2, resources=Resources(gpu=1))
    with pytest.raises(ResourcesUnavailableError, match=r"gpu=1 \(the cluster has 0\)"):
        future.result(timeout=WAIT)
    assert time.monotonic() - started < 30


def test_cancel_a_running_task(ray_executor: RayExecutor, tmp_path: Any) -> None:
    future = ray_executor.submit(tasks.wait_for, str(tmp_path / "never"), 300)
    time.sleep(0.5)
    assert future.cancel() is True
    assert future.cancelled()
    # The cluster is free again for other work.
    assert ray_executor.submit(tasks.add, 1, 1).result(timeout=WAIT) == 2


def test_arguments_that_do_not_pickle_are_refused(ray_executor: RayExecutor) -> None:
    import threading

    from mloop.errors import InvalidValueError

    with pytest.raises(InvalidValueError, match=r"tasks\.identity or its arguments"):
        ray_executor.submit(tasks.identity, threading.Lock())


def test_a_killed_ray_worker_fails_its_task(ray_executor: RayExecutor) -> None:
    future = ray_executor.submit(tasks.kill_myself)
    with pytest.raises(WorkerLostError, match="kill_myself"):
        future.result(timeout=WAIT)
    assert ray_executor.submit(tasks.add, 2, 3).result(timeout=WAIT) == 5


SCRIPT = """
import sys
sys.path.insert(0, {folder!r})
import ray
import helper_module
from mloop.compute import RayExecutor, Resources

with RayExecutor(max_workers=1, object_store_memory=80 * 1024**2) as executor:
    assert executor.max_workers == 1
    print(executor.submit(helper_module.triple, 14, resources=Resources(cpu=1)).result(60))
print(ray.is_initialized())
"""


@pytest.mark.slow
def test_an_executor_starts_and_stops_its_own_local_ray(tmp_path: Any) -> None:
    """In a fresh process: the local Ray it starts can import what the driver can, by name."""
    import subprocess
    import sys

    (tmp_path / "helper_module.py").write_text("def triple(x):\n    return 3 * x\n")
    script = tmp_path / "driver.py"
    script.write_text(SCRIPT.format(folder=str(tmp_path)))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["42", "False"]
