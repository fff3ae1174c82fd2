"""MLflow's side of bench/tracking.py; runs in .venv-bench/mlflow with MLFLOW_TRACKING_URI set.

Each task runs once per process and prints its timings as JSON (see workers/protocol.py). The
experiment is created before any timer starts, since MLflow's first call creates the tables.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from time import perf_counter
from typing import Any

import mlflow
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
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


def log_metric(count: int) -> dict[str, Any]:
    experiment_id = mlflow.create_experiment(EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment_id):
        start = perf_counter()
        for step in range(count):
            mlflow.log_metric("loss", loss_value(step), step=step)
        calls_done = perf_counter()
    persisted = perf_counter()
    return {
        "call_s": calls_done - start,
        "persisted_s": persisted - start,
        "persisted_rows": persisted_metric_rows(os.environ["MLFLOW_TRACKING_URI"]),
    }


def _log_run(experiment_id: str, index: int) -> None:
    with mlflow.start_run(experiment_id=experiment_id):
        mlflow.log_params(run_params(index))
        mlflow.log_metrics(run_metrics(index), step=0)


def runs(count: int) -> dict[str, Any]:
    _log_run(mlflow.create_experiment(WARMUP_EXPERIMENT), 0)
    experiment_id = mlflow.create_experiment(EXPERIMENT)
    start = perf_counter()
    for index in range(count):
        _log_run(experiment_id, index)
    return {"seconds": perf_counter() - start}


def populate(count: int) -> dict[str, Any]:
    """Log `count` runs the fastest documented way: one create_run and one log_batch each."""
    client = MlflowClient()
    experiment_id = client.create_experiment(EXPERIMENT)
    timestamp = int(time.time() * 1000)
    start = perf_counter()
    for index in range(count):
        run_id = client.create_run(experiment_id).info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, timestamp, 0) for k, v in run_metrics(index).items()],
            params=[Param(k, v) for k, v in run_params(index).items()],
        )
    return {"seconds": perf_counter() - start}


def _search(**kwargs: Any) -> Any:
    return mlflow.search_runs(experiment_names=[EXPERIMENT], **kwargs)


def search(timings: int) -> dict[str, Any]:
    _search(filter_string=WARMUP_FILTER, max_results=1)
    top_s, all_s = [], []
    for _ in range(timings):
        start = perf_counter()
        top = _search(
            filter_string=SEARCH_FILTER, order_by=list(SEARCH_ORDER_BY), max_results=SEARCH_LIMIT
        )
        top_s.append(perf_counter() - start)
        start = perf_counter()
        everything = _search(filter_string=SEARCH_FILTER)
        all_s.append(perf_counter() - start)
    return {
        "top_s": top_s,
        "all_s": all_s,
        "top_count": len(top),
        "top_m1": top["metrics.m1"].tolist(),
        "all_count": len(everything),
    }


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    serve({"log_metric": log_metric, "runs": runs, "populate": populate, "search": search})
