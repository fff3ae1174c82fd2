"""Running pipelines for real: outputs, records, caching, failures, retries, timeouts, resume."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloop.backends import backends
from mloop.errors import ConflictError, InvalidValueError, PipelineError
from mloop.pipelines import PipelineResult, StepResult
from mloop.store import SqlStore

from . import flows
from .flows import calls


@pytest.fixture
def log(tmp_path: Path) -> str:
    return str(tmp_path / "calls.log")


@pytest.fixture
def lite(sqlite_url: str) -> Iterator[SqlStore]:
    """A SQLite store, for behaviour that does not depend on the database."""
    opened = SqlStore(sqlite_url)
    yield opened
    opened.close()


def children(store: SqlStore, result: PipelineResult) -> dict[str, str]:
    """Step key -> the step's run id, checked to be a child run of the pipeline run."""
    found = {}
    for key, step in result.steps.items():
        assert step.run_id is not None, key
        record = store.get_run(step.run_id)
        assert record.parent_run_id == result.run_id
        assert record.kind == "step"
        assert record.name == key
        found[key] = step.run_id
    return found


def test_a_pipeline_runs_and_records_every_step(store: SqlStore, log: str) -> None:
    result = flows.frames.run(
        log=log, rows=20, executor="inprocess", store=store, tags={"team": "ml"}
    )

    assert result.status == "finished"
    assert result.output == {
        "train": float(sum(range(15))),
        "test": float(sum(range(15, 20))),
        "rows": 20.0,
    }
    assert sorted(calls(log)) == sorted(
        ["make_frame", "split", "column_sum:x", "column_sum:x", "as_array", "shape_of", "report"]
    )
    pipeline_run = store.get_run(result.run_id)
    assert (pipeline_run.kind, pipeline_run.status, pipeline_run.name) == (
        "pipeline",
        "finished",
        "frames",
    )
    assert pipeline_run.params == {"log": log, "rows": "20"}
    assert pipeline_run.tags["team"] == "ml"
    assert pipeline_run.tags["mloop.pipeline.params"] == f'{{"log":"{log}","rows":20}}'
    runs = children(store, result)
    assert set(runs) == {
        "make_frame",
        "split",
        "column_sum",
        "column_sum_2",
        "as_array",
        "shape_of",
        "report",
    }
    split = store.get_run(runs["split"])
    assert split.status == "finished"
    assert split.tags["mloop.step.digest"] == flows.split.digest
    assert len(flows.split.digest) == 64
    assert split.tags["mloop.step.state"] == "finished"
    assert split.params == {"log": log, "fraction": "0.25"}
    edges = {(e.direction, e.name): e.artifact for e in store.list_lineage(runs["split"])}
    assert edges[("input", "inputs/df")].kind == "dataset"
    assert edges[("output", "outputs/train")].kind == "dataset"
    assert edges[("output", "outputs/train")].meta["rows"] == 15
    assert edges[("output", "outputs/test")].meta["rows"] == 5
    # The frame split read is the one make_frame wrote: lineage joins up.
    made = {e.name: e.artifact for e in store.list_lineage(runs["make_frame"])}
    assert made["outputs/output"].id == edges[("input", "inputs/df")].id
    array = {e.name: e.artifact for e in store.list_lineage(runs["as_array"])}
    assert array["outputs/output"].kind == "array"
    assert array["outputs/output"].meta["shape"] == [20, 2]
    # What the step printed is stored as its log.
    artifacts = backends(store).artifacts
    log_blob = made["logs/output.log"]
    assert b"making 20 rows" in artifacts.get_bytes(log_blob.digest)
    assert result.steps["make_frame"].log == "making 20 rows\n"
    # Step outputs read back with their types.
    train = result.outputs["split.train"]
    assert isinstance(train, pd.DataFrame)
    assert list(train["x"]) == [float(i) for i in range(15)]
    assert isinstance(result.outputs["as_array"], np.ndarray)


def test_a_rerun_of_an_unchanged_pipeline_does_no_work(store: SqlStore, log: str) -> None:
    first = flows.frames.run(log=log, executor="inprocess", store=store)
    done = len(calls(log))

    second = flows.frames.run(log=log, executor="inprocess", store=store)

    assert len(calls(log)) == done  # no step function was called again
    assert second.output == first.output
    assert second.cache_hits == len(second.steps) == 7
    assert second.executed == 0
    for key, step in second.steps.items():
        assert step.state == "cached"
        record = store.get_run(step.run_id or "")
        assert record.tags["mloop.step.state"] == "cached"
        assert record.tags["mloop.cache.source_run"] == first.steps[key].run_id
    # Cached outputs still load (from the artifact store) and lineage points at the same data.
    pd.testing.assert_frame_equal(second.outputs["split.test"], first.outputs["split.test"])
    again = {e.name: e.artifact.id for e in store.list_lineage(second.steps["split"].run_id or "")}
    before = {e.name: e.artifact.id for e in store.list_lineage(first.steps["split"].run_id or "")}
    assert again == {k: v for k, v in before.items() if not k.startswith("logs/")}


def test_cache_off_for_the_run_or_one_step(store: SqlStore, log: str) -> None:
    flows.frames.run(log=log, executor="inprocess", store=store)
    done = len(calls(log))
    flows.frames.run(log=log, executor="inprocess", store=store, cache=False)
    assert len(calls(log)) == 2 * done

    flows.volatile.run(log=log, executor="inprocess", store=store)
    result = flows.volatile.run(log=log, executor="inprocess", store=store)
    # constant says cache=False: it runs again; echo's input is the same bytes, so it is cached.
    assert result.steps["constant"].state == "finished"
    assert result.steps["echo"].state == "cached"
    assert calls(log)[-3:] == ["constant", "echo", "constant"]


def test_a_changed_parameter_reruns_what_depends_on_it(store: SqlStore, log: str) -> None:
    flows.frames.run(log=log, rows=20, executor="inprocess", store=store)
    result = flows.frames.run(log=log, rows=24, executor="inprocess", store=store)
    assert result.executed == 7
    assert result.output["rows"] == 24.0


def test_a_failed_step_skips_what_depends_on_it_and_resumes(
    store: SqlStore, log: str, tmp_path: Path
) -> None:
    flag = str(tmp_path / "flag")
    with pytest.raises(PipelineError) as raised:
        flows.recoverable.run(log=log, flag_file=flag, executor="inprocess", store=store)
    message = str(raised.value)
    assert "step 'fragile' failed" in message
    assert "Traceback" in message
    assert "RuntimeError: flag file missing" in message
    assert f"--resume {raised.value.run_id}" in message
    failed_id = raised.value.run_id
    assert failed_id is not None

    failed = store.get_run(failed_id)
    assert failed.status == "failed"
    assert "flag file missing" in (failed.error or "")
    assert sorted(calls(log)) == ["echo", "fragile", "seed"]

    result = flows.recoverable.run(
        log=log, flag_file=flag, executor="inprocess", store=store, raise_on_error=False
    )
    states = {key: step.state for key, step in result.steps.items()}
    assert states == {
        "seed": "cached",
        "fragile": "failed",
        "add": "skipped",
        "double": "skipped",
        "echo": "cached",
    }
    skipped = store.get_run(result.steps["double"].run_id or "")
    assert skipped.status == "killed"
    assert skipped.tags["mloop.step.state"] == "skipped"
    assert "upstream step 'fragile' failed" in (skipped.error or "")
    broken = store.get_run(result.steps["fragile"].run_id or "")
    assert broken.status == "failed"
    assert broken.tags["mloop.step.error_type"] == "RuntimeError"
    assert "Traceback" in (broken.error or "")

    Path(flag).touch()
    before = calls(log)
    resumed = flows.recoverable.run(resume=failed_id, executor="inprocess", store=store)
    assert resumed.status == "finished"
    assert resumed.output == (6, 5)  # as the pipeline function returned it
    new_calls = calls(log)[len(before) :]
    assert sorted(new_calls) == ["add", "double", "fragile"]  # seed and echo were reused
    assert store.get_run(resumed.run_id).tags["mloop.pipeline.resumed_from"] == failed_id
    assert store.get_run(resumed.run_id).params["flag_file"] == flag  # the failed run's params

    with pytest.raises(ConflictError, match="nothing to resume"):
        flows.recoverable.run(resume=resumed.run_id, executor="inprocess", store=store)
    with pytest.raises(InvalidValueError, match="not a run of pipeline 'frames'"):
        flows.frames.run(resume=failed_id, executor="inprocess", store=store)


def test_resume_reuses_steps_that_are_never_cached(
    store: SqlStore, log: str, tmp_path: Path
) -> None:
    flag = str(tmp_path / "flag")

    @flows.pipeline(name="volatile_then_fragile")
    def flow(log: str, flag_file: str):  # type: ignore[no-untyped-def]
        return flows.add(log, flows.constant(log), flows.fragile(log, flag_file))

    first = flow.run(
        log=log, flag_file=flag, executor="inprocess", store=store, raise_on_error=False
    )
    assert first.status == "failed"
    Path(flag).touch()
    resumed = flow.run(resume=first.run_id, executor="inprocess", store=store)
    assert resumed.steps["constant"].state == "cached"  # reused, although cache=False
    assert calls(log).count("constant") == 1
    assert resumed.output == 9


def test_retries_with_backoff(lite: SqlStore, log: str) -> None:
    started = time.monotonic()
    result = flows.retrying.run(log=log, succeed_on=3, executor="inprocess", store=lite)
    elapsed = time.monotonic() - started

    assert result.output == 3
    step = result.steps["flaky"]
    assert step.attempts == 3
    assert elapsed >= 0.05 + 0.1  # waited retry_delay, then twice that
    assert "[mloop] try 1 failed (ConnectionError: try 1 failed); retrying in 0.05 s" in step.log
    assert "retrying in 0.1 s" in step.log
    assert lite.get_run(step.run_id or "").tags["mloop.step.attempts"] == "3"


def test_retries_run_out(lite: SqlStore, log: str) -> None:
    result = flows.retrying.run(
        log=log, succeed_on=10, executor="inprocess", store=lite, raise_on_error=False
    )
    assert result.status == "failed"
    assert result.steps["flaky"].attempts == 3
    assert "ConnectionError: try 3 failed" in (result.steps["flaky"].error or "")
    assert calls(log) == ["flaky"] * 3


def test_a_step_past_its_timeout_is_killed(lite: SqlStore) -> None:
    started = time.monotonic()
    result = flows.sleepy.run(seconds=30.0, executor="inprocess", store=lite, raise_on_error=False)
    assert time.monotonic() - started < 20  # killed at 0.5 s, not left to sleep 30 s
    step = result.steps["sleeper"]
    assert step.state == "failed"
    assert "StepTimeoutError" in (step.error or "")
    assert "timeout of 0.5 s" in (step.error or "")
    record = lite.get_run(step.run_id or "")
    assert record.tags["mloop.step.error_type"] == "StepTimeoutError"

    quick = flows.sleepy.run(seconds=0.0, executor="inprocess", store=lite)
    assert quick.output == "woke"


def test_a_step_with_a_timeout_runs_in_its_own_process(lite: SqlStore) -> None:
    result = flows.timed_where.run(executor="inprocess", store=lite)
    assert result.output != os.getpid()
    assert result.steps["timed_pid"].log == "inside the timeout process\n"


def test_independent_steps_run_in_parallel_on_a_process_pool(lite: SqlStore, log: str) -> None:
    result = flows.parallel.run(log=log, seconds=1.0, executor="process", max_workers=2, store=lite)
    assert result.output == "a+b"
    times = {}
    pids = set()
    for line in calls(log):
        what, tag, when, pid = line.split(":")
        times[(what, tag)] = float(when)
        pids.add(int(pid))
    # Each started before the other ended: they overlapped, in two worker processes.
    assert times[("start", "a")] < times[("end", "b")]
    assert times[("start", "b")] < times[("end", "a")]
    assert len(pids) == 2
    assert os.getpid() not in pids


def test_outputs_without_a_codec_need_an_explicit_serializer(lite: SqlStore, log: str) -> None:
    result = flows.unstorable.run(executor="inprocess", store=lite, raise_on_error=False)
    error = result.steps["opaque"].error or ""
    assert "returned a Opaque" in error
    assert "serializer" in error

    first = flows.pickled.run(log=log, executor="inprocess", store=lite)
    assert first.output == 3
    second = flows.pickled.run(log=log, executor="inprocess", store=lite)
    assert second.cache_hits == 2
    assert second.outputs["opaque_pickled"] == flows.Opaque([0, 1, 2])  # read with its pickle


def test_a_model_output_goes_through_the_registry(lite: SqlStore, log: str) -> None:
    from sklearn.linear_model import LogisticRegression

    @flows.step
    def fit(df: pd.DataFrame) -> LogisticRegression:
        return LogisticRegression().fit(df[["x"]], df["y"])

    @flows.step(cache=False)
    def score(model: LogisticRegression, df: pd.DataFrame) -> float:
        return float(model.score(df[["x"]], df["y"]))

    @flows.pipeline(name="modelling")
    def modelling(log: str):  # type: ignore[no-untyped-def]
        df = flows.make_frame(log, 40)
        return score(fit(df), df)

    first = modelling.run(log=log, executor="inprocess", store=lite)
    fit_run = first.steps["fit"].run_id or ""
    edges = {e.name: e.artifact for e in lite.list_lineage(fit_run)}
    assert edges["outputs/output"].kind == "model"
    assert first.steps["fit"].outputs[0]["codec"] == "model"

    second = modelling.run(log=log, executor="inprocess", store=lite)
    assert second.steps["fit"].state == "cached"
    assert second.steps["score"].state == "finished"  # it loaded the model from its package
    assert second.output == first.output


def test_the_observer_sees_every_state_change(lite: SqlStore, log: str) -> None:
    seen: list[tuple[str, str]] = []

    def observe(step: StepResult) -> None:
        seen.append((step.key, step.state))

    flows.volatile.run(log=log, executor="inprocess", store=lite, observer=observe)
    assert seen == [
        ("constant", "running"),
        ("constant", "finished"),
        ("echo", "running"),
        ("echo", "finished"),
    ]


def test_bad_parameters_are_refused_before_anything_runs(lite: SqlStore, log: str) -> None:
    with pytest.raises(InvalidValueError, match="its parameters are: log, rows=20"):
        flows.frames.run(log=log, colour="red", executor="inprocess", store=lite)
    with pytest.raises(InvalidValueError, match="JSON"):
        flows.frames.run(log=log, rows=object(), executor="inprocess", store=lite)
    with pytest.raises(InvalidValueError, match="8000"):  # recorded params have a size limit
        flows.frames.run(log="x" * 9000, executor="inprocess", store=lite)
    with pytest.raises(InvalidValueError, match="cache must be True or False"):
        flows.frames.run(log=log, cache="no", store=lite)  # type: ignore[arg-type]
    assert calls(log) == []
    assert lite.search_runs() == []


def test_a_killed_pipeline_process_leaves_its_finished_steps_resumable(
    tmp_path: Path, log: str
) -> None:
    """Run a pipeline in a child process, kill it mid-step, and resume it from here."""
    import signal
    import subprocess
    import sys

    db = tmp_path / "meta.db"
    script = tmp_path / "run.py"
    script.write_text(
        "import sys\n"
        "from mloop.store import SqlStore\n"
        "from tests.orchestration import flows\n"
        f"flows.parallel_chain.run(log={log!r}, executor='inprocess', "
        f"store=SqlStore({f'sqlite:///{db}'!r}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    child = subprocess.Popen([sys.executable, str(script)], env=env)
    deadline = time.monotonic() + 60
    while "start:hang" not in "".join(calls(log)) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # records are written every FLUSH_SECONDS (0.25 s) in the background
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    store = SqlStore(f"sqlite:///{db}")
    try:
        running = [r for r in store.search_runs() if r.kind == "pipeline"]
        assert [r.status for r in running] == ["running"]  # nobody could end it
        flows_result = flows.parallel_chain.run(
            resume=running[0].id, log=log, hang=0.0, executor="inprocess", store=store
        )
        assert flows_result.steps["slow"].state == "cached"  # finished before the kill
        assert flows_result.steps["slow_2"].state == "finished"
    finally:
        store.close()
