"""The model registry in SQL: registered models, numbered versions, tags and aliases.

Concurrency: a version number comes from ``UPDATE ... SET last_version = last_version + 1
RETURNING`` on the model's row, and an alias moves inside a transaction that first locks that
row (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serializes writers anyway), so
two processes registering or promoting at once get distinct numbers and a consistent alias,
with an audit entry and an event for each change, written in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from mloop.errors import ConflictError, InvalidValueError, NotFoundError
from mloop.store import _schema as t
from mloop.store._ids import new_id
from mloop.store._records import from_ms
from mloop.store._records_models import AliasChange, ModelVersion, RegisteredModel
from mloop.store._sql_events import insert_event
from mloop.store._validate import (
    check_alias,
    check_key,
    check_model_name,
    check_name,
    check_version,
    tag_value,
)

if TYPE_CHECKING:
    from mloop.store._sql import SqlStore

__all__ = ["SqlModels"]

MAX_DESCRIPTION = 20_000
_m, _v, _a = t.registered_models.c, t.model_versions.c, t.model_aliases.c
_VERSION_QUERY = sa.select(
    t.model_versions, _m.name, t.artifacts.c.digest, t.artifacts.c.meta
).select_from(
    t.model_versions.join(t.registered_models, _m.id == _v.model_id).join(
        t.artifacts, t.artifacts.c.id == _v.artifact_id
    )
)


def _description(text: object) -> str:
    if not isinstance(text, str):
        raise InvalidValueError(f"description must be a string, not {type(text).__name__}")
    if len(text) > MAX_DESCRIPTION:
        raise InvalidValueError(
            f"description is {len(text)} characters; the limit is {MAX_DESCRIPTION}"
        )
    return text


def _tags(tags: Mapping[str, Any]) -> dict[str, str]:
    if not isinstance(tags, Mapping):
        raise InvalidValueError(f"tags must be a mapping, not {type(tags).__name__}")
    return {check_key(key, "tag name"): tag_value(key, value) for key, value in tags.items()}


class SqlModels:
    """``store.models`` of a SqlStore."""

    def __init__(self, sql: SqlStore) -> None:
        self._sql = sql

    def _bytewise(self, column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
        """``column`` to sort by code point, as SQLite does, whatever the database's collation
        (an en_US PostgreSQL puts ``churn`` before ``Churn-big``; SQLite after)."""
        return column.collate("C") if self._sql._dialect == "postgresql" else column

    # -- reading ----------------------------------------------------------------------------

    def _model_row(self, conn: Connection, name: str, *, lock: bool = False) -> Row[Any]:
        query = sa.select(t.registered_models).where(_m.name == check_model_name(name))
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(
                f"no registered model {name!r}; `mloop models list` shows the registered models"
            )
        return row

    def _hydrate_models(self, conn: Connection, rows: list[Row[Any]]) -> list[RegisteredModel]:
        ids = [row.id for row in rows]
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        aliases: dict[str, dict[str, int]] = {i: {} for i in ids}
        if ids:
            for row in conn.execute(
                sa.select(t.model_tags).where(t.model_tags.c.model_id.in_(ids))
            ):
                tags[row.model_id][row.key] = row.value
            query = (
                sa.select(_a.model_id, _a.alias, _v.version)
                .join(t.model_versions, _v.id == _a.version_id)
                .where(_a.model_id.in_(ids))
                .order_by(self._bytewise(_a.alias))
            )
            for row in conn.execute(query):
                aliases[row.model_id][row.alias] = row.version
        found = []
        for row in rows:
            created, updated = from_ms(row.created_ms), from_ms(row.updated_ms)
            assert created is not None
            assert updated is not None
            found.append(
                RegisteredModel(
                    id=row.id,
                    name=row.name,
                    description=row.description,
                    created=created,
                    updated=updated,
                    created_by=row.created_by,
                    latest_version=row.last_version or None,
                    tags=tags[row.id],
                    aliases=aliases[row.id],
                )
            )
        return found

    def _hydrate_versions(self, conn: Connection, rows: Iterable[Row[Any]]) -> list[ModelVersion]:
        rows = list(rows)
        ids = [row.id for row in rows]
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        aliases: dict[str, list[str]] = {i: [] for i in ids}
        if ids:
            vt = t.model_version_tags.c
            for row in conn.execute(sa.select(t.model_version_tags).where(vt.version_id.in_(ids))):
                tags[row.version_id][row.key] = row.value
            query = sa.select(_a.version_id, _a.alias).where(_a.version_id.in_(ids))
            for row in conn.execute(query.order_by(self._bytewise(_a.alias))):
                aliases[row.version_id].append(row.alias)
        found = []
        for row in rows:
            created = from_ms(row.created_ms)
            assert created is not None
            found.append(
                ModelVersion(
                    id=row.id,
                    model_id=row.model_id,
                    name=row.name,
                    version=row.version,
                    artifact_id=row.artifact_id,
                    digest=row.digest,
                    run_id=row.run_id,
                    flavor=row.flavor,
                    description=row.description,
                    created=created,
                    created_by=row.created_by,
                    meta=dict(row.meta),
                    tags=tags[row.id],
                    aliases=tuple(aliases[row.id]),
                )
            )
        return found

    def get_model(self, name: str) -> RegisteredModel:
        """The registered model ``name``, with its tags and aliases."""

        def action(conn: Connection) -> RegisteredModel:
            return self._hydrate_models(conn, [self._model_row(conn, name)])[0]

        return self._sql._read("read a registered model", action)

    def list_models(self, *, name_like: str | None = None) -> list[RegisteredModel]:
        """Registered models by name; ``name_like`` is a LIKE pattern (``churn%``), matched
        ignoring case on every backend, with ``\\`` escaping ``%`` and ``_``."""
        query = sa.select(t.registered_models).order_by(self._bytewise(_m.name))
        if name_like is not None:
            if not isinstance(name_like, str) or len(name_like) > 256:
                raise InvalidValueError("name_like must be a string of at most 256 characters")
            query = query.where(_m.name.ilike(name_like, escape="\\"))

        def action(conn: Connection) -> list[RegisteredModel]:
            return self._hydrate_models(conn, list(conn.execute(query)))

        return self._sql._read("list registered models", action)

    def _version_row(self, conn: Connection, name: str, version: int) -> Row[Any]:
        model = self._model_row(conn, name)
        row = conn.execute(
            _VERSION_QUERY.where(_v.model_id == model.id, _v.version == check_version(version))
        ).first()
        if row is None:
            latest = model.last_version
            raise NotFoundError(
                f"model {name!r} has no version {version}"
                + (f"; its versions are 1 to {latest}" if latest else "; it has no versions yet")
            )
        return row

    def get_version(self, name: str, version: int) -> ModelVersion:
        """Version ``version`` of model ``name``."""

        def action(conn: Connection) -> ModelVersion:
            return self._hydrate_versions(conn, [self._version_row(conn, name, version)])[0]

        return self._sql._read("read a model version", action)

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version alias ``alias`` of model ``name`` points at (``latest``: the newest)."""

        def action(conn: Connection) -> ModelVersion:
            model = self._model_row(conn, name)
            if alias == "latest":
                if not model.last_version:
                    raise NotFoundError(f"model {name!r} has no versions yet")
                return self._hydrate_versions(
                    conn, [self._version_row(conn, name, model.last_version)]
                )[0]
            row = conn.execute(
                _VERSION_QUERY.join(t.model_aliases, _a.version_id == _v.id).where(
                    _a.model_id == model.id, _a.alias == check_alias(alias)
                )
            ).first()
            if row is None:
                known = conn.execute(
                    sa.select(_a.alias)
                    .where(_a.model_id == model.id)
                    .order_by(self._bytewise(_a.alias))
                ).scalars()
                listed = ", ".join(known) or "none"
                raise NotFoundError(
                    f"model {name!r} has no alias {alias!r} (its aliases: {listed}); set one with "
                    f"`mloop models alias {name} {alias} <version>`"
                )
            return self._hydrate_versions(conn, [row])[0]

        return self._sql._read("resolve a model alias", action)

    def list_versions(self, name: str) -> list[ModelVersion]:
        """The versions of model ``name``, newest first."""

        def action(conn: Connection) -> list[ModelVersion]:
            model = self._model_row(conn, name)
            query = _VERSION_QUERY.where(_v.model_id == model.id).order_by(_v.version.desc())
            return self._hydrate_versions(conn, conn.execute(query))

        return self._sql._read("list model versions", action)

    def versions_of_artifact(self, artifact_id: str) -> list[ModelVersion]:
        """Every model version whose package is artifact ``artifact_id``."""
        query = _VERSION_QUERY.where(_v.artifact_id == artifact_id).order_by(
            self._bytewise(_m.name), _v.version
        )
        return self._sql._read(
            "find model versions", lambda conn: self._hydrate_versions(conn, conn.execute(query))
        )

    def versions_of_run(self, run_id: str) -> list[ModelVersion]:
        """Every model version that run ``run_id`` produced."""
        query = _VERSION_QUERY.where(_v.run_id == run_id).order_by(
            self._bytewise(_m.name), _v.version
        )
        return self._sql._read(
            "find model versions", lambda conn: self._hydrate_versions(conn, conn.execute(query))
        )

    # -- writing ----------------------------------------------------------------------------

    def _insert_model(
        self,
        conn: Connection,
        name: str,
        actor: str,
        description: str,
        tags: dict[str, str],
        *,
        exist_ok: bool = False,
    ) -> None:
        now = self._sql._clock()
        model_id = new_id()
        # RETURNING, not rowcount: psycopg reports -1 as the rowcount of this INSERT.
        inserted = conn.execute(
            self._sql._insert(t.registered_models)
            .values(
                id=model_id,
                name=name,
                description=description,
                created_ms=now,
                updated_ms=now,
                created_by=actor,
                last_version=0,
            )
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(_m.id)
        ).first()
        if inserted is None:
            if exist_ok:  # another writer registered it since this transaction looked
                return
            raise ConflictError(f"a model named {name!r} is already registered")
        if tags:
            conn.execute(
                t.model_tags.insert(),
                [{"model_id": model_id, "key": k, "value": v} for k, v in tags.items()],
            )
        self._sql._audit(conn, actor, "create", "model", name, {})

    def create_model(
        self, name: str, *, actor: str, description: str = "", tags: Mapping[str, Any] = {}
    ) -> RegisteredModel:
        """Register a new model name (ConflictError if it exists)."""
        name, description, checked = check_model_name(name), _description(description), _tags(tags)
        check_name(actor, "actor")

        def action(conn: Connection) -> None:
            self._insert_model(conn, name, actor, description, checked)

        self._sql._write("register a model", action)
        return self.get_model(name)

    def update_model(self, name: str, *, description: str, actor: str) -> RegisteredModel:
        """Replace a model's description."""
        description = _description(description)

        def action(conn: Connection) -> None:
            row = self._model_row(conn, name)
            conn.execute(
                t.registered_models.update()
                .where(_m.id == row.id)
                .values(description=description, updated_ms=self._sql._clock())
            )
            self._sql._audit(conn, actor, "update", "model", name, {"description": description})

        self._sql._write("update a model", action)
        return self.get_model(name)

    def _put_tags(
        self, conn: Connection, table: sa.Table, owner: str, tags: dict[str, str]
    ) -> None:
        owner_column = table.c.model_id if "model_id" in table.c else table.c.version_id
        for key, value in tags.items():
            statement = self._sql._insert(table).values(
                {owner_column.name: owner, "key": key, "value": value}
            )
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[owner_column.name, "key"], set_={"value": value}
                )
            )

    def set_model_tags(self, name: str, tags: Mapping[str, Any]) -> None:
        """Set (or overwrite) tags on a registered model."""
        checked = _tags(tags)
        self._sql._write(
            "tag a model",
            lambda conn: self._put_tags(
                conn, t.model_tags, self._model_row(conn, name).id, checked
            ),
        )

    def delete_model_tag(self, name: str, key: str) -> None:
        """Remove one tag from a registered model (NotFoundError if it has no such tag)."""

        def action(conn: Connection) -> None:
            model = self._model_row(conn, name)
            done = conn.execute(
                t.model_tags.delete().where(
                    t.model_tags.c.model_id == model.id, t.model_tags.c.key == key
                )
            )
            if done.rowcount == 0:
                raise NotFoundError(f"model {name!r} has no tag {key!r}")

        self._sql._write("untag a model", action)

    def create_version(
        self,
        name: str,
        *,
        artifact_id: str,
        flavor: str,
        actor: str,
        run_id: str | None = None,
        description: str = "",
        tags: Mapping[str, Any] = {},
    ) -> ModelVersion:
        """Add the next version of ``name`` (registering the name on first use)."""
        name, description, checked = check_model_name(name), _description(description), _tags(tags)
        check_name(actor, "actor")
        if run_id is not None and (not isinstance(run_id, str) or len(run_id) > 36):
            raise InvalidValueError(f"run_id must be a run's id (36 characters), not {run_id!r}")
        if not isinstance(flavor, str) or not flavor.isidentifier() or len(flavor) > 32:
            raise InvalidValueError(
                f"flavor must be an identifier of at most 32 characters, not {flavor!r}"
            )
        version_id = new_id()

        def action(conn: Connection) -> None:
            now = self._sql._clock()
            artifact = sa.select(t.artifacts.c.id).where(t.artifacts.c.id == artifact_id)
            if conn.execute(artifact).first() is None:
                raise NotFoundError(
                    f"no artifact {artifact_id!r} to register as a version of {name!r}"
                )
            if conn.execute(sa.select(_m.id).where(_m.name == name)).first() is None:
                self._insert_model(conn, name, actor, "", {}, exist_ok=True)
            number = conn.execute(
                t.registered_models.update()
                .where(_m.name == name)
                .values(last_version=_m.last_version + 1, updated_ms=now)
                .returning(_m.id, _m.last_version)
            ).one()
            conn.execute(
                t.model_versions.insert().values(
                    id=version_id,
                    model_id=number.id,
                    version=number.last_version,
                    artifact_id=artifact_id,
                    run_id=run_id,
                    flavor=flavor,
                    description=description,
                    created_ms=now,
                    created_by=actor,
                )
            )
            if checked:
                self._put_tags(conn, t.model_version_tags, version_id, checked)
            ref = f"{name}/{number.last_version}"
            details = {"artifact_id": artifact_id, "run_id": run_id, "flavor": flavor}
            self._sql._audit(conn, actor, "create", "model_version", ref, details)
            insert_event(
                conn,
                now,
                kind="model_version.created",
                subject=ref,
                actor=actor,
                payload={"model": name, "version": number.last_version, **details},
            )

        self._sql._write("register a model version", action)
        query = _VERSION_QUERY.where(_v.id == version_id)
        return self._sql._read(
            "read a model version",
            lambda conn: self._hydrate_versions(conn, [conn.execute(query).one()])[0],
        )

    def set_version_tags(self, name: str, version: int, tags: Mapping[str, Any]) -> None:
        """Set (or overwrite) tags on one version."""
        checked = _tags(tags)
        self._sql._write(
            "tag a model version",
            lambda conn: self._put_tags(
                conn, t.model_version_tags, self._version_row(conn, name, version).id, checked
            ),
        )

    def update_version(
        self, name: str, version: int, *, description: str, actor: str
    ) -> ModelVersion:
        """Replace one version's description."""
        description = _description(description)

        def action(conn: Connection) -> None:
            row = self._version_row(conn, name, version)
            conn.execute(
                t.model_versions.update().where(_v.id == row.id).values(description=description)
            )
            self._sql._audit(conn, actor, "update", "model_version", f"{name}/{row.version}", {})

        self._sql._write("update a model version", action)
        return self.get_version(name, version)

    def _move_alias(self, name: str, alias: str, version: int | None, actor: str) -> AliasChange:
        check_name(actor, "actor")

        def action(conn: Connection) -> AliasChange:
            model = self._model_row(conn, name, lock=True)  # serializes movers of this model
            previous = conn.execute(
                sa.select(_v.version)
                .select_from(t.model_aliases.join(t.model_versions, _v.id == _a.version_id))
                .where(_a.model_id == model.id, _a.alias == alias)
            ).scalar()
            now = self._sql._clock()
            if version is None:
                if previous is None:
                    raise NotFoundError(f"model {name!r} has no alias {alias!r} to delete")
                conn.execute(
                    t.model_aliases.delete().where(_a.model_id == model.id, _a.alias == alias)
                )
                action_name = "delete_alias"
            else:
                target = self._version_row(conn, name, version)
                statement = self._sql._insert(t.model_aliases).values(
                    model_id=model.id,
                    alias=alias,
                    version_id=target.id,
                    updated_ms=now,
                    updated_by=actor,
                )
                conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=["model_id", "alias"],
                        set_={"version_id": target.id, "updated_ms": now, "updated_by": actor},
                    )
                )
                action_name = "set_alias"
            details = {"alias": alias, "version": version, "previous_version": previous}
            self._sql._audit(conn, actor, action_name, "model", name, details)
            insert_event(
                conn,
                now,
                kind="model_alias.deleted" if version is None else "model_alias.changed",
                subject=f"{name}@{alias}",
                actor=actor,
                payload={"model": name, **details},
            )
            return AliasChange(name, alias, version, previous)

        return self._sql._write("move a model alias", action)

    def set_alias(self, name: str, alias: str, version: int, *, actor: str) -> AliasChange:
        """Point ``alias`` at ``version``, atomically, recording who moved it from where."""
        return self._move_alias(
            check_model_name(name), check_alias(alias), check_version(version), actor
        )

    def delete_alias(self, name: str, alias: str, *, actor: str) -> AliasChange:
        """Remove ``alias`` from model ``name``."""
        return self._move_alias(check_model_name(name), check_alias(alias), None, actor)
