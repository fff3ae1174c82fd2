"""Fixtures for the CLI tests: a project folder of its own, a runner, and recorded runs.

These set MLOOP_HOME themselves (rather than leaning on the suite-wide conftest), so the tests
read the same whichever conftest is in force.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mloop.cli import app

from .helpers import Invoke


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder that is the current folder and MLOOP_HOME."""
    for name in list(os.environ):
        if name.startswith("MLOOP_"):
            monkeypatch.delenv(name)
    home = tmp_path / "cli-project"
    home.mkdir()
    monkeypatch.setenv("MLOOP_HOME", str(home))
    monkeypatch.setenv("MLOOP_USER", "alice")
    monkeypatch.chdir(home)
    return home


@pytest.fixture
def cli(project: Path) -> Invoke:
    """Run ``mloop ARGS...`` in-process; a wide terminal unless ``columns`` says otherwise."""
    runner = CliRunner()

    def invoke(*args: str, columns: int = 200, env: Mapping[str, str] | None = None) -> Result:
        return runner.invoke(app, list(args), env={"COLUMNS": str(columns), **(env or {})})

    return invoke
