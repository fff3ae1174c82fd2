"""The step cache and batched step runs in SQL (``store.pipelines``).

Every statement here is an ``executemany`` over the whole batch, so writing a hundred finished
steps costs a handful of statements in one transaction, not a transaction per step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mloop.errors import InvalidValueError
from mloop.store import _schema as t
from mloop.store._ids import new_id
from mloop.store._protocol_pipelines import ArtifactRef, CacheEntry, StepRecord
from mloop.store._validate import check_key, check_name

if TYPE_CHECKING:
    from mloop.store._sql import SqlStore

__all__ = ["SqlPipelines"]

_CHUNK = 900
_DIGEST = re.compile(r"[0-9a-f]{64}")
_a, _c, _r = t.artifacts.c, t.step_cache.c, t.runs.c
_LOOKUP = sa.select(t.step_cache).where(_c.cache_key.in_(sa.bindparam("keys", expanding=True)))
_ARTIFACTS = sa.select(_a.id, _a.digest, _a.kind).where(
    _a.digest.in_(sa.bindparam("digests", expanding=True))
)
_RUNS = sa.select(_r.id, _r.status, _r.deleted_ms).where(
    _r.id.in_(sa.bindparam("ids", expanding=True))
)
# coalesce(): keeps SQLite on the (experiment_id, start_ms) index instead of the one on
# deleted_ms, which would visit every live run.
_LATEST = (
    sa.select(_r.id)
    .where(
        _r.experiment_id == sa.bindparam("experiment_id"),
        _r.kind == "pipeline",
        _r.name == sa.bindparam("pipeline"),
        _r.status == "finished",
        sa.func.coalesce(_r.deleted_ms, 0) == 0,
    )
    .order_by(_r.start_ms.desc())
    .limit(1)
)
_SAME_PARAMS = _LATEST.where(
    sa.exists().where(
        t.tags.c.run_id == _r.id,
        t.tags.c.key == "mloop.pipeline.params",
        t.tags.c.value == sa.bindparam("params"),
    )
)
_OF_RUN = sa.select(t.step_cache).where(
    _c.cache_key.in_(
        sa.select(t.tags.c.value).where(
            t.tags.c.run_id.in_(sa.select(_r.id).where(_r.parent_run_id == sa.bindparam("parent"))),
            t.tags.c.key == "mloop.cache.key",
        )
    )
)
_RUN_COLUMNS = (
    "id",
    "experiment_id",
    "name",
    "kind",
    "status",
    "start_ms",
    "end_ms",
    "user",
    "parent_run_id",
    "git_commit",
    "git_dirty",
    "git_branch",
    "git_remote",
    "command",
    "environment_id",
    "error",
)


class SqlPipelines:
    """``store.pipelines`` of a SqlStore."""

    def __init__(self, sql: SqlStore) -> None:
        self._sql = sql
        upsert = sql._insert(t.step_cache)
        self._cache_upsert = upsert.on_conflict_do_update(
            index_elements=["cache_key"],
            set_={
                "pipeline": upsert.excluded.pipeline,
                "step": upsert.excluded.step,
                "run_id": upsert.excluded.run_id,
                "outputs": upsert.excluded.outputs,
                "created_ms": upsert.excluded.created_ms,
            },
        )
        self._artifact_insert = sql._insert(t.artifacts).on_conflict_do_nothing(
            index_elements=["digest", "kind"]
        )
        mark = "?" if sql._engine.dialect.paramstyle == "qmark" else "%s"

        def insert(table: str, columns: Sequence[str]) -> str:
            names = ", ".join(f'"{c}"' for c in columns)
            return f"INSERT INTO {table} ({names}) VALUES ({', '.join([mark] * len(columns))})"

        self._runs_sql = insert("runs", _RUN_COLUMNS)
        self._params_sql = insert("params", ("run_id", "key", "value"))
        self._tags_sql = insert("tags", ("run_id", "key", "value"))
        self._lineage_sql = insert(
            "lineage", ("run_id", "artifact_id", "direction", "name", "created_ms")
        )
        self._checked_keys: set[str] = set()

    def record_steps(self, steps: Sequence[StepRecord], cache: Sequence[CacheEntry] = ()) -> None:
        """Write step runs (with params, tags, artifacts, lineage) and cache entries in one
        transaction; a cache entry with an existing key is replaced."""
        for step in steps:
            self._check(step)
        if not steps and not cache:
            return
        now = self._sql._clock()
        artifacts: dict[tuple[str, str], ArtifactRef] = {}
        for step in steps:
            for edge in step.edges:
                artifacts.setdefault((edge.artifact.digest, edge.artifact.kind), edge.artifact)
        for entry in cache:
            for output in entry.outputs:
                if output.get("kind") and output.get("digest") and output.get("codec") != "model":
                    key = (output["digest"], output["kind"])
                    if key not in artifacts:
                        artifacts[key] = ArtifactRef(
                            output["digest"], output["kind"], int(output.get("size", 0)), ""
                        )
        # Plain tuples to the driver's executemany: SQLAlchemy's per-row parameter processing
        # costs more than the inserts themselves on long pipelines (as for metrics).
        runs = [tuple(getattr(step, column) for column in _RUN_COLUMNS) for step in steps]
        params = [(s.id, k, v) for s in steps for k, v in s.params.items()]
        tags = [(s.id, k, v) for s in steps for k, v in s.tags.items()]

        def action(conn: Connection) -> None:
            ids = self._artifact_ids(conn, artifacts, now)
            if runs:
                conn.exec_driver_sql(self._runs_sql, runs)
            if params:
                conn.exec_driver_sql(self._params_sql, params)
            if tags:
                conn.exec_driver_sql(self._tags_sql, tags)
            edges = [
                (s.id, ids[(e.artifact.digest, e.artifact.kind)], e.direction, e.name, now)
                for s in steps
                for e in s.edges
            ]
            if edges:
                conn.exec_driver_sql(self._lineage_sql, edges)
            if cache:
                conn.execute(
                    self._cache_upsert,
                    [
                        {
                            "cache_key": entry.cache_key,
                            "pipeline": entry.pipeline,
                            "step": entry.step,
                            "run_id": entry.run_id,
                            "outputs": [_with_id(o, ids) for o in entry.outputs],
                            "created_ms": entry.created_ms or now,
                        }
                        for entry in cache
                    ],
                )

        self._sql._write("record pipeline steps", action)

    def _check(self, step: StepRecord) -> None:
        check_name(step.name, "step name")
        if step.status == "running" and step.end_ms is not None:
            raise InvalidValueError(f"step run {step.id} is running but has an end time")
        for key in (*step.params, *step.tags):
            if key not in self._checked_keys:
                check_key(key, "step param or tag name")
                if len(self._checked_keys) < 10_000:
                    self._checked_keys.add(key)
        for edge in step.edges:
            if edge.direction not in ("input", "output"):
                raise InvalidValueError(
                    f"lineage direction must be 'input' or 'output', not {edge.direction!r}"
                )
            if edge.artifact.id is None and not _DIGEST.fullmatch(edge.artifact.digest):
                raise InvalidValueError(
                    f"artifact digest {edge.artifact.digest!r} of step {step.name!r} is not a "
                    "sha256 (64 lowercase hex characters)"
                )

    def _artifact_ids(
        self, conn: Connection, artifacts: dict[tuple[str, str], ArtifactRef], now: int
    ) -> dict[tuple[str, str], str]:
        """Ids of the artifact records for ``artifacts``, inserting the new ones."""
        found = {key: ref.id for key, ref in artifacts.items() if ref.id is not None}
        new = {key: ref for key, ref in artifacts.items() if ref.id is None}
        if not new:
            return found
        conn.execute(
            self._artifact_insert,
            [
                {
                    "id": new_id(),
                    "digest": ref.digest,
                    "kind": ref.kind,
                    "size": ref.size,
                    "uri": ref.uri,
                    "meta": dict(ref.meta),
                    "created_ms": now,
                }
                for ref in new.values()
            ],
        )
        digests = sorted({digest for digest, _ in new})
        for start in range(0, len(digests), _CHUNK):
            rows = conn.execute(_ARTIFACTS, {"digests": digests[start : start + _CHUNK]})
            for row in rows:
                found[(row.digest, row.kind)] = row.id
        return found

    def lookup(self, cache_keys: Sequence[str]) -> dict[str, CacheEntry]:
        """The cache entries under these keys whose step run finished and is not deleted."""
        keys = list(dict.fromkeys(cache_keys))
        if not keys:
            return {}

        def action(conn: Connection) -> dict[str, CacheEntry]:
            found: dict[str, CacheEntry] = {}
            for start in range(0, len(keys), _CHUNK):
                rows = conn.execute(_LOOKUP, {"keys": keys[start : start + _CHUNK]}).all()
                if not rows:
                    continue
                # The runs are checked by primary key in a second query: a join lets SQLite
                # pick the index on runs.deleted_ms and scan every live run.
                ids = list({row.run_id for row in rows})
                live = {
                    run.id
                    for run in conn.execute(_RUNS, {"ids": ids})
                    if run.status == "finished" and run.deleted_ms is None
                }
                for row in rows:
                    if row.run_id in live:
                        found[row.cache_key] = _entry(row)
            return found

        return self._sql._read("read the step cache", action)

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
        one with the same ``params`` (its ``mloop.pipeline.params`` tag).

        A rerun reads these in one go instead of looking each step up on its own.
        """

        def action(conn: Connection) -> dict[str, CacheEntry]:
            parent = run_id
            if parent is None:
                query = {"experiment_id": experiment_id, "pipeline": pipeline, "params": params}
                if params is not None:
                    parent = conn.execute(_SAME_PARAMS, query).scalar()
                if parent is None:
                    parent = conn.execute(_LATEST, query).scalar()
                if parent is None:
                    return {}
            rows = conn.execute(_OF_RUN, {"parent": parent}).all()
            ids = list({row.run_id for row in rows})
            live: set[str] = set()
            for start in range(0, len(ids), _CHUNK):
                live.update(
                    run.id
                    for run in conn.execute(_RUNS, {"ids": ids[start : start + _CHUNK]})
                    if run.status == "finished" and run.deleted_ms is None
                )
            return {row.cache_key: _entry(row) for row in rows if row.run_id in live}

        return self._sql._read("read the step cache", action)


def _with_id(output: dict[str, Any], ids: dict[tuple[str, str], str]) -> dict[str, Any]:
    """An output as the cache keeps it: with its artifact's id, so a hit needs no lookup."""
    found = ids.get((output.get("digest", ""), output.get("kind", "")))
    return {**output, "artifact_id": found} if found is not None else output


def _entry(row: Any) -> CacheEntry:
    outputs = row.outputs
    return CacheEntry(
        row.cache_key, row.pipeline, row.step, row.run_id, list(outputs), row.created_ms
    )
