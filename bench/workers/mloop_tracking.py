"""mloop's side of bench/tracking.py; runs in mloop's venv with MLOOP_TRACKING_URI set.

The same tasks as peers/mlflow_tracking.py, through mloop's public API, one task per process.
"""

from __future__ import annotations

import os
from time import perf_counter
from typing import Any

from protocol import serve
from tracking_data import (
    EXPERIMENT,
    SEARCH_FILTER,
    SEARCH_LIMIT,
    SEARCH_ORDER_BY,
    WARMUP_EXPERIMENT,
    WARMUP_FILTER,
    loss_value,
    persisted_metric_rows,
    run_metrics,
    run_params,
)

import mloop


def log_metric(count: int) -> dict[str, Any]:
    with mloop.start_run(experiment=EXPERIMENT) as run:
        start = perf_counter()
        for step in range(count):
            run.log_metric("loss", loss_value(step), step=step)
        calls_done = perf_counter()
    persisted = perf_counter()
    return {
        "call_s": calls_done - start,
        "persisted_s": persisted - start,
        "persisted_rows": persisted_metric_rows(os.environ["MLOOP_TRACKING_URI"]),
    }


def _log_run(experiment: str, index: int) -> None:
    with mloop.start_run(experiment=experiment, params=run_params(index)) as run:
        run.log_metrics(run_metrics(index), step=0)


def runs(count: int) -> dict[str, Any]:
    _log_run(WARMUP_EXPERIMENT, 0)
    start = perf_counter()
    for index in range(count):
        _log_run(EXPERIMENT, index)
    return {"seconds": perf_counter() - start}


def populate(count: int) -> dict[str, Any]:
    """Log `count` finished runs; the ordinary API is mloop's fastest path."""
    return runs(count)


def _search(**kwargs: Any) -> Any:
    return mloop.search_runs(experiment=EXPERIMENT, **kwargs)


def search(timings: int) -> dict[str, Any]:
    _search(filter=WARMUP_FILTER, limit=1)
    top_s, all_s = [], []
    for _ in range(timings):
        start = perf_counter()
        top = _search(filter=SEARCH_FILTER, order_by=list(SEARCH_ORDER_BY), limit=SEARCH_LIMIT)
        top_s.append(perf_counter() - start)
        start = perf_counter()
        everything = _search(filter=SEARCH_FILTER)
        all_s.append(perf_counter() - start)
    return {
        "top_s": top_s,
        "all_s": all_s,
        "top_count": len(top),
        "top_m1": top["metrics.m1"].tolist(),
        "all_count": len(everything),
    }


if __name__ == "__main__":
    serve({"log_metric": log_metric, "runs": runs, "populate": populate, "search": search})
