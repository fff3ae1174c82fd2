"""mloop: the whole machine-learning loop in one package.

The names a user types every day are here; each component's full API is in its subpackage
(``mloop.tracking``, ``mloop.store``, ``mloop.artifacts``, ...). They load on first use, so
``import mloop`` stays fast and imports no database driver.

    import mloop

    with mloop.start_run(experiment="churn", params={"C": 1.0}) as run:
        run.log_metric("auc", 0.91)
        run.log_model(model, name="churn", input_example=X[:5])

    model = mloop.load_model("models:/churn@latest")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mloop._util.lazy import lazy_names
from mloop._version import __version__

if TYPE_CHECKING:
    from mloop.features import FeatureStore
    from mloop.pipelines import pipeline, step
    from mloop.registry import Model, load_model, register
    from mloop.tracking import (
        Run,
        active_run,
        download_artifacts,
        get_run,
        search_runs,
        start_run,
    )

__all__ = [
    "FeatureStore",
    "Model",
    "Run",
    "__version__",
    "active_run",
    "download_artifacts",
    "get_run",
    "load_model",
    "pipeline",
    "register",
    "search_runs",
    "start_run",
    "step",
]

_LAZY = {
    "FeatureStore": ".features",
    "pipeline": ".pipelines",
    "step": ".pipelines",
    "Model": ".registry",
    "load_model": ".registry",
    "register": ".registry",
    "Run": ".tracking",
    "active_run": ".tracking",
    "download_artifacts": ".tracking",
    "get_run": ".tracking",
    "search_runs": ".tracking",
    "start_run": ".tracking",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals(), __all__)
