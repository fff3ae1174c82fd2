"""Module-level objectives for tune (worker processes import them by name)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import optuna


def quadratic(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -10.0, 10.0)
    return -((x - 2.0) ** 2)


def from_space(trial: optuna.Trial) -> dict[str, float]:
    """A dict-space objective: the parameters are drawn before it starts."""
    x, kind = trial.params["x"], trial.params["kind"]
    bonus = 1.0 if kind == "good" else 0.0
    return {"score": -((x - 2.0) ** 2) + bonus, "x_seen": x}


def first_is_best(trial: optuna.Trial) -> float:
    """Trial 0 reports 1.0 at every step, every later one 0.0: a median pruner must prune
    the later ones at step 0, which it can only do if it sees trial 0's reports."""
    value = 1.0 if trial.number == 0 else 0.0
    for step in range(4):
        trial.report(value, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return value


def threshold(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    for step in range(3):
        trial.report(x, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return x


def second_fails(trial: optuna.Trial) -> float:
    trial.suggest_int("n", 0, 3)
    if trial.number == 1:
        raise ValueError("trial one is broken")
    return float(trial.number)


def second_dies(trial: optuna.Trial) -> float:
    if trial.number == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return float(trial.number)


def returns_text(trial: optuna.Trial) -> Any:
    return "high"


def returns_nan(trial: optuna.Trial) -> float:
    return float("nan") if trial.number == 0 else 1.0


def meet(trial: optuna.Trial, folder: str) -> float:
    """1.0 only if another trial was running at the same time."""
    Path(folder, str(trial.number)).touch()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(p.name != str(trial.number) for p in Path(folder).iterdir()):
            return 1.0
        time.sleep(0.01)
    return 0.0


class Cutoff:
    """A tiny model (the registry's pyfunc flavor): 1 where x is above the cut."""

    def __init__(self, cut: float) -> None:
        self.cut = cut

    def predict(self, frame: Any) -> Any:
        return (frame["x"] > self.cut).astype(int)


def fit_cutoff(trial: optuna.Trial) -> float:
    import pandas as pd

    cut = trial.suggest_float("cut", 0.0, 1.0)
    model = Cutoff(cut)
    trial.run.log_model(model, input_example=pd.DataFrame({"x": [0.1, 0.9]}))  # type: ignore[attr-defined]
    return 1.0 - abs(cut - 0.3)


def no_model(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0.0, 1.0)


def slow(trial: optuna.Trial) -> float:
    time.sleep(0.2)
    return float(trial.number)
