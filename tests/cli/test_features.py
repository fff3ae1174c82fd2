"""mloop apply / materialize / features list / show, and the feature server over HTTP."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mloop.features import FeatureStore
from mloop.serving import create_feature_app

from .helpers import Invoke

T0 = datetime(2026, 11, 1, tzinfo=UTC)

FEATURES_PY = """
from datetime import timedelta

import pandas as pd

from mloop.features import (
    Constraint, Entity, FeatureView, Field, FileSource, RequestSource, on_demand_feature_view,
)

customer = Entity("customer", join_keys=["customer_id"])
stats = FeatureView(
    name="customer_stats",
    entities=[customer],
    source=FileSource("data/stats.parquet"),
    schema=[
        Field("amount_7d", "float64", constraint=Constraint(min=0)),
        Field("orders_7d", "int64"),
    ],
    ttl=timedelta(days=30),
)


@on_demand_feature_view(
    inputs=["customer_stats:amount_7d"],
    request=RequestSource("checkout", (Field("basket", "float64"),)),
    schema=[Field("basket_share", "float64")],
)
def basket_share(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"basket_share": df["basket"] / (df["amount_7d"] + 1.0)})
"""


@pytest.fixture
def feature_project(project: Path) -> Path:
    (project / "features.py").write_text(textwrap.dedent(FEATURES_PY))
    (project / "data").mkdir()
    pd.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "event_timestamp": [T0, T0 + timedelta(days=2), T0],
            "amount_7d": [10.0, 20.0, 5.0],
            "orders_7d": [1, 2, 3],
        }
    ).to_parquet(project / "data" / "stats.parquet")
    return project


def test_apply_prints_a_plan_and_is_idempotent(cli: Invoke, feature_project: Path) -> None:
    dry = cli("apply", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "+ feature view customer_stats" in dry.stdout
    assert "Would apply: 3 new, 0 changed, 0 unchanged." in dry.stdout
    first = cli("apply")
    assert first.exit_code == 0, first.output
    assert "+ feature view customer_stats (version 1)" in first.stdout
    again = cli("apply")
    assert "= feature view customer_stats (version 1, unchanged)" in again.stdout
    path = feature_project / "features.py"
    path.write_text(
        path.read_text().replace('Field("orders_7d", "int64")', 'Field("orders_7d", "float64")')
    )
    changed = cli("apply")
    assert changed.exit_code == 0, changed.output
    assert "~ feature view customer_stats: version 1 → 2" in changed.stdout
    assert "~ field orders_7d: int64 → float64" in changed.stdout
    assert "breaking: orders_7d" in changed.stdout


def test_apply_reports_a_broken_features_py(cli: Invoke, project: Path) -> None:
    missing = cli("apply")
    assert missing.exit_code == 1
    assert "no feature definitions" in missing.stderr
    (project / "features.py").write_text("raise RuntimeError('boom')\n")
    broken = cli("apply")
    assert broken.exit_code == 1
    assert "RuntimeError: boom" in broken.stderr


def test_materialize_list_and_show(cli: Invoke, feature_project: Path) -> None:
    assert cli("apply").exit_code == 0
    done = cli("materialize", "--end", "2026-11-05")
    assert done.exit_code == 0, done.output
    assert "customer_stats" in done.stdout
    [line] = [line for line in done.stdout.splitlines() if line.startswith("customer_stats  1")]
    assert line.split()[-2:] == ["2", "0"]  # rows, violations
    again = cli("materialize", "--incremental", "--end", "2026-11-05")
    assert "Nothing to materialize" in again.stdout
    listed = cli("features", "list")
    assert listed.exit_code == 0, listed.output
    assert "basket_share" in listed.stdout
    shown = cli("features", "show", "customer_stats")
    assert shown.exit_code == 0, shown.output
    assert "amount_7d" in shown.stdout
    assert "min=0" in shown.stdout
    assert "finished" in shown.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("materialize", "--end", "yesterday"), "not an ISO-8601 time"),
        (("materialize", "--incremental", "--start", "2026-11-01"), "drop --start"),
        (("materialize", "--view", "nope", "--end", "2026-11-05"), "no feature view 'nope'"),
        (("features", "show", "nope"), "no feature view 'nope'"),
    ],
)
def test_bad_input_is_a_clear_error(
    cli: Invoke, feature_project: Path, args: tuple[str, ...], message: str
) -> None:
    assert cli("apply").exit_code == 0
    result = cli(*args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr


def test_the_feature_server_answers_like_feasts(feature_project: Path) -> None:
    store = FeatureStore()
    store.apply()
    store.materialize(None, T0 + timedelta(days=5))
    client = TestClient(create_feature_app(store))
    assert client.get("/health").json() == {"status": "ok"}
    body = {
        "features": ["customer_stats:amount_7d", "basket_share:basket_share"],
        "entities": {"customer_id": [1, 7], "basket": [21.0, 3.0]},
    }
    answer = client.post("/get-online-features", json=body)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["metadata"]["feature_names"] == ["customer_id", "amount_7d", "basket_share"]
    assert data["results"][1] == {"values": [20.0, None], "statuses": ["present", "not_found"]}
    assert data["results"][2]["values"][0] == pytest.approx(1.0)
    for bad, status in (
        ({"features": ["nope:x"], "entities": {"customer_id": [1]}}, 404),
        ({"features": ["customer_stats:amount_7d"], "entities": {"customer": [1]}}, 422),
        ({"features": [], "entities": {"customer_id": [1]}}, 422),
        (
            {"features": ["customer_stats:amount_7d"], "entities": {"customer_id": [1], "x": []}},
            422,
        ),
        ({"entities": {"customer_id": [1]}}, 422),
    ):
        response = client.post("/get-online-features", json=bad)
        assert response.status_code == status, (bad, response.text)
        assert "detail" in response.json()
    malformed = client.post(
        "/get-online-features", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 422
    huge = client.post(
        "/get-online-features",
        json={
            "features": ["customer_stats:amount_7d"],
            "entities": {"customer_id": list(range(20_000))},
        },
    )
    assert huge.status_code == 413
