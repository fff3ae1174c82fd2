"""Many processes at once, and processes that end badly: nothing logged is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mloop.store import SqlStore

pytestmark = pytest.mark.slow


def run_python(
    code: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def spawn(code: str, url: str, tmp_path: Path) -> subprocess.Popen[str]:
    """Start a Python child logging to ``url``; its stdout is a pipe to read the run id from."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=child_env(url, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def child_env(url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOOP_")}
    env["MLOOP_TRACKING_URI"] = url
    env["MLOOP_ARTIFACT_URI"] = str(tmp_path / "artifacts")
    env["MLOOP_FLUSH_INTERVAL"] = "0.05"  # many small batches: the most lock contention
    return env


WRITER = """
    import sys, mloop
    with mloop.start_run(experiment="many", name=sys.argv[1] if len(sys.argv) > 1 else "w") as run:
        for i in range(2000):
            run.log_metric("m", float(i), step=i)
            if i % 250 == 0:
                run.log_params({f"p{i}": i})
                run.set_tags({"progress": str(i)})
    print(run.id)
"""


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_four_processes_log_2000_metrics_each_with_nothing_lost(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "postgres_url")
    env = child_env(url, tmp_path)
    SqlStore(url).close()  # migrate first so the children race on logging, not on creation
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WRITER)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [proc.communicate(timeout=180) for proc in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err.lower()
    store = SqlStore(url)
    try:
        for out, _ in outputs:
            run_id = out.strip()
            run = store.get_run(run_id)
            assert run.status == "finished"
            assert len(run.params) == 8
            values = [p.value for p in store.get_metric_history(run_id, "m")]
            assert values == [float(i) for i in range(2000)]
    finally:
        store.close()


def test_a_run_never_ended_is_flushed_and_finished_at_exit(sqlite_url: str, tmp_path: Path) -> None:
    done = run_python(
        """
        import mloop
        run = mloop.start_run(experiment="exit")
        for i in range(5000):
            run.log_metric("m", float(i))
        print(run.id)
        """,
        child_env(sqlite_url, tmp_path),
    )
    assert done.returncode == 0, done.stderr
    store = SqlStore(sqlite_url)
    run_id = done.stdout.strip()
    assert store.get_run(run_id).status == "finished"
    assert len(store.get_metric_history(run_id, "m")) == 5000
    store.close()


def test_an_uncaught_exception_fails_the_run_with_every_metric(
    sqlite_url: str, tmp_path: Path
) -> None:
    done = run_python(
        """
        import mloop
        with mloop.start_run(experiment="crash") as run:
            print(run.id, flush=True)
            for i in range(5000):
                run.log_metric("m", float(i))
            raise RuntimeError("training diverged")
        """,
        child_env(sqlite_url, tmp_path),
    )
    assert done.returncode == 1
    assert "training diverged" in done.stderr
    store = SqlStore(sqlite_url)
    run = store.get_run(done.stdout.split()[0])
    assert run.status == "failed"
    assert run.error is not None
    assert "RuntimeError: training diverged" in run.error
    assert len(store.get_metric_history(run.id, "m")) == 5000
    store.close()


def test_ctrl_c_ends_the_run_as_killed(sqlite_url: str, tmp_path: Path) -> None:
    proc = spawn(
        """
            import time, mloop
            with mloop.start_run(experiment="ctrl-c") as run:
                run.log_metric("m", 1.0)
                print(run.id, flush=True)
                time.sleep(60)
            """,
        sqlite_url,
        tmp_path,
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    store = SqlStore(sqlite_url)
    run = store.get_run(run_id)
    assert run.status == "killed"
    assert run.metrics == {"m": 1.0}
    store.close()


def test_a_killed_writer_leaves_a_consistent_store(sqlite_url: str, tmp_path: Path) -> None:
    """SIGKILL mid-logging: the store stays readable and writable, committed rows stay."""
    proc = spawn(
        """
            import mloop
            with mloop.start_run(experiment="kill") as run:
                print(run.id, flush=True)
                i = 0
                while True:
                    run.log_metric("m", float(i), step=i)
                    i += 1
            """,
        sqlite_url,
        tmp_path,
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    time.sleep(1.0)
    proc.kill()
    proc.communicate(timeout=60)
    store = SqlStore(sqlite_url)
    history = store.get_metric_history(run_id, "m")
    # Whatever was committed is a gap-free prefix: batches are all-or-nothing.
    assert [p.step for p in history] == list(range(len(history)))
    assert store.get_run(run_id).status == "running"
    store.end_run(run_id, "killed", error="process was killed")
    store.close()
