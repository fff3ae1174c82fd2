"""The interface every metadata store implements (SqlStore now; RestStore with the server)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from mloop.store._protocol_models import EventStore, FeatureRecords, ModelStore
from mloop.store._protocol_pipelines import PipelineRecords
from mloop.store._protocol_schedules import ScheduleRecords
from mloop.store._records import (
    ArtifactRecord,
    AuditEntry,
    Direction,
    Environment,
    Experiment,
    LineageEdge,
    MetricPoint,
    MetricRow,
    NewRun,
    RunRecord,
    RunStatus,
)

__all__ = ["Store"]


class Store(Protocol):
    """What tracking, registry, features and the rest record and read. One suite tests all."""

    uri: str

    @property
    def models(self) -> ModelStore:
        """Registered models, versions, tags and aliases."""
        ...

    @property
    def events(self) -> EventStore:
        """Events and webhooks."""
        ...

    @property
    def features(self) -> FeatureRecords:
        """Feature definitions and materializations."""
        ...

    @property
    def pipelines(self) -> PipelineRecords:
        """The step cache of pipeline runs."""
        ...

    @property
    def schedules(self) -> ScheduleRecords:
        """Schedule slots claimed by schedulers, and event triggers' read positions."""
        ...

    # experiments
    def get_or_create_experiment(self, name: str) -> Experiment: ...
    def get_experiment(self, name_or_id: str) -> Experiment: ...
    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]: ...

    # runs
    def put_environment(self, environment: Environment) -> str: ...
    def get_environment(self, environment_id: str) -> Environment: ...
    def create_run(
        self,
        run: NewRun,
        *,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> RunRecord: ...
    def get_run(self, run_id: str) -> RunRecord: ...
    def end_run(
        self,
        run_id: str,
        status: RunStatus,
        *,
        error: str | None = None,
        metrics: Sequence[MetricRow] = (),
    ) -> None: ...
    def delete_run(self, run_id: str, *, actor: str) -> None: ...
    def restore_run(self, run_id: str, *, actor: str) -> None: ...
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None: ...
    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None: ...
    def log_metrics(self, rows: Sequence[MetricRow]) -> None: ...
    def get_metric_history(self, run_id: str, key: str) -> list[MetricPoint]: ...
    def search_runs(
        self,
        *,
        experiment_ids: Sequence[str] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        include_deleted: bool = False,
    ) -> list[RunRecord]: ...

    # artifacts and lineage
    def record_artifact(
        self, *, digest: str, kind: str, size: int, uri: str, meta: Mapping[str, Any]
    ) -> ArtifactRecord: ...
    def link_artifact(
        self, run_id: str, artifact_id: str, direction: Direction, name: str
    ) -> None: ...
    def list_lineage(self, run_id: str) -> list[LineageEdge]: ...
    def runs_of_artifact(self, artifact_id: str) -> list[tuple[str, Direction, str]]: ...

    # audit log
    def audit(
        self,
        *,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        details: Mapping[str, Any] | None = None,
    ) -> None: ...
    def list_audit(self, *, object_id: str | None = None, limit: int = 100) -> list[AuditEntry]: ...

    # garbage collection
    def purge_runs(self, *, deleted_before: datetime, dry_run: bool = False) -> list[str]: ...
    def unreferenced_artifacts(
        self, *, created_before: datetime | None = None
    ) -> list[ArtifactRecord]: ...
    def delete_artifact_records(self, artifact_ids: Sequence[str]) -> None: ...
    def referenced_digests(self) -> set[str]: ...

    def close(self) -> None: ...
