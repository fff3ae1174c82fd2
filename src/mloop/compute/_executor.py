"""The one interface every executor implements, and a base with the shared parts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar, runtime_checkable

from mloop.compute._resources import Resources
from mloop.errors import ComputeError, InvalidValueError

__all__ = ["BaseExecutor", "Executor"]

T = TypeVar("T")


@runtime_checkable
class Executor(Protocol):
    """Where tasks run: ``submit`` returns a ``concurrent.futures.Future``.

        with get_executor("process") as executor:
            future = executor.submit(train, data, resources=Resources(cpu=2))
            model = future.result()

    A task's exception arrives in its future as itself, with the traceback from where it ran
    as a note (``task_traceback(error)`` returns it).
    """

    name: str
    max_workers: int

    def submit(
        self,
        fn: Callable[..., T],
        /,
        *args: Any,
        resources: Resources | None = None,
        **kwargs: Any,
    ) -> Future[T]: ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class BaseExecutor:
    """Context management, the shut-down state and argument checks shared by the executors."""

    name: str = ""
    max_workers: int = 1

    def __init__(self) -> None:
        self._closed = False
        self._state_lock = threading.Lock()

    def _check_submit(self, fn: object, resources: object) -> Resources:
        if self._closed:
            raise ComputeError(
                f"the {self.name} executor has been shut down; create a new one to submit tasks"
            )
        if not callable(fn):
            raise InvalidValueError(f"a task must be callable, not {type(fn).__name__}")
        if resources is None:
            return Resources()
        if not isinstance(resources, Resources):
            raise InvalidValueError(
                f"resources must be a mloop.compute.Resources, not {type(resources).__name__}; "
                "use Resources.parse(...) for a mapping or a string"
            )
        return resources

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown(wait=True)

    def __repr__(self) -> str:
        state = "shut down" if self._closed else f"max_workers={self.max_workers}"
        return f"<{type(self).__name__} {state}>"
