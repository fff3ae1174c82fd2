"""The demo: a real training run, recorded end to end, in a few seconds and an empty folder.

``mloop demo`` calls :func:`run_demo`; it shows what mloop records (params, metric curves,
datasets with lineage, artifacts, git state and environment) without any code of the user's.
It grows with every component mloop gains.

    >>> from mloop.demo import run_demo
    >>> result = run_demo(rows=200)             # doctest: +SKIP
    >>> result.metrics["test_auc"]              # doctest: +SKIP
    0.99...
"""

from __future__ import annotations

from mloop.demo._data import DATASET_NAME, MAX_ROWS, MIN_ROWS, load_data
from mloop.demo._train import DEMO_EXPERIMENT, DemoResult, run_demo

__all__ = [
    "DATASET_NAME",
    "DEMO_EXPERIMENT",
    "MAX_ROWS",
    "MIN_ROWS",
    "DemoResult",
    "load_data",
    "run_demo",
]
