"""What every workload shares: peer venvs, worker processes, scratch directories and results.

A workload module (bench/tracking.py, …) exposes `run(ctx: Context) -> Section`. It drives its
sides as worker processes: mloop's in this interpreter's venv, each peer's in
`.venv-bench/<peer>/`, built here from the pinned `bench/peers/<peer>.txt`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORKERS = BENCH / "workers"
PEERS_DIR = BENCH / "peers"
PEER_VENVS = REPO / ".venv-bench"
HASH_FILE = "requirements.sha256"


@dataclass(frozen=True)
class Peer:
    """A tool mloop is compared with, installed from `bench/peers/<name>.txt`."""

    name: str
    label: str
    packages: tuple[str, ...]  # whose installed versions the report names

    @property
    def requirements(self) -> Path:
        return PEERS_DIR / f"{self.name}.txt"

    @property
    def venv(self) -> Path:
        return PEER_VENVS / self.name

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


PEERS = {
    peer.name: peer
    for peer in [
        Peer("mlflow", "MLflow", ("mlflow", "scikit-learn")),
        Peer("feast", "Feast", ("feast", "pandas", "redis")),
        Peer("prefect", "Prefect", ("prefect", "fastapi")),
        Peer("dagster", "Dagster", ("dagster",)),
        # mloop as a serving host installs it: the base package, none of the dev extras (whose
        # torch, for one, scikit-learn's estimator discovery would import on skops' first use).
        Peer("mloop-base", "mloop (base install)", ("mloop", "scikit-learn", "skops")),
        Peer("mloop-serve", "mloop (server install)", ("uvicorn", "starlette", "skops")),
    ]
}


class WorkerError(RuntimeError):
    """A worker process failed or printed no JSON result."""


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    """One workload's report: its tables, the peers it ran and what a reader must know."""

    workload: str
    title: str
    tables: list[Table]
    peers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # sides that failed; the run exits 1


@dataclass
class Context:
    quick: bool
    console: Console
    peer_versions: dict[str, dict[str, str]] = field(default_factory=dict)
    # The machine may be shared: the report gives the load around the run.
    load_at_start: float = field(default_factory=lambda: os.getloadavg()[0])
    _scratch_root: Path | None = field(default=None, init=False)

    @property
    def mloop_python(self) -> Path:
        # Not resolved: a venv's python symlink must stay the venv's, not the base interpreter.
        return Path(sys.executable)

    def say(self, message: str) -> None:
        self.console.log(message, markup=False)

    def peer_python(self, name: str) -> Path:
        """The peer's venv interpreter, building or rebuilding the venv when its pins changed."""
        peer = PEERS[name]
        if name not in self.peer_versions:
            ensure_venv(peer, self.say)
            self.peer_versions[name] = installed_versions(peer.python, peer.packages)
        return peer.python

    @contextmanager
    def scratch(self) -> Iterator[Path]:
        """A fresh directory, deleted afterwards."""
        if self._scratch_root is None:
            self._scratch_root = Path(tempfile.mkdtemp(prefix="mloop-bench-"))
        path = Path(tempfile.mkdtemp(dir=self._scratch_root))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        if self._scratch_root is not None:
            shutil.rmtree(self._scratch_root, ignore_errors=True)


def run_worker(
    python: Path,
    script: Path,
    task: str,
    kwargs: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    cwd: Path,
    timeout: float = 3600,
) -> dict[str, Any]:
    """Run one task of a worker script (see workers/protocol.py) and return its JSON result."""
    search_path = [str(WORKERS), *filter(None, [os.environ.get("PYTHONPATH")])]
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join(search_path), **env}
    command = [str(python), str(script), task, json.dumps(kwargs)]
    try:
        done = subprocess.run(
            command, env=full_env, cwd=cwd, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise WorkerError(f"{script.name} {task} took longer than {timeout:.0f} s") from exc
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise WorkerError(f"{script.name} {task} exited with {done.returncode}:\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def requirements_hash(peer: Peer) -> str:
    """The pins' digest; for a venv holding mloop itself (`-e .`), its dependencies' too."""
    pins = peer.requirements.read_bytes()
    if any(line.startswith(b"-e .") for line in pins.splitlines()):  # also `-e .[extra]`
        pins += (REPO / "pyproject.toml").read_bytes()
    return hashlib.sha256(pins).hexdigest()


def ensure_venv(peer: Peer, say: Callable[[str], None] = print) -> None:
    """Create `.venv-bench/<peer>` from its pinned file, unless one built from that file exists."""
    digest = requirements_hash(peer)
    stamp = peer.venv / HASH_FILE
    if peer.python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return
    say(f"building {peer.venv.relative_to(REPO)} from {peer.requirements.relative_to(REPO)} …")
    shutil.rmtree(peer.venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(peer.venv)], check=True)
    log = peer.venv / "pip-install.log"
    with log.open("w") as out:
        install = [str(peer.python), "-m", "pip", "install", "-r", str(peer.requirements)]
        done = subprocess.run(install, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise RuntimeError(f"installing {peer.requirements.name} failed (see {log}):\n{tail}")
    # Written last, so an interrupted install is redone on the next run.
    stamp.write_text(digest + "\n")


def installed_versions(python: Path, packages: tuple[str, ...]) -> dict[str, str]:
    script = (
        "import importlib.metadata as m, json, sys;"
        "print(json.dumps({p: m.version(p) for p in sys.argv[1:]}))"
    )
    done = subprocess.run(
        [str(python), "-c", script, *packages], capture_output=True, text=True, check=True
    )
    versions: dict[str, str] = json.loads(done.stdout)
    return versions
