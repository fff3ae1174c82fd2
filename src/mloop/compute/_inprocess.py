"""Tasks run in the calling thread at submit time: for debugging with pdb and print."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from mloop.compute._executor import BaseExecutor
from mloop.compute._resources import Resources, check_local
from mloop.compute._task import run_task

__all__ = ["InProcessExecutor"]

T = TypeVar("T")


class InProcessExecutor(BaseExecutor):
    """Run each task at once in the calling thread; its future is done when submit returns.

    Nothing is pickled and breakpoints work. One task runs at a time (``max_workers`` is 1).
    """

    name = "inprocess"

    def __init__(self) -> None:
        super().__init__()
        self.max_workers = 1

    def submit(
        self,
        fn: Callable[..., T],
        /,
        *args: Any,
        resources: Resources | None = None,
        **kwargs: Any,
    ) -> Future[T]:
        checked = self._check_submit(fn, resources)
        future: Future[T] = Future()
        try:
            check_local(checked, self.name)
            future.set_running_or_notify_cancel()
            future.set_result(run_task(fn, args, kwargs, travel=False))
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # noqa: BLE001 - the task's failure goes to its future
            future.set_exception(error)
        return future
