"""Batch scoring: chunks, formats, executors, the offline store, lineage and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mloop
from mloop.compute import InProcessExecutor
from mloop.config import load_settings
from mloop.errors import InvalidValueError, NotFoundError, SignatureError
from mloop.features import Entity, FeatureStore, FeatureView, Field, FileSource
from mloop.registry import load_model, set_alias
from mloop.serving._batch import predict_batch
from mloop.store import SqlStore

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def customers(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(n, dtype="int64"),
            "age": rng.integers(18, 90, n).astype("int64"),
            "income": rng.normal(50.0, 15.0, n),
        }
    )


def train(frame: pd.DataFrame) -> LogisticRegression:
    labels = (frame["income"] + frame["age"] * 0.3 > 62).astype(int)
    return LogisticRegression().fit(frame[["age", "income"]], labels)


@pytest.fixture(autouse=True)
def inprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compute setting picks the executor when none is named: in-process, for speed."""
    monkeypatch.setenv("MLOOP_COMPUTE", '{"backend": "inprocess"}')


@pytest.fixture
def churn(isolated_settings: Path) -> str:
    """A classifier registered as churn@production (version 1)."""
    data = customers(300)
    with mloop.start_run(experiment="churn") as run:
        run.log_model(train(data), name="churn", input_example=data[["age", "income"]].head())
    set_alias("churn", "production", 1)
    return "churn@production"


def expected_scores(frame: pd.DataFrame) -> pd.DataFrame:
    model = load_model("churn/1", extra_columns="drop")
    proba = model.predict_proba(frame)
    return pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy(),
            "prediction": model.predict(frame),
            "proba_0": proba[:, 0],
            "proba_1": proba[:, 1],
        }
    )


def test_parquet_in_chunks_in_order_with_lineage(churn: str, tmp_path: Path) -> None:
    data = customers(1000, seed=1)
    source = tmp_path / "customers.parquet"
    data.to_parquet(source, row_group_size=300)  # row groups that do not line up with chunks
    calls: list[tuple[int, int | None]] = []
    result = predict_batch(
        churn,
        source,
        tmp_path / "scores.parquet",
        chunk_size=128,
        executor="inprocess",
        progress=lambda done, total: calls.append((done, total)),
    )
    assert (result.rows, result.chunks, result.model) == (1000, 8, "churn/1")
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    pd.testing.assert_frame_equal(scores, expected_scores(data), check_dtype=False)
    assert calls == [(min(128 * i, 1000), 1000) for i in range(1, 9)]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    run = mloop.get_run(result.run_id)
    assert (run.kind, run.status, run.params["model"]) == ("batch_scoring", "finished", "churn/1")
    assert run.metrics["rows"] == 1000
    edges = {(e.direction, e.name): e.artifact for e in run_lineage(run.id)}
    assert edges[("input", "datasets/input/customers.parquet")].kind == "dataset"
    assert edges[("input", "models/churn/1")].kind == "model"
    assert edges[("output", "datasets/predictions/scores.parquet")].kind == "dataset"


def run_lineage(run_id: str) -> list[Any]:
    store = SqlStore(load_settings().resolved_tracking_uri())
    try:
        return store.list_lineage(run_id)
    finally:
        store.close()


def test_csv_to_csv_and_extra_columns_kept(churn: str, tmp_path: Path) -> None:
    data = customers(250, seed=2)
    data["label"] = "x"
    source = tmp_path / "in.csv"
    data.to_csv(source, index=False)
    predict_batch(churn, source, tmp_path / "out.csv", chunk_size=100, executor="inprocess")
    scores = pd.read_csv(tmp_path / "out.csv")
    assert list(scores.columns) == ["customer_id", "label", "prediction", "proba_0", "proba_1"]
    expected = expected_scores(data)
    np.testing.assert_allclose(scores["proba_1"], expected["proba_1"])
    assert scores["prediction"].tolist() == expected["prediction"].tolist()


SCORER = """
import numpy as np


class Scorer:
    def __init__(self, weights, offset):
        self.weights = weights
        self.offset = offset

    def predict(self, frame):
        return sum(frame[k] * w for k, w in self.weights.items()) + self.offset + 0 * np.ones(1)
"""


@pytest.mark.slow
def test_a_process_pool_gives_the_same_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pure-Python model: a worker process imports it in well under a second.
    (tmp_path / "scorer_module.py").write_text(SCORER)
    monkeypatch.syspath_prepend(str(tmp_path))  # the workers inherit sys.path
    from scorer_module import Scorer  # type: ignore[import-not-found]

    data = customers(600, seed=3)
    model = Scorer({"age": 0.5, "income": -0.25}, 3.0)
    mloop.registry.save_model(model, tmp_path / "pkg", input_example=data[["age", "income"]])
    data.to_parquet(tmp_path / "in.parquet")
    pkg, source, target = str(tmp_path / "pkg"), tmp_path / "in.parquet", tmp_path / "out.parquet"
    result = predict_batch(pkg, source, target, chunk_size=100, executor="process")
    assert (result.rows, result.chunks) == (600, 6)
    run = mloop.get_run(result.run_id)
    assert run.params["executor"] == "process"
    scores = pd.read_parquet(tmp_path / "out.parquet")
    assert scores["customer_id"].tolist() == list(range(600))
    np.testing.assert_allclose(scores["prediction"], data["age"] * 0.5 - data["income"] * 0.25 + 3)


def test_an_executor_of_the_callers_is_left_running(churn: str, tmp_path: Path) -> None:
    customers(10).to_parquet(tmp_path / "in.parquet")
    with InProcessExecutor() as executor:
        predict_batch(churn, tmp_path / "in.parquet", tmp_path / "out.parquet", executor=executor)
        assert executor.submit(len, [1, 2]).result() == 2


class CountingExecutor(InProcessExecutor):
    """An in-process executor that counts what was submitted."""

    submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_chunks_in_flight_are_bounded(churn: str, tmp_path: Path) -> None:
    """A file of many chunks is never all in memory: scores are written as chunks finish."""
    customers(2000, seed=6).to_parquet(tmp_path / "in.parquet")
    executor = CountingExecutor()
    ahead: list[int] = []

    def progress(done: int, total: int | None) -> None:
        ahead.append(executor.submitted - done // 50)

    with executor:
        result = predict_batch(churn, tmp_path / "in.parquet", tmp_path / "out.parquet",
                               chunk_size=50, executor=executor, progress=progress)  # fmt: skip
    assert (result.chunks, executor.submitted, len(ahead)) == (40, 40, 40)
    assert max(ahead) <= 3  # at most 2 per worker (1 here) in flight, plus the one submitted


def test_the_alias_is_pinned_to_one_version(churn: str, tmp_path: Path) -> None:
    data = customers(300, seed=4)
    with mloop.start_run(experiment="churn") as run:
        flipped = LogisticRegression().fit(data[["age", "income"]], (data["age"] < 50).astype(int))
        run.log_model(flipped, name="churn", input_example=data[["age", "income"]].head())
    data.to_parquet(tmp_path / "in.parquet")
    result = predict_batch(churn, tmp_path / "in.parquet", tmp_path / "out.parquet")
    assert result.model == "churn/1"  # production still points at 1
    set_alias("churn", "production", 2)
    result = predict_batch(churn, tmp_path / "in.parquet", tmp_path / "out2.parquet")
    assert result.model == "churn/2"


def test_empty_input_gives_an_empty_output_with_columns(churn: str, tmp_path: Path) -> None:
    customers(0).to_parquet(tmp_path / "in.parquet")
    result = predict_batch(churn, tmp_path / "in.parquet", tmp_path / "out.parquet")
    assert (result.rows, result.chunks) == (0, 0)
    assert {"prediction", "proba_0", "proba_1"} <= set(pd.read_parquet(tmp_path / "out.parquet"))


def test_missing_columns_fail_naming_them_and_leave_nothing(churn: str, tmp_path: Path) -> None:
    data = customers(300).drop(columns=["income"])
    data.to_parquet(tmp_path / "in.parquet")
    with pytest.raises(SignatureError, match=r"chunk 0 \(rows 0-99\).*income") as caught:
        predict_batch(churn, tmp_path / "in.parquet", tmp_path / "out.parquet", chunk_size=100)
    assert caught.value.column == "income"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "project"]
    runs = mloop.search_runs(experiment="batch-scoring")
    assert runs["status"].tolist() == ["failed"]


def test_a_bad_later_chunk_names_its_rows(churn: str, tmp_path: Path) -> None:
    data = customers(300)
    data.loc[250, "income"] = None  # the signature does not allow missing incomes
    data.to_parquet(tmp_path / "in.parquet")
    with pytest.raises(SignatureError, match=r"chunk 2 \(rows 200-299\).*income"):
        predict_batch(churn, tmp_path / "in.parquet", tmp_path / "out.parquet", chunk_size=100)
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize(
    ("make", "output", "error", "message"),
    [
        (lambda p: None, "out.parquet", NotFoundError, "does not exist"),
        (lambda p: p.write_bytes(b"PAR1 not really"), "out.parquet", InvalidValueError,
         "cannot read input"),
        (lambda p: customers(3).to_parquet(p), "missing/out.parquet", InvalidValueError,
         "create it first"),
        (lambda p: customers(3).to_parquet(p), "out.json", InvalidValueError, ".parquet or .csv"),
        (lambda p: customers(3).to_parquet(p), "in.parquet", InvalidValueError, "is the input"),
    ],
)  # fmt: skip
def test_bad_files(
    churn: str, tmp_path: Path, make: Any, output: str, error: type[Exception], message: str
) -> None:
    source = tmp_path / "in.parquet"
    make(source)
    with pytest.raises(error, match=message):
        predict_batch(churn, source, tmp_path / output)


def test_bad_arguments(churn: str, tmp_path: Path) -> None:
    customers(3).to_parquet(tmp_path / "in.parquet")
    for size in (0, -1, 2.5, True):
        with pytest.raises(InvalidValueError, match="chunk_size"):
            predict_batch(churn, tmp_path / "in.parquet", tmp_path / "o.parquet", chunk_size=size)
    with pytest.raises(InvalidValueError, match="exactly one"):
        predict_batch(churn, None, tmp_path / "o.parquet")
    with pytest.raises(InvalidValueError, match="exactly one"):
        predict_batch(churn, tmp_path / "in.parquet", tmp_path / "o.parquet",
                      entities=tmp_path / "in.parquet")  # fmt: skip
    with pytest.raises(InvalidValueError, match="compute backend"):
        predict_batch(churn, tmp_path / "in.parquet", tmp_path / "o.parquet", executor="gpu")
    with pytest.raises(NotFoundError):
        predict_batch("nosuch@production", tmp_path / "in.parquet", tmp_path / "o.parquet")
    with pytest.raises(InvalidValueError, match="not trained on feature store data"):
        predict_batch(churn, None, tmp_path / "o.parquet", entities=tmp_path / "in.parquet")


def test_a_package_folder_scores_too(tmp_path: Path) -> None:
    data = customers(50)
    mloop.registry.save_model(train(data), tmp_path / "pkg", input_example=data[["age", "income"]])
    data.to_parquet(tmp_path / "in.parquet")
    result = predict_batch(str(tmp_path / "pkg"), tmp_path / "in.parquet", tmp_path / "o.parquet")
    assert result.rows == 50
    assert len(pd.read_parquet(tmp_path / "o.parquet")) == 50


@pytest.fixture
def featured(isolated_settings: Path) -> tuple[FeatureStore, pd.DataFrame]:
    """A model trained on offline-store features of a customer_stats view."""
    project = isolated_settings
    (project / "data").mkdir()
    base = customers(200, seed=5)
    history = pd.concat(
        [
            base.assign(event_timestamp=T0, age=base["age"], income=base["income"]),
            base.assign(event_timestamp=T0 + timedelta(days=10), income=base["income"] + 30.0),
        ]
    )
    history.to_parquet(project / "data" / "stats.parquet")
    customer = Entity("customer", join_keys=["customer_id"])
    view = FeatureView(
        name="customer_stats",
        entities=[customer],
        source=FileSource("data/stats.parquet"),
        schema=[Field("age", "int64"), Field("income", "float64")],
        ttl=timedelta(days=60),
    )
    store = FeatureStore()
    store.apply([customer, view])
    entity_df = pd.DataFrame({"customer_id": base["customer_id"], "event_timestamp": T0})
    training = store.get_historical_features(
        entity_df, ["customer_stats:age", "customer_stats:income"]
    )
    with mloop.start_run(experiment="churn") as run:
        run.log_dataset(training, name="training")
        run.log_model(
            train(training), name="churn", input_example=training[["age", "income"]].head()
        )
    set_alias("churn", "production", 1)
    return store, base


def test_entities_get_their_features_point_in_time(
    featured: tuple[FeatureStore, pd.DataFrame], tmp_path: Path
) -> None:
    store, base = featured
    entities = pd.DataFrame(
        {
            "customer_id": np.concatenate([base["customer_id"], base["customer_id"]]),
            "event_timestamp": [T0 + timedelta(days=1)] * 200 + [T0 + timedelta(days=11)] * 200,
        }
    )
    entities.to_parquet(tmp_path / "entities.parquet")
    result = predict_batch(
        "churn@production",
        None,
        tmp_path / "scores.parquet",
        entities=tmp_path / "entities.parquet",
        chunk_size=150,
    )
    assert (result.rows, result.chunks) == (400, 3)
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    joined = store.get_historical_features(
        entities, ["customer_stats:age", "customer_stats:income"]
    )
    model = load_model("churn/1", extra_columns="drop")
    np.testing.assert_allclose(scores["proba_1"], model.predict_proba(joined)[:, 1])
    assert list(scores.columns[:2]) == ["customer_id", "event_timestamp"]
    # The later rows see the later income (+30): the join is point in time.
    assert scores["proba_1"][200:].mean() > scores["proba_1"][:200].mean()
    names = {e.name for e in run_lineage(result.run_id) if e.direction == "input"}
    assert "feature_views/customer_stats/v1" in names


def test_entities_without_a_timestamp_column(
    featured: tuple[FeatureStore, pd.DataFrame], tmp_path: Path
) -> None:
    pd.DataFrame({"customer_id": [1, 2]}).to_parquet(tmp_path / "e.parquet")
    with pytest.raises(InvalidValueError, match="timestamp column 'event_timestamp'"):
        predict_batch("churn@production", None, tmp_path / "o.parquet",
                      entities=tmp_path / "e.parquet")  # fmt: skip
