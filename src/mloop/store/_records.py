"""The typed records the metadata store returns and accepts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = [
    "RUN_STATUSES",
    "ArtifactRecord",
    "AuditEntry",
    "Environment",
    "Experiment",
    "LineageEdge",
    "MetricPoint",
    "MetricRow",
    "NewRun",
    "RunRecord",
    "RunStatus",
    "from_ms",
    "to_ms",
]

RunStatus = Literal["running", "finished", "failed", "killed"]
RUN_STATUSES: tuple[RunStatus, ...] = ("running", "finished", "failed", "killed")
Direction = Literal["input", "output"]

# (run_id, key, value, step, timestamp_ms): the shape the metric writer batches.
MetricRow = tuple[str, str, float, int, int]


def from_ms(ms: int | None) -> datetime | None:
    """Milliseconds since the epoch → an aware UTC datetime (None stays None)."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def to_ms(when: datetime) -> int:
    """An aware datetime → milliseconds since the epoch; naive datetimes are taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


@dataclass(frozen=True)
class Experiment:
    id: str
    name: str
    description: str | None
    created: datetime
    deleted: datetime | None = None


@dataclass(frozen=True)
class Environment:
    """Where a run ran: Python, platform and installed packages (deduplicated by content)."""

    python: str
    platform: str
    packages: dict[str, str]


@dataclass(frozen=True)
class NewRun:
    """What tracking knows when it starts a run."""

    experiment_id: str
    name: str
    user: str
    kind: str = "run"
    parent_run_id: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    git_branch: str | None = None
    git_remote: str | None = None
    command: str | None = None
    environment_id: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """A run as stored, with its params, tags and the latest value of each metric."""

    id: str
    experiment_id: str
    name: str
    kind: str
    status: RunStatus
    start_time: datetime
    end_time: datetime | None
    user: str
    parent_run_id: str | None
    git_commit: str | None
    git_dirty: bool | None
    git_branch: str | None
    git_remote: str | None
    command: str | None
    environment_id: str | None
    error: str | None
    deleted_time: datetime | None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricPoint:
    key: str
    value: float
    step: int
    timestamp: datetime


@dataclass(frozen=True)
class ArtifactRecord:
    """A stored object, identified by its sha256 digest and kind (file, dataset, model, ...)."""

    id: str
    digest: str
    kind: str
    size: int
    uri: str
    meta: dict[str, Any]
    created: datetime


@dataclass(frozen=True)
class LineageEdge:
    """run → artifact (output) or artifact → run (input), under a name within the run."""

    run_id: str
    artifact: ArtifactRecord
    direction: Direction
    name: str


@dataclass(frozen=True)
class AuditEntry:
    id: str
    time: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    details: dict[str, Any]
