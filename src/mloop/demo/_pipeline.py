"""The demo's training pipeline: features → split + validation → train → evaluate → register.

The paper's automated workflow (steps 18-23) as an mloop pipeline: every step is a child run
of one pipeline run, every output an artifact with lineage, and a second run with the same
features and seed finds every step in the cache and does no work.

The steps that reach the feature store's rows and the registry close over the demo's
backends, so they run in this process (``executor="inprocess"``); the rows are keyed by their
content digest, so new features mean a new run of everything downstream.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from mloop.backends import Backends
from mloop.demo._data import TARGET, TEST_SIZE
from mloop.demo._features import FeatureData
from mloop.demo._limits import DEMO_EXPERIMENT, MODEL_NAME
from mloop.errors import InvalidValueError
from mloop.pipelines import pipeline, step
from mloop.registry import register

__all__ = ["PIPELINE_NAME", "TrainingPipelineResult", "run_training_pipeline"]

PIPELINE_NAME = "demo-training"
C = 1.0
MAX_ITER = 1000
MIN_CLASS_ROWS = 5  # the validation step refuses a split with fewer rows of either class


@dataclass(frozen=True)
class TrainingPipelineResult:
    """What the training pipeline did: its run, the model version it registered, the cache."""

    run_id: str
    status: str
    model_name: str
    model_version: int
    metrics: dict[str, float]
    cache_hits: int
    executed: int
    steps: dict[str, str] = field(default_factory=dict)  # step -> state


def frame_digest(frame: pd.DataFrame) -> str:
    """sha256 of a frame's values, index and column names: the features' identity."""
    hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes()
    return hashlib.sha256(hashed + "\x1f".join(map(str, frame.columns)).encode()).hexdigest()


@step
def split(frame: pd.DataFrame, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out ``test_size`` of the rows, stratified by the label."""
    train, test = train_test_split(
        frame, test_size=test_size, stratify=frame[TARGET], random_state=seed
    )
    return train.sort_index(), test.sort_index()


@step
def validate(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    """Check the split before training on it: same columns, no gaps, both classes in each."""
    problems = []
    if list(train.columns) != list(test.columns):
        problems.append("train and test have different columns")
    for name, part in (("train", train), ("test", test)):
        if part.isna().any().any():
            problems.append(f"{name} has missing values")
        counts = part[TARGET].value_counts()
        if len(counts) < 2 or counts.min() < MIN_CLASS_ROWS:
            problems.append(f"{name} has fewer than {MIN_CLASS_ROWS} rows of a class")
    if problems:
        raise InvalidValueError("the training data failed validation: " + "; ".join(problems))
    return {
        "train_rows": len(train),
        "test_rows": len(test),
        "features": len(train.columns) - 1,
        "train_positive_share": float(train[TARGET].mean()),
    }


@step
def train(frame: pd.DataFrame, report: dict[str, Any]) -> Pipeline:
    """Fit a scaled logistic regression (``report``: only after validation passed)."""
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=MAX_ITER))
    return model.fit(frame.drop(columns=[TARGET]), frame[TARGET])


@step
def evaluate(model: Pipeline, test: pd.DataFrame) -> dict[str, float]:
    """Held-out AUC and accuracy."""
    x, y = test.drop(columns=[TARGET]), test[TARGET]
    proba = model.predict_proba(x)[:, 1]
    return {
        "test_auc": float(roc_auc_score(y, proba)),
        "test_accuracy": float(accuracy_score(y, proba >= 0.5)),
    }


def run_training_pipeline(
    ctx: Backends, features: FeatureData, seed: int
) -> TrainingPipelineResult:
    """Run the training pipeline on the feature store's rows; register the model it trains.

    A second call with the same features and seed takes every step from the cache: no
    training, and no new model version (the result names the version the first run made).
    """
    rows = pd.concat([features.data.train, features.data.test]).sort_index()
    digest = frame_digest(rows)

    @step
    def load_features(rows_digest: str, view: str, view_version: int) -> pd.DataFrame:
        """The training rows from the feature store (point-in-time correct), by digest."""
        if frame_digest(rows) != rows_digest:  # pragma: no cover - a guard, not a branch
            raise InvalidValueError("the feature rows changed while the pipeline ran")
        return rows

    @step
    def register_model(model: Pipeline, metrics: dict[str, float], test: pd.DataFrame) -> int:
        """Register the trained model as the next version; returns the version number."""
        version = register(
            model,
            MODEL_NAME,
            input_example=test.drop(columns=[TARGET]).iloc[:5],
            description="logistic regression on the breast-cancer data, by the demo pipeline",
            tags={"test_auc": round(metrics["test_auc"], 4), "pipeline": PIPELINE_NAME},
            store=ctx.store,
            artifacts=ctx.artifacts,
            settings=ctx.settings,
        )
        return version.version

    @pipeline(name=PIPELINE_NAME, experiment=DEMO_EXPERIMENT)
    def training(rows_digest: str, view: str, view_version: int, seed: int):  # type: ignore[no-untyped-def]
        frame = load_features(rows_digest, view, view_version)
        train_rows, test_rows = split(frame, TEST_SIZE, seed)
        report = validate(train_rows, test_rows)
        model = train(train_rows, report)
        metrics = evaluate(model, test_rows)
        return register_model(model, metrics, test_rows), metrics

    view = features.features[0].split(":", 1)[0] if features.features else ""
    result = training.run(
        rows_digest=digest,
        view=view,
        view_version=features.view_version,
        seed=seed,
        executor="inprocess",
        store=ctx.store,
        artifacts=ctx.artifacts,
        settings=ctx.settings,
    )
    version, metrics = result.output
    return TrainingPipelineResult(
        run_id=result.run_id,
        status=result.status,
        model_name=MODEL_NAME,
        model_version=int(version),
        metrics=dict(metrics),
        cache_hits=result.cache_hits,
        executed=result.executed,
        steps={key: s.state for key, s in result.steps.items()},
    )
