"""The runs table's layout: computed widths agree with Rich, and columns give way in order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console
from rich.measure import Measurement

from mloop.cli._run_table import build_table, columns, fitting_table, metric_keys, table_width
from mloop.store import RunRecord

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def record(number: int, **metrics: float) -> RunRecord:
    return RunRecord(
        id=f"01a20000-0000-7000-8000-{number:012d}",
        experiment_id="e1",
        name=f"run-number-{number}",
        kind="run",
        status="finished",
        start_time=NOW - timedelta(minutes=5),
        end_time=NOW,
        user="u",
        parent_run_id=None,
        git_commit=None,
        git_dirty=None,
        git_branch=None,
        git_remote=None,
        command=None,
        environment_id=None,
        error=None,
        deleted_time=None,
        metrics=dict(metrics),
    )


RUNS = [record(1, auc=0.91, a_very_long_metric_name=1234.5), record(2, auc=0.5, loss=0.25)]


@pytest.mark.parametrize("metric_count", [0, 1, 3])
@pytest.mark.parametrize("experiments", [None, {"e1": "churn"}])
def test_computed_width_is_the_width_rich_draws(
    metric_count: int, experiments: dict[str, str] | None
) -> None:
    keys = metric_keys(RUNS, [])[:metric_count]
    fixed, optional, metric_columns = columns(RUNS, keys, experiments=experiments, now=NOW)
    shown = [*fixed, *optional, *metric_columns]
    console = Console(width=1000)
    measured = Measurement.get(console, console.options, build_table(shown)).maximum
    assert table_width(shown) == measured


@pytest.mark.parametrize(
    ("width", "has_started", "has_duration", "hidden"),
    [
        (300, True, True, []),
        (107, True, True, []),
        (106, True, True, ["loss"]),
        (100, True, True, ["auc", "loss"]),
        (79, True, True, ["a_very_long_metric_name", "auc", "loss"]),
        (78, True, False, ["a_very_long_metric_name", "auc", "loss"]),
        (60, False, False, ["a_very_long_metric_name", "auc", "loss"]),
    ],
)
def test_columns_give_way_in_order(
    width: int, has_started: bool, has_duration: bool, hidden: list[str]
) -> None:
    console = Console(width=width, record=True)
    table, left_out = fitting_table(console, RUNS, metric_keys(RUNS, []))
    headers = [str(column.header) for column in table.columns]
    assert headers[:3] == ["run id", "name", "status"]
    assert ("started" in headers) is has_started
    assert ("duration" in headers) is has_duration
    assert left_out == hidden
    console.print(table)
    text = console.export_text()
    assert RUNS[0].id in text  # never cut


def test_sorted_metrics_come_first() -> None:
    assert metric_keys(RUNS, ["metrics.loss DESC"]) == ["loss", "a_very_long_metric_name", "auc"]
    assert metric_keys(RUNS, ["metric.`auc`"])[0] == "auc"
    assert metric_keys(RUNS, ["params.loss"])[0] == "a_very_long_metric_name"
