"""The functions users type: start_run, active_run, get_run."""

from __future__ import annotations

import atexit
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from mloop.artifacts import ArtifactStore
from mloop.config import Settings
from mloop.errors import InvalidValueError
from mloop.store import NewRun, RunRecord, Store, check_name
from mloop.tracking import _active
from mloop.tracking._context import backends
from mloop.tracking._env import command_line, environment, git_state
from mloop.tracking._run import Run


class _Auto:
    def __repr__(self) -> str:
        return "AUTO"


AUTO: Final = _Auto()
# Once per process and store (keyed by URI, since an object's id can be reused): the
# environment row and the ids of the experiments used so far.
_env_ids: dict[str, str] = {}
_experiment_ids: dict[tuple[str, str], str] = {}


def start_run(
    *,
    experiment: str | None = None,
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    parent: Run | str | _Auto | None = AUTO,
    kind: str = "run",
    store: Store | None = None,
    artifacts: ArtifactStore | None = None,
    settings: Settings | None = None,
) -> Run:
    """Start a run and make it the current one; use it with ``with``.

        with mloop.start_run(experiment="churn", params={"C": 1.0}) as run:
            run.log_metric("auc", 0.91)

    A run started while another is active in this thread becomes its child, unless
    ``parent=None``. The run records the git commit/dirty flag/branch of the working folder,
    the command line, Python, platform and installed packages.
    """
    ctx = backends(store, artifacts, settings)
    experiment_name = experiment if experiment is not None else ctx.settings.experiment
    exp_key = (ctx.store.uri, experiment_name)
    exp_id = _experiment_ids.get(exp_key)
    if exp_id is None:
        exp_id = _experiment_ids[exp_key] = ctx.store.get_or_create_experiment(experiment_name).id
    if isinstance(parent, _Auto):
        current = _active.current()
        parent_id = current.id if isinstance(current, Run) else None
    elif isinstance(parent, Run):
        parent_id = parent.id
    elif parent is None or isinstance(parent, str):
        parent_id = parent
    else:
        raise InvalidValueError(f"parent must be a Run, a run id or None, not {parent!r}")
    git = git_state(Path.cwd())
    env_id = _env_ids.get(ctx.store.uri)
    if env_id is None:
        env_id = ctx.store.put_environment(environment(ctx.settings.capture_packages))
        _env_ids[ctx.store.uri] = env_id
    record = ctx.store.create_run(
        NewRun(
            experiment_id=exp_id,
            name=check_name(name, "run name") if name is not None else _default_name(),
            user=ctx.settings.user,
            kind=check_name(kind, "run kind"),
            parent_run_id=parent_id,
            git_commit=git.commit,
            git_dirty=git.dirty,
            git_branch=git.branch,
            git_remote=git.remote,
            command=command_line(),
            environment_id=env_id,
        ),
        params=_mapping(params, "params"),
        tags=_mapping(tags, "tags"),
    )
    run = Run(record, ctx)
    _active.push(run)
    return run


def _mapping(value: Mapping[str, Any] | None, what: str) -> Mapping[str, Any] | None:
    if value is not None and not isinstance(value, Mapping):
        raise InvalidValueError(f"{what} must be a mapping, not {type(value).__name__}")
    return value


_ADJECTIVES = ("brisk", "calm", "bold", "keen", "quiet", "swift", "warm", "wise", "bright", "lucky")
_NOUNS = ("otter", "heron", "lynx", "finch", "maple", "comet", "river", "cedar", "falcon", "fern")


def _default_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(1000):03d}"


def active_run() -> Run | None:
    """This thread's innermost active run, or None."""
    current = _active.current()
    return current if isinstance(current, Run) else None


def get_run(run_id: str, *, store: Store | None = None) -> RunRecord:
    """A run as stored: status, times, git state, params, tags and latest metrics."""
    return backends(store).store.get_run(run_id)


def _end_active_runs_at_exit() -> None:
    # A script that never ended its run: the interpreter is leaving normally, so it finished.
    for run in reversed(_active.all_active()):
        try:
            run.end("finished")
        except Exception as error:  # noqa: BLE001 - exiting: report and go on
            print(f"mloop: could not end a run at exit: {error}", file=sys.stderr)


atexit.register(_end_active_runs_at_exit)
