"""mloop gc: durations, dry runs, and purging for real."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
import typer

import mloop
from mloop.cli._gc import parse_duration

from .helpers import Invoke, record_run


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("0d", timedelta(0)),
        ("2w", timedelta(weeks=2)),
        ("45s", timedelta(seconds=45)),
        (" 7D ", timedelta(days=7)),
        ("36500d", timedelta(days=36500)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "30", "d", "-1d", "1.5d", "30 days", "3x", "1d2h", "36501d", "9" * 30 + "w"]
)
def test_bad_durations_are_usage_errors(cli: Invoke, text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_duration(text)
    result = cli("gc", "--older-than", text)
    assert result.exit_code == 2
    assert "--older-than" in result.stderr
    assert "Traceback" not in result.output


def test_nothing_to_collect(cli: Invoke) -> None:
    record_run(name="kept")
    result = cli("gc")
    assert result.exit_code == 0, result.output
    assert "Nothing to collect" in result.stdout
    assert "30 days" in result.stdout


def test_gc_in_a_folder_with_nothing_recorded(cli: Invoke) -> None:
    result = cli("gc")
    assert result.exit_code == 0, result.output
    assert "nothing has been recorded here" in result.stdout


def test_dry_run_then_purge(cli: Invoke, project: Path) -> None:
    kept = record_run(name="kept")
    with mloop.start_run(experiment="churn", name="doomed") as run:
        (project / "model.bin").write_bytes(b"\x00" * 5000)
        run.log_artifact(project / "model.bin")
    assert cli("runs", "delete", run.id).exit_code == 0
    time.sleep(0.01)  # deleted strictly before the cutoff of --older-than 0d

    dry = cli("gc", "--dry-run", "--older-than", "0d")
    assert dry.exit_code == 0, dry.output
    assert "Dry run, nothing was deleted" in dry.stdout
    assert run.id in dry.stdout
    assert "4.9 KiB" in dry.stdout
    assert cli("runs", "show", run.id).exit_code == 0  # nothing was deleted

    real = cli("gc", "--older-than", "0d")
    assert real.exit_code == 0, real.output
    assert "Purged:" in real.stdout
    assert "4.9 KiB" in real.stdout
    assert cli("runs", "show", run.id).exit_code == 1
    assert cli("runs", "show", kept).exit_code == 0
    assert "Nothing to collect" in cli("gc", "--older-than", "0d").stdout


def test_recently_deleted_runs_are_kept(cli: Invoke) -> None:
    run_id = record_run()
    cli("runs", "delete", run_id)
    result = cli("gc")
    assert "Nothing to collect" in result.stdout
    assert cli("runs", "show", run_id).exit_code == 0
