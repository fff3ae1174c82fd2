"""FeatureStore end to end: apply, training data, materialization, online lookups, lineage."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mloop
from mloop.errors import ConflictError, InvalidValueError, NotFoundError
from mloop.features import (
    Constraint,
    Entity,
    FeatureStore,
    FeatureValidationError,
    FeatureView,
    Field,
    FileSource,
)
from mloop.features._apply import apply_definitions
from mloop.features._project import collect
from mloop.features._refs import AppliedCache

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def customer_view(path: str = "data/stats.parquet", **changes: object) -> list[object]:
    customer = Entity("customer", join_keys=["customer_id"])
    fields = changes.pop(
        "schema",
        [
            Field("amount_7d", "float64", constraint=Constraint(min=0)),
            Field("orders_7d", "int64"),
        ],
    )
    view = FeatureView(
        name="customer_stats",
        entities=[customer],
        source=FileSource(path),
        schema=fields,  # type: ignore[arg-type]
        ttl=timedelta(days=30),
        created_timestamp_field="created",
        **changes,  # type: ignore[arg-type]
    )
    return [customer, view]


def write_source(project: Path, rows: list[tuple[int, datetime, float, int]]) -> None:
    (project / "data").mkdir(exist_ok=True)
    pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "event_timestamp": [r[1] for r in rows],
            "created": [r[1] for r in rows],
            "amount_7d": [r[2] for r in rows],
            "orders_7d": [r[3] for r in rows],
        }
    ).to_parquet(project / "data" / "stats.parquet")


@pytest.fixture(params=["sqlite", "redis"])
def online_uri(request: pytest.FixtureRequest, isolated_settings: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{isolated_settings / 'online.db'}"
        return
    import redis

    server = request.getfixturevalue("redis_server")
    url = f"{server}/1"  # database 1: the online store suite uses 0; one test here uses it
    client = redis.Redis.from_url(url, socket_timeout=2)
    yield url
    for key in client.scan_iter("mloop:customer_stats:*"):
        client.delete(key)
    client.delete("mloop:layouts")
    client.close()


@pytest.fixture
def project(isolated_settings: Path) -> Path:
    write_source(
        isolated_settings,
        [
            (1, T0, 10.0, 1),
            (1, T0 + timedelta(days=2), 20.0, 2),
            (2, T0, 5.0, 3),
            (3, T0 - timedelta(days=60), 1.0, 4),  # outside the 30-day ttl at T0
        ],
    )
    return isolated_settings


def test_apply_versions_only_what_changed(project: Path) -> None:
    store = FeatureStore()
    first = store.apply(customer_view())
    assert [(c.kind, c.action, c.new_version) for c in first] == [
        ("entity", "create", 1),
        ("feature_view", "create", 1),
    ]
    again = store.apply(customer_view())
    assert [c.action for c in again] == ["unchanged", "unchanged"]
    changed = customer_view(
        schema=[Field("amount_7d", "float64"), Field("orders_7d", "int64"), Field("x", "bool")]
    )
    plan = store.plan(changed)
    view_change = plan[1]
    assert view_change.action == "update"
    assert view_change.new_version is None
    assert "+ field x: bool" in view_change.details
    assert view_change.breaking == []
    applied = store.apply(changed)
    assert applied[1].new_version == 2
    history = store.store.features.definition_history("feature_view", "customer_stats")
    assert [d.version for d in history] == [1, 2]
    kinds = [e.kind for e in store.store.events.list_events(kind="feature_view.*")]
    assert kinds == ["feature_view.applied", "feature_view.applied"]


def test_breaking_changes_used_by_a_registered_model_need_force(project: Path) -> None:
    from sklearn.linear_model import LinearRegression

    store = FeatureStore()
    store.apply(customer_view())
    X = pd.DataFrame({"amount_7d": [1.0, 2.0, 3.0], "orders_7d": [1, 2, 3]})
    mloop.register(LinearRegression().fit(X, [1.0, 2.0, 3.0]), "spend", input_example=X)
    retyped = customer_view(schema=[Field("amount_7d", "float64"), Field("orders_7d", "string")])
    with pytest.raises(ConflictError, match=r"orders_7d used by spend/1"):
        store.apply(retyped)
    assert store.store.features.get_definition("feature_view", "customer_stats").version == 1
    forced = store.apply(retyped, force=True)
    assert forced[1].new_version == 2
    assert forced[1].breaking == ["orders_7d"]


def test_historical_features_are_point_in_time_and_keep_every_row(project: Path) -> None:
    store = FeatureStore()
    store.apply(customer_view())
    entity_df = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3, 4],
            "event_timestamp": [T0 + timedelta(days=1), T0 + timedelta(days=3), T0, T0, T0],
            "label": [0, 1, 0, 1, 0],
        },
        index=["a", "b", "c", "d", "e"],
    )
    training = store.get_historical_features(
        entity_df, ["customer_stats:amount_7d", "customer_stats:orders_7d"]
    )
    assert list(training.index) == ["a", "b", "c", "d", "e"]
    assert training["amount_7d"].tolist()[:3] == [10.0, 20.0, 5.0]
    assert training["amount_7d"].iloc[3:].isna().all()  # ttl, and an unknown customer
    pd.testing.assert_series_equal(training["label"], entity_df["label"])
    [lineage] = training.attrs["mloop.feature_views"]
    assert (lineage["name"], lineage["version"]) == ("customer_stats", 1)

    with mloop.start_run(experiment="train") as run:
        run.log_dataset(training, name="training")
    names = {(e.direction, e.name, e.artifact.kind) for e in run.lineage()}
    assert ("input", "feature_views/customer_stats/v1", "feature_view") in names
    assert ("input", "datasets/train/training", "dataset") in names


@pytest.mark.parametrize(
    ("refs", "error", "message"),
    [
        (["nope:amount_7d"], NotFoundError, "no feature view 'nope'"),
        (["customer_stats:nope"], InvalidValueError, "has no feature 'nope'"),
        (["customer_stats"], InvalidValueError, "view:feature"),
        ("customer_stats:amount_7d", InvalidValueError, "non-empty list"),
    ],
)
def test_bad_feature_references(
    project: Path, refs: object, error: type[Exception], message: str
) -> None:
    store = FeatureStore()
    store.apply(customer_view())
    entity_df = pd.DataFrame({"customer_id": [1], "event_timestamp": [T0]})
    with pytest.raises(error, match=message):
        store.get_historical_features(entity_df, refs)  # type: ignore[arg-type]


def test_materialize_then_online_lookup(project: Path, online_uri: str) -> None:
    store = FeatureStore(online_store=online_uri)
    store.apply(customer_view())
    [result] = store.materialize(None, T0 + timedelta(days=5))
    assert (result.status, result.rows) == ("finished", 2)  # customer 3 is past its ttl
    found = store.get_online_features(
        ["customer_stats:amount_7d", "customer_stats:orders_7d"],
        [{"customer_id": 2}, {"customer_id": 1}, {"customer_id": 3}],
    )
    assert found.columns == {
        "customer_id": [2, 1, 3],
        "amount_7d": [5.0, 20.0, None],
        "orders_7d": [3, 2, None],
    }
    assert found.statuses["amount_7d"] == ["present", "present", "not_found"]
    record = store.store.features.last_materialization("customer_stats", store._shown_uri())
    assert record is not None
    assert record.stats["amount_7d"]["count"] == 2
    assert store.materialize_incremental(T0 + timedelta(days=5)) == []


def test_incremental_materialization_picks_up_new_rows(project: Path) -> None:
    store = FeatureStore()
    store.apply(customer_view())
    store.materialize(None, T0 + timedelta(days=5))
    write_source(
        project, [(1, T0 + timedelta(days=2), 20.0, 2), (1, T0 + timedelta(days=6), 99.0, 9)]
    )
    [result] = store.materialize_incremental(T0 + timedelta(days=7))
    assert result.start == T0 + timedelta(days=5)
    assert result.rows == 1
    found = store.get_online_features(["customer_stats:amount_7d"], [{"customer_id": 1}])
    assert found.columns["amount_7d"] == [99.0]


def test_invalid_data_blocks_the_write_and_is_recorded(project: Path) -> None:
    store = FeatureStore()
    store.apply(customer_view())
    store.materialize(None, T0 + timedelta(days=5))
    write_source(project, [(1, T0 + timedelta(days=6), -5.0, 9)])
    with pytest.raises(FeatureValidationError, match="amount_7d"):
        store.materialize(None, T0 + timedelta(days=7))
    found = store.get_online_features(["customer_stats:amount_7d"], [{"customer_id": 1}])
    assert found.columns["amount_7d"] == [20.0]  # the previous value, untouched
    [failed, _] = store.store.features.list_materializations(view="customer_stats")
    assert failed.status == "failed"
    assert failed.validation["violations"][0]["column"] == "amount_7d"
    warn = customer_view(validation="warn")
    store.apply(warn)
    [written] = store.materialize(None, T0 + timedelta(days=7))
    assert (written.status, written.violations) == ("finished", 1)


def test_online_entity_rows_are_checked(project: Path) -> None:
    store = FeatureStore()
    store.apply(customer_view())
    with pytest.raises(InvalidValueError, match="lacks join key 'customer_id'"):
        store.get_online_features(["customer_stats:amount_7d"], [{"customer": 1}])
    with pytest.raises(InvalidValueError, match="list of dicts"):
        store.get_online_features(["customer_stats:amount_7d"], {"customer_id": 1})  # type: ignore[arg-type]


# -- offline/online consistency -------------------------------------------------------------

rows_strategy = st.lists(
    st.tuples(
        st.integers(0, 5),  # customer
        st.integers(0, 40),  # day of the event
        st.floats(0, 1000, allow_nan=False),
        st.integers(0, 100),
    ),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=rows_strategy, end_day=st.integers(0, 45))
def test_online_values_equal_the_offline_store_at_materialization_time(
    isolated_settings: Path, rows: list[tuple[int, int, float, int]], end_day: int
) -> None:
    project = isolated_settings / f"p-{uuid.uuid4().hex[:8]}"
    project.mkdir()
    # A (customer, day) drawn twice is a complete tie (same event and created times): both
    # stores must pick the row with the greatest feature values.
    write_source(project, [(c, T0 + timedelta(days=d), a, o) for c, d, a, o in rows])
    store = FeatureStore(project, online_store=f"sqlite:///{project / 'online.db'}")
    store.apply(customer_view(str(project / "data" / "stats.parquet")))
    end = T0 + timedelta(days=end_day)
    store.materialize(None, end)
    customers = list(range(7))
    offline = store.get_historical_features(
        pd.DataFrame({"customer_id": customers, "event_timestamp": [end] * len(customers)}),
        ["customer_stats:amount_7d", "customer_stats:orders_7d"],
    )
    online = store.get_online_features(
        ["customer_stats:amount_7d", "customer_stats:orders_7d"],
        [{"customer_id": c} for c in customers],
    )
    expected_amount = [None if pd.isna(v) else float(v) for v in offline["amount_7d"]]
    expected_orders = [None if pd.isna(v) else int(v) for v in offline["orders_7d"]]
    assert online.columns["amount_7d"] == expected_amount
    assert online.columns["orders_7d"] == expected_orders
    store.close()
    assert np.all(
        np.array(online.statuses["amount_7d"])[np.isnan(np.array(expected_amount, dtype=float))]
        == "not_found"
    )


def test_stale_sources_fail_the_freshness_check(project: Path) -> None:
    store = FeatureStore()
    store.apply(customer_view(freshness=timedelta(days=1)))
    with pytest.raises(FeatureValidationError, match="fresh"):
        store.materialize(None, T0 + timedelta(days=5))  # newest row: day 2
    [fresh] = store.materialize(None, T0 + timedelta(days=2, hours=12))
    assert fresh.status == "finished"


# -- the cache of applied definitions ---------------------------------------------------------


def test_lookups_see_an_apply_in_this_process_at_once(project: Path) -> None:
    reader = FeatureStore(definitions_ttl=3600)
    reader.apply(customer_view())
    reader.materialize(None, T0 + timedelta(days=5))
    refs = ["customer_stats:amount_7d"]
    assert reader.get_online_features(refs, [{"customer_id": 1}]).columns["amount_7d"] == [20.0]
    writer = FeatureStore()  # another FeatureStore of this process drops amount_7d
    writer.apply(customer_view(schema=[Field("orders_7d", "int64")]))
    with pytest.raises(InvalidValueError, match="has no feature 'amount_7d'"):
        reader.get_online_features(refs, [{"customer_id": 1}])
    found = reader.get_online_features(["customer_stats:orders_7d"], [{"customer_id": 1}])
    assert found.columns["orders_7d"] == [2]


def test_an_apply_elsewhere_shows_once_the_ttl_has_passed(project: Path) -> None:
    store = FeatureStore()
    store.apply(customer_view())
    now = [100.0]
    cache = AppliedCache(store.store, 10.0, clock=lambda: now[0])
    first = cache.get()
    assert first.views["customer_stats"].features == ("amount_7d", "orders_7d")
    # written as another process would: this process's caches are not told
    narrower = collect(customer_view(schema=[Field("orders_7d", "int64")]))
    apply_definitions(store.store, narrower, actor="elsewhere")
    now[0] = 109.9
    assert cache.get() is first
    now[0] = 110.0
    second = cache.get()
    assert second.views["customer_stats"].features == ("orders_7d",)
    now[0] = 200.0
    assert cache.get() is second  # same versions: the same objects, and the plans kept on them
    always = AppliedCache(store.store, 0)
    assert always.get() is always.get()  # read twice, found unchanged
    for bad in (-1, "1", None, True, float("nan")):
        with pytest.raises(InvalidValueError, match="definitions_ttl must be a number"):
            FeatureStore(definitions_ttl=bad)  # type: ignore[arg-type]


def test_validation_off_skips_the_checks_not_the_statistics(project: Path) -> None:
    store = FeatureStore()
    store.apply(customer_view(validation="off", freshness=timedelta(seconds=1)))
    write_source(project, [(1, T0, -5.0, 9), (2, T0, 1.0, 1)])  # breaks min=0 and freshness
    [result] = store.materialize(None, T0 + timedelta(days=3))
    assert (result.status, result.rows, result.violations) == ("finished", 2, 0)
    [record] = store.store.features.list_materializations(view="customer_stats")
    assert record.validation == {
        "view": "customer_stats",
        "rows": 2,
        "ok": None,
        "skipped": True,
        "violations": [],
    }
    assert (record.stats["amount_7d"]["count"], record.stats["amount_7d"]["min"]) == (2, -5.0)
    found = store.get_online_features(["customer_stats:amount_7d"], [{"customer_id": 1}])
    assert found.columns["amount_7d"] == [-5.0]
