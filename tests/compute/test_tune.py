"""Hyper-parameter search: trials as child runs, pruning across processes, parallel trials,
failures, and the best model registered."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution
from optuna.pruners import MedianPruner, ThresholdPruner

import mloop
from mloop.compute import ProcessPoolExecutor, Trial, TuneResult, task_traceback, tune
from mloop.config import load_settings
from mloop.errors import InvalidKeyError, InvalidValueError, NotFoundError, WorkerLostError
from mloop.store import RunRecord
from mloop.tracking import backends

from . import objectives


@pytest.fixture(scope="module")
def pool() -> Any:
    """One process pool for the module: its workers import mloop, Optuna and pandas once."""
    with ProcessPoolExecutor(2) as executor:
        yield executor


def children(result: TuneResult) -> list[RunRecord]:
    store = backends().store
    runs = store.search_runs(filter=f"parent_run_id = '{result.run_id}'")
    return sorted(runs, key=lambda run: int(run.tags["optuna.trial"]))


def test_in_process_search_records_every_trial_as_a_child_run() -> None:
    result = tune(objectives.quadratic, n_trials=6, executor="inprocess", seed=1)
    assert len(result.trials) == 6
    values = [t.value for t in result.trials if t.value is not None]
    assert result.best_value == max(values)
    assert result.best_params == result.trials[result.best_trial].params
    runs = children(result)
    assert [run.name for run in runs] == [f"trial-{n}" for n in range(6)]
    for trial, run in zip(result.trials, runs, strict=True):
        assert run.status == "finished"
        assert run.kind == "trial"
        assert trial.run_id == run.id
        assert float(run.params["x"]) == pytest.approx(trial.params["x"])
        assert run.metrics["score"] == pytest.approx(trial.value)
        assert run.tags["optuna.state"] == "complete"
    parent = mloop.get_run(result.run_id)
    assert parent.kind == "tune"
    assert parent.status == "finished"
    assert parent.tags["best_run_id"] == result.best_run_id
    assert parent.metrics["score"] == pytest.approx(result.best_value)
    assert parent.params["n_trials"] == "6"


def test_the_same_seed_draws_the_same_parameters() -> None:
    first = tune(objectives.quadratic, n_trials=5, executor="inprocess", seed=7)
    second = tune(objectives.quadratic, n_trials=5, executor="inprocess", seed=7)
    assert [t.params for t in first.trials] == [t.params for t in second.trials]


def test_a_dict_space_is_drawn_before_the_trial_and_extra_metrics_are_logged(pool: Any) -> None:
    space = {"x": FloatDistribution(0.0, 4.0), "kind": ["good", "bad"]}
    result = tune(objectives.from_space, space, n_trials=6, executor=pool, parallelism=2, seed=3)
    runs = children(result)
    assert len(runs) == 6
    for trial, run in zip(result.trials, runs, strict=True):
        assert trial.params["kind"] in ("good", "bad")
        assert 0.0 <= trial.params["x"] <= 4.0
        assert run.metrics["x_seen"] == pytest.approx(trial.params["x"])
        assert run.params["kind"] == trial.params["kind"]


def test_the_returned_study_is_a_usable_optuna_study() -> None:
    result = tune(objectives.quadratic, n_trials=3, executor="inprocess")
    assert isinstance(result.study, optuna.Study)
    assert len(result.study.trials) == 3
    assert result.study.best_value == result.best_value


def test_minimize() -> None:
    result = tune(objectives.quadratic, n_trials=4, direction="minimize", executor="inprocess")
    assert result.best_value == min(t.value for t in result.trials if t.value is not None)


def test_a_median_pruner_sees_reports_from_other_worker_processes(pool: Any) -> None:
    result = tune(
        objectives.first_is_best,
        n_trials=4,
        executor=pool,
        parallelism=1,
        pruner=MedianPruner(n_startup_trials=1, n_warmup_steps=0),
    )
    states = [t.state for t in result.trials]
    assert states == ["complete", "pruned", "pruned", "pruned"]
    runs = children(result)
    # Intermediate values are metric steps; a pruned trial stops at its first report.
    first = mloop.tracking.backends().store.get_metric_history(runs[0].id, "score")
    assert [(p.step, p.value) for p in first] == [(0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0), (4, 1.0)]
    pruned = mloop.tracking.backends().store.get_metric_history(runs[1].id, "score")
    assert [(p.step, p.value) for p in pruned] == [(0, 0.0)]
    assert runs[1].tags["optuna.state"] == "pruned"
    assert runs[1].status == "finished"


def test_a_threshold_pruner_prunes_exactly_the_low_trials() -> None:
    result = tune(
        objectives.threshold,
        n_trials=10,
        executor="inprocess",
        pruner=ThresholdPruner(lower=0.5),
        seed=0,
    )
    for trial in result.trials:
        low = trial.params["x"] < 0.5
        assert trial.state == ("pruned" if low else "complete")
        assert list(trial.intermediate) == ([0] if low else [0, 1, 2])
    assert result.pruned, "seed 0 draws some x below 0.5"


def test_trials_run_in_parallel_on_the_process_pool(tmp_path: Path, pool: Any) -> None:
    objective = functools.partial(objectives.meet, folder=str(tmp_path))
    result = tune(objective, n_trials=2, executor=pool, parallelism=2)
    assert [t.value for t in result.trials] == [1.0, 1.0]


def test_an_executor_passed_in_is_used_and_left_open(pool: Any) -> None:
    result = tune(objectives.quadratic, n_trials=2, executor=pool)
    assert len(result.trials) == 2
    assert mloop.get_run(result.run_id).params["executor"] == "process"
    assert pool.submit(abs, -3).result(timeout=60) == 3


def test_the_best_trials_model_is_registered(pool: Any) -> None:
    result = tune(
        objectives.fit_cutoff,
        n_trials=4,
        executor=pool,
        parallelism=2,
        register="tuned",
        alias="champion",
        seed=0,
    )
    version = result.model_version
    assert version is not None
    assert (version.name, version.version) == ("tuned", 1)
    assert version.run_id == result.best_run_id
    assert version.tags["tune_run_id"] == result.run_id
    model = mloop.load_model("models:/tuned@champion")
    cut = result.best_params["cut"]
    frame = pd.DataFrame({"x": [cut - 0.01, cut + 0.01]})
    assert list(model.predict(frame)) == [0, 1]  # the best trial's model, not another


def test_registering_needs_a_logged_model() -> None:
    with pytest.raises(NotFoundError, match=r"trial\.run\.log_model"):
        tune(objectives.no_model, n_trials=2, executor="inprocess", register="nothing")


def test_a_failing_trial_stops_the_search_with_its_traceback(pool: Any) -> None:
    with pytest.raises(ValueError, match="trial one is broken") as caught:
        tune(objectives.second_fails, n_trials=4, executor=pool, parallelism=1)
    text = task_traceback(caught.value)
    assert text is not None
    assert "second_fails" in text
    tunes = backends().store.search_runs(filter="kind = 'tune'")
    assert [run.status for run in tunes] == ["failed"]
    trials = backends().store.search_runs(filter="kind = 'trial'")
    assert sorted(run.status for run in trials) == ["failed", "finished"]


def test_caught_failures_let_the_search_go_on() -> None:
    result = tune(objectives.second_fails, n_trials=3, executor="inprocess", catch=(ValueError,))
    assert [t.state for t in result.trials] == ["complete", "fail", "complete"]
    failed = mloop.get_run(result.trials[1].run_id or "")
    assert failed.status == "failed"
    assert "trial one is broken" in (failed.error or "")


def test_a_trial_whose_worker_dies_is_failed_and_its_run_closed(pool: Any) -> None:
    result = tune(
        objectives.second_dies,
        n_trials=3,
        executor=pool,
        parallelism=1,
        catch=(WorkerLostError,),
    )
    assert [t.state for t in result.trials] == ["complete", "fail", "complete"]
    lost = mloop.get_run(result.trials[1].run_id or "")
    assert lost.status == "failed"
    assert "WorkerLostError" in (lost.error or "")


def test_no_trial_starts_after_the_timeout() -> None:
    result = tune(objectives.slow, n_trials=1000, executor="inprocess", timeout=0.5)
    assert 1 <= len(result.trials) < 1000
    assert all(t.state == "complete" for t in result.trials)


def test_a_non_finite_value_fails_the_trial_only() -> None:
    result = tune(objectives.returns_nan, n_trials=2, executor="inprocess")
    assert [t.state for t in result.trials] == ["fail", "complete"]


def test_a_value_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(InvalidValueError, match="must return a number"):
        tune(objectives.returns_text, n_trials=1, executor="inprocess")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_trials": 0}, "n_trials"),
        ({"n_trials": True}, "n_trials"),
        ({"direction": "up"}, "direction"),
        ({"parallelism": 0}, "parallelism"),
        ({"timeout": -1}, "timeout"),
        ({"seed": "1"}, "seed"),
        ({"alias": "best"}, "alias needs register"),
        ({"executor": 3}, "executor must be"),
        ({"executor": "cluster"}, "unknown compute backend"),
        ({"catch": ("ValueError",)}, "exception classes"),
        ({"resources": {"cpus": 2}}, "unknown resources"),
        ({"storage": ""}, "storage must be"),
    ],
)
def test_bad_arguments_are_refused_before_any_trial(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        tune(objectives.quadratic, **({"n_trials": 1, "executor": "inprocess"} | kwargs))
    assert backends().store.search_runs(filter="kind = 'tune'") == []


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"x": 3}, "Optuna distribution"),
        ({"x": []}, "Optuna distribution"),
        ({}, "space is empty"),
        ([("x", 1)], "must be a mapping"),
    ],
)
def test_bad_spaces_are_refused(space: Any, message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        tune(objectives.from_space, space, n_trials=1, executor="inprocess")


def test_hostile_names_are_refused() -> None:
    with pytest.raises(InvalidKeyError):
        tune(objectives.quadratic, {"../etc": [1, 2]}, n_trials=1, executor="inprocess")
    with pytest.raises(InvalidKeyError):
        tune(objectives.quadratic, n_trials=1, executor="inprocess", metric="a\nb")
    with pytest.raises(InvalidKeyError, match="model name"):
        tune(objectives.quadratic, n_trials=1, executor="inprocess", register="../x")


def test_a_lambda_runs_in_process_but_not_in_worker_processes(pool: Any) -> None:
    result = tune(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2, executor="inprocess")
    assert len(result.trials) == 2
    with pytest.raises(InvalidValueError, match="define it at module level"):
        tune(lambda trial: 1.0, n_trials=1, executor=pool)


def test_trial_runs_are_reachable_from_the_objective() -> None:
    seen: list[tuple[bool, str | None]] = []

    def objective(trial: Trial) -> float:
        seen.append((isinstance(trial, Trial), trial.run.parent_run_id))
        assert mloop.active_run() is trial.run
        return 1.0

    result = tune(objective, n_trials=2, executor="inprocess")
    assert seen == [(True, result.run_id), (True, result.run_id)]


def test_not_a_function() -> None:
    with pytest.raises(InvalidValueError, match="objective must be a function"):
        tune("objective", n_trials=1)  # type: ignore[arg-type]


def test_trials_write_concurrently_to_each_store(
    store_url: str, monkeypatch: pytest.MonkeyPatch, pool: Any
) -> None:
    monkeypatch.setenv("MLOOP_TRACKING_URI", store_url)
    settings = load_settings()
    result = tune(
        objectives.threshold,
        n_trials=6,
        executor=pool,
        parallelism=2,
        pruner=ThresholdPruner(lower=0.2),
        settings=settings,
    )
    store = backends(settings=settings).store
    runs = store.search_runs(filter=f"parent_run_id = '{result.run_id}'")
    assert len(runs) == 6
    assert all(run.status == "finished" for run in runs)
    for trial in result.trials:
        history = store.get_metric_history(trial.run_id or "", "score")
        assert [p.step for p in history][: len(trial.intermediate)] == list(trial.intermediate)


@pytest.mark.xdist_group("ray")
def test_a_search_on_ray(ray_session: Any) -> None:
    from mloop.compute import RayExecutor

    result = tune(
        objectives.first_is_best,
        n_trials=4,
        executor=RayExecutor(),
        parallelism=1,
        pruner=MedianPruner(n_startup_trials=1, n_warmup_steps=0),
    )
    assert [t.state for t in result.trials] == ["complete", "pruned", "pruned", "pruned"]
    assert all(run.status == "finished" for run in children(result))
