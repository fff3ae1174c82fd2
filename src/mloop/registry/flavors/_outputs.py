"""Turning what a model returns into what :class:`Predictor` promises."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_array(result: Any) -> np.ndarray[Any, Any]:
    """``result`` as a numpy array; pandas objects through ``to_numpy()``."""
    to_numpy = getattr(result, "to_numpy", None)
    if callable(to_numpy):
        return np.asarray(to_numpy())
    return np.asarray(result)


def drop_unit_column(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A ``(n, 1)`` array as ``(n,)``, the shape scikit-learn regressors predict; others as is."""
    if array.ndim == 2 and array.shape[1] == 1:
        return array[:, 0]
    return array


def class_list(classes: Any) -> list[Any] | None:
    """Class labels as a list of plain Python scalars, or None when there are none.

    Only one-dimensional label arrays count; a multi-output model's per-output lists give None.
    """
    if classes is None:
        return None
    try:
        array = np.asarray(classes)
    except ValueError:  # ragged: one label array per output
        return None
    if array.ndim != 1:
        return None
    return [item.item() if isinstance(item, np.generic) else item for item in array.tolist()]
