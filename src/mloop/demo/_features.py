"""The demo's feature store: patient measurements as a feature view, labels as entity rows.

Each patient of the breast-cancer set gets two measurement rows: a rough screening 30 days
before diagnosis (the true values with 15% noise) and the diagnostic measurement a day before
it. Training rows are the diagnoses (patient, time, label); the point-in-time join gives each
the measurement it could have seen, the diagnostic one. After training, the latest values are
materialized into the online store, and the served model scores patients looked up there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from mloop.backends import Backends
from mloop.demo._data import TARGET, DemoData
from mloop.features import Entity, FeatureStore, FeatureView, Field, FileSource

VIEW = "tumor_measurements"
DIAGNOSIS = datetime(2026, 10, 1, tzinfo=UTC)
SCREENING_NOISE = 0.15


@dataclass(frozen=True)
class FeatureData:
    """The demo data as it came out of the feature store, and how to reach it again."""

    data: DemoData
    store: FeatureStore
    features: list[str]  # "view:feature" references
    view_version: int


def column_name(name: str) -> str:
    """``mean radius`` → ``mean_radius``: feature names are identifiers."""
    return re.sub(r"\W+", "_", name.strip()).strip("_")


def build(data: DemoData, ctx: Backends, seed: int) -> FeatureData:
    """Write the measurements, apply the definitions and fetch training and test rows."""
    folder = ctx.settings.home / ".mloop" / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.concat([data.train, data.test]).sort_index()
    measured = frame.drop(columns=[TARGET]).rename(columns=column_name)
    names = list(measured.columns)
    rng = np.random.default_rng(seed)
    diagnostic = measured.assign(
        patient_id=frame.index.to_numpy(), event_timestamp=DIAGNOSIS - timedelta(days=1)
    )
    noise = rng.normal(1.0, SCREENING_NOISE, size=measured.shape)
    screening = (measured * noise).assign(
        patient_id=frame.index.to_numpy(), event_timestamp=DIAGNOSIS - timedelta(days=30)
    )
    source = folder / "measurements.parquet"
    pd.concat([screening, diagnostic], ignore_index=True).to_parquet(source, index=False)

    patient = Entity("patient", join_keys=["patient_id"], description="a patient of the study")
    view = FeatureView(
        name=VIEW,
        entities=[patient],
        source=FileSource(str(source)),
        schema=[Field(name, "float64") for name in names],
        ttl=timedelta(days=90),
        description="tumour measurements of scikit-learn's breast-cancer data set",
        owner="mloop demo",
    )
    store = FeatureStore(store=ctx.store, artifacts=ctx.artifacts, settings=ctx.settings)
    changes = store.apply([patient, view])
    version = next(c for c in changes if c.name == VIEW)
    references = [f"{VIEW}:{name}" for name in names]

    def fetch(part: pd.DataFrame) -> pd.DataFrame:
        entity_df = pd.DataFrame(
            {
                "patient_id": part.index.to_numpy(),
                "event_timestamp": DIAGNOSIS,
                TARGET: part[TARGET].to_numpy(),
            },
            index=part.index,
        )
        rows = store.get_historical_features(entity_df, references)
        lineage = rows.attrs
        result = rows.drop(columns=["patient_id", "event_timestamp"])[[*names, TARGET]]
        result.attrs = lineage
        return result

    fetched = DemoData(train=fetch(data.train), test=fetch(data.test))
    return FeatureData(fetched, store, references, version.new_version or version.old_version or 1)


def materialize_and_look_up(features: FeatureData, patients: list[int]) -> pd.DataFrame:
    """Materialize the latest measurements and read ``patients`` back from the online store."""
    features.store.materialize(None, DIAGNOSIS)
    found = features.store.get_online_features(
        features.features, [{"patient_id": patient} for patient in patients]
    )
    return found.to_frame()
