"""The model a server serves: loaded, warmed, and swapped when its alias moves."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from mloop.artifacts import ArtifactStore
from mloop.backends import backends
from mloop.config import Settings
from mloop.errors import InvalidInputError, MloopError
from mloop.registry import Model, get_version, load_model, parse_ref
from mloop.serving._lookup import FeatureNeeds, feature_needs
from mloop.serving._payload import Columns, PayloadError
from mloop.store import Store

__all__ = ["ModelSlot", "Outputs", "ServedModel"]

log = logging.getLogger("mloop.serving")


@dataclass(frozen=True)
class Outputs:
    """What one predict call gave, as plain Python lists (JSON-ready)."""

    predictions: list[Any]
    probabilities: list[list[float]] | None


def _plain(array: np.ndarray[Any, Any]) -> list[Any]:
    """A numpy result as JSON-safe lists: NaN and infinities become null."""
    values: list[Any] = array.tolist()
    if array.dtype.kind == "f" and not bool(np.isfinite(array).all()):
        return _finite(values)
    return values


def _finite(values: list[Any]) -> list[Any]:
    return [
        _finite(v)
        if isinstance(v, list)
        else (None if isinstance(v, float) and not math.isfinite(v) else v)
        for v in values
    ]


@dataclass(frozen=True)
class ServedModel:
    """One loaded model version, with what requests are checked against."""

    model: Model
    name: str
    version: int | None
    needs: FeatureNeeds | None
    columns: tuple[str, ...] | None  # signature input columns, None without a signature

    @property
    def label(self) -> str:
        return "" if self.version is None else str(self.version)

    def check_columns(self, columns: Columns) -> Columns:
        """The request's signature columns; names a missing or unknown column (422)."""
        if self.columns is None:
            return columns
        given = columns.keys()
        missing = [c for c in self.columns if c not in given]
        if missing:
            hint = ""
            if self.needs is not None:
                hint = (
                    f"; or send only the entity key(s) {list(self.needs.join_keys)} and the "
                    "server looks the features up"
                )
            raise PayloadError(
                422,
                f"input is missing column(s) {missing[:10]}{' ...' if len(missing) > 10 else ''}"
                f" of model {self.name}; it takes {list(self.columns)[:40]}{hint}",
            )
        keys = self.needs.join_keys if self.needs is not None else ()
        extra = [c for c in given if c not in self.columns and c not in keys]
        if extra:
            raise PayloadError(
                422,
                f"input has column(s) {sorted(extra)[:10]} that model {self.name} does not take; "
                "remove them",
            )
        if len(given) == len(self.columns):
            return columns
        return {c: columns[c] for c in self.columns}

    def plausible(self, columns: Columns) -> bool:
        """A quick check in plain Python that the signature will take these values, so one
        request with a wrong type does not make its whole batch fall back to one-by-one
        scoring. True is not a promise (the signature has the last word); False is certain."""
        checks = self._checks
        for name, values in columns.items():
            check = checks.get(name)
            if check is not None and not all(check(v) for v in values):
                return False
        return True

    @cached_property
    def _checks(self) -> dict[str, Callable[[Any], bool]]:
        return _checks(self.model)

    @cached_property
    def labels_from_proba(self) -> bool:
        """True when ``predict`` is the most probable class, so one call gives both outputs.

        Only for classifiers documented to predict that way (scikit-learn's probabilistic
        classifiers, XGBoost, LightGBM; not SVC, whose probabilities come from a separate
        Platt fit), and only if it holds on the package's input example.
        """
        model = self.model
        classes = model.classes
        if not model.has_proba or not classes or _final_estimator(model.native) not in _ARGMAX:
            return False
        example = model.input_example()
        if example is None:
            return False
        proba = model.predict_proba(example)
        labels = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
        return bool((labels == model.predict(example).astype(object)).all())

    def predict(self, columns: Columns) -> Outputs:
        """Score a batch (validated against the signature once)."""
        model = self.model
        frame = model.validate(columns)
        if not model.has_proba:
            return Outputs(_plain(model.predict(frame)), None)
        proba = model.predict_proba(frame)
        if self.labels_from_proba:
            assert model.classes is not None
            predictions = np.asarray(model.classes)[proba.argmax(axis=1)]
        else:
            predictions = model.predict(frame)
        return Outputs(_plain(predictions), _plain(proba))

    def warm(self) -> None:
        """Score the package's input example, so the first request does not pay for it."""
        example = self.model.input_example()
        if example is None:
            return
        try:
            self.labels_from_proba  # noqa: B018 - worked out now, not on the first request
            self.predict({str(k): v for k, v in example.head(1).to_dict("list").items()})
        except (MloopError, ValueError, TypeError) as error:
            log.warning("warming %s on its input example failed: %s", self.name, error)


class ModelSlot:
    """The current version of one served reference (``churn@production``); ``refresh`` loads
    the version the alias points at now, warms it, and swaps it in with one assignment, so a
    batch scores on one version and no request waits for a load."""

    def __init__(
        self,
        ref: str,
        role: str,
        *,
        store: Store | None,
        artifacts: ArtifactStore | None,
        settings: Settings | None,
    ) -> None:
        self.ref = ref
        self.role = role
        self._parsed = parse_ref(ref)
        self._store = store
        self._artifacts = artifacts
        self._settings = settings
        self._lock = threading.Lock()  # one refresh at a time
        self.follows_alias = self._parsed.name is not None and self._parsed.version is None
        self.current = self._load(None)
        self.swaps = 0

    def _load(self, number: int | None) -> ServedModel:
        parsed = self._parsed
        if parsed.name is None:  # a path or a run's package: nothing to follow
            model = load_model(
                self.ref, store=self._store, artifacts=self._artifacts, settings=self._settings
            )
            name = parsed.path.stem if parsed.path is not None else f"run-{parsed.run_id}"
            served = ServedModel(model, name, None, None, _columns(model))
            served.warm()
            return served
        if number is None:
            number = self._resolve()
        version = get_version(f"{parsed.name}/{number}", store=self._store, settings=self._settings)
        model = load_model(
            f"{parsed.name}/{number}",
            store=self._store,
            artifacts=self._artifacts,
            settings=self._settings,
        )
        db = backends(self._store, self._artifacts, self._settings, create=False).store
        needs = feature_needs(db, version)
        served = ServedModel(model, parsed.name, number, needs, _columns(model))
        served.warm()
        return served

    def _resolve(self) -> int:
        version = get_version(str(self._parsed), store=self._store, settings=self._settings)
        return version.version

    def refresh(self) -> bool:
        """Swap in the version the alias names now, if it moved; True if it swapped."""
        if not self.follows_alias:
            return False
        with self._lock:
            number = self._resolve()
            if number == self.current.version:
                return False
            fresh = self._load(number)
            previous = self.current
            self.current = fresh  # one reference assignment: atomic for every reader
            self.swaps += 1
            log.info(
                "%s: swapped %s/%s for version %s", self.role, fresh.name, previous.label, number
            )
            return True


# Final estimators whose predict() is the argmax of predict_proba().
_ARGMAX = frozenset(
    {
        "LogisticRegression",
        "LogisticRegressionCV",
        "RandomForestClassifier",
        "ExtraTreesClassifier",
        "DecisionTreeClassifier",
        "ExtraTreeClassifier",
        "GradientBoostingClassifier",
        "HistGradientBoostingClassifier",
        "KNeighborsClassifier",
        "GaussianNB",
        "MultinomialNB",
        "BernoulliNB",
        "ComplementNB",
        "MLPClassifier",
        "XGBClassifier",
        "LGBMClassifier",
    }
)


def _final_estimator(native: Any) -> str:
    steps = getattr(native, "steps", None)  # a scikit-learn Pipeline: its last step decides
    if isinstance(steps, list) and steps:
        native = steps[-1][1]
    return type(native).__name__


def _number(nullable: bool) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if type(value) is float:
            return value == value or nullable  # NaN is a missing value
        return type(value) is int or (value is None and nullable)

    return check


def _of(kind: type, nullable: bool) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return type(value) is kind or (value is None and nullable)

    return check


def _checks(model: Model) -> dict[str, Callable[[Any], bool]]:
    checks: dict[str, Callable[[Any], bool]] = {}
    signature = model.signature
    for spec in signature.inputs if signature is not None else ():
        if spec.dtype in ("float32", "float64") or spec.dtype.startswith(("int", "uint")):
            checks[spec.name] = _number(spec.nullable)
        elif spec.dtype == "bool":
            checks[spec.name] = _of(bool, spec.nullable)
        elif spec.dtype == "string":
            checks[spec.name] = _of(str, spec.nullable)
    return checks


def _columns(model: Model) -> tuple[str, ...] | None:
    signature = model.signature
    return None if signature is None else tuple(signature.columns)


def explain(error: Exception) -> str:
    """A one-line reason for a refused input."""
    if isinstance(error, InvalidInputError):
        return str(error)
    return f"the model could not score this input ({type(error).__name__}: {error})"
