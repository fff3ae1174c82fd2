"""Experiment tracking (paper components C7 and C2): runs, metrics, params, datasets, lineage.

import mloop

with mloop.start_run(experiment="churn", params={"C": 1.0}) as run:
    run.log_metric("auc", 0.91)
    run.log_dataset(train_df, name="customers", role="train")

mloop.search_runs(experiment="churn", filter="metrics.auc > 0.8")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mloop._util.lazy import lazy_names
from mloop.tracking._context import Backends, backends, flush_all
from mloop.tracking._env import GitState, environment, git_state
from mloop.tracking._gc import GcReport, collect_garbage

if TYPE_CHECKING:
    from mloop.tracking._datasets import load_dataframe, profile
    from mloop.tracking._download import download_artifacts
    from mloop.tracking._fluent import active_run, get_run, start_run
    from mloop.tracking._run import Run
    from mloop.tracking._search import runs_to_frame, search_runs

__all__ = [
    "Backends",
    "GcReport",
    "GitState",
    "Run",
    "active_run",
    "backends",
    "collect_garbage",
    "download_artifacts",
    "environment",
    "flush_all",
    "get_run",
    "git_state",
    "load_dataframe",
    "profile",
    "runs_to_frame",
    "search_runs",
    "start_run",
]

# Names whose modules import pandas load on first use: the CLI reads the store without it.
_LAZY = {
    "Run": "._run",
    "active_run": "._fluent",
    "download_artifacts": "._download",
    "get_run": "._fluent",
    "load_dataframe": "._datasets",
    "profile": "._datasets",
    "runs_to_frame": "._search",
    "search_runs": "._search",
    "start_run": "._fluent",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals(), __all__)
