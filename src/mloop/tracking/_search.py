"""search_runs: runs of one or more experiments as a pandas DataFrame."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from mloop.errors import InvalidValueError
from mloop.store import RunRecord, Store
from mloop.tracking._context import backends, flush_all

BASE_COLUMNS = (
    "run_id",
    "experiment_id",
    "name",
    "status",
    "start_time",
    "end_time",
    "user",
    "kind",
    "parent_run_id",
    "git_commit",
    "git_dirty",
)


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
    data: dict[str, list[object]] = {c: [] for c in BASE_COLUMNS}
    extra: dict[str, dict[int, object]] = {}
    for i, run in enumerate(runs):
        for column, value in (
            ("run_id", run.id),
            ("experiment_id", run.experiment_id),
            ("name", run.name),
            ("status", run.status),
            ("start_time", run.start_time),
            ("end_time", run.end_time),
            ("user", run.user),
            ("kind", run.kind),
            ("parent_run_id", run.parent_run_id),
            ("git_commit", run.git_commit),
            ("git_dirty", run.git_dirty),
        ):
            data[column].append(value)
        for prefix, values in (
            ("metrics.", run.metrics),
            ("params.", run.params),
            ("tags.", run.tags),
        ):
            for key, item in values.items():
                extra.setdefault(prefix + key, {})[i] = item
    frame = pd.DataFrame(data)
    for column in ("start_time", "end_time"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    columns = {
        name: pd.Series(
            values, index=list(values), dtype="float64" if name.startswith("metrics.") else "object"
        ).reindex(range(len(runs)))
        for name, values in sorted(extra.items())
    }
    if columns:
        frame = pd.concat([frame, pd.DataFrame(columns)], axis=1)
    return frame
