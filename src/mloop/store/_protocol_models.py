"""The parts of the Store interface for the model registry and for events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from mloop.store._records_models import (
    AliasChange,
    Delivery,
    Event,
    FeatureDefinition,
    Materialization,
    ModelVersion,
    RegisteredModel,
    Webhook,
)

__all__ = ["EventStore", "FeatureRecords", "ModelStore"]


class ModelStore(Protocol):
    """Registered models, their versions, tags and aliases (``store.models``)."""

    def create_model(
        self, name: str, *, actor: str, description: str = "", tags: Mapping[str, Any] = ...
    ) -> RegisteredModel: ...
    def get_model(self, name: str) -> RegisteredModel: ...
    def list_models(self, *, name_like: str | None = None) -> list[RegisteredModel]: ...
    def update_model(self, name: str, *, description: str, actor: str) -> RegisteredModel: ...
    def set_model_tags(self, name: str, tags: Mapping[str, Any]) -> None: ...
    def delete_model_tag(self, name: str, key: str) -> None: ...
    def create_version(
        self,
        name: str,
        *,
        artifact_id: str,
        flavor: str,
        actor: str,
        run_id: str | None = None,
        description: str = "",
        tags: Mapping[str, Any] = ...,
    ) -> ModelVersion: ...
    def get_version(self, name: str, version: int) -> ModelVersion: ...
    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion: ...
    def list_versions(self, name: str) -> list[ModelVersion]: ...
    def versions_of_artifact(self, artifact_id: str) -> list[ModelVersion]: ...
    def versions_of_run(self, run_id: str) -> list[ModelVersion]: ...
    def set_version_tags(self, name: str, version: int, tags: Mapping[str, Any]) -> None: ...
    def update_version(
        self, name: str, version: int, *, description: str, actor: str
    ) -> ModelVersion: ...
    def set_alias(self, name: str, alias: str, version: int, *, actor: str) -> AliasChange: ...
    def delete_alias(self, name: str, alias: str, *, actor: str) -> AliasChange: ...


class EventStore(Protocol):
    """Events (an outbox written in the same transaction as the change) and webhooks."""

    def emit(self, kind: str, subject: str, payload: Mapping[str, Any], *, actor: str) -> Event: ...
    def list_events(
        self, *, kind: str | None = None, after_id: str | None = None, limit: int = 100
    ) -> list[Event]: ...
    def add_webhook(
        self, url: str, *, events: Sequence[str], actor: str, secret: str | None = None
    ) -> Webhook: ...
    def list_webhooks(self) -> list[Webhook]: ...
    def remove_webhook(self, webhook_id: str, *, actor: str) -> None: ...
    def claim_deliveries(self, *, limit: int = 50, lease_ms: int = 30_000) -> list[Delivery]: ...
    def finish_delivery(
        self,
        event_id: str,
        webhook_id: str,
        *,
        ok: bool,
        error: str | None = None,
        retry_at_ms: int | None = None,
    ) -> None: ...
    def list_deliveries(self, *, status: str | None = None, limit: int = 100) -> list[Delivery]: ...


class FeatureRecords(Protocol):
    """Feature definitions (versioned by content) and materializations (``store.features``)."""

    def put_definition(
        self, kind: str, name: str, spec: Mapping[str, Any], digest: str, *, actor: str
    ) -> tuple[FeatureDefinition, bool]: ...
    def get_definition(
        self, kind: str, name: str, version: int | None = None
    ) -> FeatureDefinition: ...
    def list_definitions(self, kind: str | None = None) -> list[FeatureDefinition]: ...
    def definition_history(self, kind: str, name: str) -> list[FeatureDefinition]: ...
    def start_materialization(
        self,
        view: str,
        view_version: int,
        online_store: str,
        start_ms: int | None,
        end_ms: int,
        *,
        actor: str,
    ) -> str: ...
    def finish_materialization(
        self,
        materialization_id: str,
        *,
        status: str,
        rows: int = 0,
        stats: Mapping[str, Any] | None = None,
        validation: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None: ...
    def last_materialization(self, view: str, online_store: str) -> Materialization | None: ...
    def list_materializations(
        self, *, view: str | None = None, limit: int = 100
    ) -> list[Materialization]: ...
