"""What a flavor is: how one kind of model is written into a package folder and read back.

A flavor never pickles by default. Each flavor writes the model's native format (skops for
scikit-learn, UBJSON for XGBoost, the text model for LightGBM, ONNX protobuf, TorchScript or a
``state_dict``) into the package folder it is given, and returns the JSON-able facts it needs to
read it back (:class:`SavedFlavor`). The registry zips the folder, stores it content-addressed and
verifies its sha256 before any flavor's ``load`` sees it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["Flavor", "LoadOptions", "Predictor", "SaveOptions", "SavedFlavor"]


@dataclass(frozen=True)
class SaveOptions:
    """What the caller asked for when saving.

    ``serializer`` picks among a flavor's formats (``"skops"`` or ``"joblib"`` for scikit-learn,
    ``"torchscript"`` or ``"state_dict"`` for PyTorch); None means the flavor's safe default.
    ``input_example`` is the (already validated) example frame, for flavors that trace.
    """

    serializer: str | None = None
    input_example: pd.DataFrame | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadOptions:
    """What the loader trusts.

    ``allow_pickle`` admits pickle-based formats (joblib); ``trusted_types`` are extra fully
    qualified type names a skops file may contain beyond skops' own safe defaults and the
    sklearn flavor's allowlist (``_sklearn.SAFE_TYPES``).
    """

    allow_pickle: bool = False
    trusted_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class SavedFlavor:
    """What a flavor wrote: JSON-able facts for ``load``, and the libraries it needs to load.

    ``requirements`` maps distribution names (as pip knows them) to the installed version used
    to save, e.g. ``{"scikit-learn": "1.9.1", "skops": "0.16.0"}``.
    """

    data: dict[str, Any]
    requirements: dict[str, str]


@runtime_checkable
class Predictor(Protocol):
    """A loaded model. ``predict`` takes a frame whose columns match the signature, in order.

    Flavors whose models give class probabilities also have ``predict_proba`` (a 2-D array,
    one column per class in the order of ``classes``); others do not have the attribute.
    """

    native: Any
    classes: list[Any] | None

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]: ...


class Flavor(Protocol):
    """One kind of model. Implementations are stateless singletons in ``flavors.FLAVORS``."""

    name: ClassVar[str]

    def detect(self, model: Any) -> bool:
        """True if this flavor saves ``model``; must not import the flavor's library."""
        ...

    def save(self, model: Any, folder: Path, options: SaveOptions) -> SavedFlavor:
        """Write ``model`` into the empty ``folder``.

        Raises :class:`~mloop.errors.InvalidValueError` when the model cannot be saved so that
        it loads back (unfitted, a class that cannot be imported by name, ...), and
        :class:`~mloop.errors.MissingExtraError` when the flavor's library is not installed.
        """
        ...

    def load(self, folder: Path, data: dict[str, Any], options: LoadOptions) -> Predictor:
        """Read back what ``save`` wrote into ``folder`` (``data`` is what it returned).

        Raises :class:`~mloop.errors.UntrustedModelError` when loading would need pickle or
        types that ``options`` does not trust.
        """
        ...
