"""What ``mloop runs show`` prints: a run's header, then one section per kind of record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mloop.cli._console import plain_table
from mloop.cli._format import human_bytes, human_duration, local_time, number, shorten, status
from mloop.store import Environment, LineageEdge, RunRecord

MAX_VALUE = 300  # characters of a param or tag value shown; --json has them whole
ERROR_LINES = 20  # last lines of a failed run's traceback shown
DIGEST_PREFIX = 12


@dataclass(frozen=True)
class RunDetails:
    """A run and what hangs off it, fetched by the command and shown here."""

    run: RunRecord
    experiment: str | None
    environment: Environment | None
    lineage: list[LineageEdge]


def _fields() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    return grid


def _header(details: RunDetails) -> Table:
    run = details.run
    grid = _fields()
    grid.add_row("run id", Text(run.id, style="cyan"))
    grid.add_row("name", run.name)
    grid.add_row("experiment", f"{details.experiment or '?'} ({run.experiment_id})")
    grid.add_row("status", status(run.status, deleted=run.deleted_time is not None))
    grid.add_row("started", local_time(run.start_time))
    if run.end_time is not None:
        took = human_duration(run.end_time - run.start_time)
        grid.add_row("ended", f"{local_time(run.end_time)} (took {took})")
    else:
        running = human_duration(datetime.now(UTC) - run.start_time)
        grid.add_row("ended", Text(f"not yet (running for {running})", style="yellow"))
    if run.deleted_time is not None:
        grid.add_row(
            "deleted",
            Text(
                f"{local_time(run.deleted_time)} (undo: mloop runs restore {run.id})",
                style="yellow",
            ),
        )
    grid.add_row("user", run.user)
    grid.add_row("kind", run.kind)
    if run.parent_run_id is not None:
        grid.add_row("parent", run.parent_run_id)
    grid.add_row("git", _git(run))
    if run.git_remote:
        grid.add_row("remote", run.git_remote)
    grid.add_row("command", run.command or "-")
    return grid


def _git(run: RunRecord) -> Text:
    if run.git_commit is None:
        return Text("not in a git repository", style="dim")
    text = Text(run.git_commit)
    if run.git_branch:
        text.append(f" on {run.git_branch}")
    if run.git_dirty:
        text.append(" (uncommitted changes)", style="yellow")
    elif run.git_dirty is False:
        text.append(" (clean)", style="green")
    return text


def _mapping(values: Mapping[str, str]) -> Table:
    grid = _fields()
    for key, value in sorted(values.items()):
        grid.add_row(key, shorten(value, MAX_VALUE))
    return grid


def _metrics(metrics: Mapping[str, float]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(justify="right")
    for key, value in sorted(metrics.items()):
        grid.add_row(key, number(value, 6))
    return grid


def _lineage(edges: list[LineageEdge]) -> Table:
    table = plain_table()
    table.add_column("", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("kind", no_wrap=True)
    table.add_column("rows", justify="right", no_wrap=True)
    table.add_column("sha256", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    for edge in edges:
        artifact = edge.artifact
        rows = artifact.meta.get("rows")
        table.add_row(
            Text("in", style="blue") if edge.direction == "input" else Text("out", style="green"),
            edge.name,
            artifact.kind,
            f"{rows:,}" if isinstance(rows, int) else "",
            artifact.digest[:DIGEST_PREFIX],
            human_bytes(artifact.size),
        )
    return table


def _environment(environment: Environment | None) -> Text:
    if environment is None:
        return Text("not recorded", style="dim")
    count = len(environment.packages)
    return Text(
        f"Python {environment.python} on {environment.platform}; {count} installed "
        f"package{'' if count == 1 else 's'} (--json lists them)"
    )


def _error(error: str) -> Panel:
    lines = error.rstrip().splitlines()
    shown = "\n".join(lines[-ERROR_LINES:])
    title = "error" if len(lines) <= ERROR_LINES else f"error (last {ERROR_LINES} lines)"
    return Panel(Text(shown), title=title, title_align="left", border_style="red")


def _section(console: Console, title: str, count: int | None = None) -> None:
    console.print()
    heading = Text(title, style="bold underline")
    if count is not None:
        heading.append(f" ({count})", style="dim")
    console.print(heading)


def render_run(console: Console, details: RunDetails) -> None:
    """Print every section of the run; empty ones say so in one line."""
    run = details.run
    console.print(_header(details))
    if run.error:
        console.print()
        console.print(_error(run.error))
    for title, values in (("Params", run.params), ("Tags", run.tags)):
        _section(console, title, len(values))
        console.print(_mapping(values) if values else Text("none", style="dim"))
    _section(console, "Metrics, latest values", len(run.metrics))
    console.print(_metrics(run.metrics) if run.metrics else Text("none", style="dim"))
    _section(console, "Lineage: artifacts in and out", len(details.lineage))
    if details.lineage:
        console.print(_lineage(details.lineage))
    else:
        console.print(Text("none", style="dim"))
    _section(console, "Environment")
    console.print(_environment(details.environment))
