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

from typing import TYPE_CHECKING

from mloop._util.lazy import lazy_names
from mloop.demo._limits import DATASET_NAME, DEMO_EXPERIMENT, MAX_ROWS, MIN_ROWS

if TYPE_CHECKING:
    from mloop.demo._data import load_data
    from mloop.demo._train import DemoResult, run_demo

__all__ = [
    "DATASET_NAME",
    "DEMO_EXPERIMENT",
    "MAX_ROWS",
    "MIN_ROWS",
    "DemoResult",
    "load_data",
    "run_demo",
]

# scikit-learn takes seconds to import: only running the demo pays for it, not `mloop --help`.
_LAZY = {"DemoResult": "._train", "load_data": "._data", "run_demo": "._train"}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals(), __all__)
