"""The model registry of the metadata store (``store.models``), on SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.errors import ConflictError, InvalidKeyError, InvalidValueError, NotFoundError
from mloop.store import AliasChange, ModelVersion, NewRun, SqlStore
from mloop.store import _schema as t
from mloop.store._engine import create_engine, write_transaction
from mloop.store._migrate import MIGRATIONS_DIR, SCHEMA_HEAD

REGISTRY_TABLES = {
    "registered_models",
    "model_tags",
    "model_versions",
    "model_version_tags",
    "model_aliases",
    "events",
    "webhooks",
    "webhook_deliveries",
}


def package(store: SqlStore, n: int = 0, meta: dict[str, Any] | None = None) -> str:
    """The id of a model-package artifact record (one per ``n``)."""
    return store.record_artifact(
        digest=f"{n:064x}",
        kind="model",
        size=100 + n,
        uri=f"/blobs/{n:064x}",
        meta={"signature": {"inputs": ["x"]}, "n": n} if meta is None else meta,
    ).id


def register(store: SqlStore, name: str, n: int = 0, **fields: Any) -> ModelVersion:
    fields.setdefault("actor", "ann")
    fields.setdefault("flavor", "sklearn")
    return store.models.create_version(name, artifact_id=package(store, n), **fields)


def new_run(store: SqlStore) -> str:
    exp = store.get_or_create_experiment("train")
    return store.create_run(NewRun(experiment_id=exp.id, name="r", user="ann")).id


def snapshot(store: SqlStore) -> tuple[object, ...]:
    """Everything the registry has written, to compare before and after a refused call."""
    models = store.models.list_models()
    versions = [
        (v.ref, v.description, v.tags, v.aliases)
        for m in models
        for v in store.models.list_versions(m.name)
    ]
    return (
        [(m.name, m.description, m.latest_version, m.tags, m.aliases) for m in models],
        versions,
        [(e.kind, e.subject, e.payload) for e in store.events.list_events(limit=10_000)],
        [(a.action, a.object_id, a.details) for a in store.list_audit(limit=10_000)],
    )


# -- registered models --------------------------------------------------------------------------


def test_create_and_get_a_model(store: SqlStore) -> None:
    created = store.models.create_model(
        "churn", actor="ann", description="predicts churn", tags={"team": "ml", "tier": 1}
    )
    assert (created.name, created.description, created.created_by) == (
        "churn",
        "predicts churn",
        "ann",
    )
    assert created.latest_version is None
    assert created.tags == {"team": "ml", "tier": "1"}
    assert created.aliases == {}
    assert created.created.tzinfo is not None
    assert created.updated == created.created
    assert store.models.get_model("churn") == created
    [entry] = store.list_audit(object_id="churn")
    assert (entry.actor, entry.action, entry.object_type) == ("ann", "create", "model")


def test_registering_a_name_twice_is_a_conflict(store: SqlStore) -> None:
    first = store.models.create_model("churn", actor="ann", description="first")
    with pytest.raises(ConflictError, match="a model named 'churn' is already registered"):
        store.models.create_model("churn", actor="bob", description="second", tags={"a": "b"})
    assert store.models.get_model("churn") == first
    assert [e.actor for e in store.list_audit(object_id="churn")] == ["ann"]


def test_names_are_case_sensitive(store: SqlStore) -> None:
    store.models.create_model("churn", actor="ann")
    store.models.create_model("Churn", actor="ann")
    register(store, "Churn")
    assert store.models.get_model("churn").latest_version is None
    assert store.models.get_model("Churn").latest_version == 1


UNKNOWN_MODEL_CALLS: dict[str, Callable[[SqlStore], object]] = {
    "get_model": lambda s: s.models.get_model("ghost"),
    "update_model": lambda s: s.models.update_model("ghost", description="d", actor="ann"),
    "set_model_tags": lambda s: s.models.set_model_tags("ghost", {"a": "b"}),
    "delete_model_tag": lambda s: s.models.delete_model_tag("ghost", "a"),
    "list_versions": lambda s: s.models.list_versions("ghost"),
    "get_version": lambda s: s.models.get_version("ghost", 1),
    "get_version_by_alias": lambda s: s.models.get_version_by_alias("ghost", "production"),
    "latest": lambda s: s.models.get_version_by_alias("ghost", "latest"),
    "set_version_tags": lambda s: s.models.set_version_tags("ghost", 1, {"a": "b"}),
    "update_version": lambda s: s.models.update_version("ghost", 1, description="d", actor="a"),
    "set_alias": lambda s: s.models.set_alias("ghost", "production", 1, actor="ann"),
    "delete_alias": lambda s: s.models.delete_alias("ghost", "production", actor="ann"),
}


def test_an_unknown_model_is_named_with_how_to_list_models(store: SqlStore) -> None:
    register(store, "churn")
    before = snapshot(store)
    for what, call in UNKNOWN_MODEL_CALLS.items():
        with pytest.raises(NotFoundError) as raised:
            call(store)
        message = str(raised.value)
        assert message == (
            "no registered model 'ghost'; `mloop models list` shows the registered models"
        ), what
    assert snapshot(store) == before


def test_list_models_by_name_and_pattern(store: SqlStore) -> None:
    for name in ("fraud", "churn-eu", "churn", "churn_v2", "churnXv2", "Churn-big"):
        store.models.create_model(name, actor="ann")
    everything = ["Churn-big", "churn", "churn-eu", "churnXv2", "churn_v2", "fraud"]
    assert [m.name for m in store.models.list_models()] == everything
    assert [m.name for m in store.models.list_models(name_like="%")] == everything
    assert [m.name for m in store.models.list_models(name_like="%eu")] == ["churn-eu"]
    assert [m.name for m in store.models.list_models(name_like="fraud")] == ["fraud"]
    assert store.models.list_models(name_like="frau") == []
    assert store.models.list_models(name_like="nothing%") == []
    # LIKE wildcards: '_' is any one character, and matching ignores case on every backend.
    assert [m.name for m in store.models.list_models(name_like="churn_v2")] == [
        "churnXv2",
        "churn_v2",
    ]
    assert [m.name for m in store.models.list_models(name_like="churn%")] == [
        "Churn-big",
        "churn",
        "churn-eu",
        "churnXv2",
        "churn_v2",
    ]
    assert [m.name for m in store.models.list_models(name_like="CHURN-%")] == [
        "Churn-big",
        "churn-eu",
    ]
    # A backslash escapes a wildcard, on every backend.
    assert [m.name for m in store.models.list_models(name_like=r"churn\_v2")] == ["churn_v2"]


@pytest.mark.postgres
def test_listing_order_does_not_depend_on_the_database_collation(postgres_admin: sa.Engine) -> None:
    # An en-US collation sorts 'churn' before 'Churn-big' and '_' before '-'; SQLite sorts by
    # code point. The registry lists in code-point order on both.
    database = f"mloop_test_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(
            f'CREATE DATABASE "{database}" TEMPLATE template0 LOCALE_PROVIDER icu '
            "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        )
    url = postgres_admin.url.set(database=database).render_as_string(hide_password=False)
    try:
        store = SqlStore(url)
        try:
            names = ["churn_v2", "churnXv2", "churn-eu", "churn", "Churn-big"]
            run_id = new_run(store)
            for name in names:
                register(store, name, run_id=run_id)
            for alias in ("prod_b", "prod-a", "prod", "Prod"):
                store.models.set_alias("churn", alias, 1, actor="ann")
            in_order = ["Churn-big", "churn", "churn-eu", "churnXv2", "churn_v2"]
            assert [m.name for m in store.models.list_models()] == in_order
            assert [v.name for v in store.models.versions_of_run(run_id)] == in_order
            assert [v.name for v in store.models.versions_of_artifact(package(store))] == in_order
            aliases = ("Prod", "prod", "prod-a", "prod_b")
            assert store.models.get_version("churn", 1).aliases == aliases
            assert list(store.models.get_model("churn").aliases) == list(aliases)
            with pytest.raises(NotFoundError, match=r"\(its aliases: Prod, prod, prod-a, prod_b\)"):
                store.models.get_version_by_alias("churn", "staging")
        finally:
            store.close()
    finally:
        with postgres_admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_update_model_description(store_url: str) -> None:
    clock = itertools.count(1_700_000_000_000, 1000)
    store = SqlStore(store_url, clock=lambda: next(clock))
    try:
        created = store.models.create_model("churn", actor="ann", description="old")
        updated = store.models.update_model("churn", description="new words", actor="bob")
        assert updated.description == "new words"
        assert (updated.created, updated.created_by) == (created.created, "ann")
        assert updated.updated > created.updated
        assert store.models.get_model("churn") == updated
        entry = store.list_audit(object_id="churn")[0]
        assert (entry.actor, entry.action, entry.details) == (
            "bob",
            "update",
            {"description": "new words"},
        )
    finally:
        store.close()


def test_model_tags_are_set_overwritten_and_deleted(store: SqlStore) -> None:
    store.models.create_model("churn", actor="ann", tags={"team": "ml"})
    store.models.create_model("fraud", actor="ann", tags={"team": "risk"})
    store.models.set_model_tags("churn", {"stage": "beta", "owners": 2, "ok": True})
    store.models.set_model_tags("churn", {"stage": "ga"})
    assert store.models.get_model("churn").tags == {
        "team": "ml",
        "stage": "ga",
        "owners": "2",
        "ok": "True",
    }
    store.models.delete_model_tag("churn", "owners")
    assert store.models.get_model("churn").tags == {"team": "ml", "stage": "ga", "ok": "True"}
    with pytest.raises(NotFoundError, match="model 'churn' has no tag 'owners'"):
        store.models.delete_model_tag("churn", "owners")
    store.models.set_model_tags("churn", {})
    assert store.models.get_model("churn").tags == {"team": "ml", "stage": "ga", "ok": "True"}
    assert store.models.get_model("fraud").tags == {"team": "risk"}


# -- versions ---------------------------------------------------------------------------------


def test_versions_are_numbered_per_model(store: SqlStore) -> None:
    assert [register(store, "churn", n).version for n in range(3)] == [1, 2, 3]
    assert [register(store, "fraud", n).version for n in range(2)] == [1, 2]
    assert register(store, "churn", 9).version == 4
    assert store.models.get_model("churn").latest_version == 4
    assert store.models.get_model("fraud").latest_version == 2
    assert [v.version for v in store.models.list_versions("churn")] == [4, 3, 2, 1]
    # the same package registered again is a new version, not a duplicate
    assert register(store, "fraud", 0).version == 3


def test_the_first_version_registers_the_model(store: SqlStore) -> None:
    with pytest.raises(NotFoundError):
        store.models.get_model("churn")
    artifact_id = package(store)
    version = store.models.create_version(
        "churn", artifact_id=artifact_id, flavor="sklearn", actor="bob"
    )
    model = store.models.get_model("churn")
    assert (model.id, model.name, model.created_by, model.description) == (
        version.model_id,
        "churn",
        "bob",
        "",
    )
    assert model.latest_version == 1
    assert [(e.action, e.actor) for e in store.list_audit(object_id="churn")] == [("create", "bob")]
    [entry] = store.list_audit(object_id="churn/1")
    assert (entry.action, entry.object_type, entry.details) == (
        "create",
        "model_version",
        {"artifact_id": artifact_id, "run_id": None, "flavor": "sklearn"},
    )
    [event] = store.events.list_events(kind="model_version.created")
    assert (event.subject, event.actor, event.payload) == (
        "churn/1",
        "bob",
        {
            "model": "churn",
            "version": 1,
            "artifact_id": artifact_id,
            "run_id": None,
            "flavor": "sklearn",
        },
    )


def test_a_version_records_its_package_and_origin(store: SqlStore) -> None:
    run_id = new_run(store)
    meta = {"signature": {"inputs": [{"name": "age", "type": "long"}]}, "requirements": ["x==1"]}
    artifact_id = package(store, 7, meta=meta)
    version = store.models.create_version(
        "churn",
        artifact_id=artifact_id,
        flavor="pyfunc",
        actor="ann",
        run_id=run_id,
        description="first try",
        tags={"dataset": "2024-06", "rows": 1000},
    )
    assert (version.name, version.version, version.ref) == ("churn", 1, "churn/1")
    assert (version.artifact_id, version.digest, version.meta) == (artifact_id, f"{7:064x}", meta)
    assert (version.run_id, version.flavor, version.description) == (run_id, "pyfunc", "first try")
    assert version.tags == {"dataset": "2024-06", "rows": "1000"}
    assert (version.created_by, version.aliases) == ("ann", ())
    assert version.created.tzinfo is not None
    assert store.models.get_version("churn", 1) == version


def test_an_unknown_artifact_writes_nothing(store: SqlStore) -> None:
    register(store, "churn")
    before = snapshot(store)
    for name in ("churn", "brand-new"):
        with pytest.raises(NotFoundError, match=f"no artifact 'missing' .* of '{name}'"):
            store.models.create_version(
                name, artifact_id="missing", flavor="sklearn", actor="ann", tags={"a": "b"}
            )
    assert snapshot(store) == before
    assert store.list_audit(object_id="churn/2") == []
    with pytest.raises(NotFoundError, match="no registered model 'brand-new'"):
        store.models.get_model("brand-new")
    assert register(store, "churn", 1).version == 2  # the refused call took no number


def test_bad_actors_and_run_ids_write_nothing(store: SqlStore) -> None:
    register(store, "churn")
    before = snapshot(store)
    for actor in ("", "   ", "x" * 300, None, 7, "tab\there"):
        with pytest.raises(InvalidValueError, match="actor"):
            register(store, "churn", 1, actor=actor)
        with pytest.raises(InvalidValueError, match="actor"):
            store.models.set_alias("churn", "production", 1, actor=actor)  # type: ignore[arg-type]
    for run_id in ("r" * 37, 5):
        with pytest.raises(InvalidValueError, match="run_id"):
            register(store, "churn", 1, run_id=run_id)
    assert snapshot(store) == before


def test_get_list_and_latest(store: SqlStore) -> None:
    for n in range(3):
        register(store, "churn", n)
    assert [v.version for v in store.models.list_versions("churn")] == [3, 2, 1]
    assert store.models.get_version("churn", 2).digest == f"{1:064x}"
    assert store.models.get_version("churn", "2").version == 2  # type: ignore[arg-type]
    assert store.models.get_version_by_alias("churn", "latest") == store.models.get_version(
        "churn", 3
    )
    with pytest.raises(NotFoundError, match="model 'churn' has no version 9; its versions are 1"):
        store.models.get_version("churn", 9)
    store.models.create_model("empty", actor="ann")
    assert store.models.list_versions("empty") == []
    with pytest.raises(NotFoundError, match="model 'empty' has no versions yet"):
        store.models.get_version_by_alias("empty", "latest")
    with pytest.raises(NotFoundError, match="has no version 1; it has no versions yet"):
        store.models.get_version("empty", 1)


def test_versions_of_a_run_and_of_an_artifact(store: SqlStore) -> None:
    run_a, run_b = new_run(store), new_run(store)
    shared = package(store, 1)
    register(store, "fraud", 1, run_id=run_a)
    register(store, "churn", 2, run_id=run_b)
    register(store, "churn", 1, run_id=run_a)
    register(store, "churn", 3)
    assert [v.ref for v in store.models.versions_of_run(run_a)] == ["churn/2", "fraud/1"]
    assert [v.ref for v in store.models.versions_of_run(run_b)] == ["churn/1"]
    assert store.models.versions_of_run(new_run(store)) == []
    assert [v.ref for v in store.models.versions_of_artifact(shared)] == ["churn/2", "fraud/1"]
    assert store.models.versions_of_artifact("missing") == []
    # a registered package is not a garbage-collection candidate
    assert shared not in {a.id for a in store.unreferenced_artifacts()}


def test_version_tags_and_description(store: SqlStore) -> None:
    register(store, "churn", tags={"dataset": "june"})
    register(store, "churn", 1)
    store.models.set_version_tags("churn", 1, {"dataset": "july", "validated": True})
    assert store.models.get_version("churn", 1).tags == {"dataset": "july", "validated": "True"}
    assert store.models.get_version("churn", 2).tags == {}
    updated = store.models.update_version("churn", 2, description="retrained", actor="bob")
    assert updated.description == "retrained"
    assert store.models.get_version("churn", 1).description == ""
    assert [(e.action, e.actor) for e in store.list_audit(object_id="churn/2")] == [
        ("update", "bob"),
        ("create", "ann"),
    ]


# -- aliases ----------------------------------------------------------------------------------


def test_aliases_show_on_the_model_and_on_versions(store: SqlStore) -> None:
    for n in range(3):
        register(store, "churn", n)
    store.models.set_alias("churn", "production", 2, actor="ann")
    store.models.set_alias("churn", "staging", 2, actor="ann")
    store.models.set_alias("churn", "challenger", 3, actor="ann")
    register(store, "fraud")  # another model's aliases stay its own
    store.models.set_alias("fraud", "production", 1, actor="ann")
    model = store.models.get_model("churn")
    assert model.aliases == {"challenger": 3, "production": 2, "staging": 2}
    assert store.models.get_version("churn", 2).aliases == ("production", "staging")
    assert [(v.version, v.aliases) for v in store.models.list_versions("churn")] == [
        (3, ("challenger",)),
        (2, ("production", "staging")),
        (1, ()),
    ]
    assert store.models.get_version_by_alias("churn", "production").version == 2
    assert store.models.get_version_by_alias("fraud", "production").ref == "fraud/1"
    assert [m.aliases for m in store.models.list_models()] == [
        {"challenger": 3, "production": 2, "staging": 2},
        {"production": 1},
    ]


def test_moving_an_alias_is_audited_and_announced(store: SqlStore) -> None:
    register(store, "churn")
    register(store, "churn", 1)
    first = store.models.set_alias("churn", "production", 1, actor="ann")
    assert first == AliasChange("churn", "production", 1, None)
    moved = store.models.set_alias("churn", "production", "2", actor="bob")  # type: ignore[arg-type]
    assert moved == AliasChange("churn", "production", 2, 1)
    again = store.models.set_alias("churn", "production", 2, actor="cy")
    assert again == AliasChange("churn", "production", 2, 2)
    audit = [
        (e.actor, e.details) for e in store.list_audit(object_id="churn") if e.action == "set_alias"
    ]
    assert audit == [
        ("cy", {"alias": "production", "version": 2, "previous_version": 2}),
        ("bob", {"alias": "production", "version": 2, "previous_version": 1}),
        ("ann", {"alias": "production", "version": 1, "previous_version": None}),
    ]
    changed = store.events.list_events(kind="model_alias.changed")
    assert [(e.subject, e.actor, e.payload) for e in changed] == [
        (
            "churn@production",
            actor,
            {"model": "churn", "alias": "production", "version": v, "previous_version": p},
        )
        for actor, v, p in [("ann", 1, None), ("bob", 2, 1), ("cy", 2, 2)]
    ]
    assert store.models.get_model("churn").aliases == {"production": 2}


def test_deleting_an_alias(store: SqlStore) -> None:
    register(store, "churn")
    store.models.set_alias("churn", "production", 1, actor="ann")
    store.models.set_alias("churn", "staging", 1, actor="ann")
    change = store.models.delete_alias("churn", "production", actor="bob")
    assert change == AliasChange("churn", "production", None, 1)
    assert store.models.get_model("churn").aliases == {"staging": 1}
    assert store.models.get_version("churn", 1).aliases == ("staging",)
    entry = store.list_audit(object_id="churn")[0]
    assert (entry.actor, entry.action, entry.details) == (
        "bob",
        "delete_alias",
        {"alias": "production", "version": None, "previous_version": 1},
    )
    [event] = store.events.list_events(kind="model_alias.deleted")
    assert (event.subject, event.actor, event.payload) == (
        "churn@production",
        "bob",
        {"model": "churn", "alias": "production", "version": None, "previous_version": 1},
    )
    with pytest.raises(
        NotFoundError,
        match=re.escape(
            "model 'churn' has no alias 'production' (its aliases: staging); set one with "
            "`mloop models alias churn production <version>`"
        ),
    ):
        store.models.get_version_by_alias("churn", "production")
    before = snapshot(store)
    with pytest.raises(NotFoundError, match="model 'churn' has no alias 'production' to delete"):
        store.models.delete_alias("churn", "production", actor="bob")
    assert snapshot(store) == before


def test_aliasing_a_missing_version_leaves_the_alias_alone(store: SqlStore) -> None:
    register(store, "churn")
    register(store, "fraud")
    register(store, "fraud", 1)
    store.models.set_alias("churn", "production", 1, actor="ann")
    before = snapshot(store)
    with pytest.raises(NotFoundError, match="model 'churn' has no version 2; its versions are 1"):
        store.models.set_alias("churn", "production", 2, actor="bob")  # fraud has a 2; churn not
    with pytest.raises(NotFoundError, match="model 'churn' has no version 5"):
        store.models.set_alias("churn", "staging", 5, actor="bob")
    assert snapshot(store) == before
    assert store.models.get_version_by_alias("churn", "production").version == 1


# -- hostile and invalid input ----------------------------------------------------------------
# Each test loops over its bad inputs in one store (a fresh PostgreSQL database costs ~0.2 s);
# refuse() names the input that was accepted or refused the wrong way.


def refuse(error: type[Exception], pattern: str, call: Callable[[], object], what: object) -> None:
    """``call()`` must raise ``error`` (a ValueError) with a message matching ``pattern``."""
    caught: Exception | None = None
    try:
        call()
    except Exception as raised:
        caught = raised
    assert isinstance(caught, error), f"{what!r} gave {caught!r}, not {error.__name__}"
    assert isinstance(caught, ValueError), what
    assert re.search(pattern, str(caught)), f"{what!r}: {caught}"


BAD_NAMES = [
    "a/b",
    "churn@production",
    "models:churn",
    "my model",
    " churn",
    "churn\n",
    "churn\x00",
    "..",
    "../etc",
    ".hidden",
    "churn.",
    "-churn",
    "_churn",
    "",
    "m" * 129,
    "\u0441hurn",  # Cyrillic es
    "\uff43hurn",  # fullwidth c
    "ch\u00fcrn",
    "churn\u200b",  # zero-width space
    "churn'; DROP TABLE registered_models; --",
    "' OR '1'='1",
    "churn%",
]


def name_calls(artifact_id: str) -> dict[str, Callable[[SqlStore, Any], object]]:
    return {
        "create_model": lambda s, n: s.models.create_model(n, actor="ann"),
        "create_version": lambda s, n: s.models.create_version(
            n, artifact_id=artifact_id, flavor="sklearn", actor="ann"
        ),
        "get_model": lambda s, n: s.models.get_model(n),
        "update_model": lambda s, n: s.models.update_model(n, description="d", actor="ann"),
        "set_model_tags": lambda s, n: s.models.set_model_tags(n, {"a": "b"}),
        "list_versions": lambda s, n: s.models.list_versions(n),
        "get_version": lambda s, n: s.models.get_version(n, 1),
        "get_version_by_alias": lambda s, n: s.models.get_version_by_alias(n, "production"),
        "set_version_tags": lambda s, n: s.models.set_version_tags(n, 1, {"a": "b"}),
        "set_alias": lambda s, n: s.models.set_alias(n, "production", 1, actor="ann"),
        "delete_alias": lambda s, n: s.models.delete_alias(n, "production", actor="ann"),
    }


def shown(text: str) -> str:
    """How a refused name appears in a message: quoted, and a long one cut to 57 + '...'."""
    return re.escape(repr(text if len(text) <= 60 else text[:57] + "..."))


def test_bad_model_names_are_refused_everywhere(store: SqlStore) -> None:
    register(store, "churn")
    store.models.set_alias("churn", "production", 1, actor="ann")
    before = snapshot(store)
    for what, call in name_calls(package(store)).items():
        for name in BAD_NAMES:
            pattern = f"^model name {shown(name)} is not allowed; use 1-128 letters"
            refuse(InvalidKeyError, pattern, lambda: call(store, name), (what, name))  # noqa: B023
        for name in (None, 42, b"churn", ["churn"]):
            pattern = f"^model name must be a string, not {type(name).__name__}$"
            refuse(InvalidKeyError, pattern, lambda: call(store, name), (what, name))  # noqa: B023
    assert snapshot(store) == before


def test_names_at_the_limits_are_accepted(store: SqlStore) -> None:
    for name in ("m" * 128, "7", "a.b-c_D", "churn--drop-table"):
        assert register(store, name).ref == f"{name}/1"


BAD_ALIASES = [
    ("1", "not allowed"),
    ("42", "not allowed"),
    ("3rd", "not allowed"),
    ("latest", "reserved: '@latest' always means the newest version"),
    ("LATEST", "reserved"),
    ("Latest", "reserved"),
    ("a" * 65, "not allowed"),
    ("", "not allowed"),
    ("prod uction", "not allowed"),
    ("prod/x", "not allowed"),
    ("prod@x", "not allowed"),
    ("prod.x", "not allowed"),
    ("-prod", "not allowed"),
    ("pr\u00f6d", "not allowed"),
    ("\u0440rod", "not allowed"),  # Cyrillic er
    ("prod\n", "not allowed"),
    ("x' OR '1'='1", "not allowed"),
]


def test_bad_aliases_are_refused(store: SqlStore) -> None:
    register(store, "churn")
    store.models.set_alias("churn", "production", 1, actor="ann")
    before = snapshot(store)
    calls: dict[str, Callable[[Any], object]] = {
        "set_alias": lambda a: store.models.set_alias("churn", a, 1, actor="ann"),
        "delete_alias": lambda a: store.models.delete_alias("churn", a, actor="ann"),
        "get_version_by_alias": lambda a: store.models.get_version_by_alias("churn", a),
    }
    for what, call in calls.items():
        for alias, why in BAD_ALIASES:
            if alias == "latest" and what == "get_version_by_alias":
                continue  # reading @latest is the one use of the reserved word
            pattern = f"^alias {shown(alias)} is {why}"
            refuse(InvalidKeyError, pattern, lambda: call(alias), (what, alias))  # noqa: B023
        for alias in (7, None, 1.5, b"prod"):
            pattern = f"^alias must be a string, not {type(alias).__name__}$"
            refuse(InvalidKeyError, pattern, lambda: call(alias), (what, alias))  # noqa: B023
    assert snapshot(store) == before
    longest = "a" * 64
    assert store.models.set_alias("churn", longest, 1, actor="ann").version == 1
    assert store.models.get_model("churn").aliases == {"production": 1, longest: 1}


BAD_VERSIONS = [0, -1, True, False, None, 1.5, 1.0, "abc", "1.5", "0", "-1", "", " 1", "\uff11"]


def test_bad_version_numbers_are_refused(store: SqlStore) -> None:
    register(store, "churn")
    before = snapshot(store)
    calls: dict[str, Callable[[Any], object]] = {
        "get_version": lambda v: store.models.get_version("churn", v),
        "set_alias": lambda v: store.models.set_alias("churn", "production", v, actor="ann"),
        "set_version_tags": lambda v: store.models.set_version_tags("churn", v, {"a": "b"}),
        "update_version": lambda v: store.models.update_version(
            "churn", v, description="d", actor="ann"
        ),
    }
    for what, call in calls.items():
        for version in [*BAD_VERSIONS, 2**31, 2**63]:
            pattern = (
                f"^model version must be a positive integer.*, not {re.escape(repr(version))}$"
            )
            refuse(InvalidValueError, pattern, lambda: call(version), (what, version))  # noqa: B023
    assert snapshot(store) == before
    with pytest.raises(NotFoundError, match="has no version 2147483647"):
        store.models.get_version("churn", 2**31 - 1)  # the largest number there can be


def test_bad_descriptions_are_refused(store: SqlStore) -> None:
    register(store, "churn")
    artifact_id = package(store)
    before = snapshot(store)
    calls: dict[str, Callable[[Any], object]] = {
        "create_model": lambda d: store.models.create_model("fresh", actor="a", description=d),
        "update_model": lambda d: store.models.update_model("churn", description=d, actor="a"),
        "create_version": lambda d: store.models.create_version(
            "churn", artifact_id=artifact_id, flavor="sklearn", actor="a", description=d
        ),
        "update_version": lambda d: store.models.update_version(
            "churn", 1, description=d, actor="a"
        ),
    }
    bad = [
        ("x" * 20_001, "description is 20001 characters; the limit is 20000"),
        (5, "description must be a string, not int"),
        (None, "description must be a string, not NoneType"),
        (b"bytes", "description must be a string, not bytes"),
    ]
    for what, call in calls.items():
        for description, message in bad:
            refuse(
                InvalidValueError,
                f"^{re.escape(message)}$",
                lambda: call(description),  # noqa: B023
                (what, description),
            )
    assert snapshot(store) == before
    longest = "x" * 20_000
    assert store.models.update_model("churn", description=longest, actor="a").description == longest


BAD_TAGS: list[tuple[object, type[Exception], str]] = [
    ({"": "v"}, InvalidKeyError, "tag name must not be empty"),
    ({" lead": "v"}, InvalidKeyError, "tag name ' lead' has characters"),
    ({"a\nb": "v"}, InvalidKeyError, r"tag name 'a\\nb' has characters"),
    ({"../x": "v"}, InvalidKeyError, r"tag name '\.\./x' must not contain a '\.\.' segment"),
    ({"/abs": "v"}, InvalidKeyError, "tag name '/abs' has characters"),
    ({"k" * 251: "v"}, InvalidKeyError, "is 251 characters; the limit is 250"),
    ({3: "v"}, InvalidKeyError, "tag name must be a string, not int: 3"),
    ({"ok": "v", "k": {"a": 1}}, InvalidValueError, "tag 'k' must be a string, number or bool"),
    ({"k": None}, InvalidValueError, "tag 'k' must be a string, number or bool, not NoneType"),
    ({"k": ["a"]}, InvalidValueError, "tag 'k' must be a string, number or bool, not list"),
    ({"k": "x" * 8001}, InvalidValueError, "tag 'k' is 8001 characters; limit 8000"),
    ("a=b", InvalidValueError, "tags must be a mapping, not str"),
    ([("a", "b")], InvalidValueError, "tags must be a mapping, not list"),
]


def test_bad_tags_are_refused(store: SqlStore) -> None:
    register(store, "churn", tags={"keep": "me"})
    store.models.set_model_tags("churn", {"team": "ml"})
    artifact_id = package(store)
    before = snapshot(store)
    calls: dict[str, Callable[[Any], object]] = {
        "create_model": lambda tags: store.models.create_model("fresh", actor="a", tags=tags),
        "set_model_tags": lambda tags: store.models.set_model_tags("churn", tags),
        "create_version": lambda tags: store.models.create_version(
            "churn", artifact_id=artifact_id, flavor="sklearn", actor="a", tags=tags
        ),
        "set_version_tags": lambda tags: store.models.set_version_tags("churn", 1, tags),
    }
    for what, call in calls.items():
        for tags, error, pattern in BAD_TAGS:
            refuse(error, pattern, lambda: call(tags), (what, tags))  # noqa: B023
    assert snapshot(store) == before


def test_bad_flavors_and_patterns_are_refused(store: SqlStore) -> None:
    artifact_id = package(store)
    for flavor in ["", "has-dash", "two words", "1st", "f" * 33, 3, None]:
        quoted = re.escape(repr(flavor))
        refuse(
            InvalidValueError,
            f"^flavor must be an identifier of at most 32 characters, not {quoted}$",
            lambda: store.models.create_version(
                "churn",
                artifact_id=artifact_id,
                flavor=flavor,  # noqa: B023
                actor="ann",
            ),
            flavor,
        )
    for pattern in [3, b"churn%", ["churn%"], "x" * 257]:
        refuse(
            InvalidValueError,
            "^name_like must be a string of at most 256 characters$",
            lambda: store.models.list_models(name_like=pattern),  # noqa: B023
            pattern,
        )
    assert snapshot(store) == ([], [], [], [])
    assert register(store, "churn", flavor="f" * 32).flavor == "f" * 32


# -- against a reference model ----------------------------------------------------------------

ALIASES = ("production", "staging")
operations = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.integers(0, 2)),
        st.tuples(st.just("set"), st.integers(0, 2), st.sampled_from(ALIASES), st.integers(1, 4)),
        st.tuples(st.just("delete"), st.integers(0, 2), st.sampled_from(ALIASES)),
    ),
    max_size=15,
)
_examples = itertools.count()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations)
def test_the_registry_behaves_like_a_dict_of_counters(
    store: SqlStore, ops: list[tuple[Any, ...]]
) -> None:
    names = [f"m{next(_examples)}-{i}" for i in range(3)]  # fresh names: one store, many examples
    artifact_id = package(store)
    latest: dict[str, int] = {}
    aliases: dict[str, dict[str, int]] = {}
    expected_events: list[tuple[str, dict[str, Any]]] = []
    for op, index, *rest in ops:
        name = names[index]
        if op == "create":
            version = store.models.create_version(
                name, artifact_id=artifact_id, flavor="sklearn", actor="ann"
            )
            latest[name] = latest.get(name, 0) + 1
            aliases.setdefault(name, {})
            assert version.version == latest[name]
            created = {"model": name, "version": latest[name], "artifact_id": artifact_id}
            expected_events.append(
                ("model_version.created", {**created, "run_id": None, "flavor": "sklearn"})
            )
            continue
        alias = rest[0]
        target = rest[1] if op == "set" else None
        if (
            name not in latest
            or (target or 0) > latest[name]
            or (target is None and alias not in aliases[name])
        ):
            with pytest.raises(NotFoundError):
                if target is None:
                    store.models.delete_alias(name, alias, actor="ann")
                else:
                    store.models.set_alias(name, alias, target, actor="ann")
            continue
        previous = aliases[name].get(alias)
        if target is None:
            change = store.models.delete_alias(name, alias, actor="ann")
            del aliases[name][alias]
            kind = "model_alias.deleted"
        else:
            change = store.models.set_alias(name, alias, target, actor="ann")
            aliases[name][alias] = target
            kind = "model_alias.changed"
        assert change == AliasChange(name, alias, target, previous)
        payload = {"model": name, "alias": alias, "version": target, "previous_version": previous}
        expected_events.append((kind, payload))
    for name in names:
        if name not in latest:
            with pytest.raises(NotFoundError):
                store.models.get_model(name)
            continue
        model = store.models.get_model(name)
        assert (model.latest_version, model.aliases) == (latest[name], aliases[name])
        versions = store.models.list_versions(name)
        assert [v.version for v in versions] == list(range(latest[name], 0, -1))
        assert [v.aliases for v in versions] == [
            tuple(sorted(a for a, n in aliases[name].items() if n == v.version)) for v in versions
        ]
    events = [
        (e.kind, e.payload)
        for e in store.events.list_events(limit=10_000)
        if e.payload["model"] in names
    ]
    assert events == expected_events


# -- concurrency, with real processes ---------------------------------------------------------


# A child imports only mloop.store (a spawned multiprocessing child would import this module,
# pytest and hypothesis too: seconds per process on a small CI machine).
CHILD = """
import json, sys, time
from pathlib import Path
from mloop.store import SqlStore

url, work, arg, folder = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
store = SqlStore(url)
# Warm up on another model, so that every statement is compiled and connected before the
# start: then the children reach the database within a millisecond or two of each other.
if work == "register":
    warmup = f"warmup-{time.monotonic_ns()}"
    store.models.create_version(warmup, artifact_id=arg, flavor="f", actor="w")
else:
    store.models.set_alias("warmup", "w", 1, actor="w")
(folder / f"ready-{arg}-{time.monotonic_ns()}").touch()
deadline = time.monotonic() + 120
while not (folder / "go").exists():
    if time.monotonic() > deadline:
        sys.exit("never released")
    time.sleep(0.002)
if work == "register":
    done = [
        store.models.create_version("shared", artifact_id=arg, flavor="sklearn", actor="w").version
        for _ in range(5)
    ]
else:
    change = store.models.set_alias("shared", "production", int(arg), actor=f"p{arg}")
    done = [change.version, change.previous_version]
store.close()
print(json.dumps(done))
"""


def run_children(url: str, work: str, args: list[str], folder: Path) -> list[Any]:
    """One child process per arg, released together once all have opened the store."""
    folder.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url, work, arg, str(folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for arg in args
    ]
    try:
        deadline = time.monotonic() + 120
        while len(list(folder.glob("ready-*"))) < len(procs):
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            assert time.monotonic() < deadline, "the children did not start"
            time.sleep(0.01)
        (folder / "go").touch()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert err == ""
    return [json.loads(out) for out, _ in outputs]


def test_six_processes_registering_at_once_get_distinct_numbers(
    store: SqlStore, store_url: str, tmp_path: Path
) -> None:
    artifact_id = package(store)
    numbers = run_children(store_url, "register", [artifact_id] * 6, tmp_path / "kids")
    for mine in numbers:
        assert mine == sorted(mine)  # each process sees its own versions increase
    assert sorted(n for mine in numbers for n in mine) == list(range(1, 31))
    assert [v.version for v in store.models.list_versions("shared")] == list(range(30, 0, -1))
    assert store.models.get_model("shared").latest_version == 30
    created = store.events.list_events(kind="model_version.created")
    assert sorted(e.payload["version"] for e in created if e.payload["model"] == "shared") == list(
        range(1, 31)
    )
    model_entries = [e for e in store.list_audit(object_id="shared") if e.action == "create"]
    assert len(model_entries) == 1  # the name was registered once, by whoever came first


def test_six_processes_moving_one_alias_leave_a_consistent_chain(
    store: SqlStore, store_url: str, tmp_path: Path
) -> None:
    for n in range(6):
        register(store, "shared", n)
    register(store, "warmup")
    results = run_children(store_url, "promote", ["1", "2", "3", "4", "5", "6"], tmp_path / "kids")
    # Who came first, and so what each mover replaced, is up to the database; the moves must
    # form one chain nevertheless: each replaced the version the mover before it set.
    audit = [e for e in store.list_audit(object_id="shared") if e.action == "set_alias"][::-1]
    assert {(e.actor, e.details["version"]) for e in audit} == {(f"p{n}", n) for n in range(1, 7)}
    replaced = {e.details["previous_version"]: e.details["version"] for e in audit}
    assert len(replaced) == 6  # no two movers replaced the same version: no move was lost
    assert None in replaced  # and exactly one found the alias unset
    chain = [replaced[None]]
    while chain[-1] in replaced and len(chain) < 6:
        chain.append(replaced[chain[-1]])
    assert sorted(chain) == [1, 2, 3, 4, 5, 6]
    moves = [(None if i == 0 else chain[i - 1], v) for i, v in enumerate(chain)]
    # The audit log lists the moves in that order. (Its ids are UUIDv7 from six processes: the
    # order is certain only between entries written in different milliseconds.)
    for older, newer in itertools.pairwise(audit):
        if older.time < newer.time:
            assert chain.index(older.details["version"]) < chain.index(newer.details["version"])
    assert {(p, v) for v, p in results} == set(moves)  # what each process was told
    final = store.models.get_version_by_alias("shared", "production").version
    assert final == chain[-1]
    assert store.models.get_model("shared").aliases == {"production": final}
    changed = [
        (e.payload["previous_version"], e.payload["version"], e.actor)
        for e in store.events.list_events(kind="model_alias.changed")
        if e.subject == "shared@production"
    ]
    assert sorted(changed, key=lambda c: chain.index(c[1])) == [(p, v, f"p{v}") for p, v in moves]


# -- migration ----------------------------------------------------------------------------------


def test_a_0001_database_with_data_upgrades_and_keeps_it(store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with write_transaction(engine) as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
        with write_transaction(engine) as conn:
            conn.execute(t.experiments.insert().values(id="e1", name="old", created_ms=1000))
            conn.execute(
                t.runs.insert().values(
                    id="r1",
                    experiment_id="e1",
                    name="before",
                    kind="run",
                    status="finished",
                    start_ms=1000,
                    end_ms=2000,
                    user="ann",
                )
            )
            conn.execute(t.params.insert().values(run_id="r1", key="lr", value="0.1"))
            conn.execute(
                t.metrics.insert().values(
                    run_id="r1", key="auc", step=0, timestamp_ms=1500, value=0.75
                )
            )
            conn.execute(
                t.latest_metrics.insert().values(
                    run_id="r1", key="auc", step=0, timestamp_ms=1500, value=0.75
                )
            )
            conn.execute(
                t.artifacts.insert().values(
                    id="a1",
                    digest="f" * 64,
                    kind="model",
                    size=42,
                    uri="/blobs/ff",
                    meta={"flavor": "sklearn"},
                    created_ms=1500,
                )
            )
            conn.execute(
                t.lineage.insert().values(
                    run_id="r1", artifact_id="a1", direction="output", name="model", created_ms=1500
                )
            )
        with engine.connect() as conn:
            assert (
                conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0001"
            )
            assert REGISTRY_TABLES.isdisjoint(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()

    store = SqlStore(store_url)
    try:
        run = store.get_run("r1")
        assert (run.name, run.status, run.params, run.metrics) == (
            "before",
            "finished",
            {"lr": "0.1"},
            {"auc": 0.75},
        )
        assert [p.value for p in store.get_metric_history("r1", "auc")] == [0.75]
        [edge] = store.list_lineage("r1")
        assert (edge.artifact.id, edge.artifact.meta, edge.name) == (
            "a1",
            {"flavor": "sklearn"},
            "model",
        )
        assert [e.name for e in store.list_experiments()] == ["old"]
        version = store.models.create_version(
            "churn", artifact_id="a1", flavor="sklearn", actor="ann", run_id="r1"
        )
        assert (version.ref, version.digest, version.meta) == (
            "churn/1",
            "f" * 64,
            {"flavor": "sklearn"},
        )
        store.models.set_alias("churn", "production", 1, actor="ann")
        assert [v.ref for v in store.models.versions_of_run("r1")] == ["churn/1"]
        assert [e.kind for e in store.events.list_events()] == [
            "model_version.created",
            "model_alias.changed",
        ]
    finally:
        store.close()
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            assert (
                conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
                == SCHEMA_HEAD
            )
            assert set(sa.inspect(conn).get_table_names()) >= REGISTRY_TABLES
    finally:
        engine.dispose()
