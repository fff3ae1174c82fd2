"""mloop demo: a real training run, recorded in the project folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mloop.demo import MAX_ROWS, MIN_ROWS, load_data, run_demo
from mloop.errors import InvalidValueError
from mloop.tracking import backends

from .helpers import Invoke

METRICS = {
    "cv_auc": 1,
    "fold_accuracy": 5,
    "fold_auc": 5,
    "learning_curve_auc": 5,
    "test_accuracy": 1,
    "test_auc": 1,
    "test_log_loss": 1,
}


def test_run_demo_records_a_complete_run(project: Path) -> None:
    result = run_demo(rows=120)
    assert result.experiment == "demo"
    assert (result.rows, result.train_rows, result.test_rows) == (120, 90, 30)
    assert result.steps == METRICS
    assert 0.5 < result.metrics["test_auc"] <= 1
    assert result.params["rows"] == "120"
    names = {(edge.direction, edge.name) for edge in result.lineage}
    assert names == {
        ("input", "datasets/train/breast_cancer"),
        ("input", "datasets/test/breast_cancer"),
        ("output", "datasets/predictions/breast_cancer_predictions"),
        ("output", "report.md"),
        ("output", "model"),
        ("input", "feature_views/tumor_measurements/v1"),
    }
    run = backends().store.get_run(result.run_id)
    assert run.status == "finished"
    assert run.tags["mloop.demo"] == "true"
    curve = backends().store.get_metric_history(result.run_id, "learning_curve_auc")
    assert [point.step for point in curve] == [20, 22, 45, 68, 90]
    report = next(edge.artifact for edge in result.lineage if edge.name == "report.md")
    text = backends().artifacts.get_bytes(report.digest).decode()
    assert text.startswith("# mloop demo")
    assert "Confusion matrix" in text
    version = backends().store.models.get_version_by_alias("breast-cancer", "production")
    assert (version.version, version.run_id) == (result.model_version, result.run_id)
    assert result.previous_production is None


def test_each_demo_run_registers_a_new_production_version(project: Path) -> None:
    import mloop

    first, second = run_demo(rows=MIN_ROWS), run_demo(rows=MIN_ROWS + 10)
    # Each demo registers its tracked run's model (production), then the pipeline's
    # (challenger); other rows are other features, so the second pipeline trains again.
    assert (first.model_version, second.model_version) == (1, 3)
    assert second.previous_production == 1
    assert first.pipeline is not None
    assert second.pipeline is not None
    assert (first.pipeline.model_version, second.pipeline.model_version) == (2, 4)
    assert (first.pipeline.cache_hits, second.pipeline.executed) == (0, 6)
    challenger = mloop.load_model("breast-cancer@challenger")
    assert challenger.metadata.version == 4
    model = mloop.load_model("breast-cancer@production")
    assert model.metadata.run_id == second.run_id
    test_patients = set(load_data(MIN_ROWS + 10).test.index)
    assert len(second.served) == 3
    assert {patient for patient, _, _ in second.served} <= test_patients
    assert all(0.0 <= proba <= 1.0 for _, _, proba in second.served)


def test_a_second_demo_takes_the_pipeline_from_the_cache_and_serves(project: Path) -> None:
    first, second = run_demo(rows=MIN_ROWS), run_demo(rows=MIN_ROWS)
    assert first.pipeline is not None
    assert second.pipeline is not None
    assert (first.pipeline.executed, second.pipeline.executed) == (6, 0)
    assert second.pipeline.cache_hits == 6
    assert second.pipeline.model_version == first.pipeline.model_version  # nothing new
    assert second.traffic is not None
    traffic = second.traffic
    assert traffic.failures == []
    assert (traffic.json_requests, traffic.entity_requests) == (5, 5)
    assert traffic.versions == {second.model_version: 10}
    assert traffic.log_rows_after == traffic.log_rows_before + 10


def test_demo_training_rows_come_from_the_feature_store(project: Path) -> None:
    import pandas as pd

    from mloop.demo._features import column_name

    result = run_demo(rows=MIN_ROWS)
    store = backends().store
    [view] = store.features.list_definitions("feature_view")
    assert (view.name, result.feature_view_version) == ("tumor_measurements", 1)
    train = next(e.artifact for e in result.lineage if e.name == "datasets/train/breast_cancer")
    assert train.meta["feature_views"][0]["name"] == "tumor_measurements"
    # The point-in-time join picked the diagnostic measurement, not the noisy screening one.
    original = load_data(MIN_ROWS).train.rename(columns=column_name)
    from mloop.tracking._datasets import load_dataframe

    fetched = load_dataframe(backends(), train)
    pd.testing.assert_frame_equal(
        fetched.reset_index(drop=True), original.reset_index(drop=True), check_dtype=False
    )
    assert result.online_rows == MIN_ROWS


def test_same_rows_same_datasets(project: Path) -> None:
    first, second = run_demo(rows=MIN_ROWS), run_demo(rows=MIN_ROWS)
    digests = [{e.name: e.artifact.digest for e in r.lineage} for r in (first, second)]
    assert digests[0]["datasets/train/breast_cancer"] == digests[1]["datasets/train/breast_cancer"]


@pytest.mark.parametrize("rows", [0, MIN_ROWS - 1, MAX_ROWS + 1, -5])
def test_load_data_refuses_sizes_it_cannot_serve(rows: int) -> None:
    with pytest.raises(InvalidValueError, match="569"):
        load_data(rows)


def test_demo_command_in_an_empty_folder(cli: Invoke, project: Path) -> None:
    result = cli("demo", "--rows", "100", columns=100)
    assert result.exit_code == 0, result.output
    out = result.stdout
    run_id, pipeline_run = re.findall(r"mloop runs show ([0-9a-f-]{36})", out)
    assert "6 steps ran, 0 came from the step cache" in out
    assert re.search(r"prediction log grew\s+from\s+0\s+to\s+10\s+rows", out), out
    steps = cli("runs", "list", "--experiment", "demo")
    assert steps.exit_code == 0, steps.output
    assert pipeline_run[:8] in steps.stdout or "demo-training" in steps.stdout
    for key in METRICS:
        assert key in out
    assert "in experiment demo" in out
    assert (project / ".mloop" / "mloop.db").is_file()
    assert str(project / ".mloop") in out
    shown = cli("runs", "show", run_id)
    assert shown.exit_code == 0, shown.output
    assert "report.md" in shown.stdout
    assert "datasets/train/breast_cancer" in shown.stdout


@pytest.mark.parametrize("rows", ["10", "570", "many"])
def test_demo_rows_out_of_range_is_a_usage_error(cli: Invoke, rows: str) -> None:
    result = cli("demo", "--rows", rows)
    assert result.exit_code == 2
    assert "--rows" in result.stderr
