"""One trial, wherever it runs: an Optuna trial recorded as a child run."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.samplers import BaseSampler, TPESampler

from mloop.compute._space import StorageSpec, objective_value
from mloop.config import Settings
from mloop.errors import InvalidValueError, MloopError
from mloop.tracking import Run, start_run

__all__ = ["RUN_ID_ATTR", "Trial", "TrialJob", "TrialOutcome", "run_trial"]

RUN_ID_ATTR = "mloop_run_id"


class Trial(optuna.trial.Trial):
    """An Optuna trial that records itself: ``trial.run`` is its mloop run, and every
    ``trial.report(value, step)`` is also logged as a step of the tuned metric.

        def objective(trial):
            c = trial.suggest_float("C", 1e-3, 1e3, log=True)
            for epoch in range(10):
                trial.report(score, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()
            trial.run.log_model(model, input_example=X[:5])
            return score
    """

    def __init__(self, study: optuna.Study, trial_id: int, run: Run, metric: str) -> None:
        super().__init__(study, trial_id)
        self._mloop_run = run
        self._mloop_metric = metric
        self._mloop_next_step = 0

    @property
    def run(self) -> Run:
        """This trial's run (a child of the search's run)."""
        return self._mloop_run

    def report(self, value: float, step: int) -> None:
        super().report(value, step)
        self._mloop_run.log_metric(self._mloop_metric, float(value), step=int(step))
        self._mloop_next_step = max(self._mloop_next_step, int(step) + 1)

    @property
    def next_step(self) -> int:
        """The metric step after the last reported one (where the final value goes)."""
        return self._mloop_next_step


@dataclass(frozen=True)
class TrialJob:
    """Everything a worker needs to run one trial (pickled to process and Ray workers)."""

    objective: Callable[[Any], Any]
    storage: StorageSpec
    study_name: str
    trial_id: int
    number: int
    sampler: BaseSampler | None  # None: the default sampler, seeded per trial
    seed: int | None
    reseed: bool  # the sampler is a copy in another process: draw from a fresh seed
    pruner: optuna.pruners.BasePruner
    settings: Settings
    experiment: str
    parent_run_id: str
    metric: str
    cwd: str


@dataclass(frozen=True)
class TrialOutcome:
    """What a finished trial sends back to the driver."""

    number: int
    state: str  # "complete" | "pruned" | "fail"
    value: float | None
    run_id: str


@contextlib.contextmanager
def _working_folder(path: str) -> Iterator[None]:
    """Run the trial in the driver's folder, so its run records the same git state."""
    try:
        before: str | None = os.getcwd()
    except OSError:  # the worker's folder was deleted under it
        before = None
    moved = path != before and os.path.isdir(path)
    if moved:
        os.chdir(path)
    try:
        yield
    finally:
        if moved and before is not None:
            os.chdir(before)


def _sampler(job: TrialJob) -> BaseSampler:
    if job.sampler is None:
        # A fresh default sampler per trial, seeded by the trial's number: reproducible,
        # and parallel workers do not all draw the same first point.
        return TPESampler(seed=None if job.seed is None else job.seed + 1 + job.number)
    if job.reseed:
        # Every trial gets a copy of the same sampler state; the same seed would draw the
        # same parameters in each.
        job.sampler.reseed_rng()
    return job.sampler


def run_trial(job: TrialJob) -> TrialOutcome:
    """Run the objective for one asked trial as a child run; tell nothing (the driver does)."""
    with _working_folder(job.cwd):
        study = optuna.load_study(
            study_name=job.study_name,
            storage=job.storage.open(),
            sampler=_sampler(job),
            pruner=job.pruner,
        )
        with start_run(
            experiment=job.experiment,
            name=f"trial-{job.number}",
            parent=job.parent_run_id,
            kind="trial",
            tags={"optuna.trial": job.number, "optuna.study": job.study_name},
            settings=job.settings,
        ) as run:
            trial = Trial(study, job.trial_id, run, job.metric)
            trial.set_user_attr(RUN_ID_ATTR, run.id)  # the driver can close it if we die
            try:
                returned = job.objective(trial)
            except optuna.TrialPruned:
                _log_params(run, trial)
                run.set_tag("optuna.state", "pruned")
                return TrialOutcome(job.number, "pruned", None, run.id)
            except BaseException:
                with contextlib.suppress(MloopError):  # the objective's error is the news
                    _log_params(run, trial)
                    run.set_tag("optuna.state", "fail")
                raise
            _log_params(run, trial)
            value, metrics = objective_value(returned, job.metric)
            if not math.isfinite(value):
                run.set_tag("optuna.state", "fail")
                run.set_tag("optuna.fail_reason", f"the objective returned {value}")
                return TrialOutcome(job.number, "fail", None, run.id)
            finite = {k: v for k, v in metrics.items() if math.isfinite(v)}
            run.log_metrics(finite, step=trial.next_step)
            run.set_tag("optuna.state", "complete")
            return TrialOutcome(job.number, "complete", value, run.id)


def _log_params(run: Run, trial: optuna.trial.Trial) -> None:
    params = trial.params
    if params:
        try:
            run.log_params(params)
        except InvalidValueError as error:
            raise InvalidValueError(f"trial {trial.number}: {error}") from error
