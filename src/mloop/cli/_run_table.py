"""The table ``mloop runs list`` prints: one row per run, and as many columns as fit.

The run id is always shown whole (people copy it). When the terminal is too narrow for
everything, metric columns go first (rightmost first), then the duration, then the start
time; the name column is the one Rich may shorten.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from mloop.cli._format import ago, human_duration, number, status
from mloop.store import RunRecord

METRIC_WIDTH = 14  # a metric column's widest; longer names fold onto a second header line
NAME_WIDTH = 28
NAME_MIN = 20  # the name column may be shortened to this to make room
_UNLIMITED = 100_000


@dataclass(frozen=True)
class Layout:
    """Which optional columns a runs table has."""

    metrics: tuple[str, ...] = ()
    started: bool = True
    duration: bool = True


def metric_keys(runs: Sequence[RunRecord], order_by: Sequence[str]) -> list[str]:
    """Every metric key of ``runs``: the ones sorted by first, then alphabetically."""
    keys = sorted({key for run in runs for key in run.metrics})
    first = [k for k in keys if any(_names_metric(term, k) for term in order_by)]
    return first + [k for k in keys if k not in first]


def _names_metric(term: str, key: str) -> bool:
    """True if the order_by term ``term`` (``metrics.<key> [ASC|DESC]``) sorts by ``key``."""
    field = term.strip()
    words = field.rsplit(None, 1)
    if len(words) == 2 and words[1].upper() in ("ASC", "DESC"):
        field = words[0]
    prefix, _, name = field.partition(".")
    return prefix.lower() in ("metrics", "metric") and name.strip('`"') == key


def build_table(
    runs: Sequence[RunRecord],
    layout: Layout,
    *,
    experiments: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Table:
    """The runs table with ``layout``'s columns; an experiment column if names are given."""
    now = now or datetime.now(UTC)
    table = Table(
        box=box.SIMPLE_HEAD,
        header_style="bold",
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    table.add_column("run id", no_wrap=True, min_width=36, style="cyan")
    table.add_column("name", max_width=NAME_WIDTH, overflow="ellipsis", no_wrap=True)
    if experiments is not None:
        table.add_column("experiment", no_wrap=True, max_width=20, overflow="ellipsis")
    table.add_column("status", no_wrap=True)
    if layout.started:
        table.add_column("started", no_wrap=True)
    if layout.duration:
        table.add_column("duration", no_wrap=True, justify="right")
    for key in layout.metrics:
        table.add_column(key, justify="right", max_width=METRIC_WIDTH, overflow="fold")
    for run in runs:
        cells: list[str | Text] = [run.id, run.name]
        if experiments is not None:
            cells.append(experiments.get(run.experiment_id, run.experiment_id))
        cells.append(status(run.status, deleted=run.deleted_time is not None))
        if layout.started:
            cells.append(ago(run.start_time, now))
        if layout.duration:
            if run.end_time is not None:
                cells.append(human_duration(run.end_time - run.start_time))
            else:
                cells.append(Text(human_duration(now - run.start_time) + "…", style="dim"))
        cells += [number(run.metrics[k]) if k in run.metrics else "" for k in layout.metrics]
        table.add_row(*cells)
    return table


def _layouts(metrics: Sequence[str]) -> list[Layout]:
    """Every layout worth trying, widest first."""
    with_metrics = [Layout(tuple(metrics[:n])) for n in range(len(metrics), -1, -1)]
    return [*with_metrics, Layout(duration=False), Layout(started=False, duration=False)]


def fitting_table(
    console: Console,
    runs: Sequence[RunRecord],
    metrics: Sequence[str],
    *,
    experiments: Mapping[str, str] | None = None,
) -> tuple[Table, list[str]]:
    """The widest runs table that fits the console, and the metric keys left out of it."""
    now = datetime.now(UTC)
    wide = console.options.update_width(_UNLIMITED)
    name_slack = max(0, min(NAME_WIDTH, max(len(run.name) for run in runs)) - NAME_MIN)
    for layout in _layouts(metrics):
        table = build_table(runs, layout, experiments=experiments, now=now)
        natural = Measurement.get(console, wide, table).maximum
        if natural - name_slack <= console.width:
            break
    table.columns[1].no_wrap = False  # from here on Rich may shorten the name, with an ellipsis
    return table, list(metrics[len(layout.metrics) :])
