"""Records of the model registry and of events, as the store returns them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

DeliveryStatus = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True)
class RegisteredModel:
    """A named model: its versions are numbered 1, 2, 3 ...; aliases name some of them."""

    id: str
    name: str
    description: str
    created: datetime
    updated: datetime
    created_by: str
    latest_version: int | None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)  # alias -> version number


@dataclass(frozen=True)
class ModelVersion:
    """One version of a registered model: a model package artifact, and where it came from."""

    id: str
    model_id: str
    name: str
    version: int
    artifact_id: str
    digest: str
    run_id: str | None
    flavor: str
    description: str
    created: datetime
    created_by: str
    meta: dict[str, Any]  # the package's manifest summary (signature, requirements, ...)
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """``name/version``, the way the CLI and ``models:/`` URIs name it."""
        return f"{self.name}/{self.version}"


@dataclass(frozen=True)
class AliasChange:
    """What moving an alias did: the version it points at now and the one before, if any."""

    name: str
    alias: str
    version: int | None
    previous_version: int | None


@dataclass(frozen=True)
class Event:
    """Something happened that other systems may react to (``model_version.created``, ...)."""

    id: str
    kind: str
    subject: str
    actor: str
    payload: dict[str, Any]
    created: datetime


@dataclass(frozen=True)
class Webhook:
    """An HTTP endpoint that receives events whose kind matches one of ``events`` (globs)."""

    id: str
    url: str
    events: tuple[str, ...]
    has_secret: bool
    active: bool
    created: datetime
    created_by: str


@dataclass(frozen=True)
class Delivery:
    """One event on its way to one webhook."""

    event: Event
    webhook_id: str
    url: str
    secret: str | None = field(repr=False)
    status: DeliveryStatus
    attempts: int
    next_attempt: datetime
    last_error: str | None
    delivered: datetime | None


@dataclass(frozen=True)
class FeatureDefinition:
    """One version of an entity, feature view or on-demand feature view definition."""

    id: str
    kind: str
    name: str
    version: int
    digest: str  # sha256 of the canonical spec
    artifact_id: str  # the spec as an artifact, for lineage edges
    spec: dict[str, Any]
    created: datetime
    created_by: str


@dataclass(frozen=True)
class Materialization:
    """One write of a feature view's latest values into an online store."""

    id: str
    view: str
    view_version: int
    online_store: str
    start: datetime | None
    end: datetime
    status: str  # running | finished | failed
    rows: int
    stats: dict[str, Any]
    validation: dict[str, Any]
    error: str | None
    created: datetime
    finished: datetime | None
    created_by: str
