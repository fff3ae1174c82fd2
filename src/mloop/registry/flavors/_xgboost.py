"""XGBoost models (``XGBClassifier``, ``XGBRegressor``, ``XGBRanker``, raw ``Booster``).

Saved in XGBoost's own UBJSON format (``model.ubj``), with the model's class so that a
classifier comes back as a classifier. Only classes of the xgboost package are recorded or
loaded: a user subclass is saved as the XGBoost class it derives from.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mloop.errors import InvalidValueError, UntrustedModelError
from mloop.registry.flavors._base import LoadOptions, Predictor, SavedFlavor, SaveOptions
from mloop.registry.flavors._imports import defined_in, import_class, optional_import, versions
from mloop.registry.flavors._outputs import as_array, class_list

if TYPE_CHECKING:
    import pandas as pd

MODEL_FILE = "model.ubj"


def _is_xgboost_class(cls: type) -> bool:
    return cls.__module__ == "xgboost" or cls.__module__.startswith("xgboost.")


class XGBoostPredictor:
    """A loaded XGBoost model; a raw Booster predicts through a ``DMatrix`` of the frame."""

    def __init__(self, native: Any) -> None:
        self.native = native
        self.classes: list[Any] | None = class_list(getattr(native, "classes_", None))

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        """The model's ``predict`` (for a raw Booster, what its objective outputs)."""
        import xgboost

        if isinstance(self.native, xgboost.Booster):
            matrix = xgboost.DMatrix(frame, enable_categorical=True)
            return as_array(self.native.predict(matrix))
        return as_array(self.native.predict(frame))


class XGBoostProbaPredictor(XGBoostPredictor):
    """A loaded ``XGBClassifier``, which also has ``predict_proba``."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        """Class probabilities, one column per class in the order of ``classes``."""
        return as_array(self.native.predict_proba(frame))


class XGBoostFlavor:
    """XGBoost's scikit-learn estimators and raw Boosters, in the native UBJSON format."""

    name: ClassVar[str] = "xgboost"

    def detect(self, model: Any) -> bool:
        """True for objects whose class derives from an xgboost class and that predict."""
        return defined_in(model, "xgboost") and callable(getattr(model, "predict", None))

    def save(self, model: Any, folder: Path, options: SaveOptions) -> SavedFlavor:
        """Write ``model.ubj`` with ``save_model``; record the xgboost class to load it with."""
        with optional_import("xgboost", "xgboost", "saving an XGBoost model"):
            import xgboost
        if not isinstance(model, xgboost.Booster | xgboost.XGBModel):
            raise InvalidValueError(
                f"the xgboost flavor saves xgboost.Booster and XGBoost's scikit-learn estimators, "
                f"not {type(model).__qualname__}"
            )
        cls = next(c for c in type(model).__mro__ if _is_xgboost_class(c))
        try:
            model.save_model(str(folder / MODEL_FILE))
        except xgboost.core.XGBoostError as error:
            raise InvalidValueError(f"the XGBoost model cannot be saved: {error}") from error
        except (AttributeError, ValueError) as error:  # unfitted scikit-learn estimators
            raise InvalidValueError(
                f"the {cls.__name__} cannot be saved ({error}); fit it before saving it"
            ) from error
        data = {"class": f"{cls.__module__}:{cls.__qualname__}"}
        requirements = versions("xgboost", "xgboost-cpu", "numpy", "scikit-learn")
        if isinstance(model, xgboost.Booster):
            requirements.pop("scikit-learn", None)
        return SavedFlavor(data=data, requirements=requirements)

    def load(self, folder: Path, data: dict[str, Any], options: LoadOptions) -> Predictor:
        """Create the recorded xgboost class and ``load_model`` into it."""
        path = str(data.get("class", ""))
        if not path.startswith(("xgboost:", "xgboost.")):
            raise UntrustedModelError(
                f"this XGBoost model package names class {path!r}, which is not part of the "
                "xgboost package; mloop loads only xgboost's own classes for this flavor"
            )
        with optional_import("xgboost", "xgboost", "loading an XGBoost model"):
            import xgboost
        cls = import_class(path)
        if not issubclass(cls, xgboost.Booster | xgboost.XGBModel):
            raise UntrustedModelError(
                f"{path!r} is not an XGBoost model class; this package cannot be loaded"
            )
        model = cls()
        model.load_model(str(folder / MODEL_FILE))
        if isinstance(model, xgboost.XGBClassifier):
            return XGBoostProbaPredictor(model)
        return XGBoostPredictor(model)
