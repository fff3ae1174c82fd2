"""What an executor runs for one step: the function, with its retries, timeout and logs.

:func:`run_step` never raises for a failing step: it returns an :class:`Outcome` carrying the
traceback as text, so a failure travels back the same way from a thread, a process pool or
Ray, and an exception that does not pickle cannot hide the real error.

Timeouts: a thread cannot be stopped from outside, so a step with ``timeout=`` runs each try
in a child process (forked, so the function and its arguments need not pickle) that is killed
when its time is up. Steps without a timeout run where the executor puts them, with no extra
process.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from mloop.pipelines._step import Step

__all__ = ["Outcome", "run_step"]

MAX_LOG = 1024 * 1024  # characters of captured output kept per step (the end of it)
_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


@dataclass
class Outcome:
    """How a step's run went: its value, or its error as formatted text, and its output."""

    ok: bool
    value: Any
    error: str | None
    error_type: str | None
    log: str
    attempts: int
    start_ms: int
    end_ms: int


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _attempt(step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """One try in this process: (ok, value, error text, error type, captured output)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(_FORMAT)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with redirect_stdout(buffer), redirect_stderr(buffer):
            value = step.fn(*args, **kwargs)
    except (Exception, SystemExit) as error:  # noqa: BLE001 - any failure is the step's
        text = "".join(traceback.format_exception(error))
        return False, None, text, type(error).__qualname__, buffer.getvalue()
    finally:
        root.removeHandler(handler)
    return True, value, None, None, buffer.getvalue()


def _child(step: Step, args: tuple[Any, ...], kwargs: dict[str, Any], pipe: Connection) -> None:
    try:
        result = _attempt(step, args, kwargs)
        try:
            pipe.send(result)
        except Exception as error:  # noqa: BLE001 - the value does not pickle: say so
            pipe.send(
                (
                    False,
                    None,
                    f"step {step.name!r} returned a value that cannot be sent back from its "
                    f"timeout process: {type(error).__name__}: {error}",
                    "PipelineError",
                    result[4],
                )
            )
    finally:
        pipe.close()
        os._exit(0)  # no atexit handlers: they belong to the parent's state


def _attempt_with_timeout(
    step: Step, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float
) -> tuple[Any, ...]:
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(step, args, kwargs, writer))
    process.start()
    writer.close()
    try:
        if reader.poll(timeout):
            try:
                result: tuple[Any, ...] = reader.recv()
            except EOFError:
                process.join()
                return (
                    False,
                    None,
                    f"the process running step {step.name!r} died (exit code "
                    f"{process.exitcode}) before it returned",
                    "WorkerLostError",
                    "",
                )
            return result
        process.kill()
        return (
            False,
            None,
            f"StepTimeoutError: step {step.name!r} ran longer than its timeout of {timeout:g} "
            "s; its process was killed",
            "StepTimeoutError",
            "",
        )
    finally:
        reader.close()
        process.join()
        process.close()


def run_step(step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Outcome:
    """Run ``step`` on these arguments with its retries and timeout; never raises for it."""
    options = step.options
    start = _now_ms()
    delay = options.retry_delay
    logs: list[str] = []
    attempt = 0
    while True:
        attempt += 1
        if options.timeout is None:
            ok, value, error, error_type, log = _attempt(step, args, kwargs)
        else:
            ok, value, error, error_type, log = _attempt_with_timeout(
                step, args, kwargs, options.timeout
            )
        if log:
            logs.append(log)
        if ok or attempt > options.retries:
            break
        last = (error or "").rstrip().splitlines()[-1:] or [""]
        logs.append(f"[mloop] try {attempt} failed ({last[0]}); retrying in {delay:g} s\n")
        time.sleep(delay)
        delay *= options.retry_backoff
    text = "".join(logs)
    if len(text) > MAX_LOG:
        text = f"[mloop] ... {len(text) - MAX_LOG} earlier characters dropped\n" + text[-MAX_LOG:]
    return Outcome(ok, value, error, error_type, text, attempt, start, _now_ms())
