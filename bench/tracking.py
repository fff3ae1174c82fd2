"""Experiment tracking: mloop against MLflow on SQLite, with a raw-SQLite floor, in one run.

(a) 5,000 log_metric calls in one run: call rate, and persisted rate (until the run has ended
    and every metric is committed), the latter also as a fraction of a raw sqlite3 executemany
    of the same rows;
(b) 200 runs of 10 params + 10 metrics each: runs/s;
(c) two searches over 10,000 such runs: filter + order_by + limit 100, and filter only.

Both sides run as worker processes, one per task and repetition, each on a fresh SQLite file in
a fresh directory: mloop's (workers/mloop_tracking.py) in mloop's venv, MLflow's
(peers/mlflow_tracking.py) in .venv-bench/mlflow.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
import statistics
from collections.abc import Callable
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import PEERS, PEERS_DIR, WORKERS, Context, Section, Table, WorkerError, run_worker
from report import milliseconds, percent, rate, ratio
from workers.tracking_data import SEARCH_FILTER, expected_search


@dataclass(frozen=True)
class Sizes:
    reps: int
    log_metric_calls: int
    runs: int
    search_runs: int
    floor_rows: tuple[int, ...]  # the first is the same rows as (a), and the target's floor
    search_timings: int  # timings of each query in each search process


FULL = Sizes(
    reps=3, log_metric_calls=5_000, runs=200, search_runs=10_000,
    floor_rows=(5_000, 100_000), search_timings=5,
)  # fmt: skip
QUICK = Sizes(
    reps=1, log_metric_calls=500, runs=20, search_runs=500,
    floor_rows=(500, 10_000), search_timings=2,
)  # fmt: skip

CALL_RATE_TARGET = 200  # × MLflow's log_metric calls/s
FLOOR_FRACTION_TARGET = 0.40  # of the raw SQLite floor's rows/s
RUNS_TARGET = 10  # × MLflow's runs/s
SEARCH_TARGET_S = 0.100

TRACKING_DATA = WORKERS / "tracking_data.py"

# MLflow's telemetry would try the network on every process; its git probe spams stderr.
MLFLOW_QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
MLFLOW_QUIET["GIT_PYTHON_REFRESH"] = "quiet"


@dataclass
class Measured:
    """What one side produced, repetition by repetition."""

    call_rates: list[float] = field(default_factory=list)
    persisted_rates: list[float] = field(default_factory=list)
    persisted_rows: list[int] = field(default_factory=list)
    runs_per_s: list[float] = field(default_factory=list)
    populate_s: float | None = None
    top_s: list[float] = field(default_factory=list)
    all_s: list[float] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)  # the last search's counts and m1s


@dataclass
class Side:
    """A tracking system driven through its worker script; stops at its first failure."""

    name: str
    python: Path
    script: Path
    uri_variable: str
    db_name: str
    extra_environment: Callable[[Path], dict[str, str]]  # per scratch directory
    # Where populated search stores are kept between runs; only for a pinned peer, whose
    # store format cannot change under the same pins.
    populated_cache: Path | None = None
    measured: Measured = field(default_factory=Measured)
    error: str | None = None

    def run(self, ctx: Context, task: str, directory: Path, **kwargs: Any) -> dict[str, Any] | None:
        if self.error is not None:
            return None
        ctx.say(f"tracking: {self.name} {task} {kwargs}")
        environment = {
            self.uri_variable: f"sqlite:///{directory / self.db_name}",
            **self.extra_environment(directory),
        }
        try:
            return run_worker(
                self.python, self.script, task, kwargs, env=environment, cwd=directory
            )
        except WorkerError as exc:
            self.error = str(exc)
            ctx.say(f"tracking: {self.name} failed, skipping its other tasks: {exc}")
            return None


def mloop_side(ctx: Context) -> Side:
    return Side(
        name="mloop",
        python=ctx.mloop_python,
        script=WORKERS / "mloop_tracking.py",
        uri_variable="MLOOP_TRACKING_URI",
        db_name="mloop.db",
        extra_environment=lambda directory: {"MLOOP_ARTIFACT_URI": str(directory / "artifacts")},
    )


def mlflow_side(ctx: Context) -> Side:
    return Side(
        name="MLflow",
        python=ctx.peer_python("mlflow"),
        script=PEERS_DIR / "mlflow_tracking.py",
        uri_variable="MLFLOW_TRACKING_URI",
        db_name="mlflow.db",
        extra_environment=lambda _: MLFLOW_QUIET,
        populated_cache=PEERS["mlflow"].venv / "populated",
    )


def run(ctx: Context) -> Section:
    sizes = QUICK if ctx.quick else FULL
    mloop, mlflow = sides = [mloop_side(ctx), mlflow_side(ctx)]
    floor: dict[int, list[float]] = {rows: [] for rows in sizes.floor_rows}
    # Repetitions interleave the sides and the floor, so background load falls on all alike.
    for rep in range(sizes.reps):
        ctx.say(f"tracking: repetition {rep + 1} of {sizes.reps}")
        for side in sides:
            measure_log_metric(ctx, side, sizes.log_metric_calls)
            measure_runs(ctx, side, sizes.runs)
        for rows in sizes.floor_rows:
            floor[rows].append(measure_floor(ctx, rows))
    measure_search(ctx, sides, sizes)
    return Section(
        workload="tracking",
        title="Experiment tracking: mloop vs MLflow" + (" (quick smoke run)" if ctx.quick else ""),
        tables=[comparison_table(mloop, mlflow, floor, sizes), floor_table(sides, floor, sizes)],
        peers=["mlflow"],
        notes=notes(sides, floor, sizes),
        errors=[f"{side.name}: {side.error}" for side in sides if side.error],
    )


def measure_log_metric(ctx: Context, side: Side, calls: int) -> None:
    with ctx.scratch() as directory:
        result = side.run(ctx, "log_metric", directory, count=calls)
    if result is not None:
        side.measured.call_rates.append(calls / result["call_s"])
        side.measured.persisted_rates.append(calls / result["persisted_s"])
        side.measured.persisted_rows.append(result["persisted_rows"])


def measure_runs(ctx: Context, side: Side, runs: int) -> None:
    with ctx.scratch() as directory:
        result = side.run(ctx, "runs", directory, count=runs)
    if result is not None:
        side.measured.runs_per_s.append(runs / result["seconds"])


def measure_floor(ctx: Context, rows: int) -> float:
    with ctx.scratch() as directory:
        result = run_worker(
            ctx.mloop_python,
            WORKERS / "sqlite_floor.py",
            "executemany",
            {"count": rows, "directory": str(directory)},
            env={},
            cwd=directory,
        )
    if result["rows"] != rows:
        raise WorkerError(f"the SQLite floor stored {result['rows']} of {rows} rows")
    return rows / float(result["seconds"])


def measure_search(ctx: Context, sides: list[Side], sizes: Sizes) -> None:
    """Populate one store per side (untimed), then time searches on it."""
    with ExitStack() as stack:
        directories = {side.name: stack.enter_context(ctx.scratch()) for side in sides}
        for side in sides:
            populate(ctx, side, directories[side.name], sizes.search_runs)
        for _ in range(sizes.reps):
            for side in sides:
                result = side.run(
                    ctx, "search", directories[side.name], timings=sizes.search_timings
                )
                if result is not None:
                    side.measured.top_s += result["top_s"]
                    side.measured.all_s += result["all_s"]
                    side.measured.answers = result


def populate(ctx: Context, side: Side, directory: Path, runs: int) -> None:
    """Log `runs` runs into the side's store in `directory`, or copy them from its cache.

    MLflow needs minutes for 10,000 runs; the copy holds the same rows, as the cache key covers
    the data and the script that logged it (and the cache lives in the venv of those pins).
    """
    cached = None
    if side.populated_cache is not None:
        sources = b"".join(path.read_bytes() for path in (side.script, TRACKING_DATA))
        cached = side.populated_cache / f"{runs}-{hashlib.sha256(sources).hexdigest()[:16]}.db"
        if cached.exists():
            ctx.say(f"tracking: {side.name} store of {runs:,} runs copied from {cached}")
            copy_sqlite(cached, directory / side.db_name)
            return
    result = side.run(ctx, "populate", directory, count=runs)
    if result is None:
        return
    side.measured.populate_s = result["seconds"]
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        copy_sqlite(directory / side.db_name, cached)


def copy_sqlite(source: Path, target: Path) -> None:
    """Copy a SQLite database whole, whatever its journal mode (the backup API sees the WAL)."""
    partial = target.with_suffix(".partial")
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(partial)) as dst:
        src.backup(dst)
    partial.replace(target)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def search_is_right(answers: dict[str, Any], n_runs: int) -> bool:
    expected_count, expected_top = expected_search(n_runs)
    return (
        answers.get("all_count") == expected_count
        and answers.get("top_count") == len(expected_top)
        and all(map(math.isclose, answers.get("top_m1", []), expected_top))
    )


def comparison_table(
    mloop: Side, mlflow: Side, floor: dict[int, list[float]], sizes: Sizes
) -> Table:
    m, f = mloop.measured, mlflow.measured
    same_rows_floor = median(floor[sizes.floor_rows[0]])
    call_m, call_f = median(m.call_rates), median(f.call_rates)
    kept_m, kept_f = median(m.persisted_rates), median(f.persisted_rates)
    runs_m, runs_f = median(m.runs_per_s), median(f.runs_per_s)
    top_m, top_f = median(m.top_s), median(f.top_s)
    all_m, all_f = median(m.all_s), median(f.all_s)
    floor_m, floor_f = ratio_of(kept_m, same_rows_floor), ratio_of(kept_f, same_rows_floor)
    call_ratio, runs_ratio = ratio_of(call_m, call_f), ratio_of(runs_m, runs_f)

    rows_complete = bool(m.persisted_rows) and min(m.persisted_rows) >= sizes.log_metric_calls
    rows_problem = None if rows_complete else "rows missing"
    search_problem = None if search_is_right(m.answers, sizes.search_runs) else "wrong answer"
    matching, _ = expected_search(sizes.search_runs)
    calls, search = f"{sizes.log_metric_calls:,}", f"(c) search {sizes.search_runs:,} runs"
    search_target = f"< {SEARCH_TARGET_S * 1000:.0f} ms"
    rows = [
        [
            f"(a) log_metric calls/s, {calls} calls in one run",
            *cells(call_m, call_f, rate, call_ratio),
            f"≥ {CALL_RATE_TARGET}× MLflow",
            verdict(call_ratio, (call_ratio or 0) >= CALL_RATE_TARGET),
        ],
        [
            "(a) persisted rate: first call → run ended, all committed",
            *cells(kept_m, kept_f, rate, ratio_of(kept_m, kept_f)),
            "",
            "",
        ],
        [
            f"(a) persisted rate ÷ raw SQLite floor ({calls} same rows)",
            *cells(floor_m, floor_f, percent, None),
            f"≥ {FLOOR_FRACTION_TARGET:.0%}",
            verdict(floor_m, (floor_m or 0) >= FLOOR_FRACTION_TARGET, rows_problem),
        ],
        [
            f"(b) runs/s, {sizes.runs} runs × (10 params + 10 metrics)",
            *cells(runs_m, runs_f, rate, runs_ratio),
            f"≥ {RUNS_TARGET}× MLflow",
            verdict(runs_ratio, (runs_ratio or 0) >= RUNS_TARGET),
        ],
        [
            f"{search}: filter + order_by + limit 100",
            *cells(top_m, top_f, milliseconds, ratio_of(top_m, top_f)),
            search_target,
            verdict(top_m, (top_m or math.inf) < SEARCH_TARGET_S, search_problem),
        ],
        [
            f"{search}: filter, all {matching:,} matching runs",
            *cells(all_m, all_f, milliseconds, ratio_of(all_m, all_f)),
            search_target,
            verdict(all_m, (all_m or math.inf) < SEARCH_TARGET_S, search_problem),
        ],
    ]
    return Table(
        title="mloop vs MLflow: medians; ratio = mloop ÷ MLflow (throughput for a, b; time for c)",
        columns=["Measure", "mloop", "MLflow", "Ratio", "Target", "Result"],
        rows=rows,
    )


def floor_table(sides: list[Side], floor: dict[int, list[float]], sizes: Sizes) -> Table:
    rows = []
    for count, rates in floor.items():
        floor_rate = median(rates)
        label = f"{count:,} rows" + (" (the rows of (a))" if count == sizes.floor_rows[0] else "")
        fractions = [ratio_of(median(side.measured.persisted_rates), floor_rate) for side in sides]
        rows.append([label, rate(floor_rate or 0), *(format_or_na(x, percent) for x in fractions)])
    return Table(
        title="Floor: raw sqlite3 executemany into an indexed WAL table "
        "(synchronous=NORMAL, fresh file), commit included",
        columns=["Rows", "Floor", *(f"{side.name} persisted ÷ floor" for side in sides)],
        rows=rows,
    )


def ratio_of(ours: float | None, theirs: float | None) -> float | None:
    return None if ours is None or not theirs else ours / theirs


def format_or_na(value: float | None, form: Callable[[float], str]) -> str:
    return "n/a" if value is None else form(value)


def cells(
    ours: float | None,
    theirs: float | None,
    form: Callable[[float], str],
    relative: float | None,
) -> list[str]:
    shown_ratio = "" if relative is None else ratio(relative)
    return [format_or_na(ours, form), format_or_na(theirs, form), shown_ratio]


def verdict(value: float | None, passed: bool, problem: str | None = None) -> str:
    """PASS only for a measured value that meets its target and whose answer checked out."""
    if value is None:
        return "MISS (no result)"
    if problem is not None:
        return f"MISS ({problem})"
    return "PASS" if passed else "MISS"


def notes(sides: list[Side], floor: dict[int, list[float]], sizes: Sizes) -> list[str]:
    expected_count, _ = expected_search(sizes.search_runs)
    lines = [
        f"Repetitions: {sizes.reps}. Each side runs as a subprocess per task and repetition, "
        "mloop in its own venv and MLflow in .venv-bench/mlflow, each on a fresh SQLite file "
        "in a fresh temp dir; repetitions interleave mloop, MLflow and the floor.",
        "(a) The run is started before the timer and ended by leaving its `with` block; "
        "calls/s times the logging loop only, the persisted rate runs until the block has "
        "exited. MLflow logs synchronously; mloop buffers and flushes on exit. "
        "Rows in the database afterwards: "
        + "; ".join(f"{s.name} {s.measured.persisted_rows}" for s in sides)
        + f" (expected {sizes.log_metric_calls:,} each).",
        "MLflow runs on SQLite's defaults (rollback journal, synchronous=FULL), so each of "
        "its calls commits with fsyncs and its rates drop when the disk is busy; see the load "
        "average above.",
        "(b) Each run: start_run, 10 params, 10 metrics at step 0, end. One untimed warm-up "
        "run in another experiment comes first (it creates the tables).",
        f"(c) {sizes.search_runs:,} runs are populated once per side (mloop: start_run + "
        "log_metrics; MLflow: MlflowClient.create_run + log_batch). Then, per repetition, one "
        "process per side opens the store with a query that matches nothing and times each "
        f"query {sizes.search_timings} times; the median is over all of them. Both sides "
        f"return pandas DataFrames (mlflow.search_runs). Filter `{SEARCH_FILTER}`: "
        f"{expected_count:,} matching runs expected.",
    ]
    for side in sides:
        m = side.measured
        if not m.answers:
            continue
        populated = (
            f"populated {sizes.search_runs / m.populate_s:,.0f} runs/s"
            if m.populate_s
            else f"store copied from {side.populated_cache} (populated by an earlier run)"
        )
        answer = "right" if search_is_right(m.answers, sizes.search_runs) else "WRONG"
        lines.append(
            f"{side.name}: {populated}; searches returned {m.answers.get('top_count')} and "
            f"{m.answers.get('all_count')} runs ({answer})."
        )
    lines.append("Raw repetitions: " + "; ".join(raw_figures(sides, floor)))
    return lines


def raw_figures(sides: list[Side], floor: dict[int, list[float]]) -> list[str]:
    def listed(values: list[float], form: Callable[[float], str]) -> str:
        return "[" + ", ".join(form(v) for v in values) + "]"

    figures = []
    for side in sides:
        m = side.measured
        figures += [
            f"{side.name} calls {listed(m.call_rates, rate)}",
            f"persisted {listed(m.persisted_rates, rate)}",
            f"runs {listed(m.runs_per_s, rate)}",
            f"top-100 search {listed(m.top_s, milliseconds)}",
            f"all-matching search {listed(m.all_s, milliseconds)}",
        ]
    figures += [f"floor {count:,} rows {listed(rates, rate)}" for count, rates in floor.items()]
    return figures
