"""Feature definitions and materializations in SQL (``store.features``).

A definition gets a new version only when its canonical spec changes (compared by digest),
decided inside one write transaction, so two concurrent applies of the same change make one
version. Each version is also an artifact (kind = the definition's kind, digest = the spec's),
so runs can record which feature view versions they read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from mloop.errors import InvalidValueError, NotFoundError
from mloop.store import _schema as t
from mloop.store._ids import new_id
from mloop.store._records import from_ms
from mloop.store._records_models import FeatureDefinition, Materialization
from mloop.store._sql_events import insert_event
from mloop.store._validate import check_name

if TYPE_CHECKING:
    from mloop.store._sql import SqlStore

__all__ = ["SqlFeatures"]

KINDS = ("entity", "feature_view", "on_demand_feature_view")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_d, _m = t.feature_definitions.c, t.materializations.c


def _check(kind: str, name: str) -> None:
    if kind not in KINDS:
        raise InvalidValueError(f"definition kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidValueError(f"{kind} name {name!r} is not a valid name")


def _definition(row: Row[Any]) -> FeatureDefinition:
    created = from_ms(row.created_ms)
    assert created is not None
    return FeatureDefinition(
        row.id,
        row.kind,
        row.name,
        row.version,
        row.digest,
        row.artifact_id,
        dict(row.spec),
        created,
        row.created_by,
    )


def _materialization(row: Row[Any]) -> Materialization:
    end, created = from_ms(row.end_ms), from_ms(row.created_ms)
    assert end is not None
    assert created is not None
    return Materialization(
        id=row.id,
        view=row.view,
        view_version=row.view_version,
        online_store=row.online_store,
        start=from_ms(row.start_ms),
        end=end,
        status=row.status,
        rows=row.rows,
        stats=dict(row.stats),
        validation=dict(row.validation),
        error=row.error,
        created=created,
        finished=from_ms(row.finished_ms),
        created_by=row.created_by,
    )


class SqlFeatures:
    """``store.features`` of a SqlStore."""

    def __init__(self, sql: SqlStore) -> None:
        self._sql = sql

    def _latest(self, conn: Connection, kind: str, name: str) -> Row[Any] | None:
        query = (
            sa.select(t.feature_definitions)
            .where(_d.kind == kind, _d.name == name)
            .order_by(_d.version.desc())
            .limit(1)
        )
        return conn.execute(query).first()

    def put_definition(
        self, kind: str, name: str, spec: Mapping[str, Any], digest: str, *, actor: str
    ) -> tuple[FeatureDefinition, bool]:
        """Record ``spec`` as the next version of (kind, name) unless it equals the latest;
        returns the version in force and whether it is new."""
        _check(kind, name)
        check_name(actor, "actor")
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise InvalidValueError(f"digest must be 64 lowercase hex characters, not {digest!r}")

        def action(conn: Connection) -> tuple[FeatureDefinition, bool]:
            latest = self._latest(conn, kind, name)
            if latest is not None and latest.digest == digest:
                return _definition(latest), False
            now = self._sql._clock()
            artifact = self._sql._artifact_in(
                conn, digest=digest, kind=kind, size=0, uri="", meta={"name": name}
            )
            version = 1 if latest is None else latest.version + 1
            definition_id = new_id()
            conn.execute(
                t.feature_definitions.insert().values(
                    id=definition_id,
                    kind=kind,
                    name=name,
                    version=version,
                    digest=digest,
                    artifact_id=artifact,
                    spec=dict(spec),
                    created_ms=now,
                    created_by=actor,
                )
            )
            ref = f"{name}/{version}"
            self._sql._audit(conn, actor, "apply", kind, ref, {"digest": digest})
            insert_event(
                conn,
                now,
                kind=f"{kind}.applied",
                subject=ref,
                actor=actor,
                payload={"name": name, "version": version, "digest": digest},
            )
            row = conn.execute(sa.select(t.feature_definitions).where(_d.id == definition_id)).one()
            return _definition(row), True

        return self._sql._write("apply a feature definition", action)

    def get_definition(self, kind: str, name: str, version: int | None = None) -> FeatureDefinition:
        """A version of a definition (the latest when ``version`` is None)."""
        _check(kind, name)

        def action(conn: Connection) -> FeatureDefinition:
            if version is None:
                row = self._latest(conn, kind, name)
            else:
                row = conn.execute(
                    sa.select(t.feature_definitions).where(
                        _d.kind == kind, _d.name == name, _d.version == version
                    )
                ).first()
            if row is None:
                what = kind.replace("_", " ")
                raise NotFoundError(
                    f"no {what} {name!r}"
                    + ("" if version is None else f" version {version}")
                    + "; `mloop apply` registers the definitions in features.py"
                )
            return _definition(row)

        return self._sql._read("read a feature definition", action)

    def list_definitions(self, kind: str | None = None) -> list[FeatureDefinition]:
        """The latest version of every definition (of ``kind``), by kind and name."""
        newest = (
            sa.select(_d.kind, _d.name, sa.func.max(_d.version).label("version"))
            .group_by(_d.kind, _d.name)
            .subquery()
        )
        query = sa.select(t.feature_definitions).join(
            newest,
            (newest.c.kind == _d.kind)
            & (newest.c.name == _d.name)
            & (newest.c.version == _d.version),
        )
        if kind is not None:
            if kind not in KINDS:
                raise InvalidValueError(f"definition kind must be one of {', '.join(KINDS)}")
            query = query.where(_d.kind == kind)
        query = query.order_by(_d.kind, _d.name)
        return self._sql._read(
            "list feature definitions", lambda c: [_definition(r) for r in c.execute(query)]
        )

    def definition_history(self, kind: str, name: str) -> list[FeatureDefinition]:
        """Every version of a definition, oldest first."""
        _check(kind, name)
        query = (
            sa.select(t.feature_definitions)
            .where(_d.kind == kind, _d.name == name)
            .order_by(_d.version)
        )
        return self._sql._read(
            "read feature definition history",
            lambda c: [_definition(r) for r in c.execute(query)],
        )

    # -- materializations -------------------------------------------------------------------

    def start_materialization(
        self,
        view: str,
        view_version: int,
        online_store: str,
        start_ms: int | None,
        end_ms: int,
        *,
        actor: str,
    ) -> str:
        """Record that a materialization began; returns its id."""
        _check("feature_view", view)
        check_name(actor, "actor")
        materialization_id = new_id()
        statement = t.materializations.insert().values(
            id=materialization_id,
            view=view,
            view_version=view_version,
            online_store=online_store,
            start_ms=start_ms,
            end_ms=end_ms,
            status="running",
            rows=0,
            stats={},
            validation={},
            created_ms=self._sql._clock(),
            created_by=actor,
        )
        self._sql._write("record a materialization", lambda conn: conn.execute(statement))
        return materialization_id

    def finish_materialization(
        self,
        materialization_id: str,
        *,
        status: str,
        rows: int = 0,
        stats: Mapping[str, Any] | None = None,
        validation: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Record how a materialization ended (finished or failed) and what it wrote."""
        if status not in ("finished", "failed"):
            raise InvalidValueError(f"a materialization ends finished or failed, not {status!r}")
        statement = (
            t.materializations.update()
            .where(_m.id == materialization_id, _m.status == "running")
            .values(
                status=status,
                rows=rows,
                stats=dict(stats or {}),
                validation=dict(validation or {}),
                error=None if error is None else error[:8000],
                finished_ms=self._sql._clock(),
            )
        )

        def action(conn: Connection) -> None:
            if conn.execute(statement).rowcount == 0:
                raise NotFoundError(f"no running materialization {materialization_id!r}")

        self._sql._write("finish a materialization", action)

    def last_materialization(self, view: str, online_store: str) -> Materialization | None:
        """The finished materialization of ``view`` into ``online_store`` with the latest end."""
        query = (
            sa.select(t.materializations)
            .where(_m.view == view, _m.online_store == online_store, _m.status == "finished")
            .order_by(_m.end_ms.desc(), _m.id.desc())
            .limit(1)
        )
        row = self._sql._read("read materializations", lambda c: c.execute(query).first())
        return None if row is None else _materialization(row)

    def list_materializations(
        self, *, view: str | None = None, limit: int = 100
    ) -> list[Materialization]:
        """Materializations, newest first."""
        query = sa.select(t.materializations).order_by(_m.id.desc()).limit(max(1, int(limit)))
        if view is not None:
            query = query.where(_m.view == view)
        return self._sql._read(
            "list materializations", lambda c: [_materialization(r) for r in c.execute(query)]
        )
