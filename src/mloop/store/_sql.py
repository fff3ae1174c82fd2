"""SqlStore: the metadata store on SQLite or PostgreSQL through SQLAlchemy Core."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from mloop.errors import ConflictError, InvalidValueError, NotFoundError, RunNotActiveError
from mloop.store import _schema as t
from mloop.store._engine import create_engine, normalize_uri, with_retries, write_transaction
from mloop.store._filter import build_search_query
from mloop.store._ids import new_id, now_ms
from mloop.store._migrate import ensure_schema
from mloop.store._records import (
    RUN_STATUSES,
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
    from_ms,
    to_ms,
)
from mloop.store._sql_events import SqlEvents
from mloop.store._sql_features import SqlFeatures
from mloop.store._sql_models import SqlModels
from mloop.store._sql_pipelines import SqlPipelines
from mloop.store._sql_schedules import SqlSchedules
from mloop.store._validate import check_key, check_name, param_value, tag_value

__all__ = ["SqlStore"]

T = TypeVar("T")
_RUN_STATUS = sa.select(t.runs.c.id, t.runs.c.status).where(
    t.runs.c.id.in_(sa.bindparam("ids", expanding=True))
)
_END_RUN = (
    t.runs.update()
    .where(t.runs.c.id == sa.bindparam("run_id"), t.runs.c.status == "running")
    .values(
        status=sa.bindparam("new_status"),
        end_ms=sa.bindparam("end_ms"),
        error=sa.bindparam("new_error"),
    )
)
_CHUNK = 900  # ids per IN (...) list; well under every backend's bound-parameter limit


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SqlStore:
    """The metadata store in a SQLite file or a PostgreSQL database.

    >>> store = SqlStore("sqlite:///.mloop/mloop.db")      # doctest: +SKIP
    >>> store.get_or_create_experiment("churn").name        # doctest: +SKIP
    'churn'
    """

    def __init__(
        self,
        uri: str,
        *,
        busy_timeout: float = 60.0,
        clock: Callable[[], int] = now_ms,
        create: bool = True,
    ) -> None:
        self.uri = normalize_uri(uri)
        self._engine = create_engine(self.uri, busy_timeout=busy_timeout, create=create)
        self._clock = clock
        self._dialect = self._engine.dialect.name
        self._latest_upsert = self._build_latest_upsert()
        mark = "?" if self._engine.dialect.paramstyle == "qmark" else "%s"
        self._metric_insert_sql = (
            "INSERT INTO metrics (run_id, key, value, step, timestamp_ms) "
            f"VALUES ({', '.join([mark] * 5)})"
        )
        try:
            ensure_schema(self._engine, create=create)
        except BaseException:
            self._engine.dispose()
            raise
        self.models = SqlModels(self)
        self.events = SqlEvents(self)
        self.features = SqlFeatures(self)
        self.pipelines = SqlPipelines(self)
        self.schedules = SqlSchedules(self)

    def __repr__(self) -> str:
        return f"SqlStore({self._engine.url.render_as_string(hide_password=True)!r})"

    # -- plumbing ---------------------------------------------------------------------------

    def _read(self, what: str, action: Callable[[Connection], T]) -> T:
        def attempt() -> T:
            with self._engine.connect() as conn:
                return action(conn)

        return with_retries(self._engine, attempt, what=what)

    def _write(self, what: str, action: Callable[[Connection], T]) -> T:
        def attempt() -> T:
            with write_transaction(self._engine) as conn:
                return action(conn)

        return with_retries(self._engine, attempt, what=what)

    def _insert(self, table: sa.Table) -> Any:
        """A dialect INSERT that supports ON CONFLICT (SQLite and PostgreSQL both do)."""
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(table)

    def _build_latest_upsert(self) -> Any:
        # Built once: constructing ON CONFLICT statements costs more than running them.
        statement = self._insert(t.latest_metrics)
        lm = t.latest_metrics.c
        new = statement.excluded
        newer = (new.step > lm.step) | (
            (new.step == lm.step) & (new.timestamp_ms >= lm.timestamp_ms)
        )
        return statement.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={"value": new.value, "step": new.step, "timestamp_ms": new.timestamp_ms},
            where=newer,
        )

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    # -- experiments ------------------------------------------------------------------------

    @staticmethod
    def _experiment(row: Row[Any]) -> Experiment:
        created = from_ms(row.created_ms)
        assert created is not None
        return Experiment(row.id, row.name, row.description, created, from_ms(row.deleted_ms))

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``, created if it does not exist yet."""
        check_name(name, "experiment name")

        def action(conn: Connection) -> Experiment:
            query = sa.select(t.experiments).where(t.experiments.c.name == name)
            row = conn.execute(query).first()
            if row is None:
                conn.execute(
                    self._insert(t.experiments)
                    .values(id=new_id(), name=name, created_ms=self._clock())
                    .on_conflict_do_nothing(index_elements=["name"])
                )
                row = conn.execute(query).one()
            if row.deleted_ms is not None:
                raise ConflictError(
                    f"experiment {name!r} is deleted; restore it or log to another experiment"
                )
            return self._experiment(row)

        return self._write("create an experiment", action)

    def get_experiment(self, name_or_id: str) -> Experiment:
        """The experiment with this name or id; NotFoundError if there is none."""
        c = t.experiments.c

        def action(conn: Connection) -> Experiment:
            row = conn.execute(
                sa.select(t.experiments).where((c.name == name_or_id) | (c.id == name_or_id))
            ).first()
            if row is None:
                raise NotFoundError(
                    f"no experiment named {name_or_id!r}; see them with: mloop experiments list"
                )
            return self._experiment(row)

        return self._read("read an experiment", action)

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        """All experiments, oldest first."""
        query = sa.select(t.experiments).order_by(t.experiments.c.id)
        if not include_deleted:
            query = query.where(t.experiments.c.deleted_ms.is_(None))
        rows = self._read("list experiments", lambda conn: conn.execute(query).all())
        return [self._experiment(row) for row in rows]

    # -- environments -----------------------------------------------------------------------

    def put_environment(self, environment: Environment) -> str:
        """Record an environment once; returns its content id (a sha256)."""
        body = {
            "python": environment.python,
            "platform": environment.platform,
            "packages": dict(sorted(environment.packages.items())),
        }
        env_id = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

        def action(conn: Connection) -> str:
            conn.execute(
                self._insert(t.environments)
                .values(id=env_id, created_ms=self._clock(), **body)
                .on_conflict_do_nothing(index_elements=["id"])
            )
            return env_id

        exists = self._read(
            "read an environment",
            lambda conn: conn.execute(
                sa.select(t.environments.c.id).where(t.environments.c.id == env_id)
            ).first(),
        )
        return env_id if exists else self._write("record an environment", action)

    def get_environment(self, environment_id: str) -> Environment:
        """The environment recorded under this id."""
        row = self._read(
            "read an environment",
            lambda conn: conn.execute(
                sa.select(t.environments).where(t.environments.c.id == environment_id)
            ).first(),
        )
        if row is None:
            raise NotFoundError(f"no environment {environment_id!r}")
        return Environment(row.python, row.platform, dict(row.packages))

    # -- runs -------------------------------------------------------------------------------

    def create_run(
        self,
        run: NewRun,
        *,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> RunRecord:
        """Start a run (status ``running``) with its first params and tags, in one transaction."""
        check_name(run.name, "run name")
        param_rows = {
            check_key(k, "param name"): param_value(k, v) for k, v in (params or {}).items()
        }
        tag_rows = {check_key(k, "tag name"): tag_value(k, v) for k, v in (tags or {}).items()}
        run_id = new_id()
        start_ms = self._clock()
        values = {**run.__dict__, "id": run_id, "status": "running", "start_ms": start_ms}

        def action(conn: Connection) -> None:
            if run.parent_run_id is not None:
                parent = conn.execute(
                    sa.select(t.runs.c.id).where(t.runs.c.id == run.parent_run_id)
                ).first()
                if parent is None:
                    raise NotFoundError(f"parent run {run.parent_run_id!r} does not exist")
            conn.execute(t.runs.insert(), values)
            for table, rows in ((t.params, param_rows), (t.tags, tag_rows)):
                if rows:
                    conn.execute(
                        table.insert(),
                        [{"run_id": run_id, "key": k, "value": v} for k, v in rows.items()],
                    )

        try:
            self._write("start a run", action)
        except exc.IntegrityError as error:
            raise NotFoundError(
                f"experiment {run.experiment_id!r} or environment {run.environment_id!r} "
                "does not exist"
            ) from error
        start = from_ms(start_ms)
        assert start is not None
        return RunRecord(
            **run.__dict__,
            id=run_id,
            status="running",
            start_time=start,
            end_time=None,
            error=None,
            deleted_time=None,
            params=param_rows,
            tags=tag_rows,
            metrics={},
        )

    def get_run(self, run_id: str) -> RunRecord:
        """A run with its params, tags and latest metrics; NotFoundError if there is none."""
        runs = self._read("read a run", lambda conn: self._hydrate(conn, [run_id]))
        if not runs:
            raise NotFoundError(f"no run {run_id!r}; see runs with: mloop runs list")
        return runs[0]

    def _hydrate(self, conn: Connection, run_ids: Sequence[str]) -> list[RunRecord]:
        """Full records for ``run_ids``, in that order (missing ids are left out).

        Params, tags and latest metrics come back as one aggregated row per run (a JSON object,
        or on SQLite a separator-joined list for metrics), not one row per value: the row
        count, not the SQL, is what a search of thousands of runs spends its time on.
        """
        rows: dict[str, Row[Any]] = {}
        params: dict[str, dict[str, str]] = {}
        tags: dict[str, dict[str, str]] = {}
        metrics: dict[str, dict[str, float]] = {}
        for chunk in _chunks(run_ids):
            for row in conn.execute(sa.select(t.runs).where(t.runs.c.id.in_(chunk))).all():
                rows[row.id] = row
            for table, into in ((t.params, params), (t.tags, tags)):
                c = table.c
                query = (
                    sa.select(c.run_id, self._json_object(c.key, c.value))
                    .where(c.run_id.in_(chunk))
                    .group_by(c.run_id)
                )
                for run_id, packed in conn.execute(query).all():
                    into[run_id] = json.loads(packed) if isinstance(packed, str) else packed
            lm = t.latest_metrics.c
            query = (
                sa.select(lm.run_id, self._metric_pack(lm.key, lm.value))
                .where(lm.run_id.in_(chunk))
                .group_by(lm.run_id)
            )
            for run_id, packed in conn.execute(query).all():
                metrics[run_id] = self._metric_unpack(packed)
        return [
            self._run(rows[i], params.get(i, {}), tags.get(i, {}), metrics.get(i, {}))
            for i in run_ids
            if i in rows
        ]

    def _json_object(self, key: Any, value: Any) -> Any:
        if self._dialect == "postgresql":
            return sa.func.json_object_agg(key, value)
        return sa.func.json_group_object(key, value)

    def _metric_pack(self, key: Any, value: Any) -> Any:
        if self._dialect == "postgresql":
            return sa.func.json_object_agg(key, value)  # float8 prints shortest-exact
        # SQLite's JSON prints 15 digits, which loses bits; '%!.20e' round-trips every double.
        # Keys cannot hold control characters, so \x1f and \x1e separate safely.
        return sa.func.group_concat(
            key + sa.literal("\x1f") + sa.func.printf("%!.20e", value), sa.literal("\x1e")
        )

    @staticmethod
    def _metric_unpack(packed: Any) -> dict[str, float]:
        if isinstance(packed, dict):
            return {key: float(value) for key, value in packed.items()}
        found = {}
        for item in str(packed).split("\x1e"):
            key, _, text = item.partition("\x1f")
            found[key] = float(text)
        return found

    @staticmethod
    def _run(
        row: Row[Any], params: dict[str, str], tags: dict[str, str], metrics: dict[str, float]
    ) -> RunRecord:
        start = from_ms(row.start_ms)
        assert start is not None
        return RunRecord(
            id=row.id,
            experiment_id=row.experiment_id,
            name=row.name,
            kind=row.kind,
            status=row.status,
            start_time=start,
            end_time=from_ms(row.end_ms),
            user=row.user,
            parent_run_id=row.parent_run_id,
            git_commit=row.git_commit,
            git_dirty=row.git_dirty,
            git_branch=row.git_branch,
            git_remote=row.git_remote,
            command=row.command,
            environment_id=row.environment_id,
            error=row.error,
            deleted_time=from_ms(row.deleted_ms),
            params=params,
            tags=tags,
            metrics=metrics,
        )

    def _require_active(self, conn: Connection, run_ids: Iterable[str]) -> None:
        wanted = list(set(run_ids))
        found = {row.id: row.status for row in conn.execute(_RUN_STATUS, {"ids": wanted})}
        for run_id in sorted(wanted):
            if run_id not in found:
                raise NotFoundError(f"no run {run_id!r}")
            if found[run_id] != "running":
                raise RunNotActiveError(
                    f"run {run_id} has ended ({found[run_id]}); nothing more can be logged to "
                    "it - start a new run"
                )

    def end_run(
        self,
        run_id: str,
        status: RunStatus,
        *,
        error: str | None = None,
        metrics: Sequence[MetricRow] = (),
    ) -> None:
        """End a running run with ``status``, after writing its last ``metrics``, atomically."""
        if status not in RUN_STATUSES or status == "running":
            raise InvalidValueError(f"a run ends as finished, failed or killed, not {status!r}")

        def action(conn: Connection) -> None:
            if metrics:
                # This run's own state is checked by the UPDATE below, in this transaction.
                self._write_metrics(conn, metrics, checked=run_id)
            done = conn.execute(
                _END_RUN,
                {
                    "run_id": run_id,
                    "new_status": status,
                    "end_ms": self._clock(),
                    "new_error": error,
                },
            )
            if done.rowcount == 0:
                self._require_active(conn, [run_id])  # raises the precise reason

        self._write("end a run", action)

    def _descendants(self, conn: Connection, run_id: str) -> list[str]:
        found, frontier = [run_id], [run_id]
        while frontier:
            children = (
                conn.execute(sa.select(t.runs.c.id).where(t.runs.c.parent_run_id.in_(frontier)))
                .scalars()
                .all()
            )
            found.extend(children)
            frontier = list(children)
        return found

    def _set_deleted(self, run_id: str, actor: str, deleted: bool) -> None:
        c = t.runs.c

        def action(conn: Connection) -> None:
            row = conn.execute(sa.select(c.deleted_ms).where(c.id == run_id)).first()
            if row is None:
                raise NotFoundError(f"no run {run_id!r}; see runs with: mloop runs list")
            if deleted == (row.deleted_ms is not None):
                return  # already in that state: keep the original deletion time
            ids = self._descendants(conn, run_id)
            for chunk in _chunks(ids):
                if deleted:
                    # Children deleted earlier keep their own (earlier) time.
                    query = t.runs.update().where(c.id.in_(chunk), c.deleted_ms.is_(None))
                    conn.execute(query.values(deleted_ms=self._clock()))
                else:
                    # Restore what was deleted with this run, not children deleted on their own.
                    query = t.runs.update().where(c.id.in_(chunk), c.deleted_ms == row.deleted_ms)
                    conn.execute(query.values(deleted_ms=None))
            self._audit(
                conn,
                actor,
                "run.delete" if deleted else "run.restore",
                "run",
                run_id,
                {"runs": len(ids)},
            )

        self._write("delete a run" if deleted else "restore a run", action)

    def delete_run(self, run_id: str, *, actor: str) -> None:
        """Soft-delete a run and its child runs; ``mloop gc`` purges them later."""
        self._set_deleted(run_id, actor, True)

    def restore_run(self, run_id: str, *, actor: str) -> None:
        """Undo a soft delete of a run and its child runs."""
        self._set_deleted(run_id, actor, False)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Record params; a param logged again with a different value is a ConflictError."""
        values = {check_key(k, "param name"): param_value(k, v) for k, v in params.items()}
        if not values:
            return

        def action(conn: Connection) -> None:
            self._require_active(conn, [run_id])
            p = t.params.c
            query = sa.select(p.key, p.value).where(p.run_id == run_id, p.key.in_(list(values)))
            existing = {key: value for key, value in conn.execute(query)}
            for key, old in existing.items():
                if old != values[key]:
                    raise ConflictError(
                        f"param {key!r} of run {run_id} is already {old!r}; it cannot change "
                        f"to {values[key]!r} (params are fixed once logged: log a metric or "
                        "tag, or start a new run)"
                    )
            new = [
                {"run_id": run_id, "key": k, "value": v}
                for k, v in values.items()
                if k not in existing
            ]
            if new:
                conn.execute(t.params.insert(), new)

        self._write("log params", action)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Set tags on a run, replacing earlier values of the same keys."""
        values = {check_key(k, "tag name"): tag_value(k, v) for k, v in tags.items()}
        if not values:
            return

        def action(conn: Connection) -> None:
            if conn.execute(sa.select(t.runs.c.id).where(t.runs.c.id == run_id)).first() is None:
                raise NotFoundError(f"no run {run_id!r}")
            statement = self._insert(t.tags)
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["run_id", "key"], set_={"value": statement.excluded.value}
                ),
                [{"run_id": run_id, "key": k, "value": v} for k, v in values.items()],
            )

        self._write("set tags", action)

    def log_metrics(self, rows: Sequence[MetricRow]) -> None:
        """Append metric rows (already validated by the caller) in one transaction."""
        if rows:
            self._write("log metrics", lambda conn: self._write_metrics(conn, rows))

    def _write_metrics(
        self, conn: Connection, rows: Sequence[MetricRow], *, checked: str | None = None
    ) -> None:
        """Insert rows and move latest values; ``checked`` is a run the caller verifies."""
        latest: dict[tuple[str, str], MetricRow] = {}
        for row in rows:
            key = (row[0], row[1])
            seen = latest.get(key)
            if seen is None or row[3] > seen[3] or (row[3] == seen[3] and row[4] >= seen[4]):
                latest[key] = row
        unchecked = {row[0] for row in rows} - {checked}
        if unchecked:
            self._require_active(conn, unchecked)
        # The hot path: plain tuples straight to the driver's executemany.
        conn.exec_driver_sql(self._metric_insert_sql, list(rows))
        conn.execute(
            self._latest_upsert,
            [
                {"run_id": r, "key": k, "value": v, "step": s, "timestamp_ms": ts}
                for r, k, v, s, ts in latest.values()
            ],
        )

    def get_metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every value logged for one metric of one run, by step then time."""
        m = t.metrics.c
        query = (
            sa.select(m.key, m.value, m.step, m.timestamp_ms)
            .where(m.run_id == run_id, m.key == key)
            .order_by(m.step, m.timestamp_ms, m.id)
        )
        rows = self._read("read a metric", lambda conn: conn.execute(query).all())
        return [
            MetricPoint(k, v, s, ts)
            for k, v, s, ts in ((r[0], r[1], r[2], from_ms(r[3])) for r in rows)
            if ts is not None
        ]

    def search_runs(
        self,
        *,
        experiment_ids: Sequence[str] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        include_deleted: bool = False,
    ) -> list[RunRecord]:
        """Runs matching a filter (see docs/tracking.md for the language), in order."""
        query = build_search_query(
            experiment_ids=experiment_ids,
            filter=filter,
            order_by=order_by,
            limit=limit,
            offset=offset,
            include_deleted=include_deleted,
        )

        def action(conn: Connection) -> list[RunRecord]:
            ids = list(conn.execute(query).scalars())
            return self._hydrate(conn, ids)

        return self._read("search runs", action)

    # -- artifacts and lineage --------------------------------------------------------------

    @staticmethod
    def _artifact(row: Row[Any]) -> ArtifactRecord:
        created = from_ms(row.created_ms)
        assert created is not None
        return ArtifactRecord(
            row.id, row.digest, row.kind, row.size, row.uri, dict(row.meta), created
        )

    def record_artifact(
        self, *, digest: str, kind: str, size: int, uri: str, meta: Mapping[str, Any]
    ) -> ArtifactRecord:
        """The artifact record for (digest, kind), created on first sight."""

        def action(conn: Connection) -> ArtifactRecord:
            self._artifact_in(conn, digest=digest, kind=kind, size=size, uri=uri, meta=meta)
            a = t.artifacts.c
            row = conn.execute(
                sa.select(t.artifacts).where(a.digest == digest, a.kind == kind)
            ).one()
            return self._artifact(row)

        return self._write("record an artifact", action)

    def _artifact_in(
        self,
        conn: Connection,
        *,
        digest: str,
        kind: str,
        size: int,
        uri: str,
        meta: Mapping[str, Any],
    ) -> str:
        """The id of the artifact record for (digest, kind), created in ``conn`` if new."""
        a = t.artifacts.c
        query = sa.select(a.id).where(a.digest == digest, a.kind == kind)
        found = conn.execute(query).scalar()
        if found is None:
            conn.execute(
                self._insert(t.artifacts)
                .values(
                    id=new_id(),
                    digest=digest,
                    kind=kind,
                    size=size,
                    uri=uri,
                    meta=dict(meta),
                    created_ms=self._clock(),
                )
                .on_conflict_do_nothing(index_elements=["digest", "kind"])
            )
            found = conn.execute(query).scalar_one()
        return str(found)

    def link_artifact(self, run_id: str, artifact_id: str, direction: Direction, name: str) -> None:
        """Add a lineage edge: the run used (input) or produced (output) the artifact."""
        if direction not in ("input", "output"):
            raise InvalidValueError(f"direction must be 'input' or 'output', not {direction!r}")
        l = t.lineage.c  # noqa: E741

        def action(conn: Connection) -> None:
            if conn.execute(sa.select(t.runs.c.id).where(t.runs.c.id == run_id)).first() is None:
                raise NotFoundError(f"no run {run_id!r}")
            existing = conn.execute(
                sa.select(l.artifact_id).where(
                    l.run_id == run_id, l.direction == direction, l.name == name
                )
            ).scalar()
            if existing == artifact_id:
                return
            if existing is not None:
                raise ConflictError(
                    f"run {run_id} already has an {direction} named {name!r}; pick another name"
                )
            conn.execute(
                t.lineage.insert().values(
                    run_id=run_id,
                    artifact_id=artifact_id,
                    direction=direction,
                    name=name,
                    created_ms=self._clock(),
                )
            )

        try:
            self._write("record lineage", action)
        except exc.IntegrityError as error:
            raise NotFoundError(f"no artifact {artifact_id!r}") from error

    def list_lineage(self, run_id: str) -> list[LineageEdge]:
        """The artifacts a run used and produced, by name."""
        l, a = t.lineage.c, t.artifacts.c  # noqa: E741
        query = (
            sa.select(l.run_id, l.direction, l.name, t.artifacts)
            .join(t.artifacts, a.id == l.artifact_id)
            .where(l.run_id == run_id)
            .order_by(l.direction, l.name)
        )
        rows = self._read("read lineage", lambda conn: conn.execute(query).all())
        return [LineageEdge(r.run_id, self._artifact(r), r.direction, r.name) for r in rows]

    def runs_of_artifact(self, artifact_id: str) -> list[tuple[str, Direction, str]]:
        """(run id, direction, name) of every run that used or produced the artifact."""
        l = t.lineage.c  # noqa: E741
        query = sa.select(l.run_id, l.direction, l.name).where(l.artifact_id == artifact_id)
        rows = self._read("read lineage", lambda conn: conn.execute(query).all())
        return [(r.run_id, r.direction, r.name) for r in rows]

    # -- audit log --------------------------------------------------------------------------

    def _audit(
        self,
        conn: Connection,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        details: Mapping[str, Any] | None,
    ) -> None:
        check_name(actor, "actor")  # every audited change names who made it
        conn.execute(
            t.audit_log.insert().values(
                id=new_id(),
                time_ms=self._clock(),
                actor=actor,
                action=action,
                object_type=object_type,
                object_id=object_id,
                details=dict(details or {}),
            )
        )

    def audit(
        self,
        *,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Append an entry to the audit log."""
        self._write(
            "write the audit log",
            lambda conn: self._audit(conn, actor, action, object_type, object_id, details),
        )

    def list_audit(self, *, object_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The newest audit entries first, optionally for one object."""
        c = t.audit_log.c
        query = sa.select(t.audit_log).order_by(c.id.desc()).limit(limit)
        if object_id is not None:
            query = query.where(c.object_id == object_id)
        rows = self._read("read the audit log", lambda conn: conn.execute(query).all())
        entries = []
        for r in rows:
            time = from_ms(r.time_ms)
            assert time is not None
            entries.append(
                AuditEntry(r.id, time, r.actor, r.action, r.object_type, r.object_id, r.details)
            )
        return entries

    # -- garbage collection -----------------------------------------------------------------

    def purge_runs(self, *, deleted_before: datetime, dry_run: bool = False) -> list[str]:
        """Hard-delete runs soft-deleted before ``deleted_before``; returns their ids."""
        cutoff = to_ms(deleted_before)
        c = t.runs.c
        query = sa.select(c.id).where(c.deleted_ms.is_not(None), c.deleted_ms < cutoff)

        def action(conn: Connection) -> list[str]:
            ids = list(conn.execute(query.order_by(c.id)).scalars())
            if dry_run or not ids:
                return ids
            # Child runs go with their parents (runs.parent_run_id cascades), and so must their
            # metrics, which have no foreign key to cascade along.
            doomed = sorted({d for run_id in ids for d in self._descendants(conn, run_id)})
            for chunk in _chunks(doomed):
                conn.execute(t.metrics.delete().where(t.metrics.c.run_id.in_(chunk)))
            for chunk in _chunks(ids):
                conn.execute(t.runs.delete().where(c.id.in_(chunk)))
            return ids

        if dry_run:
            return self._read("list deleted runs", action)
        return self._write("purge deleted runs", action)

    def unreferenced_artifacts(
        self, *, created_before: datetime | None = None
    ) -> list[ArtifactRecord]:
        """Artifact records that no lineage edge or model version points at (gc candidates)."""
        a, l = t.artifacts.c, t.lineage.c  # noqa: E741
        query = (
            sa.select(t.artifacts)
            .where(
                ~sa.exists().where(l.artifact_id == a.id),
                ~sa.exists().where(t.model_versions.c.artifact_id == a.id),
                ~sa.exists().where(t.feature_definitions.c.artifact_id == a.id),
            )
            .order_by(a.id)
        )
        if created_before is not None:
            query = query.where(a.created_ms < to_ms(created_before))
        rows = self._read("list artifacts", lambda conn: conn.execute(query).all())
        return [self._artifact(row) for row in rows]

    def delete_artifact_records(self, artifact_ids: Sequence[str]) -> None:
        """Remove artifact records (their blobs are the artifact store's business)."""

        def action(conn: Connection) -> None:
            for chunk in _chunks(list(artifact_ids)):
                conn.execute(t.artifacts.delete().where(t.artifacts.c.id.in_(chunk)))

        self._write("delete artifact records", action)

    def referenced_digests(self) -> set[str]:
        """The digest of every artifact record: blobs outside this set are orphans."""
        query = sa.select(t.artifacts.c.digest).distinct()
        return set(self._read("list artifacts", lambda conn: conn.execute(query).scalars().all()))
