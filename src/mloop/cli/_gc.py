"""``mloop gc``: purge soft-deleted runs and the artifacts nothing refers to any more."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from mloop.cli._console import stdout
from mloop.cli._format import human_bytes
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
    ctx = backends()
    report = collect_garbage(
        ctx.store, ctx.artifacts, older_than=older_than, dry_run=dry_run, actor=ctx.settings.user
    )
    render_report(report, older_than)


def render_report(report: GcReport, older_than: timedelta) -> None:
    console = stdout()
    if not (report.runs or report.artifact_records or report.blobs):
        deleted = f"deleted more than {_age(older_than)} ago" if older_than else "deleted"
        console.print(f"Nothing to collect: no run is {deleted}, and no artifact is unused.")
        return
    verb = "would be" if report.dry_run else "were"
    grid = Table.grid(padding=(0, 2))
    grid.add_column(justify="right", style="bold")
    grid.add_column()
    grid.add_row(str(len(report.runs)), f"runs deleted more than {_age(older_than)} ago")
    grid.add_row(str(report.artifact_records), "artifact records no run uses")
    grid.add_row(str(report.blobs), f"stored files ({human_bytes(report.bytes_freed)})")
    console.print(f"Dry run: these {verb} purged." if report.dry_run else f"These {verb} purged.")
    console.print(grid)
    if report.runs:
        listed = ", ".join(report.runs[:MAX_RUN_IDS])
        extra = len(report.runs) - MAX_RUN_IDS
        console.print(
            Text(f"runs: {listed}" + (f" and {extra} more" if extra > 0 else ""), style="dim")
        )
    if report.dry_run:
        console.print(Text("Run without --dry-run to purge them.", style="dim"))


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for size, unit in ((604800, "week"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
