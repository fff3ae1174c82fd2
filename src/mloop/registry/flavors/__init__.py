"""Model flavors: how each kind of model is saved into a package folder and loaded back.

>>> from mloop.registry.flavors import detect_flavor, get_flavor
>>> detect_flavor(fitted_random_forest).name  # doctest: +SKIP
'sklearn'
>>> get_flavor("pytorch").name
'pytorch'

:data:`FLAVORS` is in detection order: XGBoost and LightGBM estimators are scikit-learn
estimators too, so they are tried first, and ``pyfunc`` (anything with ``predict``) last.
Importing this package imports none of the model libraries.
"""

from __future__ import annotations

from typing import Any

from mloop.errors import InvalidValueError
from mloop.registry.flavors._base import (
    Flavor,
    LoadOptions,
    Predictor,
    SavedFlavor,
    SaveOptions,
)
from mloop.registry.flavors._lightgbm import LightGBMFlavor
from mloop.registry.flavors._onnx import OnnxFlavor
from mloop.registry.flavors._pyfunc import PyfuncFlavor
from mloop.registry.flavors._pytorch import TorchFlavor
from mloop.registry.flavors._sklearn import SklearnFlavor
from mloop.registry.flavors._xgboost import XGBoostFlavor

__all__ = [
    "FLAVORS",
    "Flavor",
    "LoadOptions",
    "Predictor",
    "SaveOptions",
    "SavedFlavor",
    "detect_flavor",
    "get_flavor",
]

FLAVORS: dict[str, Flavor] = {
    flavor.name: flavor
    for flavor in (
        XGBoostFlavor(),
        LightGBMFlavor(),
        SklearnFlavor(),
        OnnxFlavor(),
        TorchFlavor(),
        PyfuncFlavor(),
    )
}


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``; :class:`InvalidValueError` listing the known ones if none."""
    try:
        return FLAVORS[name]
    except KeyError:
        raise InvalidValueError(
            f"there is no model flavor {name!r}; the flavors are: {', '.join(FLAVORS)}"
        ) from None


def detect_flavor(model: Any) -> Flavor:
    """The first flavor of :data:`FLAVORS` that saves ``model``."""
    for flavor in FLAVORS.values():
        if flavor.detect(model):
            return flavor
    hint = (
        f"{model.__qualname__} is a class; pass a fitted instance of it"
        if isinstance(model, type)
        else "any object whose class has a predict(frame) method is saved as 'pyfunc'"
    )
    raise InvalidValueError(
        f"no model flavor saves a {type(model).__qualname__}: the flavors are "
        f"{', '.join(FLAVORS)} (scikit-learn, XGBoost, LightGBM, ONNX and PyTorch models); {hint}"
    )
