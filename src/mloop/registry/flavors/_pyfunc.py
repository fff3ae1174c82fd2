"""Any object with a ``predict(frame)`` method that no library flavor claims ("python function").

The package records the model's class as ``"module:qualname"``, so the class must live in an
importable module, and the object's state without pickle: through the class's own hooks when it
has them, else as ``state.json`` (its attributes must then be JSON values)::

    class Churn:
        def predict(self, frame): ...
        def save_model(self, folder: Path) -> None: ...        # optional, both or neither
        @classmethod
        def load_model(cls, folder: Path) -> "Churn": ...

Loading imports that class, i.e. runs code already installed where it loads, never code from
the package.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mloop.errors import InvalidValueError
from mloop.registry.flavors._base import LoadOptions, Predictor, SavedFlavor, SaveOptions
from mloop.registry.flavors._imports import class_path, import_class, versions
from mloop.registry.flavors._outputs import as_array, class_list

if TYPE_CHECKING:
    import pandas as pd

STATE_FILE = "state.json"
STATE_KINDS = ("json", "hooks")


def json_problem(value: Any) -> str | None:
    """Why ``value`` does not survive a JSON round trip unchanged, or None if it does."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        return str(error)
    if json.loads(text) != value:
        return "it comes back changed from JSON (a tuple, or a dict with keys that are not str)"
    return None


class PyfuncPredictor:
    """A loaded pyfunc model; results come back as numpy arrays."""

    def __init__(self, native: Any) -> None:
        self.native = native
        self.classes: list[Any] | None = class_list(getattr(native, "classes_", None))

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        """The model's ``predict``, as an array."""
        return as_array(self.native.predict(frame))


class PyfuncProbaPredictor(PyfuncPredictor):
    """A loaded pyfunc model that also has ``predict_proba``."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        """The model's ``predict_proba``, as an array."""
        return as_array(self.native.predict_proba(frame))


def _hooks(cls: type) -> bool:
    """True if ``cls`` saves and loads itself; one hook without the other is an error."""
    saves = callable(getattr(cls, "save_model", None))
    loads = callable(getattr(cls, "load_model", None))
    if saves != loads:
        have, lack = ("save_model", "load_model") if saves else ("load_model", "save_model")
        raise InvalidValueError(
            f"{cls.__qualname__} defines {have} but not {lack}; a pyfunc model needs both "
            "hooks (save_model(self, folder) and classmethod load_model(cls, folder)) or neither"
        )
    return saves


class PyfuncFlavor:
    """Objects of an importable class with a callable ``predict``; saved without pickle."""

    name: ClassVar[str] = "pyfunc"

    def detect(self, model: Any) -> bool:
        """True for any instance (not a class) with a callable ``predict``."""
        return not isinstance(model, type) and callable(getattr(model, "predict", None))

    def save(self, model: Any, folder: Path, options: SaveOptions) -> SavedFlavor:
        """Record the class; write the state with its hooks or as ``state.json``."""
        cls = type(model)
        path = class_path(cls, "pyfunc model")
        if _hooks(cls):
            model.save_model(folder)
            state = "hooks"
        else:
            try:
                attributes = vars(model)
            except TypeError:
                raise InvalidValueError(
                    f"{cls.__qualname__} has no __dict__ (it uses __slots__), so mloop cannot "
                    "save its state as JSON; give the class save_model(self, folder) and "
                    "classmethod load_model(cls, folder) hooks"
                ) from None
            for name, value in attributes.items():
                problem = json_problem(value)
                if problem is not None:
                    raise InvalidValueError(
                        f"attribute {name!r} of the {cls.__qualname__} model "
                        f"({type(value).__name__}) cannot be saved as JSON: {problem}. Give the "
                        "class save_model(self, folder) and classmethod load_model(cls, folder) "
                        "hooks that write and read its state in a format of your choosing"
                    )
            (folder / STATE_FILE).write_text(json.dumps(attributes, allow_nan=False))
            state = "json"
        return SavedFlavor(
            data={"class": path, "state": state}, requirements=versions("numpy", "pandas")
        )

    def load(self, folder: Path, data: dict[str, Any], options: LoadOptions) -> Predictor:
        """Import the class and rebuild the object, through its hooks or from ``state.json``."""
        state = data.get("state")
        if state not in STATE_KINDS:
            raise InvalidValueError(
                f"this pyfunc model package keeps its state as {state!r}, which this version "
                f"of mloop cannot read (it knows {', '.join(STATE_KINDS)}); upgrade mloop"
            )
        cls: Any = import_class(str(data.get("class", "")))
        if not callable(getattr(cls, "predict", None)):
            raise InvalidValueError(
                f"{data['class']!r} has no predict method, so the code installed here is not "
                "what this model was saved with; install the version that defines predict"
            )
        if state == "hooks":
            model = cls.load_model(folder)
        else:
            model = cls.__new__(cls)
            model.__dict__.update(json.loads((folder / STATE_FILE).read_text()))
        if callable(getattr(model, "predict_proba", None)):
            return PyfuncProbaPredictor(model)
        return PyfuncPredictor(model)
