"""Helpers the CLI tests share: recording runs through the real tracking API."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from typer.testing import Result

import mloop

Invoke = Callable[..., Result]


def record_run(
    *,
    experiment: str = "churn",
    name: str = "run",
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float | Sequence[float]] | None = None,
    tags: Mapping[str, str] | None = None,
    fail: str | None = None,
) -> str:
    """Record a finished (or, with ``fail``, failed) run; returns its id."""
    run = mloop.start_run(experiment=experiment, name=name, params=params, tags=tags)
    try:
        with run:
            for key, values in (metrics or {}).items():
                for value in values if isinstance(values, Sequence) else [values]:
                    run.log_metric(key, value)
            if fail is not None:
                raise RuntimeError(fail)
    except RuntimeError as error:
        if str(error) != fail:
            raise
    return run.id
