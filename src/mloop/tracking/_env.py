"""What a run records about where it ran: git state, command, Python and packages (C2, P3).

Captured once per process (packages) or per working folder (git) and cached: a run costs no
subprocess and no package scan after the first one.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from mloop.store import Environment

MAX_COMMAND = 4000


@dataclass(frozen=True)
class GitState:
    commit: str | None = None
    dirty: bool | None = None
    branch: str | None = None
    remote: str | None = None


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def strip_credentials(url: str) -> str:
    """A remote URL without user:password@ (tokens must never land in the metadata store)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url


@functools.lru_cache(maxsize=32)
def git_state(cwd: Path) -> GitState:
    """The commit, dirty flag, branch and origin of the repository holding ``cwd``, if any."""
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return GitState()
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd)
    remote = _git(["config", "--get", "remote.origin.url"], cwd)
    return GitState(
        commit=commit,
        dirty=None if status is None else bool(status),
        branch=branch if branch and branch != "HEAD" else None,
        remote=strip_credentials(remote) if remote else None,
    )


def command_line() -> str:
    """How this process was started, as a shell-quoted line."""
    text = shlex.join([sys.executable, *sys.argv])
    return text if len(text) <= MAX_COMMAND else text[: MAX_COMMAND - 3] + "..."


@functools.lru_cache(maxsize=2)
def environment(with_packages: bool = True) -> Environment:
    """This interpreter's version, platform and installed distributions."""
    packages: dict[str, str] = {}
    if with_packages:
        for dist in importlib.metadata.distributions():
            name = dist.name
            if name:
                packages[name.lower()] = dist.version
    return Environment(
        python=platform.python_version(),
        platform=platform.platform(),
        packages=dict(sorted(packages.items())),
    )
