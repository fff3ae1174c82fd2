"""``mloop scheduler``: the real command over a project folder with a pipelines.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mloop.store import SqlStore, now_ms

from .helpers import Invoke

PIPELINES = textwrap.dedent(
    """
    import time
    from pathlib import Path

    from mloop.pipelines import on_alert, on_new_data, pipeline, step


    @step
    def add_one(n: int) -> int:
        return n + 1


    @step
    def explode(n: int) -> int:
        raise ValueError(f"cannot take {n}")


    @pipeline(schedule="*/10 * * * *", catchup="latest")
    def refresh(n: int = 1):
        return add_one(n)


    @pipeline(triggers=[on_alert("drift_*")])
    def retrain(n: int = 2):
        return explode(n)


    @step
    def slowly(n: int) -> int:
        Path("started").touch()  # the project folder: the test waits for this
        time.sleep(1.5)
        return n


    @pipeline(triggers=[on_new_data("data")])
    def ingest(n: int = 3):
        return slowly(n)


    @pipeline
    def by_hand():
        return add_one(0)
    """
)


@pytest.fixture
def pipelines(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (project / "pipelines.py").write_text(PIPELINES)
    monkeypatch.setenv("MLOOP_COMPUTE", '{"backend": "inprocess"}')
    return project


def open_store(project: Path, clock_offset_ms: int = 0) -> SqlStore:
    return SqlStore(
        f"sqlite:///{project / '.mloop' / 'mloop.db'}", clock=lambda: now_ms() + clock_offset_ms
    )


def test_once_shows_the_plan_and_starts_schedules_from_now(cli: Invoke, pipelines: Path) -> None:
    done = cli("scheduler", "--once")
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    refresh = next(line for line in lines if line.startswith("refresh"))
    assert "*/10 * * * * (UTC)" in refresh
    assert "latest" in refresh
    retrain = next(line for line in lines if line.startswith("retrain"))
    assert "alert drift_* fired" in retrain
    assert not any(line.startswith("by_hand") for line in lines)  # neither schedule nor trigger
    assert "nothing was due" in done.output
    assert "first pass for ingest: new data in data, refresh: */10 * * * *," in done.output
    again = cli("scheduler", "--once")
    assert "first pass" not in again.output
    status = cli("scheduler", "status")
    assert status.exit_code == 0, status.output
    assert "no slots recorded yet" in status.output


def test_once_catches_up_runs_and_records_the_pipeline(cli: Invoke, pipelines: Path) -> None:
    assert cli("scheduler", "--once").exit_code == 0
    # as if the last pass had been an hour ago: six slots missed, the newest runs
    store = open_store(pipelines)
    hour_ago = now_ms() - 3_600_000
    cursor = store.schedules.get_cursor("cron:refresh")
    assert cursor is not None
    assert store.schedules.move_cursor(
        "cron:refresh", expected=cursor, position=f"{hour_ago:015d}", now_ms=hour_ago
    )
    done = cli("scheduler", "--once")
    assert done.exit_code == 0, done.output
    (line,) = [x for x in done.output.splitlines() if x.startswith("refresh ") and ": " in x]
    assert ": finished (run " in line
    assert "skipped by the catch-up policy" in done.output
    slots = store.schedules.list_slots(schedule="refresh")
    assert sorted(s.status for s in slots) == ["finished"] + ["skipped"] * (len(slots) - 1)
    assert len(slots) in (6, 7)  # the hour holds six or seven :x0 minutes
    (ran,) = [s for s in slots if s.status == "finished"]
    assert ran.run_id is not None
    run = store.get_run(ran.run_id)
    assert run.status == "finished"
    assert run.tags["mloop.slot"] == ran.slot.isoformat()
    assert ran.slot > datetime.now(UTC) - timedelta(minutes=10)
    status = cli("scheduler", "status", "--limit", "3")
    assert status.exit_code == 0
    assert ran.run_id in status.output
    assert status.output.count("skipped") == 2
    store.close()


def test_an_alert_triggers_a_run_and_its_failure_exits_1(cli: Invoke, pipelines: Path) -> None:
    assert cli("scheduler", "--once").exit_code == 0
    # recorded as if a few seconds ago: events are taken once settled (2 s) in the store
    store = open_store(pipelines, clock_offset_ms=-10_000)
    store.events.emit("alert.fired", "churn@production", {"rule": "latency"}, actor="m")
    assert "nothing was due" in cli("scheduler", "--once").output
    store.events.emit("alert.fired", "churn@production", {"rule": "drift_psi"}, actor="m")
    done = cli("scheduler", "--once")
    assert done.exit_code == 1, done.output
    assert ": failed (run " in done.output
    (slot,) = store.schedules.list_slots()
    assert slot.schedule == "retrain:on_alert:drift_*:*"
    assert slot.error is not None
    assert "cannot take 2" in slot.error
    assert store.get_run(slot.run_id or "").status == "failed"
    assert "nothing was due" in cli("scheduler", "--once").output  # handled once
    store.close()


def test_a_project_without_scheduled_pipelines_is_a_one_line_error(
    cli: Invoke, project: Path
) -> None:
    done = cli("scheduler", "--once")
    assert done.exit_code == 1
    assert "defines no pipelines" in done.output
    (project / "pipelines.py").write_text(
        "from mloop.pipelines import pipeline, step\n"
        "@step\ndef one() -> int:\n    return 1\n"
        "@pipeline\ndef plain():\n    return one()\n"
    )
    done = cli("scheduler", "--once")
    assert done.exit_code == 1
    assert "none of its 1 pipelines has a schedule or triggers" in done.output
    missing = cli("scheduler", "--project", str(project / "nope"), "status")
    assert missing.exit_code == 1
    assert "does not exist" in missing.output
    assert cli("scheduler", "--poll", "0").exit_code == 2


def _mloop() -> list[str]:
    script = Path(sys.executable).with_name("mloop")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mloop"]


@pytest.mark.slow
def test_sigterm_lets_the_running_pipeline_finish_then_exits(pipelines: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOOP_")}
    env.update(MLOOP_HOME=str(pipelines), MLOOP_COMPUTE='{"backend": "inprocess"}')
    process = subprocess.Popen(
        [*_mloop(), "scheduler", "--poll", "0.2"],
        cwd=pipelines,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = open_store(pipelines)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the first pass has looked at data/
            if store.schedules.get_cursor("ingest:on_new_data:data") is not None:
                break
            time.sleep(0.05)
        (pipelines / "data").mkdir()
        (pipelines / "data" / "day1.csv").write_text("a\n1\n")
        assert process.stderr is not None
        seen = ""
        while "claimed" not in seen and time.monotonic() < deadline:
            seen += process.stderr.readline()
        assert "pipeline 'ingest': slot" in seen
        while not (pipelines / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)  # while the 1.5 s step runs
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "stopping" in err
    assert "scheduler stopped" in out
    (slot,) = store.schedules.list_slots(schedule="ingest:on_new_data:data")
    assert slot.status == "finished"
    assert store.get_run(slot.run_id or "").status == "finished"
    store.close()
