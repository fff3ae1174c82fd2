"""The feature store (paper component C4): definitions, point-in-time training data,
materialization into an online store, lookups, validation and statistics.

    from datetime import timedelta
    from mloop.features import Entity, FeatureStore, FeatureView, Field, FileSource

    customer = Entity("customer", join_keys=["customer_id"])
    stats = FeatureView(
        name="customer_stats",
        entities=[customer],
        source=FileSource("data/customer_stats.parquet"),
        schema=[Field("amount_7d", "float64"), Field("orders_7d", "int64")],
        ttl=timedelta(days=30),
    )

    store = FeatureStore()
    store.apply([customer, stats])
    training = store.get_historical_features(entity_df, ["customer_stats:amount_7d"])

See docs/features.md.
"""

from __future__ import annotations

from mloop.features._apply import Change
from mloop.features._checks import (
    Constraint,
    FeatureValidationError,
    ValidationReport,
    Violation,
)
from mloop.features._defs import (
    DTYPES,
    Entity,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    RequestSource,
    SqlSource,
    on_demand_feature_view,
)
from mloop.features._materialize import MaterializeResult
from mloop.features._stats import FeatureStats
from mloop.features._store import FeatureStore, OnlineFeatures

__all__ = [
    "DTYPES",
    "Change",
    "Constraint",
    "Entity",
    "FeatureStats",
    "FeatureStore",
    "FeatureValidationError",
    "FeatureView",
    "Field",
    "FileSource",
    "MaterializeResult",
    "OnDemandFeatureView",
    "OnlineFeatures",
    "RequestSource",
    "SqlSource",
    "ValidationReport",
    "Violation",
    "on_demand_feature_view",
]
