"""run_demo: train and evaluate a classifier as one tracked run, and say what was recorded."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from mloop.artifacts import ArtifactStore
from mloop.backends import Backends, backends
from mloop.config import Settings
from mloop.demo._data import TARGET, TEST_SIZE, DemoData, load_data
from mloop.demo._features import VIEW, FeatureData, materialize_and_look_up
from mloop.demo._features import build as build_features
from mloop.demo._limits import DATASET_NAME, DEMO_EXPERIMENT, MODEL_NAME, PRODUCTION
from mloop.demo._pipeline import TrainingPipelineResult, run_training_pipeline
from mloop.demo._report import Evaluation, write_report
from mloop.demo._serve import ServedTraffic, serve_and_send_traffic
from mloop.registry import set_alias
from mloop.store import LineageEdge, Store
from mloop.tracking import Run, start_run

RUN_NAME = "breast-cancer-logreg"
CHALLENGER = "challenger"
MODEL = "logistic regression"
C = 1.0
MAX_ITER = 1000
FOLDS = 5
CURVE_FRACTIONS = (0.1, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class DemoResult:
    """What the demo run recorded, for the CLI to show."""

    run_id: str
    run_name: str
    experiment: str
    model: str
    rows: int
    train_rows: int
    test_rows: int
    seconds: float
    tracking_uri: str
    artifact_uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    steps: dict[str, int] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    lineage: list[LineageEdge] = field(default_factory=list)
    model_name: str = MODEL_NAME
    model_version: int = 0
    previous_production: int | None = None
    feature_view: str = ""
    feature_view_version: int = 0
    online_rows: int = 0  # entities materialized into the online store
    online_store: str = ""
    served: list[tuple[int, int, float]] = field(default_factory=list)  # patient, label, proba
    pipeline: TrainingPipelineResult | None = None  # the training pipeline's run (challenger)
    traffic: ServedTraffic | None = None  # what the model server answered, and the log


def run_demo(
    *,
    rows: int | None = None,
    seed: int = 0,
    store: Store | None = None,
    artifacts: ArtifactStore | None = None,
    settings: Settings | None = None,
) -> DemoResult:
    """Train a classifier on the bundled breast-cancer data as a run of experiment ``demo``.

    The run records its params, a 5-fold cross-validation (``fold_auc``/``fold_accuracy`` per
    fold, ``cv_auc`` their mean), a learning curve (``learning_curve_auc``, one step per
    training-set size), the held-out scores (``test_*``), the train and test sets as input
    datasets, the test predictions as an output dataset, and a Markdown report.
    """
    started = time.perf_counter()
    ctx = backends(store, artifacts, settings)
    features = build_features(load_data(rows, seed=seed), ctx, seed)
    data = features.data
    params: dict[str, Any] = {
        "model": "logistic_regression",
        "C": C,
        "max_iter": MAX_ITER,
        "cv_folds": FOLDS,
        "test_size": TEST_SIZE,
        "rows": data.rows,
        "seed": seed,
    }
    with start_run(
        experiment=DEMO_EXPERIMENT,
        name=RUN_NAME,
        params=params,
        tags={"mloop.demo": "true", "dataset": DATASET_NAME},
        parent=None,
        store=ctx.store,
        artifacts=ctx.artifacts,
        settings=ctx.settings,
    ) as run:
        version, previous = _train_and_log(run, data, seed, ctx)
    # The same training as a pipeline: its model becomes the challenger; a second demo finds
    # every step in the step cache and trains nothing.
    trained = run_training_pipeline(ctx, features, seed)
    set_alias(MODEL_NAME, CHALLENGER, trained.model_version, store=ctx.store, settings=ctx.settings)
    served = _serve_from_online_store(features, data, ctx)
    # Serve production over HTTP: JSON rows, and entity keys whose features the server looks
    # up in the online store itself; every answer lands in the prediction log.
    patients = [int(p) for p in data.test.index[:5]]
    traffic = serve_and_send_traffic(
        ctx,
        f"{MODEL_NAME}@{PRODUCTION}",
        patients=patients,
        records=[
            {str(k): v for k, v in row.items()}
            for row in data.test.drop(columns=[TARGET]).iloc[:5].to_dict("records")
        ],
    )
    info = run.info()
    return DemoResult(
        run_id=run.id,
        run_name=run.name,
        experiment=DEMO_EXPERIMENT,
        model=MODEL,
        rows=data.rows,
        train_rows=len(data.train),
        test_rows=len(data.test),
        seconds=time.perf_counter() - started,
        tracking_uri=ctx.store.uri,
        artifact_uri=ctx.artifacts.uri,
        metrics=dict(sorted(info.metrics.items())),
        steps={key: len(run.metric_history(key)) for key in sorted(info.metrics)},
        params=dict(sorted(info.params.items())),
        lineage=run.lineage(),
        model_version=version,
        previous_production=previous,
        feature_view=VIEW,
        feature_view_version=features.view_version,
        online_rows=data.rows,
        online_store=features.store.online_uri,
        served=served,
        pipeline=trained,
        traffic=traffic,
    )


def _model() -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=MAX_ITER))


def _split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    return frame.drop(columns=[TARGET]), frame[TARGET]


def _scores(model: Pipeline, x: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    proba = model.predict_proba(x)[:, 1]
    return {
        "auc": float(roc_auc_score(y, proba)),
        "accuracy": float(accuracy_score(y, proba >= 0.5)),
        "log_loss": float(log_loss(y, proba, labels=[0, 1])),
    }


def _train_and_log(run: Run, data: DemoData, seed: int, ctx: Backends) -> tuple[int, int | None]:
    """Train, evaluate and log; register the model and make it ``production``.

    Returns the new version and the version ``production`` pointed at before.
    """
    run.log_dataset(data.train, name=DATASET_NAME, role="train")
    run.log_dataset(data.test, name=DATASET_NAME, role="test")
    x_train, y_train = _split(data.train)
    x_test, y_test = _split(data.test)

    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    fold_aucs = []
    for fold, (fit_rows, val_rows) in enumerate(folds.split(x_train, y_train)):
        model = _model().fit(x_train.iloc[fit_rows], y_train.iloc[fit_rows])
        scores = _scores(model, x_train.iloc[val_rows], y_train.iloc[val_rows])
        run.log_metrics({"fold_auc": scores["auc"], "fold_accuracy": scores["accuracy"]}, step=fold)
        fold_aucs.append(scores["auc"])
    run.log_metric("cv_auc", sum(fold_aucs) / len(fold_aucs))

    for size in _curve_sizes(len(data.train)):
        subset = data.train
        if size < len(data.train):
            subset, _ = train_test_split(
                data.train, train_size=size, stratify=data.train[TARGET], random_state=seed
            )
        model = _model().fit(*_split(subset))
        run.log_metric("learning_curve_auc", _scores(model, x_test, y_test)["auc"], step=size)

    model = _model().fit(x_train, y_train)
    test = _scores(model, x_test, y_test)
    run.log_metrics({f"test_{name}": value for name, value in test.items()})

    proba = model.predict_proba(x_test)[:, 1]
    predictions = pd.DataFrame(
        {"row": data.test.index, TARGET: y_test.to_numpy(), "proba": proba, "label": proba >= 0.5}
    )
    run.log_dataset(
        predictions, name=f"{DATASET_NAME}_predictions", role="predictions", direction="output"
    )

    evaluation = Evaluation(
        model=MODEL,
        rows=data.rows,
        train_rows=len(data.train),
        test_rows=len(data.test),
        fold_aucs=fold_aucs,
        test=test,
        y_true=y_test.tolist(),
        y_pred=[int(p) for p in proba >= 0.5],
    )
    with tempfile.TemporaryDirectory(prefix="mloop-demo-") as folder:
        report = write_report(Path(folder) / "report.md", evaluation)
        run.log_artifact(report)

    logged = run.log_model(
        model,
        name=MODEL_NAME,
        input_example=x_test.iloc[:5],
        description=f"{MODEL} on the breast-cancer data, trained by mloop demo",
        tags={"test_auc": round(test["auc"], 4)},
    )
    assert logged.version is not None
    change = set_alias(
        MODEL_NAME, PRODUCTION, logged.version.version, store=ctx.store, settings=ctx.settings
    )
    return logged.version.version, change.previous_version


def _serve_from_online_store(
    features: FeatureData, data: DemoData, ctx: Backends
) -> list[tuple[int, int, float]]:
    """Materialize, look three test patients up online, and score them with production."""
    from mloop.registry import load_model

    patients = [int(p) for p in data.test.index[:3]]
    online = materialize_and_look_up(features, patients)
    model = load_model(
        f"{MODEL_NAME}@{PRODUCTION}",
        store=ctx.store,
        artifacts=ctx.artifacts,
        settings=ctx.settings,
    )
    proba = model.predict_proba(online.drop(columns=["patient_id"]))[:, 1]
    labels = data.test.loc[patients, TARGET].tolist()
    return [(p, int(y), float(q)) for p, y, q in zip(patients, labels, proba, strict=True)]


def _curve_sizes(train_rows: int) -> list[int]:
    """Training-set sizes for the learning curve: a fraction of the rows, at least 20 each."""
    sizes = sorted({max(20, round(train_rows * f)) for f in CURVE_FRACTIONS})
    return [s for s in sizes if s <= train_rows]
