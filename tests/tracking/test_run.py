"""Tracking through the public API, on the default (SQLite) store of an isolated project."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mloop
from mloop.errors import (
    ConflictError,
    InvalidFilterError,
    InvalidKeyError,
    InvalidValueError,
    NotFoundError,
    RunNotActiveError,
    UnsafePathError,
)
from mloop.tracking import backends, download_artifacts, load_dataframe


def test_a_run_records_everything_and_finishes() -> None:
    with mloop.start_run(experiment="churn", params={"C": 1.0, "model": "lr"}) as run:
        run.log_metric("auc", 0.9)
        run.log_metrics({"loss": 0.3, "acc": 0.8}, step=3)
        run.set_tags({"team": "ml"})
    info = mloop.get_run(run.id)
    assert info.status == "finished"
    assert info.params == {"C": "1.0", "model": "lr"}
    assert info.metrics == {"auc": 0.9, "loss": 0.3, "acc": 0.8}
    assert info.tags == {"team": "ml"}
    assert info.environment_id is not None
    assert info.command is not None
    env = backends().store.get_environment(info.environment_id)
    assert env.packages["pandas"] == pd.__version__


def test_steps_count_up_per_key_by_default() -> None:
    with mloop.start_run() as run:
        for value in (0.5, 0.4, 0.3):
            run.log_metric("loss", value)
        run.log_metric("loss", 0.1, step=10)
        run.log_metric("loss", 0.05)
    history = run.metric_history("loss")
    assert [(p.step, p.value) for p in history] == [
        (0, 0.5),
        (1, 0.4),
        (2, 0.3),
        (10, 0.1),
        (11, 0.05),
    ]


def test_an_exception_fails_the_run_and_keeps_every_metric() -> None:
    with pytest.raises(ZeroDivisionError), mloop.start_run() as run:
        for i in range(10_000):
            run.log_metric("m", float(i), step=i)
        _ = 1 / 0
    info = mloop.get_run(run.id)
    assert info.status == "failed"
    assert info.error is not None
    assert "ZeroDivisionError" in info.error
    history = backends().store.get_metric_history(run.id, "m")
    assert [p.value for p in history] == [float(i) for i in range(10_000)]


def test_keyboard_interrupt_ends_the_run_as_killed() -> None:
    with pytest.raises(KeyboardInterrupt), mloop.start_run() as run:
        run.log_metric("m", 1.0)
        raise KeyboardInterrupt
    info = mloop.get_run(run.id)
    assert info.status == "killed"
    assert info.metrics == {"m": 1.0}


def test_nested_runs_become_children() -> None:
    with mloop.start_run(name="parent") as parent:
        with mloop.start_run(name="child") as child:
            assert mloop.active_run() is child
        with mloop.start_run(name="top", parent=None) as top:
            pass
        assert mloop.active_run() is parent
    assert mloop.active_run() is None
    assert mloop.get_run(child.id).parent_run_id == parent.id
    assert mloop.get_run(top.id).parent_run_id is None


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "0.5", None, True, [1.0]])
def test_bad_metric_values_are_refused_at_the_call(value: object) -> None:
    with mloop.start_run() as run:
        with pytest.raises(InvalidValueError, match="metric 'm'"):
            run.log_metric("m", value)  # type: ignore[arg-type]
        run.log_metric("ok", np.float32(0.5))
    assert mloop.get_run(run.id).metrics == {"ok": 0.5}


@pytest.mark.parametrize("step", [1.5, "1", True, 2**63])
def test_bad_steps_are_refused(step: object) -> None:
    with mloop.start_run() as run, pytest.raises(InvalidValueError, match="step"):
        run.log_metric("m", 1.0, step=step)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", [1, None, "", "x" * 251, "a\x00b", "../up"])
def test_bad_keys_are_refused_everywhere(key: object) -> None:
    with mloop.start_run() as run:
        for call in (
            lambda: run.log_metric(key, 1.0),  # type: ignore[arg-type]
            lambda: run.log_params({key: 1}),  # type: ignore[dict-item]
            lambda: run.set_tags({key: "x"}),  # type: ignore[dict-item]
        ):
            with pytest.raises(InvalidKeyError):
                call()


def test_param_logged_twice_with_another_value() -> None:
    with mloop.start_run(params={"lr": 0.1}) as run:
        run.log_param("lr", 0.1)
        with pytest.raises(ConflictError, match="'lr'"):
            run.log_param("lr", 0.2)


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes", "x" * 6001])
def test_params_without_a_faithful_text_form_are_refused(value: object) -> None:
    with mloop.start_run() as run, pytest.raises(InvalidValueError, match="param 'p'"):
        run.log_param("p", value)


def test_params_structured_values_become_json() -> None:
    with mloop.start_run(params={"layers": [64, 32], "opt": {"name": "adam"}}) as run:
        pass
    assert mloop.get_run(run.id).params == {"layers": "[64, 32]", "opt": '{"name": "adam"}'}


def test_logging_to_a_finished_run_is_refused() -> None:
    with mloop.start_run() as run:
        pass
    for call in (
        lambda: run.log_metric("m", 1.0),
        lambda: run.log_params({"a": 1}),
        lambda: run.set_tags({"a": "b"}),
    ):
        with pytest.raises(RunNotActiveError, match="has ended"):
            call()


def test_datasets_are_versioned_by_content(tmp_path: Path) -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, None], "city": ["a", "b", "a"], "n": [1, 2, 3]})
    with mloop.start_run() as first:
        a = first.log_dataset(df, name="customers", role="train")
    with mloop.start_run() as second:
        b = second.log_dataset(df.copy(), name="customers", role="train")
        c = second.log_dataset(df.head(2), name="customers", role="test")
    assert a.id == b.id
    assert c.id != a.id
    assert a.kind == "dataset"
    assert a.meta["rows"] == 3
    assert a.meta["schema"] == {"x": "float64", "city": "object", "n": "int64"} or (
        a.meta["schema"]["x"] == "float64"
    )
    assert a.meta["profile"]["x"]["nulls"] == 1
    assert a.meta["profile"]["x"]["mean"] == pytest.approx(1.5)
    assert a.meta["profile"]["city"]["top"] == {"a": 2, "b": 1}
    edges = {(e.direction, e.name) for e in second.lineage()}
    assert edges == {("input", "datasets/train/customers"), ("input", "datasets/test/customers")}
    pd.testing.assert_frame_equal(load_dataframe(backends(), a), df)


def test_log_dataset_refuses_what_is_not_a_dataframe() -> None:
    with mloop.start_run() as run, pytest.raises(InvalidValueError, match="DataFrame"):
        run.log_dataset([1, 2], name="x")  # type: ignore[arg-type]


def test_artifacts_round_trip_and_are_stored_once(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"\x00" * 1000)
    (folder / "sub" / "config.json").write_text("{}")
    (tmp_path / "copy.bin").write_bytes(b"\x00" * 1000)
    with mloop.start_run() as run:
        run.log_artifact(folder)
        run.log_artifact(tmp_path / "copy.bin", name="same-bytes.bin")
    names = sorted(e.name for e in run.lineage())
    assert names == ["model/sub/config.json", "model/weights.bin", "same-bytes.bin"]
    digests = {e.artifact.digest for e in run.lineage()}
    assert len(digests) == 2  # the two identical files share one blob
    out = download_artifacts(run.id, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in out) == names
    assert (tmp_path / "out" / "model" / "weights.bin").read_bytes() == b"\x00" * 1000


def test_log_artifact_of_a_missing_path() -> None:
    with mloop.start_run() as run, pytest.raises(InvalidValueError, match="no such file"):
        run.log_artifact("does/not/exist")


def test_log_artifact_refuses_a_hostile_name(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with mloop.start_run() as run, pytest.raises((InvalidKeyError, UnsafePathError)):
        run.log_artifact(tmp_path / "f", name="../../etc/passwd")


def test_search_runs_returns_a_frame() -> None:
    for i in range(6):
        with mloop.start_run(experiment="s", params={"model": "rf" if i % 2 else "lr"}) as run:
            run.log_metric("auc", 0.5 + i / 20)
    df = mloop.search_runs(
        experiment="s",
        filter="metrics.auc > 0.6 and params.model = 'rf'",
        order_by=["metrics.auc DESC"],
    )
    assert list(df["metrics.auc"]) == pytest.approx([0.75, 0.65])
    assert set(df["params.model"]) == {"rf"}
    assert str(df["start_time"].dt.tz) == "UTC"
    assert len(mloop.search_runs(limit=3)) == 3


def test_search_runs_bad_filter_names_the_token() -> None:
    with pytest.raises(InvalidFilterError, match="&&"):
        mloop.search_runs(filter="metrics.auc > 0.5 && params.x = 'y'")


def test_search_sees_metrics_that_are_still_buffered() -> None:
    with mloop.start_run(experiment="live") as run:
        run.log_metric("auc", 0.7)
        df = mloop.search_runs(experiment="live", filter="metrics.auc > 0.5")
        assert list(df["run_id"]) == [run.id]


def test_download_artifacts_of_an_unknown_run(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no run"):
        download_artifacts("not-a-run", tmp_path)


@pytest.mark.parametrize("path", [123, None, b"bytes"])
def test_log_artifact_refuses_what_is_not_a_path(path: object) -> None:
    with mloop.start_run() as run, pytest.raises(InvalidValueError, match="path must be"):
        run.log_artifact(path)  # type: ignore[arg-type]
