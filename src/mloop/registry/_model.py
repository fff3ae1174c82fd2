"""``Model``: what ``load_model`` returns, the same for every flavor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mloop.registry._package import INPUT_EXAMPLE, Manifest
from mloop.registry._signature import Signature, to_frame
from mloop.registry.flavors import Predictor

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["Model", "ModelMetadata"]

ExtraColumns = Literal["error", "drop"]


@dataclass(frozen=True)
class ModelMetadata:
    """Where a loaded model came from and what it needs."""

    ref: str  # how it was asked for: churn@production, churn/3, runs:/..., a path
    name: str | None  # registered model name, None for a run's or a folder's package
    version: int | None
    digest: str | None  # sha256 of the package zip, None for a folder
    flavor: str
    run_id: str | None
    created: str
    requirements: dict[str, str]
    datasets: list[dict[str, Any]] = field(default_factory=list)
    aliases: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def version_ref(self) -> str:
        """``name/version`` for a registered version, else the reference it was loaded by."""
        if self.name is not None and self.version is not None:
            return f"{self.name}/{self.version}"
        return self.ref


class Model:
    """A loaded model package: ``predict`` / ``predict_proba`` on validated input.

    Input can be a DataFrame, a list of records (dicts), a dict of columns, or a 2-D array in
    signature order. It is checked against ``signature`` first: a missing column, a value that
    cannot be cast safely, or (unless ``extra_columns="drop"``) an unknown column raises
    :class:`~mloop.errors.SignatureError` naming the column.
    """

    def __init__(
        self,
        predictor: Predictor,
        manifest: Manifest,
        metadata: ModelMetadata,
        folder: Path,
        *,
        extra_columns: ExtraColumns = "error",
    ) -> None:
        self._predictor = predictor
        self._manifest = manifest
        self.metadata = metadata
        self.folder = folder
        self.extra_columns: ExtraColumns = extra_columns

    def __repr__(self) -> str:
        return f"Model({self.metadata.version_ref!r}, flavor={self.metadata.flavor!r})"

    @property
    def signature(self) -> Signature | None:
        """Input columns and dtypes (and outputs), or None if the package was saved without."""
        return self._manifest.signature

    @property
    def flavor(self) -> str:
        return self._manifest.flavor

    @property
    def classes(self) -> list[Any] | None:
        """Class labels in ``predict_proba`` column order, for classifiers."""
        return self._predictor.classes

    @property
    def native(self) -> Any:
        """The underlying model object (an estimator, Booster, InferenceSession, Module, ...)."""
        return self._predictor.native

    @property
    def has_proba(self) -> bool:
        """True if this model gives class probabilities."""
        return callable(getattr(self._predictor, "predict_proba", None))

    def validate(self, data: Any, *, max_rows: int | None = None) -> pd.DataFrame:
        """``data`` as the frame the model is given: signature columns, in order, cast."""
        signature = self._manifest.signature
        if signature is None:
            return to_frame(data)
        return signature.validate(data, extra_columns=self.extra_columns, max_rows=max_rows)

    def predict(self, data: Any) -> np.ndarray[Any, Any]:
        """Predictions for each row of ``data`` (validated against the signature first)."""
        return self._predictor.predict(self.validate(data))

    @property
    def predict_proba(self) -> Callable[[Any], np.ndarray[Any, Any]]:
        """Class probabilities per row (columns in ``classes`` order), where the flavor has them.

        Raises AttributeError for models without probabilities, so ``hasattr`` tells.
        """
        proba = getattr(self._predictor, "predict_proba", None)
        if not callable(proba):
            raise AttributeError(
                f"model {self.metadata.version_ref} ({self.flavor} flavor) gives no class "
                "probabilities; use predict()"
            )

        def predict_proba(data: Any) -> np.ndarray[Any, Any]:
            result: np.ndarray[Any, Any] = proba(self.validate(data))
            return result

        return predict_proba

    def input_example(self) -> pd.DataFrame | None:
        """The example the package was saved with, if any (used to warm a server up)."""
        if self._manifest.input_example is None:
            return None
        import pandas as pd

        return pd.read_parquet(self.folder / INPUT_EXAMPLE)
