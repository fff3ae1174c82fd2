"""Records as JSON-ready dicts, for ``--json``: stable keys, ISO-8601 times, nothing dropped."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from mloop.store import Environment, LineageEdge, RunRecord


def dumps(value: Any) -> str:
    """Pretty JSON text; non-ASCII kept as is."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def run_json(run: RunRecord, experiment: str | None = None) -> dict[str, Any]:
    """A run with its params, tags and latest metrics."""
    duration = (run.end_time - run.start_time).total_seconds() if run.end_time else None
    return {
        "id": run.id,
        "name": run.name,
        "experiment_id": run.experiment_id,
        "experiment": experiment,
        "kind": run.kind,
        "status": run.status,
        "user": run.user,
        "start_time": iso(run.start_time),
        "end_time": iso(run.end_time),
        "duration_seconds": duration,
        "deleted_time": iso(run.deleted_time),
        "parent_run_id": run.parent_run_id,
        "git": {
            "commit": run.git_commit,
            "dirty": run.git_dirty,
            "branch": run.git_branch,
            "remote": run.git_remote,
        },
        "command": run.command,
        "environment_id": run.environment_id,
        "error": run.error,
        "params": dict(sorted(run.params.items())),
        "tags": dict(sorted(run.tags.items())),
        "metrics": dict(sorted(run.metrics.items())),
    }


def edge_json(edge: LineageEdge) -> dict[str, Any]:
    """One lineage edge with its artifact record."""
    artifact = edge.artifact
    return {
        "direction": edge.direction,
        "name": edge.name,
        "artifact": {
            "id": artifact.id,
            "digest": artifact.digest,
            "kind": artifact.kind,
            "size": artifact.size,
            "uri": artifact.uri,
            "created": iso(artifact.created),
            "meta": artifact.meta,
        },
    }


def environment_json(environment: Environment | None) -> dict[str, Any] | None:
    if environment is None:
        return None
    return {
        "python": environment.python,
        "platform": environment.platform,
        "packages": dict(sorted(environment.packages.items())),
    }
