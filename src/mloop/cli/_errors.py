"""Errors at the edge: one red line on stderr and exit 1, or the full traceback with --debug.

Usage errors (a bad option, a missing argument) are Typer's and keep its exit code 2. Errors
mloop raises on purpose (:class:`~mloop.errors.MloopError`) already say what is wrong and what
to do, so their message is the whole line. Anything else is a bug: its type and message are
shown, with a pointer to ``--debug``. Ctrl-C leaves quietly with exit code 130.
"""

from __future__ import annotations

import errno
import os
from typing import Any

import typer
from rich.text import Text
from typer.core import TyperGroup

from mloop.cli._console import stderr
from mloop.errors import MloopError

DEBUG_ENV = "MLOOP_DEBUG"
DEBUG_KEY = "mloop.debug"
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
MAX_MESSAGE = 1000  # characters of an error shown; a hostile argument can be megabytes long


def debug_enabled(ctx: typer.Context) -> bool:
    """True when --debug was given or MLOOP_DEBUG is set to a true value."""
    if ctx.meta.get(DEBUG_KEY):
        return True
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def one_line(message: str) -> str:
    """A message as one line of bounded length: later lines and excess characters dropped."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    text = " ".join(lines) if lines else ""
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def print_error(message: str, hint: str | None = None) -> None:
    """Print ``error: <message>`` on stderr as one line (red on a terminal)."""
    line = Text("error: ", style="bold red")
    line.append(one_line(message))
    if hint:
        line.append(f" ({hint})", style="dim")
    stderr().print(line, soft_wrap=True)


def describe(error: BaseException) -> str:
    """The line shown for an error mloop did not expect: its type, then its message."""
    text = one_line(str(error))
    name = type(error).__name__
    return f"{name}: {text}" if text else name


class MloopGroup(TyperGroup):
    """A command group that runs every command below it under mloop's error policy."""

    # Typer's base Context class lives in its private _click module; typer.Context extends it.
    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # --help, usage errors and explicit exits: Typer reports them
        except KeyboardInterrupt:
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except MloopError as error:
            if debug_enabled(ctx):
                raise
            print_error(str(error))
            raise typer.Exit(EXIT_ERROR) from None
        except Exception as error:
            if isinstance(error, OSError) and error.errno == errno.EPIPE:
                raise  # the reader went away (mloop runs list | head): Typer handles it
            if debug_enabled(ctx):
                raise
            print_error(describe(error), "run with --debug for the traceback")
            raise typer.Exit(EXIT_ERROR) from None
