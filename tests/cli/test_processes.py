"""The real ``mloop`` executable: exit codes, one-line errors, tracebacks with --debug."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mloop.store import SqlStore


def mloop_command() -> list[str]:
    """The console script next to this interpreter, else the entry point through -c."""
    script = Path(sys.executable).with_name("mloop")
    if script.exists():
        return [str(script)]
    found = shutil.which("mloop")
    if found:
        return [found]
    return [sys.executable, "-c", "from mloop.cli import main; main()"]


def run_mloop(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLOOP_")}
    return subprocess.run(
        [*mloop_command(), *args],
        cwd=cwd,
        env={**clean, "COLUMNS": "100", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    empty = tmp_path / "empty"
    empty.mkdir()
    return empty


@pytest.fixture
def project(folder: Path) -> Path:
    """A folder whose store exists but holds no runs."""
    SqlStore(f"sqlite:///{folder / '.mloop' / 'mloop.db'}").close()
    return folder


def test_unknown_run_is_one_line_and_exit_1(project: Path) -> None:
    done = run_mloop("runs", "show", "nonexistent", cwd=project)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == "error: no run 'nonexistent'; see runs with: mloop runs list\n"


def test_debug_shows_the_traceback(project: Path) -> None:
    done = run_mloop("--debug", "runs", "show", "nonexistent", cwd=project)
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert "mloop.errors.NotFoundError: no run 'nonexistent'" in done.stderr


def test_no_store_is_one_line_and_creates_nothing(folder: Path) -> None:
    done = run_mloop("runs", "show", "nonexistent", cwd=folder)
    assert done.returncode == 1
    assert done.stderr.startswith("error: no mloop store at ")
    assert done.stderr.count("\n") == 1
    assert list(folder.iterdir()) == []


def test_usage_error_exits_2(folder: Path) -> None:
    done = run_mloop("gc", "--older-than", "soon", cwd=folder)
    assert done.returncode == 2
    assert "'soon' is not a duration" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_demo_in_an_empty_folder_then_list(folder: Path) -> None:
    """No MLOOP_* variables and no mloop.yaml: everything lands in ./.mloop."""
    demo = run_mloop("demo", "--rows", "60", cwd=folder)
    assert demo.returncode == 0, demo.stderr
    assert "mloop runs show" in demo.stdout
    assert (folder / ".mloop" / "mloop.db").is_file()
    listed = run_mloop("runs", "list", cwd=folder)
    assert listed.returncode == 0, listed.stderr
    assert "breast-cancer-logreg" in listed.stdout, listed.stdout
    assert "finished" in listed.stdout
