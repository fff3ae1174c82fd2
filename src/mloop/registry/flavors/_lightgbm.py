"""LightGBM models (``LGBMClassifier``, ``LGBMRegressor``, ``LGBMRanker``, raw ``Booster``).

Saved as LightGBM's text model (``model.txt``) and loaded as a ``lightgbm.Booster``. The
scikit-learn wrapper is not rebuilt; what it adds for a classifier (the class labels, and turning
probabilities into labels) is recorded in the flavor data and redone here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mloop.errors import InvalidValueError
from mloop.registry.flavors._base import LoadOptions, Predictor, SavedFlavor, SaveOptions
from mloop.registry.flavors._imports import defined_in, optional_import, versions
from mloop.registry.flavors._outputs import as_array, class_list

if TYPE_CHECKING:
    import pandas as pd

MODEL_FILE = "model.txt"
KINDS = ("classifier", "regressor", "ranker", "booster")


class LightGBMPredictor:
    """A loaded booster that predicts what its objective outputs (values, scores)."""

    classes: list[Any] | None = None

    def __init__(self, native: Any) -> None:
        self.native = native

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        """The booster's ``predict``."""
        # A frame, not an array: the booster maps pandas categorical columns by their names.
        return as_array(self.native.predict(frame))


class LightGBMClassifierPredictor(LightGBMPredictor):
    """A loaded ``LGBMClassifier``: labels from ``classes``, and ``predict_proba``."""

    def __init__(self, native: Any, classes: list[Any]) -> None:
        super().__init__(native)
        self.classes = classes

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        """Class probabilities, one column per class in the order of ``classes``."""
        raw = as_array(self.native.predict(frame))
        if raw.ndim == 1:  # binary objectives give P(second class) only
            return np.column_stack([1.0 - raw, raw])
        return raw

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        """The most probable class of each row (as ``LGBMClassifier.predict``)."""
        labels = np.asarray(self.classes)
        return np.asarray(labels[np.argmax(self.predict_proba(frame), axis=1)])


class LightGBMFlavor:
    """LightGBM's scikit-learn estimators and raw Boosters, as the text model format."""

    name: ClassVar[str] = "lightgbm"

    def detect(self, model: Any) -> bool:
        """True for objects whose class derives from a lightgbm class and that predict."""
        return defined_in(model, "lightgbm") and callable(getattr(model, "predict", None))

    def save(self, model: Any, folder: Path, options: SaveOptions) -> SavedFlavor:
        """Write the booster's ``model.txt``; record kind, objective and classes."""
        with optional_import("lightgbm", "lightgbm", "saving a LightGBM model"):
            import lightgbm
        classes: list[Any] | None = None
        if isinstance(model, lightgbm.Booster):
            kind, booster = "booster", model
        elif isinstance(model, lightgbm.LGBMModel):
            try:
                booster = model.booster_
            except (AttributeError, ValueError):  # LightGBM's NotFittedError is both
                raise InvalidValueError(
                    f"the {type(model).__name__} is not fitted; call fit before saving it"
                ) from None
            if callable(model.objective_):
                raise InvalidValueError(
                    f"the {type(model).__name__} was fitted with a custom objective function, "
                    "so its saved booster predicts raw scores, not what the estimator predicts; "
                    "save it with the pyfunc flavor (a class that wraps it) instead"
                )
            if isinstance(model, lightgbm.LGBMClassifier):
                kind, classes = "classifier", class_list(model.classes_)
            elif isinstance(model, lightgbm.LGBMRanker):
                kind = "ranker"
            else:
                kind = "regressor"
        else:
            raise InvalidValueError(
                f"the lightgbm flavor saves lightgbm.Booster and LightGBM's scikit-learn "
                f"estimators, not {type(model).__qualname__}"
            )
        booster.save_model(str(folder / MODEL_FILE))
        data = {"kind": kind, "objective": booster.params.get("objective"), "classes": classes}
        requirements = versions("lightgbm", "numpy")
        if kind != "booster":
            requirements.update(versions("scikit-learn"))
        return SavedFlavor(data=data, requirements=requirements)

    def load(self, folder: Path, data: dict[str, Any], options: LoadOptions) -> Predictor:
        """Read ``model.txt`` into a ``lightgbm.Booster``."""
        kind = data.get("kind")
        if kind not in KINDS:
            raise InvalidValueError(
                f"this lightgbm model package is of kind {kind!r}, which this version of mloop "
                f"cannot read (it knows {', '.join(KINDS)}); upgrade mloop"
            )
        with optional_import("lightgbm", "lightgbm", "loading a LightGBM model"):
            import lightgbm
        booster = lightgbm.Booster(model_file=str(folder / MODEL_FILE))
        if kind == "classifier":
            return LightGBMClassifierPredictor(booster, list(data["classes"]))
        return LightGBMPredictor(booster)
