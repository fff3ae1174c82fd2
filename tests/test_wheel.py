"""The wheel as users get it: built from a clean copy, installed in a fresh venv, run.

Slow (minutes): it builds with `python -m build` and installs mloop's dependencies from the
package index pip is configured with. One venv for every check.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mloop.store import SCHEMA_HEAD

ROOT = Path(__file__).resolve().parents[1]
# What a build reads: the package and the metadata pyproject.toml points at.
BUILD_INPUTS = ("src", "pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md")

# One worker builds the wheel and the venv for both tests (make test runs --dist loadgroup).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800), pytest.mark.xdist_group("wheel")]


def run(
    args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without MLOOP_* settings, PYTHONPATH or the outer virtualenv."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MLOOP_") and key not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    return {**env, "COLUMNS": "120", **extra}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif path.is_file():
            shutil.copy2(path, source / name)
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(source)], cwd=source)
    [built] = dist.glob("mloop-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", str(folder)], cwd=folder)
    run(
        [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        cwd=folder,
        env=clean_env(),
    )
    return folder


def test_wheel_ships_the_migrations_and_the_entry_point(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = "mloop/store/migrations/"
    assert migrations + "env.py" in names
    assert migrations + "script.py.mako" in names
    versions = [n for n in names if n.startswith(migrations + "versions/") and n.endswith(".py")]
    assert any(Path(n).name.startswith(SCHEMA_HEAD) for n in versions), versions
    assert "mloop/cli/__init__.py" in names
    assert "mloop/demo/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "mloop = mloop.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_mloop_runs_the_demo_in_an_empty_folder(venv: Path, tmp_path: Path) -> None:
    mloop = str(venv / "bin" / "mloop")
    empty = tmp_path / "empty"
    empty.mkdir()
    env = clean_env()

    where = run(
        [str(venv / "bin" / "python"), "-c", "import mloop; print(mloop.__file__)"],
        cwd=empty,
        env=env,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv)  # not the source tree

    help_text = run([mloop, "--help"], cwd=empty, env=env).stdout
    for command in ("demo", "runs", "experiments", "gc", "version"):
        assert command in help_text

    demo = run([mloop, "demo", "--rows", "60"], cwd=empty, env=env).stdout
    assert "mloop runs show" in demo
    database = empty / ".mloop" / "mloop.db"
    assert database.is_file()
    with sqlite3.connect(database) as conn:  # the installed package ran its migrations
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (SCHEMA_HEAD,)
        ]

    runs = json.loads(run([mloop, "runs", "list", "--json"], cwd=empty, env=env).stdout)
    # The tracked training run, the training pipeline's run and its six step runs.
    assert sorted(r["kind"] for r in runs) == ["pipeline", "run"] + ["step"] * 6
    [listed] = [r for r in runs if r["kind"] == "run"]
    assert listed["experiment"] == "demo"
    assert listed["status"] == "finished"
    shown = run([mloop, "runs", "show", listed["id"]], cwd=empty, env=env).stdout
    assert "report.md" in shown
