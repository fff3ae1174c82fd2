"""mloop: the whole machine-learning loop in one package.

The names a user types every day are here; each component's full API is in its subpackage
(``mloop.tracking``, ``mloop.store``, ``mloop.artifacts``, ...). They load on first use, so
``import mloop`` stays fast and imports no database driver.

    import mloop

    with mloop.start_run(experiment="churn", params={"C": 1.0}) as run:
        run.log_metric("auc", 0.91)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mloop._version import __version__

if TYPE_CHECKING:
    from mloop.tracking import (
        Run,
        active_run,
        download_artifacts,
        get_run,
        search_runs,
        start_run,
    )

__all__ = [
    "Run",
    "__version__",
    "active_run",
    "download_artifacts",
    "get_run",
    "search_runs",
    "start_run",
]

_LAZY = {
    "Run": "mloop.tracking",
    "active_run": "mloop.tracking",
    "download_artifacts": "mloop.tracking",
    "get_run": "mloop.tracking",
    "search_runs": "mloop.tracking",
    "start_run": "mloop.tracking",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mloop' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
