"""``mloop gc``: purge soft-deleted runs and the artifacts nothing refers to any more."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer
from rich.text import Text

from mloop.cli._console import stdout
from mloop.cli._format import human_bytes
from mloop.errors import NotFoundError
from mloop.tracking import GcReport, backends, collect_garbage

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"(\d+)\s*([smhdw])")
MAX_AGE = timedelta(days=36500)
MAX_RUN_IDS = 10  # purged run ids listed; more are counted


def parse_duration(text: str) -> timedelta:
    """``'30d'`` → 30 days. Units: s, m (minutes), h, d, w; one number and one unit."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise typer.BadParameter(
            f"{text!r} is not a duration; write a whole number and a unit: "
            "90m, 12h, 30d, 2w (s, m, h, d, w)"
        )
    try:
        age = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:
        age = MAX_AGE + MAX_AGE
    if age > MAX_AGE:
        raise typer.BadParameter(f"{text!r} is too long ago; the longest is 36500d (100 years)")
    return age


def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only report what would be deleted.")
    ] = False,
    older_than: Annotated[
        timedelta,
        typer.Option(
            "--older-than",
            metavar="AGE",
            parser=parse_duration,
            help="Purge runs deleted longer ago than AGE (and artifacts unused for as long): "
            "90m, 12h, 30d, 2w.",
        ),
    ] = "30d",  # type: ignore[assignment]  # parsed by parse_duration, as a typed option would be
) -> None:
    """Purge deleted runs and unused artifacts.

    Runs deleted (with `mloop runs delete`) longer ago than --older-than are removed for good,
    with their params, metrics and lineage; then artifact records and stored files that no
    run refers to any more. Try --dry-run first.
    """
    try:
        ctx = backends(create=False)
    except NotFoundError:
        stdout().print("Nothing to collect: nothing has been recorded here.")
        return
    report = collect_garbage(
        ctx.store, ctx.artifacts, older_than=older_than, dry_run=dry_run, actor=ctx.settings.user
    )
    render_report(report, older_than)


def render_report(report: GcReport, older_than: timedelta) -> None:
    """Say what was purged (or, on a dry run, would be)."""
    console = stdout()
    deleted = f"deleted more than {_age(older_than)} ago" if older_than else "deleted"
    if not (report.runs or report.artifact_records or report.blobs):
        console.print(f"Nothing to collect: no runs {deleted}, no unused artifacts.")
        return
    if report.dry_run:
        console.print("Dry run, nothing was deleted. mloop gc would purge:")
    else:
        console.print("Purged:")
    runs = f"  {_plural(len(report.runs), 'run')} {deleted}"
    if report.runs:
        listed = ", ".join(report.runs[:MAX_RUN_IDS])
        extra = len(report.runs) - MAX_RUN_IDS
        runs += f": {listed}" + (f" and {extra} more" if extra > 0 else "")
    console.print(runs)
    console.print(f"  {_plural(report.artifact_records, 'artifact record')} no run uses")
    console.print(
        f"  {_plural(report.blobs, 'stored file')}, {human_bytes(report.bytes_freed)} in all"
    )
    if report.dry_run:
        console.print(Text("Run it without --dry-run to purge them.", style="dim"))


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for size, unit in ((604800, "week"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
