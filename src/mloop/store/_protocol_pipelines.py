"""``store.pipelines``: what pipeline runs record beyond runs themselves (the step cache).

A pipeline run records its steps in few transactions: the runner collects finished steps as
:class:`StepRecord` values and writes them in batches with :meth:`PipelineRecords.record_steps`
(runs, params, tags, artifacts, lineage edges and cache entries together), instead of one
transaction per run, param and edge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from mloop.store._records import Direction, RunStatus

__all__ = ["ArtifactRef", "CacheEntry", "PipelineRecords", "StepEdge", "StepRecord"]


@dataclass(frozen=True)
class ArtifactRef:
    """An artifact as a step record names it: by (digest, kind), created on first sight, or
    by ``id`` when it is known to exist."""

    digest: str
    kind: str
    size: int
    uri: str
    meta: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class StepEdge:
    """A lineage edge of a step run: it read (input) or wrote (output) ``artifact``."""

    direction: Direction
    name: str
    artifact: ArtifactRef


@dataclass(frozen=True)
class StepRecord:
    """One step run, complete: written as a child run of ``parent_run_id``."""

    id: str
    experiment_id: str
    parent_run_id: str
    name: str
    user: str
    status: RunStatus
    start_ms: int
    end_ms: int | None
    error: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    git_branch: str | None = None
    git_remote: str | None = None
    command: str | None = None
    environment_id: str | None = None
    kind: Literal["step"] = "step"
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    edges: Sequence[StepEdge] = ()


@dataclass(frozen=True)
class CacheEntry:
    """A successful step's outputs under the key of its code, parameters and inputs.

    ``outputs`` is a JSON list, one object per output: how to load it again (``codec``,
    ``digest``, ``kind`` and, for small JSON values, the value itself under ``value``).
    """

    cache_key: str
    pipeline: str
    step: str
    run_id: str
    outputs: list[dict[str, Any]]
    created_ms: int = 0


class PipelineRecords(Protocol):
    """The step cache of pipeline runs, and batched writes of step runs."""

    def record_steps(self, steps: Sequence[StepRecord], cache: Sequence[CacheEntry] = ()) -> None:
        """Write step runs (with params, tags, artifacts, lineage) and cache entries in one
        transaction; a cache entry with an existing key is replaced."""
        ...

    def lookup(self, cache_keys: Sequence[str]) -> dict[str, CacheEntry]:
        """The cache entries under these keys whose step run still exists (not deleted)."""
        ...

    def recent(
        self,
        *,
        experiment_id: str,
        pipeline: str,
        params: str | None = None,
        run_id: str | None = None,
    ) -> dict[str, CacheEntry]:
        """The cache entries that the steps of one pipeline run made or used, by key: of
        ``run_id``, else of the pipeline's latest finished run in the experiment, preferring
        one with the same ``params`` (its ``mloop.pipeline.params`` tag)."""
        ...
