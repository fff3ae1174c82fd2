"""Recording a pipeline run: the pipeline's own run, and its steps' runs in batches.

Git state and the environment are read once per pipeline run, not per step. Finished steps
go to a :class:`Recorder`, whose background thread writes them every :data:`FLUSH_SECONDS`
(or :data:`FLUSH_EVERY` records) in one transaction each.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mloop.backends import Backends
from mloop.store import CacheEntry, NewRun, StepRecord
from mloop.tracking import GitState, environment, git_state

__all__ = [
    "FLUSH_EVERY",
    "FLUSH_SECONDS",
    "Recorder",
    "RunInfo",
    "command_line",
    "param_text",
    "start_pipeline_run",
]

FLUSH_EVERY = 256
FLUSH_SECONDS = 0.25
MAX_PARAM = 6000
_env_ids: dict[str, str] = {}  # per store URI: the environment row, recorded once


class Recorder:
    """Finished steps, written to the store in batches by a background thread.

    The runner only appends; every :data:`FLUSH_SECONDS` (or :data:`FLUSH_EVERY` records) the
    thread writes what has gathered in one transaction. So a long step does not hold back the
    records of the steps that finished before it, and a killed process loses at most the last
    fraction of a second, while a chain of tiny steps costs a few transactions in all.
    """

    def __init__(self, backends: Backends) -> None:
        self._store = backends.store
        self._steps: list[StepRecord] = []
        self._cache: list[CacheEntry] = []
        self._lock = threading.Lock()  # guards the two lists
        self._writing = threading.Lock()  # one flush at a time, in order
        self._wake = threading.Event()
        self._stopped = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="mloop-pipeline-recorder")
        self._thread.daemon = True
        self._thread.start()

    def add(self, step: StepRecord | None = None, cache: CacheEntry | None = None) -> None:
        if self._error is not None:
            raise self._error
        with self._lock:
            if step is not None:
                self._steps.append(step)
            if cache is not None:
                self._cache.append(cache)
            full = len(self._steps) + len(self._cache) >= FLUSH_EVERY
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Write everything gathered so far, now, in this thread."""
        with self._writing:
            with self._lock:
                steps, cache = self._steps, self._cache
                self._steps, self._cache = [], []
            if steps or cache:
                self._store.pipelines.record_steps(steps, cache)

    def _loop(self) -> None:
        while not self._stopped:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            try:
                self.flush()
            except BaseException as error:  # noqa: BLE001 - handed to the runner's thread
                self._error = error
                return

    def close(self) -> None:
        """Stop the thread and write what is left (raising a background write's error)."""
        self._stopped = True
        self._wake.set()
        self._thread.join()
        self.flush()
        if self._error is not None:
            raise self._error


def command_line() -> str:
    text = shlex.join([sys.executable, *sys.argv])
    return text if len(text) <= 4000 else text[:3997] + "..."


def param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if len(text) > MAX_PARAM:
        digest = hashlib.sha256(text.encode()).hexdigest()
        return f"sha256:{digest} ({len(text)} characters)"
    return text


@dataclass(frozen=True)
class RunInfo:
    """What every step run of one pipeline run shares."""

    run_id: str
    experiment_id: str
    user: str
    git: GitState
    command: str
    environment_id: str | None
    params_json: str


def start_pipeline_run(
    backends: Backends,
    pipeline: str,
    *,
    experiment: str | None,
    params: Mapping[str, Any],
    params_json: str,
    tags: Mapping[str, Any],
) -> RunInfo:
    """Record the pipeline run (kind ``pipeline``) with its params; git/env read once."""
    store, settings = backends.store, backends.settings
    exp = store.get_or_create_experiment(experiment or settings.experiment)
    env_id = _env_ids.get(store.uri)
    if env_id is None:
        env_id = _env_ids[store.uri] = store.put_environment(environment(settings.capture_packages))
    git = git_state(Path.cwd())
    command = command_line()
    record = store.create_run(
        NewRun(
            experiment_id=exp.id,
            name=pipeline,
            user=settings.user,
            kind="pipeline",
            git_commit=git.commit,
            git_dirty=git.dirty,
            git_branch=git.branch,
            git_remote=git.remote,
            command=command,
            environment_id=env_id,
        ),
        params={name: param_text(value) for name, value in params.items()},
        tags={"mloop.pipeline": pipeline, "mloop.pipeline.params": params_json, **tags},
    )
    return RunInfo(record.id, exp.id, settings.user, git, command, env_id, params_json)
