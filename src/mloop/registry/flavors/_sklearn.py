"""scikit-learn estimators and pipelines, saved with skops (the default) or joblib (pickle).

A skops file lists the types it would create; loading creates only those skops trusts by default,
those in :data:`SAFE_TYPES`, and those the caller names in ``LoadOptions.trusted_types``. A joblib
file is a pickle, which can run any code, so it loads only with ``allow_pickle=True``.

scikit-learn, skops and joblib are imported when a model is saved or loaded, not with this
module, to keep ``import mloop.registry`` fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mloop.errors import InvalidValueError, UntrustedModelError
from mloop.registry.flavors._base import LoadOptions, Predictor, SavedFlavor, SaveOptions
from mloop.registry.flavors._imports import defined_in, versions
from mloop.registry.flavors._outputs import as_array, class_list

if TYPE_CHECKING:
    import pandas as pd

SKOPS_FILE = "model.skops"
JOBLIB_FILE = "model.joblib"
SERIALIZERS = ("skops", "joblib")

_DISTANCES = ("Euclidean", "SEuclidean", "Manhattan", "Chebyshev", "Minkowski")

#: Types of scikit-learn and numpy that skops does not trust by default but that only hold
#: fitted values (dtypes, calibrators, dict-like bunches, distance metrics). Not here, on purpose:
#: types that hold raw node or index arrays scikit-learn reads without bounds checks (trees,
#: ``TreePredictor``, ``BallTree``, ``KDTree``), which skops warns a forged file can turn into
#: out-of-bounds reads. Forests and neighbour models therefore need those named in
#: ``trusted_types`` by whoever loads them.
SAFE_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.utils._bunch.Bunch",
    }
    | {
        f"sklearn.metrics._dist_metrics.{name}Distance{bits}"
        for name in _DISTANCES
        for bits in (32, 64)
    }
)


class SklearnPredictor:
    """A loaded estimator; columns go in by name if it was fitted on a frame, else as an array."""

    def __init__(self, native: Any) -> None:
        self.native = native
        self.classes: list[Any] | None = class_list(getattr(native, "classes_", None))
        self._by_name = hasattr(native, "feature_names_in_")

    def _input(self, frame: pd.DataFrame) -> Any:
        # Passing a frame to an estimator fitted on an array makes scikit-learn warn, and back.
        return frame if self._by_name else frame.to_numpy()

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        """The estimator's ``predict``."""
        return as_array(self.native.predict(self._input(frame)))


class SklearnProbaPredictor(SklearnPredictor):
    """A loaded estimator that also has ``predict_proba``."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        """The estimator's ``predict_proba``: one column per class, in the order of ``classes``."""
        return as_array(self.native.predict_proba(self._input(frame)))


class SklearnFlavor:
    """Any scikit-learn estimator or Pipeline that predicts, including subclasses of them."""

    name: ClassVar[str] = "sklearn"

    def detect(self, model: Any) -> bool:
        """True for objects whose class derives from a scikit-learn class and that predict."""
        return defined_in(model, "sklearn") and callable(getattr(model, "predict", None))

    def save(self, model: Any, folder: Path, options: SaveOptions) -> SavedFlavor:
        """Write ``model.skops`` (default) or ``model.joblib`` (``serializer="joblib"``)."""
        serializer = options.serializer or "skops"
        if serializer not in SERIALIZERS:
            raise InvalidValueError(
                f"the sklearn flavor has no serializer {serializer!r}; use 'skops' (the default, "
                "safe to load) or 'joblib' (pickle: loading it can run any code)"
            )
        _check_fitted(model)
        data: dict[str, Any] = {
            "serializer": serializer,
            "estimator": f"{type(model).__module__}.{type(model).__qualname__}",
        }
        if serializer == "skops":
            import skops.io

            path = folder / SKOPS_FILE
            skops.io.dump(model, path)
            untrusted = sorted(skops.io.get_untrusted_types(file=path))
            _check_importable(untrusted)
            data["untrusted_types"] = untrusted
        else:
            import joblib

            joblib.dump(model, folder / JOBLIB_FILE)
        return SavedFlavor(
            data=data, requirements=versions("scikit-learn", "numpy", "scipy", serializer)
        )

    def load(self, folder: Path, data: dict[str, Any], options: LoadOptions) -> Predictor:
        """Read the estimator back, creating only trusted types (skops) or with pickle allowed."""
        serializer = data.get("serializer")
        if serializer == "skops":
            model = _load_skops(folder / SKOPS_FILE, options)
        elif serializer == "joblib":
            if not options.allow_pickle:
                raise UntrustedModelError(
                    "this scikit-learn model was saved with joblib, which is pickle-based: "
                    "loading it can run any code the file contains. If you trust where it came "
                    "from, load it with allow_pickle=True (or set allow_pickle_models: true in "
                    "mloop.yaml)"
                )
            import joblib

            model = joblib.load(folder / JOBLIB_FILE)
        else:
            raise InvalidValueError(
                f"this sklearn model package uses serializer {serializer!r}, which this version "
                f"of mloop cannot read (it knows {', '.join(SERIALIZERS)}); upgrade mloop"
            )
        if hasattr(model, "predict_proba"):
            return SklearnProbaPredictor(model)
        return SklearnPredictor(model)


def _check_fitted(model: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError:
        raise InvalidValueError(
            f"the {type(model).__name__} is not fitted; call fit before saving it"
        ) from None


def _check_importable(type_names: list[str]) -> None:
    """Refuse names skops could not import at load time (lambdas, locals, ``__main__``)."""
    for name in type_names:
        if _resolves(name):
            continue
        raise InvalidValueError(
            f"the model refers to {name!r}, which cannot be imported by that name when the model "
            "is loaded (a lambda, something defined inside a function, or in __main__: a script "
            "or notebook); define it at the top level of a module and import it from there"
        )


def _resolves(dotted: str) -> bool:
    """True if ``dotted`` names an attribute path of a module that is already imported."""
    if dotted.startswith("__main__."):
        return False
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:split]))
        if module is None:
            continue
        found: Any = module
        for part in parts[split:]:
            found = getattr(found, part, None)
            if found is None:
                return False
        return True
    return False


def _load_skops(path: Path, options: LoadOptions) -> Any:
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    # One pass: skops refuses any type outside ``trusted`` itself. Listing the file's types
    # first (get_untrusted_types) would parse it twice; that is done only to explain a refusal.
    try:
        return skops.io.load(path, trusted=sorted(SAFE_TYPES | set(options.trusted_types)))
    except UntrustedTypesFoundException:
        untrusted = set(skops.io.get_untrusted_types(file=path))
        refused = sorted(untrusted - SAFE_TYPES - set(options.trusted_types))
        raise UntrustedModelError(
            f"this scikit-learn model contains types that are not trusted: {', '.join(refused)}; "
            "creating them can run their code (or, for tree and index types, read memory out of "
            "bounds on predict). If you trust them, pass "
            f"trusted_types={refused!r} to load_model, or list them in the trusted_types setting "
            "(mloop.yaml, or MLOOP_TRUSTED_TYPES separated by commas)"
        ) from None
