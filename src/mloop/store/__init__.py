"""The metadata store (paper component C7): runs, params, metrics, artifacts, lineage, models,
events, audit.

>>> from mloop.store import open_store
>>> store = open_store("sqlite:///.mloop/mloop.db")       # doctest: +SKIP
"""

from __future__ import annotations

from mloop.errors import ConfigError
from mloop.store._ids import new_id, now_ms
from mloop.store._migrate import SCHEMA_HEAD
from mloop.store._protocol import Store
from mloop.store._protocol_models import EventStore, FeatureRecords, ModelStore
from mloop.store._protocol_pipelines import (
    ArtifactRef,
    CacheEntry,
    PipelineRecords,
    StepEdge,
    StepRecord,
)
from mloop.store._protocol_schedules import ScheduleRecords, SlotRecord
from mloop.store._records import (
    RUN_STATUSES,
    ArtifactRecord,
    AuditEntry,
    Environment,
    Experiment,
    LineageEdge,
    MetricPoint,
    MetricRow,
    NewRun,
    RunRecord,
    RunStatus,
    from_ms,
    to_ms,
)
from mloop.store._records_models import (
    AliasChange,
    Delivery,
    DeliveryStatus,
    Event,
    FeatureDefinition,
    Materialization,
    ModelVersion,
    RegisteredModel,
    Webhook,
)
from mloop.store._sql import SqlStore
from mloop.store._validate import (
    check_alias,
    check_key,
    check_model_name,
    check_name,
    check_version,
    metric_step,
    metric_value,
    param_value,
    tag_value,
)

__all__ = [
    "RUN_STATUSES",
    "SCHEMA_HEAD",
    "AliasChange",
    "ArtifactRecord",
    "ArtifactRef",
    "AuditEntry",
    "CacheEntry",
    "Delivery",
    "DeliveryStatus",
    "Environment",
    "Event",
    "EventStore",
    "Experiment",
    "FeatureDefinition",
    "FeatureRecords",
    "LineageEdge",
    "Materialization",
    "MetricPoint",
    "MetricRow",
    "ModelStore",
    "ModelVersion",
    "NewRun",
    "PipelineRecords",
    "RegisteredModel",
    "RunRecord",
    "RunStatus",
    "ScheduleRecords",
    "SlotRecord",
    "SqlStore",
    "StepEdge",
    "StepRecord",
    "Store",
    "Webhook",
    "check_alias",
    "check_key",
    "check_model_name",
    "check_name",
    "check_version",
    "from_ms",
    "metric_step",
    "metric_value",
    "new_id",
    "now_ms",
    "open_store",
    "param_value",
    "tag_value",
    "to_ms",
]


def open_store(uri: str, *, busy_timeout: float = 60.0, create: bool = True) -> Store:
    """The metadata store at ``uri``: ``sqlite:///path.db`` or ``postgresql://user@host/db``.

    ``create=False`` opens only a store that exists (NotFoundError otherwise): for readers,
    which should not leave an empty store behind.
    """
    if uri.startswith(("http://", "https://")):
        raise ConfigError(
            f"tracking URI {uri!r} points at an mloop server, which this version of mloop "
            "cannot reach yet; use sqlite:///path.db or postgresql://user@host/db"
        )
    return SqlStore(uri, busy_timeout=busy_timeout, create=create)
