"""Hyper-parameter search on Optuna, with trials as child runs spread over an executor."""

from __future__ import annotations

import concurrent.futures
import contextlib
import math
import os
import pickle
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.pruners import BasePruner, NopPruner
from optuna.samplers import BaseSampler, TPESampler
from optuna.storages import InMemoryStorage
from optuna.trial import FrozenTrial, TrialState

from mloop.backends import backends
from mloop.compute._executor import Executor
from mloop.compute._resources import Resources
from mloop.compute._select import get_executor
from mloop.compute._space import StorageSpec, check_space, journal_in, sequence_of_types
from mloop.compute._task import task_name
from mloop.compute._trial import RUN_ID_ATTR, TrialJob, TrialOutcome, run_trial
from mloop.config import Settings
from mloop.errors import InvalidValueError, NotFoundError
from mloop.registry import register as register_model
from mloop.store import ModelVersion, check_key, check_model_name, check_name
from mloop.tracking import Run, start_run

__all__ = ["TrialResult", "TuneResult", "tune"]

Direction = Literal["maximize", "minimize"]
_STATES = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "fail",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}


@dataclass(frozen=True)
class TrialResult:
    """One trial of a search: its number, outcome, parameters and run."""

    number: int
    state: str  # complete | pruned | fail
    value: float | None
    params: dict[str, Any]
    run_id: str | None
    intermediate: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TuneResult:
    """What ``tune`` found: the best trial, every trial, the search's run and the study."""

    best_value: float
    best_params: dict[str, Any]
    best_trial: int
    best_run_id: str
    run_id: str  # the search's own run; the trials are its children
    trials: list[TrialResult]
    study: optuna.Study  # an in-memory copy, for optuna.visualization and friends
    model_version: ModelVersion | None = None

    @property
    def pruned(self) -> list[TrialResult]:
        return [trial for trial in self.trials if trial.state == "pruned"]


def _check_args(
    objective: object,
    n_trials: object,
    direction: object,
    metric: object,
    parallelism: object,
    timeout: object,
    seed: object,
) -> None:
    if not callable(objective):
        raise InvalidValueError(
            f"objective must be a function of a trial, not {type(objective).__name__}"
        )
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise InvalidValueError(f"n_trials must be an int >= 1, not {n_trials!r}")
    if direction not in ("maximize", "minimize"):
        raise InvalidValueError(f"direction must be 'maximize' or 'minimize', not {direction!r}")
    if not isinstance(metric, str):
        raise InvalidValueError(f"metric must be a metric name, not {metric!r}")
    if parallelism is not None and (
        isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 1
    ):
        raise InvalidValueError(f"parallelism must be an int >= 1, not {parallelism!r}")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise InvalidValueError(f"timeout must be a number of seconds > 0, not {timeout!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidValueError(f"seed must be an int, not {seed!r}")


def _executor(executor: Executor | str | None, settings: Settings) -> tuple[Executor, bool]:
    """The executor to use, and whether tune made it (and so shuts it down)."""
    if executor is None or isinstance(executor, str):
        return get_executor(executor, settings=settings), True
    if not isinstance(executor, Executor):
        raise InvalidValueError(
            "executor must be 'inprocess', 'process', 'ray' or an Executor, "
            f"not {type(executor).__name__}"
        )
    return executor, False


def _storage(executor: Executor, storage: str | None, folder: Path) -> StorageSpec:
    if storage is not None:
        if not isinstance(storage, str) or not storage:
            raise InvalidValueError(
                f"storage must be an Optuna database URL (sqlite:///..., postgresql://...), "
                f"not {storage!r}"
            )
        return StorageSpec(url=storage)
    if executor.name == "inprocess":
        return StorageSpec(memory=InMemoryStorage())
    address = str(getattr(executor, "address", "") or "")
    if executor.name == "ray" and address:
        raise InvalidValueError(
            "trials on a Ray cluster share the study through a database every node can reach; "
            "pass storage='postgresql://...' (or run on a local Ray)"
        )
    # Processes on this machine (a pool, a local Ray) share one journal file.
    return journal_in(folder)


def _check_picklable(objective: Callable[..., Any]) -> None:
    try:
        pickle.dumps(objective)
    except Exception as error:  # noqa: BLE001 - any pickling failure means the same
        raise InvalidValueError(
            f"objective {task_name(objective)} cannot be sent to worker processes ({error}); "
            "define it at module level (no lambda or nested function), or use "
            "executor='inprocess'"
        ) from None


def tune(
    objective: Callable[[Any], Any],
    space: Mapping[str, Any] | None = None,
    *,
    n_trials: int = 20,
    direction: Direction = "maximize",
    metric: str = "score",
    executor: Executor | str | None = None,
    parallelism: int | None = None,
    pruner: BasePruner | None = None,
    sampler: BaseSampler | None = None,
    seed: int | None = None,
    timeout: float | None = None,
    catch: tuple[type[BaseException], ...] = (),
    resources: Resources | Mapping[str, Any] | str | None = None,
    experiment: str | None = None,
    name: str | None = None,
    register: str | None = None,
    alias: str | None = None,
    storage: str | None = None,
    settings: Settings | None = None,
) -> TuneResult:
    """Search hyper-parameters with Optuna; every trial is a child run of one search run.

        def objective(trial):
            c = trial.suggest_float("C", 1e-3, 1e3, log=True)
            model = LogisticRegression(C=c).fit(X_train, y_train)
            trial.run.log_model(model, input_example=X_train[:5])
            return model.score(X_test, y_test)

        result = mloop.compute.tune(objective, n_trials=30, executor="process", register="churn")

    ``objective(trial)`` gets an Optuna trial (``trial.run`` is its mloop run) and returns the
    value of ``metric``, or a mapping of metrics that includes it. Give a dict ``space``
    (names to Optuna distributions, or lists of choices) to have the parameters drawn before
    the trial starts; they are then in ``trial.params``. ``trial.report(value, step)`` logs a
    step of ``metric`` and feeds ``pruner``, across processes. Trials run ``parallelism`` at
    a time (default: the executor's workers) on ``executor`` (default: ``compute.backend``).
    An exception in a trial stops the search unless its type is in ``catch``. With
    ``register``, the best trial's logged model (``trial.run.log_model(...)``) becomes the
    next version of that model, and ``alias`` points at it.
    """
    _check_args(objective, n_trials, direction, metric, parallelism, timeout, seed)
    dists = check_space(space)
    catching = sequence_of_types(catch)
    check_key(metric, "metric name")
    if register is not None:
        check_model_name(register)
    if alias is not None and register is None:
        raise InvalidValueError("alias needs register=<model name> to point at a version")
    needs = None if resources is None else Resources.parse(resources)
    if name is not None:
        check_name(name, "run name")
    b = backends(settings=settings)
    pool, owned = _executor(executor, b.settings)
    try:
        if pool.name == "process":
            _check_picklable(objective)
        with tempfile.TemporaryDirectory(prefix="mloop-tune-") as tmp:
            spec = _storage(pool, storage, Path(tmp))
            return _search(
                objective=objective,
                dists=dists,
                n_trials=n_trials,
                direction=direction,
                metric=metric,
                executor=pool,
                parallelism=min(n_trials, parallelism or pool.max_workers),
                pruner=pruner or NopPruner(),
                sampler=sampler,
                seed=seed,
                timeout=timeout,
                catching=catching,
                resources=needs,
                experiment=experiment if experiment is not None else b.settings.experiment,
                name=name or "tune",
                register=register,
                alias=alias,
                spec=spec,
                settings=b.settings,
            )
    finally:
        if owned:
            pool.shutdown(wait=True, cancel_futures=True)


def _search(
    *,
    objective: Callable[[Any], Any],
    dists: dict[str, Any] | None,
    n_trials: int,
    direction: Direction,
    metric: str,
    executor: Executor,
    parallelism: int,
    pruner: BasePruner,
    sampler: BaseSampler | None,
    seed: int | None,
    timeout: float | None,
    catching: tuple[type[BaseException], ...],
    resources: Resources | None,
    experiment: str,
    name: str,
    register: str | None,
    alias: str | None,
    spec: StorageSpec,
    settings: Settings,
) -> TuneResult:
    study_name = f"mloop-{uuid.uuid4().hex}"
    driver_sampler = sampler or TPESampler(seed=seed)
    study = optuna.create_study(
        study_name=study_name,
        storage=spec.open(),
        direction=direction,
        sampler=driver_sampler,
        pruner=pruner,
    )
    in_process = executor.name == "inprocess"
    params = {
        "n_trials": n_trials,
        "direction": direction,
        "metric": metric,
        "sampler": type(driver_sampler).__name__,
        "pruner": type(pruner).__name__,
        "executor": executor.name,
        "parallelism": parallelism,
        "objective": task_name(objective),
    }
    if seed is not None:
        params["seed"] = seed
    with start_run(
        experiment=experiment, name=name, kind="tune", params=params, settings=settings
    ) as parent:
        jobs: dict[Future[TrialOutcome], optuna.trial.Trial] = {}
        started = time.monotonic()
        asked = 0
        best: float | None = None

        def submit_next() -> None:
            nonlocal asked
            trial = study.ask(fixed_distributions=dists) if dists is not None else study.ask()
            job = TrialJob(
                objective=objective,
                storage=spec,
                study_name=study_name,
                # Optuna has no public name for the id a worker needs to open the same trial.
                trial_id=trial._trial_id,
                number=trial.number,
                # In-process, trials draw from the driver's sampler itself; elsewhere from a copy.
                sampler=driver_sampler if in_process or sampler is not None else None,
                seed=seed,
                reseed=not in_process and sampler is not None,
                pruner=pruner,
                settings=settings,
                experiment=experiment,
                parent_run_id=parent.id,
                metric=metric,
                cwd=os.getcwd(),
            )
            jobs[executor.submit(run_trial, job, resources=resources)] = trial
            asked += 1

        try:
            while asked < n_trials or jobs:
                while (
                    asked < n_trials
                    and len(jobs) < parallelism
                    and (timeout is None or time.monotonic() - started < timeout)
                ):
                    submit_next()
                if not jobs:
                    break  # out of time
                done, _ = concurrent.futures.wait(
                    list(jobs), return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in done:
                    trial = jobs.pop(future)
                    value = _tell(study, trial, future, catching, spec, settings)
                    if value is not None and (
                        best is None or (value > best if direction == "maximize" else value < best)
                    ):
                        best = value
                    if best is not None:
                        parent.log_metric(f"best_{metric}", best)
        except BaseException as error:
            for future in jobs:
                future.cancel()
            if not isinstance(error, KeyboardInterrupt):
                concurrent.futures.wait(list(jobs))  # as Optuna does: let running trials end
            for future, trial in jobs.items():
                if future.done():
                    with contextlib.suppress(Exception):  # the first error is the one to raise
                        _tell(study, trial, future, (BaseException,), spec, settings)
            raise
        return _finish(study, spec, parent, metric, register, alias, settings)


def _tell(
    study: optuna.Study,
    trial: optuna.trial.Trial,
    future: Future[TrialOutcome],
    catching: tuple[type[BaseException], ...],
    spec: StorageSpec,
    settings: Settings,
) -> float | None:
    """Record a finished trial in the study; re-raise its error unless it is caught."""
    if future.cancelled():
        study.tell(trial, state=TrialState.FAIL)
        return None
    error = future.exception()
    if error is not None:
        study.tell(trial, state=TrialState.FAIL)
        _close_lost_run(spec, study.study_name, trial.number, error, settings)
        if not isinstance(error, catching):
            raise error
        return None
    outcome = future.result()
    if outcome.state == "complete":
        assert outcome.value is not None
        study.tell(trial, outcome.value)
        return outcome.value
    study.tell(trial, state=TrialState.PRUNED if outcome.state == "pruned" else TrialState.FAIL)
    return None


def _close_lost_run(
    spec: StorageSpec, study_name: str, number: int, error: BaseException, settings: Settings
) -> None:
    """A trial whose worker died left its run 'running': end it as failed."""
    study = optuna.load_study(study_name=study_name, storage=spec.open())
    run_id = study.trials[number].user_attrs.get(RUN_ID_ATTR)
    if run_id is None:
        return  # it died before its run began
    store = backends(settings=settings).store
    if store.get_run(run_id).status == "running":
        store.end_run(run_id, "failed", error=f"{type(error).__name__}: {error}")


def _result(frozen: FrozenTrial) -> TrialResult:
    return TrialResult(
        number=frozen.number,
        state=_STATES.get(frozen.state, frozen.state.name.lower()),
        value=frozen.value,
        params=dict(frozen.params),
        run_id=frozen.user_attrs.get(RUN_ID_ATTR),
        intermediate=dict(frozen.intermediate_values),
    )


def _finish(
    study: optuna.Study,
    spec: StorageSpec,
    parent: Run,
    metric: str,
    register: str | None,
    alias: str | None,
    settings: Settings,
) -> TuneResult:
    trials = [_result(frozen) for frozen in study.get_trials(deepcopy=False)]
    complete = [t for t in trials if t.state == "complete"]
    if not complete:
        states = ", ".join(f"{t.number}: {t.state}" for t in trials) or "none ran"
        raise InvalidValueError(
            f"no trial of the search (run {parent.id}) completed ({states}); see the trials' "
            "runs for their errors"
        )
    best = study.best_trial
    best_run = best.user_attrs[RUN_ID_ATTR]
    parent.set_tags({"best_trial": best.number, "best_run_id": best_run})
    parent.log_metric(metric, float(best.value or 0.0))
    version = None
    if register is not None:
        try:
            version = register_model(
                f"runs:/{best_run}/model",
                register,
                alias=alias,
                description=f"best trial ({best.number}) of search run {parent.id}",
                tags={"tune_run_id": parent.id, "trial": best.number},
                settings=settings,
            )
        except NotFoundError as error:
            raise NotFoundError(
                f"cannot register the best trial's model: {error}; log it in the objective with "
                "trial.run.log_model(model, input_example=...)"
            ) from error
    copy = InMemoryStorage()
    optuna.copy_study(from_study_name=study.study_name, from_storage=spec.open(), to_storage=copy)
    return TuneResult(
        best_value=float(best.value or 0.0),
        best_params=dict(best.params),
        best_trial=best.number,
        best_run_id=best_run,
        run_id=parent.id,
        trials=trials,
        study=optuna.load_study(study_name=study.study_name, storage=copy),
        model_version=version,
    )
