"""What every executor shares: running a task so that its error travels, and linked futures."""

from __future__ import annotations

import os
import pickle
import socket
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import Future, InvalidStateError
from typing import Any, TypeVar

from mloop.errors import TaskError

__all__ = ["LinkedFuture", "run_task", "task_name", "task_traceback"]

T = TypeVar("T")

_HEADER = "Traceback of the task "


def task_name(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of a task function, for messages."""
    module = getattr(fn, "__module__", None) or "?"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"{module}.{name}"


def task_traceback(error: BaseException) -> str | None:
    """The traceback of a failed task, formatted where it ran (None if ``error`` is not one).

    Every executor adds it to the exception in the future as a note, so a caller can show
    the failing task's own frames even when it ran in another process or on another machine.
    """
    if isinstance(error, TaskError) and error.remote_traceback:
        return error.remote_traceback
    for note in getattr(error, "__notes__", ()):
        if isinstance(note, str) and note.startswith(_HEADER):
            return note.partition("\n")[2]
    return None


def _portable(error: BaseException) -> BaseException:
    """``error``, or a TaskError standing in for it when it does not survive pickling."""
    try:
        pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes, just made
    except Exception:  # noqa: BLE001 - anything that stops the round trip
        text = task_traceback(error) or ""
        name = f"{type(error).__module__}.{type(error).__qualname__}"
        stand_in = TaskError(
            f"{name}: {error} (the task's exception could not be pickled to send it back, so "
            "it arrives as a TaskError; make it picklable to catch it by its own type)",
            type_name=name,
            remote_traceback=text,
        )
        stand_in.add_note(_HEADER + f"{name}:\n{text}")
        return stand_in
    return error


def run_task(
    fn: Callable[..., T], args: tuple[Any, ...], kwargs: Mapping[str, Any], travel: bool = True
) -> T:
    """Call ``fn``; on failure add where it ran and its traceback to the error as a note.

    With ``travel`` (the task runs in another process), an error that would not survive
    pickling is replaced by a TaskError that carries its type name, message and traceback.
    """
    try:
        return fn(*args, **kwargs)
    except BaseException as error:
        text = "".join(traceback.format_exception(error))
        where = f"{task_name(fn)} (process {os.getpid()} on {socket.gethostname()}):\n"
        error.add_note(_HEADER + where + text)
        portable = _portable(error) if travel else error
        if portable is error:
            raise
        raise portable from None


class LinkedFuture(Future[T]):
    """A future settled from another one (an inner pool's or Ray's), translating its errors.

    ``cancel`` asks the inner work to stop through ``cancel_inner``; it succeeds only when
    that does.
    """

    def __init__(self, cancel_inner: Callable[[], bool]) -> None:
        super().__init__()
        self._cancel_inner = cancel_inner

    def cancel(self) -> bool:
        if self.done():
            return self.cancelled()
        if not self._cancel_inner():
            return False
        return super().cancel()

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        """Set the outcome unless the future was cancelled meanwhile."""
        try:
            if error is not None:
                self.set_exception(error)
            else:
                self.set_result(result)
        except InvalidStateError:
            pass  # cancelled by the caller first: the outcome has nowhere to go

    def settle_cancelled(self) -> None:
        super().cancel()
