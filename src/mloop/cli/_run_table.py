"""The table ``mloop runs list`` prints: one row per run, and as many columns as fit.

The run id is always shown whole (people copy it). When the terminal is too narrow for
everything, metric columns go first (rightmost first), then the duration, then the start
time; the name column is the one Rich may shorten, down to ``NAME_MIN`` characters.
Column widths are computed once from the cell texts, so choosing a layout costs nothing
even for thousands of runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mloop.cli._console import plain_table
from mloop.cli._format import ago, human_duration, number, status
from mloop.store import RunRecord

METRIC_WIDTH = 14  # a metric column's widest; longer names fold onto a second header line
NAME_WIDTH = 28
NAME_MIN = 20  # the name column may be shortened to this to make room
GAP = 2  # characters between two columns (the collapsed padding around a blank divider)


@dataclass(eq=False)
class Column:
    """One column of the runs table: its header, its cells, and Rich's column options."""

    header: str
    cells: list[str | Text]
    options: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def width(self) -> int:
        """The width Rich gives this column when nothing has to be squeezed."""
        lengths = (cell_len(c) if isinstance(c, str) else c.cell_len for c in self.cells)
        natural = max(cell_len(self.header), *lengths)
        limit = self.options.get("max_width")
        natural = min(natural, limit) if limit else natural
        return max(natural, self.options.get("min_width") or 0)


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


def _duration(run: RunRecord, now: datetime) -> str | Text:
    if run.end_time is not None:
        return human_duration(run.end_time - run.start_time)
    return Text(human_duration(now - run.start_time) + "…", style="dim")


def columns(
    runs: Sequence[RunRecord],
    metrics: Sequence[str],
    *,
    experiments: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> tuple[list[Column], list[Column], list[Column]]:
    """The fixed columns, the optional ones (started, duration) and one per metric."""
    now = now or datetime.now(UTC)
    fixed = [
        Column("run id", [r.id for r in runs], {"no_wrap": True, "min_width": 36, "style": "cyan"}),
        Column(
            "name",
            [r.name for r in runs],
            {"max_width": NAME_WIDTH, "overflow": "ellipsis", "no_wrap": True},
        ),
    ]
    if experiments is not None:
        fixed.append(
            Column(
                "experiment",
                [experiments.get(r.experiment_id, r.experiment_id) for r in runs],
                {"no_wrap": True, "max_width": 20, "overflow": "ellipsis"},
            )
        )
    fixed.append(
        Column(
            "status",
            [status(r.status, deleted=r.deleted_time is not None) for r in runs],
            {"no_wrap": True},
        )
    )
    optional = [
        Column("started", [ago(r.start_time, now) for r in runs], {"no_wrap": True}),
        Column(
            "duration", [_duration(r, now) for r in runs], {"no_wrap": True, "justify": "right"}
        ),
    ]
    metric_columns = [
        Column(
            key,
            [number(r.metrics[key]) if key in r.metrics else "" for r in runs],
            {"justify": "right", "max_width": METRIC_WIDTH, "overflow": "fold"},
        )
        for key in metrics
    ]
    return fixed, optional, metric_columns


def build_table(shown: Sequence[Column]) -> Table:
    """A Rich table of ``shown`` columns."""
    table = plain_table()
    for column in shown:
        table.add_column(column.header, **column.options)
    for row in zip(*(column.cells for column in shown), strict=True):
        table.add_row(*row)
    return table


def table_width(shown: Sequence[Column]) -> int:
    """The width of ``build_table(shown)`` when nothing is squeezed."""
    return sum(column.width for column in shown) + GAP * (len(shown) - 1)


def fitting_table(
    console: Console,
    runs: Sequence[RunRecord],
    metrics: Sequence[str],
    *,
    experiments: Mapping[str, str] | None = None,
) -> tuple[Table, list[str]]:
    """The widest runs table that fits the console, and the metric keys left out of it."""
    fixed, (started, duration), metric_columns = columns(runs, metrics, experiments=experiments)
    name_slack = max(0, fixed[1].width - NAME_MIN)
    layouts = [
        *([*fixed, started, duration, *metric_columns[:n]] for n in range(len(metrics), -1, -1)),
        [*fixed, started],
        fixed,
    ]
    for shown in layouts:
        if table_width(shown) - name_slack <= console.width:
            break
    table = build_table(shown)
    table.columns[1].no_wrap = False  # from here on Rich may shorten the name, with an ellipsis
    left_out = [
        key for key, column in zip(metrics, metric_columns, strict=True) if column not in shown
    ]
    return table, left_out
