"""One suite over the three executors: results, errors, parallelism, resources, shutdown."""

from __future__ import annotations

import concurrent.futures
import pickle
import time
from pathlib import Path
from typing import Any

import pytest

from mloop.compute import (
    Executor,
    InProcessExecutor,
    ProcessPoolExecutor,
    Resources,
    task_traceback,
)
from mloop.compute._resources import local_cpus
from mloop.errors import (
    ComputeError,
    InvalidValueError,
    ResourcesUnavailableError,
    TaskError,
    WorkerLostError,
)

from . import tasks
from .conftest import make_executor

WAIT = 120  # seconds; a future that takes this long is a hang, not a slow machine


def test_is_an_executor(executor: Any) -> None:
    assert isinstance(executor, Executor)
    assert executor.name in ("inprocess", "process", "ray")
    assert executor.max_workers >= 1


def test_results_and_keyword_arguments(executor: Any) -> None:
    futures = [executor.submit(tasks.add, i, 1, times=3) for i in range(5)]
    assert [f.result(timeout=WAIT) for f in futures] == [(i + 1) * 3 for i in range(5)]


def test_a_large_argument_comes_back_intact(executor: Any) -> None:
    blob = bytes(range(256)) * (40 * 1024)  # 10 MiB
    assert executor.submit(tasks.identity, blob).result(timeout=WAIT) == blob


def test_an_exception_arrives_as_itself_with_the_task_traceback(executor: Any) -> None:
    future = executor.submit(tasks.fail_deep, "broken input")
    with pytest.raises(ValueError, match="broken input") as caught:
        future.result(timeout=WAIT)
    text = task_traceback(caught.value)
    assert text is not None
    # The frames are those of the task, wherever it ran.
    assert "_inner_failure" in text
    assert "fail_deep" in text
    assert "ValueError: broken input" in text
    assert future.exception() is not None


def test_an_exception_that_cannot_travel_becomes_a_task_error(executor: Any) -> None:
    future = executor.submit(tasks.fail_unpicklable)
    if executor.name == "inprocess":
        # Nothing is pickled in-process: the very exception arrives.
        with pytest.raises(tasks.StubbornError, match="code 7"):
            future.result(timeout=WAIT)
        return
    with pytest.raises(TaskError, match="code 7: no way back") as caught:
        future.result(timeout=WAIT)
    assert caught.value.type_name == "compute.tasks.StubbornError"
    assert "fail_unpicklable" in caught.value.remote_traceback
    assert task_traceback(caught.value) == caught.value.remote_traceback


def test_independent_tasks_overlap(executor: Any, tmp_path: Path) -> None:
    """Two tasks that each wait for the other finish only if they run at the same time."""
    if executor.name == "inprocess":
        first = executor.submit(tasks.rendezvous, str(tmp_path), "a", "b", 0.2)
        second = executor.submit(tasks.rendezvous, str(tmp_path), "b", "a", 0.2)
        # In-process runs one task at a time: the first gave up waiting, the second saw it.
        assert (first.result(), second.result()) == (False, True)
        return
    first = executor.submit(tasks.rendezvous, str(tmp_path), "a", "b")
    second = executor.submit(tasks.rendezvous, str(tmp_path), "b", "a")
    assert first.result(timeout=WAIT) is True
    assert second.result(timeout=WAIT) is True


def test_futures_work_with_concurrent_futures_helpers(executor: Any) -> None:
    futures = {executor.submit(tasks.add, i, i): i for i in range(4)}
    seen = {futures[f]: f.result() for f in concurrent.futures.as_completed(futures, timeout=WAIT)}
    assert seen == {i: 2 * i for i in range(4)}


def test_more_cpus_than_exist_fail_fast(executor: Any) -> None:
    too_many = (2 if executor.name == "ray" else local_cpus()) + 1
    started = time.monotonic()
    future = executor.submit(tasks.add, 1, 2, resources=Resources(cpu=too_many))
    with pytest.raises(ResourcesUnavailableError, match=f"cpu={too_many}"):
        future.result(timeout=WAIT)
    assert time.monotonic() - started < 30  # refused, not queued


def test_more_memory_than_exists_fails_fast(executor: Any) -> None:
    future = executor.submit(tasks.add, 1, 2, resources=Resources(memory="64TiB"))
    with pytest.raises(ResourcesUnavailableError, match="memory"):
        future.result(timeout=WAIT)


def test_a_fitting_request_runs(executor: Any) -> None:
    fits = Resources(cpu=1, memory="64MiB")
    assert executor.submit(tasks.add, 2, 2, resources=fits).result(timeout=WAIT) == 4


def test_submit_refuses_what_is_not_a_task(executor: Any) -> None:
    with pytest.raises(InvalidValueError, match="callable"):
        executor.submit(42)
    with pytest.raises(InvalidValueError, match=r"Resources\.parse"):
        executor.submit(tasks.add, 1, 2, resources={"cpu": 1})


def test_submit_after_shutdown_is_refused(executor: Any) -> None:
    executor.shutdown()
    with pytest.raises(ComputeError, match="shut down; create a new one"):
        executor.submit(tasks.add, 1, 2)


def test_context_manager_waits_for_tasks(request: pytest.FixtureRequest) -> None:
    with make_executor("process", request) as executor:
        future = executor.submit(tasks.interval, 0.2)
    assert future.done()
    start, end = future.result()
    assert end - start >= 0.2


def test_cancel_a_task_that_has_not_started(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    gate = tmp_path / "open"
    executor = make_executor("process", request, max_workers=1)
    try:
        blocker = executor.submit(tasks.wait_for, str(gate))
        queued = [executor.submit(tasks.add, i, 0) for i in range(20)]
        # The last ones cannot have been handed to the single busy worker yet.
        assert queued[-1].cancel() is True
        assert queued[-1].cancelled()
        with pytest.raises(concurrent.futures.CancelledError):
            queued[-1].result()
        gate.touch()
        assert blocker.result(timeout=WAIT) == str(gate)
        assert [f.result(timeout=WAIT) for f in queued[:-1]] == list(range(19))
    finally:
        executor.shutdown()


def test_shutdown_can_cancel_what_waits(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    gate = tmp_path / "open"
    executor = make_executor("process", request, max_workers=1)
    blocker = executor.submit(tasks.wait_for, str(gate))
    queued = [executor.submit(tasks.add, i, 0) for i in range(20)]
    gate.touch()
    executor.shutdown(wait=True, cancel_futures=True)
    assert blocker.result() == str(gate)
    assert any(f.cancelled() for f in queued)
    assert all(f.done() for f in queued)


def test_a_killed_worker_fails_its_task_and_the_pool_recovers(
    request: pytest.FixtureRequest,
) -> None:
    executor = make_executor("process", request, max_workers=2)
    try:
        doomed = executor.submit(tasks.kill_myself)
        with pytest.raises(WorkerLostError, match=r"died .* run it again") as caught:
            doomed.result(timeout=WAIT)
        assert "kill_myself" in str(caught.value)
        # The next task gets a fresh pool.
        assert executor.submit(tasks.add, 1, 1).result(timeout=WAIT) == 2
    finally:
        executor.shutdown()


def test_arguments_and_results_that_do_not_pickle_are_named() -> None:
    import threading

    with ProcessPoolExecutor(1) as executor:
        bad_argument = executor.submit(tasks.identity, threading.Lock())
        with pytest.raises(InvalidValueError, match=r"task compute\.tasks\.identity cannot"):
            bad_argument.result(timeout=WAIT)
        bad_result = executor.submit(tasks.make_lock)
        with pytest.raises(InvalidValueError, match=r"tasks\.make_lock cannot be pickled"):
            bad_result.result(timeout=WAIT)
        # A TypeError the task raises itself stays what it is.
        own = executor.submit(tasks.add, 1, "2")
        with pytest.raises(TypeError, match="unsupported operand"):
            own.result(timeout=WAIT)
        assert executor.submit(tasks.add, 1, 2).result(timeout=WAIT) == 3


def test_a_process_pool_task_must_be_picklable() -> None:
    executor = ProcessPoolExecutor(1)
    try:
        with pytest.raises(InvalidValueError, match="module-level function"):
            executor.submit(lambda: 1)
    finally:
        executor.shutdown()


def test_in_process_runs_in_the_calling_process() -> None:
    import os

    future = InProcessExecutor().submit(tasks.pid)
    assert future.done()
    assert future.result() == os.getpid()


def test_process_pool_runs_elsewhere() -> None:
    import os

    with ProcessPoolExecutor(1) as executor:
        assert executor.submit(tasks.pid).result(timeout=WAIT) != os.getpid()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_max_workers_must_be_a_positive_int(bad: Any) -> None:
    with pytest.raises(InvalidValueError, match="max_workers"):
        ProcessPoolExecutor(bad)


def test_unknown_start_method() -> None:
    with pytest.raises(InvalidValueError, match="mp_context 'teleport'"):
        ProcessPoolExecutor(1, mp_context="teleport")


def test_task_error_pickles_with_its_fields() -> None:
    error = TaskError("boom", type_name="x.Y", remote_traceback="Traceback ...")
    back = pickle.loads(pickle.dumps(error))
    assert (str(back), back.type_name, back.remote_traceback) == ("boom", "x.Y", "Traceback ...")


def test_task_traceback_of_an_ordinary_error_is_none() -> None:
    assert task_traceback(ValueError("x")) is None
