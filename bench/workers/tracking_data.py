"""What every side of the tracking benchmark logs and asks for, generated identically everywhere.

Standard library only: this module is imported by the mloop worker, by the MLflow worker in
MLflow's own venv and by the raw-SQLite floor, so all three write the same values.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3

EXPERIMENT = "bench"
WARMUP_EXPERIMENT = "warmup"
N_PARAMS = 10
N_METRICS = 10
N_PARAM_VALUES = 5  # p0 cycles through v0..v4, so params.p0 = 'v1' selects a fifth of the runs

SEARCH_FILTER = "metrics.m0 > 0.5 and params.p0 = 'v1'"
SEARCH_ORDER_BY = ("metrics.m1 DESC",)
SEARCH_LIMIT = 100
# Run by both sides before timing a search: opens the store without touching the answers.
WARMUP_FILTER = "params.p0 = 'none'"

MetricRow = tuple[str, str, int, int, float]


def loss_value(step: int) -> float:
    """The value logged at `step` by the single-run log_metric workload."""
    return 1.0 / (1.0 + 0.001 * step)


def metric_rows(run_id: str, count: int, start_ms: int) -> list[MetricRow]:
    """(run_id, key, step, timestamp, value) rows of the log_metric workload."""
    return [(run_id, "loss", step, start_ms + step, loss_value(step)) for step in range(count)]


def run_params(index: int) -> dict[str, str]:
    return {f"p{k}": f"v{(index + k) % N_PARAM_VALUES}" for k in range(N_PARAMS)}


def run_metrics(index: int) -> dict[str, float]:
    rng = random.Random(index)
    return {f"m{k}": rng.random() for k in range(N_METRICS)}


def expected_search(n_runs: int) -> tuple[int, list[float]]:
    """How many runs match SEARCH_FILTER, and the m1 values of the top SEARCH_LIMIT of them."""
    matching = [
        metrics["m1"]
        for index in range(n_runs)
        if run_params(index)["p0"] == "v1" and (metrics := run_metrics(index))["m0"] > 0.5
    ]
    return len(matching), sorted(matching, reverse=True)[:SEARCH_LIMIT]


def persisted_metric_rows(tracking_uri: str) -> int:
    """Rows in the largest metric table of a SQLite tracking store, read on a fresh connection.

    Checks that a side's "persisted" timing really covers committed rows, whatever its schema.
    """
    db_path = tracking_uri.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        tables = [
            name
            for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if "metric" in name.lower()
        ]
        counts = [db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in tables]
    return max(counts, default=0)
