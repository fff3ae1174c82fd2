"""The two Rich consoles every command prints through: results to stdout, errors to stderr.

They are made per call, not once at import, so that whatever ``sys.stdout`` is at the time
(a terminal, a pipe, a test runner's buffer) is the one written to. Markup and emoji codes are
off: run names, params and error messages are printed as they are (``[red]`` stays text), and
styles are applied only through ``rich.text.Text`` and ``style=`` arguments.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table


def stdout() -> Console:
    """A console on standard output; colours only on a terminal, no guessed highlighting."""
    return Console(highlight=False, markup=False, emoji=False)


def stderr() -> Console:
    """A console on standard error, for errors and hints that must not mix with results."""
    return Console(stderr=True, highlight=False, markup=False, emoji=False)


def plain_table() -> Table:
    """The one table style of the CLI: a rule under bold headers, no outer frame."""
    return Table(
        box=box.SIMPLE_HEAD,
        header_style="bold",
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
