"""search_runs: runs of one or more experiments as a pandas DataFrame."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from mloop.errors import InvalidValueError
from mloop.store import RunRecord, Store
from mloop.tracking._context import backends, flush_all


def search_runs(
    experiment: str | Sequence[str] | None = None,
    *,
    filter: str | None = None,
    order_by: Sequence[str] | None = None,
    limit: int | None = 1000,
    include_deleted: bool = False,
    store: Store | None = None,
) -> pd.DataFrame:
    """Runs matching ``filter``, one row each, as a DataFrame.

        mloop.search_runs(experiment="churn",
                          filter="metrics.auc > 0.8 and params.model = 'rf'",
                          order_by=["metrics.auc DESC"], limit=10)

    Columns: run_id, experiment_id, name, status, start_time, end_time, user, kind,
    parent_run_id, git_commit, git_dirty, then ``metrics.<key>`` (latest value),
    ``params.<key>`` and ``tags.<key>``. ``experiment`` is a name, a list of names, or None
    for every experiment. A bad filter raises InvalidFilterError naming the bad token.
    """
    flush_all()  # so a search sees what this process has logged
    the_store = backends(store).store
    if experiment is None:
        experiment_ids: list[str] | None = None
    else:
        names = [experiment] if isinstance(experiment, str) else list(experiment)
        if not all(isinstance(n, str) for n in names):
            raise InvalidValueError("experiment must be a name or a list of names")
        experiment_ids = [the_store.get_experiment(n).id for n in names]
    runs = the_store.search_runs(
        experiment_ids=experiment_ids,
        filter=filter,
        order_by=order_by,
        limit=limit,
        include_deleted=include_deleted,
    )
    return runs_to_frame(runs)


def runs_to_frame(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per run; metrics, params and tags spread into prefixed columns."""
    n = len(runs)
    data: dict[str, list[Any]] = {
        "run_id": [r.id for r in runs],
        "experiment_id": [r.experiment_id for r in runs],
        "name": [r.name for r in runs],
        "status": [r.status for r in runs],
        "start_time": [r.start_time for r in runs],
        "end_time": [r.end_time for r in runs],
        "user": [r.user for r in runs],
        "kind": [r.kind for r in runs],
        "parent_run_id": [r.parent_run_id for r in runs],
        "git_commit": [r.git_commit for r in runs],
        "git_dirty": [r.git_dirty for r in runs],
    }
    extra: dict[str, list[Any]] = {}
    for prefix, attribute in (("metrics.", "metrics"), ("params.", "params"), ("tags.", "tags")):
        for i, run in enumerate(runs):
            for key, item in getattr(run, attribute).items():
                column = extra.get(prefix + key)
                if column is None:
                    column = extra[prefix + key] = [None] * n
                column[i] = item
    for name in sorted(extra):
        values = extra[name]
        if name.startswith("metrics."):
            data[name] = [math.nan if v is None else v for v in values]
        else:
            data[name] = values
    frame = pd.DataFrame(data)
    for when in ("start_time", "end_time"):
        frame[when] = pd.to_datetime(frame[when], utc=True)
    return frame
