"""Tasks run in a pool of local worker processes (concurrent.futures underneath)."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import pickle
import sys
import types
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from mloop.compute._executor import BaseExecutor
from mloop.compute._resources import Resources, check_local, local_cpus
from mloop.compute._task import LinkedFuture, run_task, task_name, task_traceback
from mloop.errors import InvalidValueError, WorkerLostError

__all__ = ["ProcessPoolExecutor"]

T = TypeVar("T")


def _default_context() -> str:
    # fork would copy the locks of the caller's threads (metric writers, Ray); forkserver is
    # as safe as spawn and starts workers faster. Windows and macOS only have spawn-like ones.
    return "forkserver" if sys.platform.startswith("linux") else "spawn"


class ProcessPoolExecutor(BaseExecutor):
    """Run tasks in ``max_workers`` local processes (default: the CPUs this process may use).

    Tasks and their arguments are pickled, so a task must be a module-level function; a
    script that submits tasks needs the usual ``if __name__ == "__main__":`` guard. A worker
    that dies (killed, out of memory, a crash in native code) fails the tasks it had with
    WorkerLostError, and the next submit starts a fresh pool.
    """

    name = "process"

    def __init__(self, max_workers: int | None = None, *, mp_context: str | None = None) -> None:
        super().__init__()
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise InvalidValueError(f"max_workers must be an int >= 1, not {max_workers!r}")
        self.max_workers = max_workers or local_cpus()
        method = mp_context or _default_context()
        if method not in multiprocessing.get_all_start_methods():
            raise InvalidValueError(
                f"mp_context {method!r} is not available here; "
                f"use one of {', '.join(multiprocessing.get_all_start_methods())}"
            )
        self._context = multiprocessing.get_context(method)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _live_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.max_workers, mp_context=self._context
            )
        return self._pool

    def submit(
        self,
        fn: Callable[..., T],
        /,
        *args: Any,
        resources: Resources | None = None,
        **kwargs: Any,
    ) -> Future[T]:
        checked = self._check_submit(fn, resources)
        name = task_name(fn)
        try:
            if isinstance(fn, types.FunctionType):  # cheap: pickled by reference
                pickle.dumps(fn)
        except Exception as error:  # noqa: BLE001 - any pickling failure means the same
            raise InvalidValueError(
                f"task {name} cannot be sent to a worker process ({error}); a process pool "
                "task must be a module-level function (no lambda or nested function)"
            ) from None
        try:
            check_local(checked, self.name)
        except BaseException as error:  # noqa: BLE001 - a resource refusal goes to the future
            refused: Future[T] = Future()
            refused.set_exception(error)
            return refused
        with self._state_lock:
            try:
                inner = self._live_pool().submit(run_task, fn, args, kwargs)
            except BrokenProcessPool:
                # A worker died earlier: its tasks got WorkerLostError; start over for this one.
                self._live_pool().shutdown(wait=False, cancel_futures=True)
                self._pool = None
                inner = self._live_pool().submit(run_task, fn, args, kwargs)
        outer: LinkedFuture[T] = LinkedFuture(inner.cancel)
        inner.add_done_callback(lambda done: _settle(outer, done, name))
        return outer

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait, cancel_futures=cancel_futures)
        with self._state_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)


_PICKLING = (pickle.PicklingError, TypeError, AttributeError)


def _settle(outer: LinkedFuture[Any], inner: Future[Any], name: str) -> None:
    if inner.cancelled():
        outer.settle_cancelled()
        return
    error = inner.exception()
    if isinstance(error, BrokenProcessPool):
        lost = WorkerLostError(
            f"a worker process of the process pool died while task {name} was running or "
            "waiting (killed, out of memory, or crashed in native code); nothing it computed "
            "was kept - run it again (the executor starts new workers)"
        )
        lost.__cause__ = error
        outer.settle(error=lost)
    elif error is not None and task_traceback(error) is None and isinstance(error, _PICKLING):
        # Not raised by the task (that would carry its traceback): its arguments or its
        # result could not cross between the processes.
        refused = InvalidValueError(
            f"the arguments or the result of task {name} cannot be pickled ({error}); a "
            "process pool sends both between processes - pass and return picklable values, "
            "or use the inprocess executor"
        )
        refused.__cause__ = error
        outer.settle(error=refused)
    elif error is not None:
        outer.settle(error=error)
    else:
        outer.settle(inner.result())
