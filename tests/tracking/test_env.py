"""Where a run ran: git state, command line, Python and packages."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import mloop
from mloop.tracking import git_state
from mloop.tracking._env import strip_credentials


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git("init", "-q", "-b", "feature/x", cwd=root)
    git("config", "user.email", "ann@example.com", cwd=root)
    git("config", "user.name", "Ann", cwd=root)
    git(
        "remote", "add", "origin", "https://ann:s3cret-token@git.example.com/ml/churn.git", cwd=root
    )
    (root / "train.py").write_text("print('hi')\n")
    git("add", ".", cwd=root)
    git("commit", "-q", "-m", "first", cwd=root)
    return root


def test_a_run_records_the_commit_branch_and_remote_without_credentials(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    git_state.cache_clear()
    with mloop.start_run() as run:
        pass
    info = mloop.get_run(run.id)
    assert info.git_commit == git("rev-parse", "HEAD", cwd=repo)
    assert info.git_dirty is False
    assert info.git_branch == "feature/x"
    assert info.git_remote == "https://git.example.com/ml/churn.git"
    assert "s3cret" not in str(info)


def test_an_uncommitted_change_marks_the_run_dirty(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "train.py").write_text("print('changed')\n")
    monkeypatch.chdir(repo)
    git_state.cache_clear()
    with mloop.start_run() as run:
        pass
    assert mloop.get_run(run.id).git_dirty is True


def test_outside_a_repository_git_fields_are_empty(tmp_path: Path) -> None:
    git_state.cache_clear()
    state = git_state(tmp_path)
    assert (state.commit, state.dirty, state.branch, state.remote) == (None, None, None, None)


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://user:pw@host/r.git", "https://host/r.git"),
        ("https://token@host/r.git", "https://host/r.git"),
        ("git@github.com:org/r.git", "git@github.com:org/r.git"),  # scp-like: no secret
        ("ssh://git@host:22/r.git", "ssh://host:22/r.git"),
    ],
)
def test_strip_credentials(url: str, clean: str) -> None:
    assert strip_credentials(url) == clean
