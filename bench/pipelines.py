"""Pipelines: mloop against Prefect 3.8 and Dagster 1.13 on the same flows, in one run.

The flows (workers/pipelines_flows.py), each side's own decorators on the same functions:

(1) chain: 100 trivial steps, each taking the previous output and returning it + 1, cache off;
(2) fanout: 100 independent trivial steps and one join step, cache off;
(3) cached: a fully cached rerun of (1) — mloop: `run(cache=True)` after a first such run;
    Prefect: `cache_policy=INPUTS` with persisted results; Dagster: no step cache, so n/a.

Per-step overhead = (whole pipeline call − the same function calls in bare Python) ÷ steps;
whole-pipeline overhead = call − that floor. Each side is one worker process that runs each
workload once untimed (the warm-up; Prefect's first flow call starts its API server), then
`reps` timed runs of each, interleaved; medians are reported. mloop (workers/mloop_pipelines.py)
runs in mloop's venv on the in-process executor with its metadata store in a fresh SQLite file;
Prefect (peers/prefect_pipelines.py) and Dagster (peers/dagster_pipelines.py) in their venvs,
each with its home in a fresh directory. Dagster runs twice: with a persistent SQLite instance
(records kept, as mloop's are) and with `execute_in_process`'s default in-memory instance.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import PEERS_DIR, WORKERS, Context, Section, Table, WorkerError, run_worker
from report import milliseconds, ratio
from workers.pipelines_flows import STEPS, WORKLOADS, executed_steps


@dataclass(frozen=True)
class Sizes:
    reps: int
    steps: int


FULL = Sizes(reps=5, steps=STEPS)
QUICK = Sizes(reps=1, steps=20)

STEP_TARGET_S = 0.001  # per executed step, mloop in-process
CACHED_STEP_TARGET_S = 0.0002  # per cached step
OVERHEAD_TARGET = 10.0  # × lower whole-pipeline overhead than each peer

MLOOP, PREFECT, PREFECT_INSIDE = "mloop", "Prefect", "Prefect (inside the flow)"
DAGSTER_SQLITE, DAGSTER_MEMORY = "Dagster (SQLite instance)", "Dagster (in-memory instance)"
LABELS = {
    "chain": "(1) chain of {n} steps",
    "fanout": "(2) fan-out: {n} steps + join",
    "cached": "(3) cached rerun of (1)",
}
# Prefect's telemetry and Dagster's would try the network; their INFO/DEBUG logs go to stderr.
PREFECT_QUIET = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    # Its default 20 s to start the ephemeral server is not enough on a loaded 2-core machine.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}
DAGSTER_YAML = "telemetry:\n  enabled: false\n"


@dataclass
class Side:
    """One configuration of a tool, driven through its worker script."""

    name: str
    python: Path
    script: Path
    environment: Callable[[Path], dict[str, str]]  # per scratch directory
    kwargs: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    load: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # around its process
    error: str | None = None

    def run(self, ctx: Context, sizes: Sizes) -> None:
        ctx.say(f"pipelines: {self.name}, {sizes.reps} repetitions of {sizes.steps} steps")
        with ctx.scratch() as directory:
            before = os.getloadavg()
            try:
                self.result = run_worker(
                    self.python,
                    self.script,
                    "run",
                    {"reps": sizes.reps, "steps": sizes.steps, **self.kwargs},
                    env=self.environment(directory),
                    cwd=directory,
                )
            except WorkerError as exc:
                self.error = str(exc)
                ctx.say(f"pipelines: {self.name} failed: {exc}")
            self.load = (before, os.getloadavg())

    def calls(self, workload: str) -> list[float]:
        return list(self.result.get("call_s", {}).get(workload, []))

    def median_call(
        self, workload: str, *, inside: bool = False, cpu: bool = False
    ) -> float | None:
        key = "inside_s" if inside else "cpu_s" if cpu else "call_s"
        values = self.result.get(key, {}).get(workload, [])
        return statistics.median(values) if values else None

    def floor(self, workload: str) -> float | None:
        value = self.result.get("floor_s", {}).get(workload)
        return None if value is None else float(value)

    def overhead(self, workload: str, *, inside: bool = False) -> float | None:
        call, floor = self.median_call(workload, inside=inside), self.floor(workload)
        return None if call is None or floor is None else call - floor


def mloop_side(ctx: Context) -> Side:
    return Side(
        name=MLOOP,
        python=ctx.mloop_python,
        script=WORKERS / "mloop_pipelines.py",
        environment=lambda directory: {
            "MLOOP_TRACKING_URI": f"sqlite:///{directory / 'mloop.db'}",
            "MLOOP_ARTIFACT_URI": str(directory / "artifacts"),
        },
    )


def prefect_side(ctx: Context) -> Side:
    return Side(
        name=PREFECT,
        python=ctx.peer_python("prefect"),
        script=PEERS_DIR / "prefect_pipelines.py",
        environment=lambda directory: {
            **PREFECT_QUIET,
            "PREFECT_HOME": str(directory),
            "PREFECT_LOCAL_STORAGE_PATH": str(directory / "results"),
        },
    )


def dagster_environment(directory: Path) -> dict[str, str]:
    (directory / "dagster.yaml").write_text(DAGSTER_YAML)
    return {"DAGSTER_HOME": str(directory)}


def dagster_sides(ctx: Context) -> list[Side]:
    python = ctx.peer_python("dagster")
    return [
        Side(
            name=name,
            python=python,
            script=PEERS_DIR / "dagster_pipelines.py",
            environment=dagster_environment,
            kwargs={"instance": instance},
        )
        for name, instance in [(DAGSTER_SQLITE, "sqlite"), (DAGSTER_MEMORY, "memory")]
    ]


def run(ctx: Context) -> Section:
    sizes = QUICK if ctx.quick else FULL
    sides = [mloop_side(ctx), prefect_side(ctx), *dagster_sides(ctx)]
    for side in sides:
        side.run(ctx, sizes)
    return Section(
        workload="pipelines",
        title="Pipelines: mloop vs Prefect and Dagster"
        + (" (quick smoke run)" if ctx.quick else ""),
        tables=[
            call_table(sides, sizes),
            step_table(sides, sizes),
            overhead_table(sides, sizes),
            cpu_table(sides, sizes),
        ],
        peers=["prefect", "dagster"],
        notes=notes(sides, sizes),
        errors=[f"{side.name}: {side.error}" for side in sides if side.error],
    )


def label(workload: str, sizes: Sizes) -> str:
    return LABELS[workload].format(n=sizes.steps)


def by_name(sides: list[Side]) -> dict[str, Side]:
    return {side.name: side for side in sides}


def measured_columns(sides: list[Side]) -> list[tuple[str, Side, bool]]:
    """(column, side, inside) for each figure shown: Prefect twice, call and inside."""
    named = by_name(sides)
    return [
        (MLOOP, named[MLOOP], False),
        (f"{PREFECT} flow call", named[PREFECT], False),
        (PREFECT_INSIDE, named[PREFECT], True),
        (DAGSTER_SQLITE, named[DAGSTER_SQLITE], False),
        (DAGSTER_MEMORY, named[DAGSTER_MEMORY], False),
    ]


def na_or(value: float | None, form: Callable[[float], str]) -> str:
    return "n/a" if value is None else form(value)


def call_table(sides: list[Side], sizes: Sizes) -> Table:
    columns = measured_columns(sides)
    rows = []
    for workload in WORKLOADS:
        floor = by_name(sides)[MLOOP].floor(workload)
        rows.append(
            [
                label(workload, sizes),
                na_or(floor, microseconds),
                *(
                    na_or(side.median_call(workload, inside=inside), milliseconds)
                    for _, side, inside in columns
                ),
            ]
        )
    return Table(
        title=f"Whole pipeline call, median of {sizes.reps} warm runs "
        "(floor: the same function calls in bare Python, in mloop's interpreter)",
        columns=["Workload", "Bare-Python floor", *(name for name, _, _ in columns)],
        rows=rows,
    )


def per_step(side: Side, workload: str, sizes: Sizes, *, inside: bool = False) -> float | None:
    overhead = side.overhead(workload, inside=inside)
    return None if overhead is None else overhead / executed_steps(workload, sizes.steps)


def step_table(sides: list[Side], sizes: Sizes) -> Table:
    columns = measured_columns(sides)
    mloop = by_name(sides)[MLOOP]
    rows = []
    for workload in WORKLOADS:
        target = CACHED_STEP_TARGET_S if workload == "cached" else STEP_TARGET_S
        ours = per_step(mloop, workload, sizes)
        rows.append(
            [
                label(workload, sizes),
                *(
                    na_or(per_step(side, workload, sizes, inside=inside), milliseconds_fine)
                    for _, side, inside in columns
                ),
                f"mloop ≤ {target * 1000:g} ms",
                verdict(ours, ours is not None and ours <= target),
            ]
        )
    return Table(
        title="Per-step overhead: (call − floor) ÷ steps (the fan-out counts its join)",
        columns=["Workload", *(name for name, _, _ in columns), "Target", "Result"],
        rows=rows,
    )


def overhead_table(sides: list[Side], sizes: Sizes) -> Table:
    named = by_name(sides)
    mloop = named[MLOOP]
    rows = []
    for workload in WORKLOADS:
        ours = mloop.overhead(workload)
        for peer in (PREFECT, DAGSTER_SQLITE, DAGSTER_MEMORY):
            theirs = named[peer].overhead(workload)
            if workload == "cached" and peer != PREFECT:
                rows.append(
                    [label(workload, sizes), peer, "", "n/a", "", "", "n/a (no step cache)"]
                )
                continue
            times = None if ours is None or theirs is None or ours <= 0 else theirs / ours
            rows.append(
                [
                    label(workload, sizes),
                    peer,
                    na_or(ours, milliseconds),
                    na_or(theirs, milliseconds),
                    "" if times is None else ratio(times),
                    f"≥ {OVERHEAD_TARGET:g}×",
                    verdict(times, times is not None and times >= OVERHEAD_TARGET),
                ]
            )
    return Table(
        title="Whole-pipeline overhead (call − floor): how many times lower mloop's is",
        columns=["Workload", "Peer", "mloop", "Peer's", "Peer ÷ mloop", "Target", "Result"],
        rows=rows,
    )


def cpu_table(sides: list[Side], sizes: Sizes) -> Table:
    named = by_name(sides)
    shown = [MLOOP, PREFECT, DAGSTER_SQLITE, DAGSTER_MEMORY]
    rows = []
    for workload in WORKLOADS:
        cells = []
        for name in shown:
            cpu, floor = named[name].median_call(workload, cpu=True), named[name].floor(workload)
            steps = executed_steps(workload, sizes.steps)
            cells.append(
                "n/a" if cpu is None or floor is None else milliseconds_fine((cpu - floor) / steps)
            )
        rows.append([label(workload, sizes), *cells])
    return Table(
        title="CPU time per step of the side's own process ((CPU time − floor) ÷ steps, median): "
        "less sensitive to a shared machine's load than wall time; Prefect's leaves out its API "
        "server, which runs in a subprocess",
        columns=["Workload", *shown],
        rows=rows,
    )


def microseconds(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs"


def milliseconds_fine(seconds: float) -> str:
    return f"{seconds * 1000:,.3f} ms"


def verdict(value: float | None, passed: bool) -> str:
    if value is None:
        return "MISS (no result)"
    return "PASS" if passed else "MISS"


def notes(sides: list[Side], sizes: Sizes) -> list[str]:
    named = by_name(sides)
    lines = [
        f"Each side is one process: one untimed warm-up run of each workload, then {sizes.reps} "
        "timed runs of each, interleaved; medians. Sides run one after another: mloop, Prefect, "
        "Dagster (SQLite), Dagster (in-memory). Every run's result is checked (its value, and "
        "how many steps really executed: all of them, or none in a cached rerun).",
        'mloop: `Pipeline.run(executor="inprocess")`, each pipeline run and step run recorded '
        "in a fresh SQLite metadata store; the cached rerun's first run (warm-up) fills the "
        "cache.",
        "Prefect: ephemeral mode, its API server (a uvicorn subprocess on loopback, that the "
        "flow and task runs are reported to over HTTP) started by the process's first flow "
        "call (the chain's warm-up run, so the timed runs exclude it) and storing in a fresh "
        "PREFECT_HOME; logging at WARNING. Tasks are called directly in the chain, `.submit`ted "
        "(default thread-pool task runner) in the fan-out; cache off is `cache_policy=NO_CACHE`, "
        "the cached rerun `cache_policy=INPUTS` with persisted results. `Prefect (inside the "
        "flow)` is the time the flow body measured itself; the rest of the flow call is "
        "Prefect creating, tracking and finishing the flow run. Prefect records task runs "
        "through events its server writes asynchronously, so some may still be pending when "
        "the call returns (mloop's records are committed before `run` returns).",
        "Dagster: `execute_in_process` (in-process executor, one op after another), console "
        "logger at WARNING (its default DEBUG writes every event to stderr); the first op's "
        "input and the fan-out's inputs come from the run config. Dagster ops have no step "
        "cache, so (3) is n/a for it.",
    ]
    warmups = []
    for side in sides:
        first = side.result.get("warmup_s", {})
        if first:
            shown = ", ".join(f"{w} {milliseconds(s)}" for w, s in first.items())
            warmups.append(f"{side.name}: {shown}")
    if warmups:
        lines.append("Warm-up (first) runs: " + "; ".join(warmups) + ".")
    lines.append(records_note(named, sizes))
    loads = [
        f"{side.name} {fmt_load(side.load[0])} → {fmt_load(side.load[1])}"
        for side in sides
        if side.load is not None
    ]
    lines.append(
        "Load averages (1, 5, 15 min, `os.getloadavg()`) before → after each side: "
        + "; ".join(loads)
        + ". The machine is shared: quote figures from a run on a quiet machine."
    )
    lines.append("Raw timed runs (whole call): " + "; ".join(raw_figures(sides)))
    return lines


def records_note(named: dict[str, Side], sizes: Sizes) -> str:
    """What each side's store held once its last pipeline call had returned."""
    runs = len(WORKLOADS) * (1 + sizes.reps)
    steps = (1 + sizes.reps) * sum(executed_steps(w, sizes.steps) for w in WORKLOADS)
    mloop, prefect = named[MLOOP].result, named[PREFECT].result
    dagster_runs = 2 * (1 + sizes.reps)

    def held(result: dict[str, Any], key: str, expected: int) -> str:
        return f"{result[key]:,} of {expected:,}" if key in result else "n/a"

    return (
        "Records held when the last call had returned (cached steps are recorded too): "
        f"mloop {held(mloop, 'pipeline_runs_recorded', runs)} pipeline runs and "
        f"{held(mloop, 'step_runs_recorded', steps)} step runs; Prefect "
        f"{held(prefect, 'flow_runs_recorded', runs)} flow runs and "
        f"{held(prefect, 'task_runs_recorded', steps)} task runs; Dagster (SQLite instance) "
        f"{held(named[DAGSTER_SQLITE].result, 'runs_recorded', dagster_runs)} runs."
    )


def fmt_load(load: tuple[float, ...]) -> str:
    return "/".join(f"{x:.2f}" for x in load)


def raw_figures(sides: list[Side]) -> list[str]:
    figures = []
    for side in sides:
        for workload in WORKLOADS:
            values = side.calls(workload)
            if values:
                shown = ", ".join(milliseconds(v) for v in values)
                figures.append(f"{side.name} {workload} [{shown}]")
    return figures
