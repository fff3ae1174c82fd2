"""Model registry: loading a ~10 MB scikit-learn model by alias, mloop against MLflow.

Both sides train the same RandomForestClassifier (same data, seed and scikit-learn version),
register it, point the alias `production` at it, and then load it by alias in fresh worker
processes: mloop with `mloop.load_model("models:/bench-forest@production")` (skops, its safe
default; and a joblib package, opted in), MLflow with `mlflow.pyfunc.load_model(...)` (its
sklearn flavor's default serialization). Each process times its first load (a server's start)
and then repeated loads in the same process. mloop's first load is measured twice: with its
local package cache empty (it fetches, verifies and unzips the package) and filled.

Both sides run on SQLite with a local artifact folder, each in its own scratch directory.
"""

from __future__ import annotations

import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import PEERS_DIR, WORKERS, Context, Section, Table, WorkerError, run_worker
from report import milliseconds, ratio

MLFLOW_QUIET = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "GIT_PYTHON_REFRESH": "quiet",
}


@dataclass(frozen=True)
class Sizes:
    reps: int
    repeats: int  # loads per process
    quick: bool


FULL = Sizes(reps=5, repeats=6, quick=False)
QUICK = Sizes(reps=1, repeats=3, quick=True)


@dataclass
class Measured:
    package_bytes: int = 0
    fresh_cold: list[float] = field(default_factory=list)  # first load, empty package cache
    fresh: list[float] = field(default_factory=list)  # first load in a process
    repeated: list[float] = field(default_factory=list)  # later loads in the same process
    checksums: set[int] = field(default_factory=set)
    note: str = ""


def _mloop_env(directory: Path) -> dict[str, str]:
    return {
        "MLOOP_TRACKING_URI": f"sqlite:///{directory / 'mloop.db'}",
        "MLOOP_ARTIFACT_URI": str(directory / "artifacts"),
        "MLOOP_MODEL_CACHE": str(directory / "cache"),
        "MLOOP_HOME": str(directory),
    }


def _mlflow_env(directory: Path) -> dict[str, str]:
    return {
        "MLFLOW_TRACKING_URI": f"sqlite:///{directory / 'mlflow.db'}",
        **MLFLOW_QUIET,
    }


def run(ctx: Context) -> Section:
    sizes = QUICK if ctx.quick else FULL
    sides: dict[str, Measured] = {"skops": Measured(), "joblib": Measured(), "MLflow": Measured()}
    errors: list[str] = []
    mlflow_python = ctx.peer_python("mlflow")
    mloop_python = ctx.peer_python("mloop-base")
    with ctx.scratch() as mine, ctx.scratch() as theirs:
        ctx.say("registry: training and registering on both sides (untimed)")
        setup = run_worker(
            mloop_python, WORKERS / "mloop_registry.py", "setup", {"quick": sizes.quick},
            env=_mloop_env(mine), cwd=mine,
        )  # fmt: skip
        for serializer in ("skops", "joblib"):
            sides[serializer].package_bytes = int(setup["package_bytes"][serializer])
        try:
            peer = run_worker(
                mlflow_python, PEERS_DIR / "mlflow_registry.py", "setup",
                {"quick": sizes.quick}, env=_mlflow_env(theirs), cwd=theirs,
            )  # fmt: skip
            sides["MLflow"].package_bytes = int(peer["package_bytes"])
            sides["MLflow"].note = str(peer["flavor_format"])
        except WorkerError as exc:
            errors.append(f"MLflow: {exc}")
        for rep in range(sizes.reps):
            ctx.say(f"registry: repetition {rep + 1} of {sizes.reps}")
            for serializer in ("skops", "joblib"):
                measured = sides[serializer]
                shutil.rmtree(mine / "cache", ignore_errors=True)
                for cold in (True, False):
                    result = run_worker(
                        mloop_python, WORKERS / "mloop_registry.py", "load",
                        {"repeats": sizes.repeats, "serializer": serializer},
                        env=_mloop_env(mine), cwd=mine,
                    )  # fmt: skip
                    _record(measured, result, cold)
            if not errors:
                try:
                    result = run_worker(
                        mlflow_python, PEERS_DIR / "mlflow_registry.py", "load",
                        {"repeats": sizes.repeats}, env=_mlflow_env(theirs), cwd=theirs,
                    )  # fmt: skip
                    _record(sides["MLflow"], result, cold=False)
                except WorkerError as exc:
                    errors.append(f"MLflow: {exc}")
    return Section(
        workload="registry",
        title="Model registry: load a ~10 MB scikit-learn model by alias, mloop vs MLflow"
        + (" (quick smoke run)" if ctx.quick else ""),
        tables=[_table(sides, sizes)],
        peers=["mlflow", "mloop-base"],
        notes=_notes(sides, sizes),
        errors=errors,
    )


def _record(measured: Measured, result: dict[str, Any], cold: bool) -> None:
    timings = [float(t) for t in result["load_s"]]
    (measured.fresh_cold if cold else measured.fresh).append(timings[0])
    measured.repeated += timings[1:]
    measured.checksums.add(int(result["checksum"]))


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _cell(value: float | None) -> str:
    return "n/a" if value is None else milliseconds(value)


def _table(sides: dict[str, Measured], sizes: Sizes) -> Table:
    skops, joblib, mlflow = sides["skops"], sides["joblib"], sides["MLflow"]
    rows = []
    for label, pick, target in (
        ("first load in a fresh process, package cache empty", "fresh_cold", False),
        ("first load in a fresh process (a restart)", "fresh", True),
        ("repeated load in the same process", "repeated", True),
    ):
        ours = _median(getattr(skops, pick))
        pickled = _median(getattr(joblib, pick))
        theirs = _median(mlflow.fresh if pick == "fresh_cold" else getattr(mlflow, pick))
        if ours is not None and theirs:
            factor = ratio(theirs / ours)
            verdict = ("PASS" if ours <= theirs else "MISS") if target else "-"
        else:
            factor, verdict = "n/a", "n/a"
        rows.append(
            [label, _cell(ours), _cell(pickled), _cell(theirs), factor,
             "≤ MLflow" if target else "(reported)", verdict]
        )  # fmt: skip
    rows.append(
        ["package size (MiB)", f"{skops.package_bytes / 2**20:.1f}",
         f"{joblib.package_bytes / 2**20:.1f}", f"{mlflow.package_bytes / 2**20:.1f}",
         "", "", ""]
    )  # fmt: skip
    return Table(
        title=f"Median load time by alias ({sizes.reps} processes per side, "
        f"{sizes.repeats} loads each)",
        columns=[
            "measure", "mloop (skops)", "mloop (joblib, opt-in)", f"MLflow ({mlflow.note})",
            "MLflow ÷ mloop (skops)", "target", "verdict",
        ],
        rows=rows,
    )  # fmt: skip


def _notes(sides: dict[str, Measured], sizes: Sizes) -> list[str]:
    same = len(sides["skops"].checksums | sides["MLflow"].checksums | sides["joblib"].checksums)
    notes = [
        "Same model on both sides: "
        + (
            "all loaded models gave identical predictions on the 20,000 training rows."
            if same == 1
            else f"prediction fingerprints differ across sides ({same} distinct) - investigate."
        ),
        "mloop runs from a venv with only its base install (bench/peers/mloop-base.txt), as a "
        "serving host would have it; MLflow from its own (bench/peers/mlflow.txt).",
        "mloop's load includes verifying the package: the manifest's sha256 against the "
        "registry and every file's sha256 against the manifest, on every load.",
        "mloop's 'cache empty' row adds fetching the zip from the artifact store (sha256 "
        "verified), unzipping and verifying it; MLflow has no such cache, so its fresh-process "
        "figure is compared in that row too.",
        "Each figure is the median. Timers start after `import mloop` / `import mlflow`; a "
        "process's first load therefore includes importing what loading needs (scikit-learn, "
        "skops, the database layer), as a restarted server's does; later loads do not.",
    ]
    return notes
