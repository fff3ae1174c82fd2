"""Where work runs (paper component C5): in-process, a local process pool or Ray; and tuning.

    from mloop.compute import Resources, get_executor

    with get_executor("process") as executor:        # or "inprocess", "ray"
        future = executor.submit(train, fold=1, resources=Resources(cpu=2))
        model = future.result()

    result = mloop.compute.tune(objective, n_trials=50, executor="process", register="churn")

Every executor returns ``concurrent.futures.Future`` objects; a task's exception arrives as
itself with the traceback from where it ran (``task_traceback``). Ray and Optuna are imported
only when used. See docs/compute.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mloop._util.lazy import lazy_names
from mloop.compute._executor import Executor
from mloop.compute._inprocess import InProcessExecutor
from mloop.compute._process import ProcessPoolExecutor
from mloop.compute._ray import RayExecutor
from mloop.compute._resources import Resources, parse_memory
from mloop.compute._select import BACKENDS, get_executor
from mloop.compute._task import task_traceback

if TYPE_CHECKING:
    from mloop.compute._trial import Trial
    from mloop.compute._tune import TrialResult, TuneResult, tune

__all__ = [
    "BACKENDS",
    "Executor",
    "InProcessExecutor",
    "ProcessPoolExecutor",
    "RayExecutor",
    "Resources",
    "Trial",
    "TrialResult",
    "TuneResult",
    "get_executor",
    "parse_memory",
    "task_traceback",
    "tune",
]

# tune imports Optuna (and through tracking, pandas): loaded on first use.
_LAZY = {"Trial": "._trial", "TrialResult": "._tune", "TuneResult": "._tune", "tune": "._tune"}

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals(), __all__)
