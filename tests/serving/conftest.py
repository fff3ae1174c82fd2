"""Fixtures of the model-server tests: a project with a model trained from the feature store.

The project is built once per session (a real feature store, a real training run with lineage,
three registered versions) and copied into each test's own project folder, so every test gets
a fresh metadata database, online store and model cache in a fraction of a second.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

MODEL = "cancer"
VIEW = "tumor"
FEATURES = ["mean_radius", "mean_texture", "mean_smoothness", "mean_concavity"]
DIAGNOSIS = datetime(2026, 10, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Project:
    home: Path
    frame: pd.DataFrame  # patient_id, the features and target, every patient
    online: list[int]  # patients materialized into the online store


def _build(home: Path) -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    from mloop.backends import backends
    from mloop.config import Settings
    from mloop.features import Entity, FeatureStore, FeatureView, Field, FileSource
    from mloop.registry import set_alias
    from mloop.tracking import start_run

    settings = Settings(home=home)
    ctx = backends(settings=settings)
    raw = load_breast_cancer(as_frame=True).frame
    frame = pd.DataFrame(
        {name: raw[name.replace("_", " ")].astype("float64") for name in FEATURES}
    ).assign(patient_id=range(len(raw)), target=raw["target"].to_numpy())
    source = home / "measurements.parquet"
    frame.drop(columns=["target"]).assign(event_timestamp=DIAGNOSIS - timedelta(days=1)).to_parquet(
        source, index=False
    )
    patient = Entity("patient", join_keys=["patient_id"])
    view = FeatureView(
        name=VIEW,
        entities=[patient],
        source=FileSource(str(source)),
        schema=[Field(name, "float64") for name in FEATURES],
        ttl=timedelta(days=90),
    )
    features = FeatureStore(store=ctx.store, artifacts=ctx.artifacts, settings=settings)
    features.apply([patient, view])
    entity_df = pd.DataFrame(
        {"patient_id": frame["patient_id"], "event_timestamp": DIAGNOSIS, "target": frame["target"]}
    )
    training = features.get_historical_features(entity_df, [f"{VIEW}:{f}" for f in FEATURES])
    x = training[FEATURES]
    y = training["target"]
    for c in (1.0, 0.01, 100.0):  # versions 1, 2, 3
        with start_run(
            experiment="serving-tests", store=ctx.store, artifacts=ctx.artifacts, settings=settings
        ) as run:
            run.log_dataset(training, name="cancer")
            model = LogisticRegression(C=c, max_iter=2000).fit(x, y)
            run.log_model(model, name=MODEL, input_example=x.iloc[:3])
    set_alias(MODEL, "production", 1, store=ctx.store, settings=settings)
    set_alias(MODEL, "challenger", 2, store=ctx.store, settings=settings)
    features.materialize(None, DIAGNOSIS)
    features.close()
    return frame


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    home = tmp_path_factory.mktemp("serving-template")
    return home, _build(home)


@pytest.fixture
def project(template: tuple[Path, pd.DataFrame], isolated_settings: Path) -> Project:
    """A copy of the template project as this test's project folder (MLOOP_HOME)."""
    home, frame = template
    shutil.copytree(home / ".mloop", isolated_settings / ".mloop", dirs_exist_ok=True)
    return Project(isolated_settings, frame, frame["patient_id"].tolist())
