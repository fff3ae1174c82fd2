"""Feature store: mloop against Feast 0.67 on the same data, with hand-written floors, in one run.

The data (workers/features_data.py): 100,000 drivers × 10 timestamps × 10 float64 features,
1,000,000 rows of Parquet, and an entity frame of 100,000 rows (one per driver), 12.5% of whose
timestamps precede the driver's first feature row.

(1) point-in-time join of the entity frame with all 10 features, to a pandas DataFrame: mloop,
    Feast (file offline store) and one hand-written DuckDB ASOF JOIN (the floor); the results
    are compared row by row;
(2) materialization of the 1,000,000 rows (each driver's latest) into the online store, SQLite
    and Redis, each side on a fresh store;
(3) online lookups through each SDK in-process, 1 driver × 10 features and batches of 100,
    SQLite and Redis, with floors: a raw sqlite3 primary-key read and a raw redis-py GET.

Every task runs in its own process: mloop's (workers/mloop_features.py) in mloop's venv, Feast's
(peers/feast_features.py) in .venv-bench/feast, the floors (workers/features_floor.py) in
mloop's venv. Each side applies its definitions (untimed) in the process that times the work.
"""

from __future__ import annotations

import importlib.metadata
import math
import sqlite3
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from harness import PEERS_DIR, WORKERS, Context, Section, Table, WorkerError, run_worker
from report import milliseconds, ratio
from workers.features_data import REDIS_DB, ROW_GROUP, redis_url


@dataclass(frozen=True)
class Sizes:
    entities: int
    reps: int
    pit_calls: int  # point-in-time joins per process: the first is cold, the others warm
    lookups: int  # single-driver lookups per process, after `warmup` untimed ones
    batches: int  # batches of 100 per process
    warmup: int


FULL = Sizes(entities=100_000, reps=5, pit_calls=3, lookups=2_000, batches=200, warmup=200)
QUICK = Sizes(entities=5_000, reps=1, pit_calls=2, lookups=1_000, batches=100, warmup=100)

PIT_TARGET = 5.0  # × faster than Feast
PIT_FLOOR_TARGET = 1.5  # × the hand-written ASOF JOIN, at most
MATERIALIZE_TARGET = 5.0  # × faster than Feast
SQLITE_LOOKUP_TARGET = 10.0  # × lower p50 than Feast
REDIS_FLOOR_TARGET = 1.5  # × the raw redis-py GET's p50, at most
BATCH_TARGET = 10.0  # × lower p50 than Feast

BACKENDS = ("sqlite", "redis")
MLOOP, FEAST, FLOOR = "mloop", "Feast", "floor"
# The hand-written point-in-time joins (workers/features_floor.py `asof`), by their `narrow`.
ASOF_FLOORS = {"ASOF JOIN": False, "narrow ASOF JOIN + join back": True}


@dataclass
class Side:
    """One side's worker script; after its first failure its other tasks are skipped."""

    name: str
    python: Path
    script: Path
    environment: Callable[[Path], dict[str, str]]
    error: str | None = None

    def run(self, ctx: Context, task: str, cwd: Path, **kwargs: Any) -> dict[str, Any] | None:
        if self.error is not None:
            return None
        shown = {k: v for k, v in kwargs.items() if k not in ("data", "repo", "directory", "save")}
        ctx.say(f"features: {self.name} {task} {shown}")
        try:
            return run_worker(
                self.python, self.script, task, kwargs,
                env=self.environment(cwd), cwd=cwd,
            )  # fmt: skip
        except WorkerError as exc:
            self.error = str(exc)
            ctx.say(f"features: {self.name} failed, skipping its other tasks: {exc}")
            return None


def _mloop_environment(directory: Path) -> dict[str, str]:
    # Everything mloop keeps (metadata store, artifacts, SQLite online store) in the scratch dir.
    return {
        "MLOOP_HOME": str(directory),
        "MLOOP_TRACKING_URI": f"sqlite:///{directory / 'mloop.db'}",
        "MLOOP_ARTIFACT_URI": str(directory / "artifacts"),
    }


@dataclass
class Lookups:
    """Lookup timings pooled over every process of a side and backend, and their answers."""

    single: list[float] = field(default_factory=list)
    batch: list[float] = field(default_factory=list)
    checksums: set[tuple[float, float]] = field(default_factory=set)
    to_dict: list[float] = field(default_factory=list)  # Feast: converting a response
    # mloop, Redis: each single lookup again right after a raw GET of its record, in one process
    paired_raw: list[float] = field(default_factory=list)
    paired_mloop: list[float] = field(default_factory=list)


@dataclass
class Measured:
    pit_cold: dict[str, list[float]] = field(default_factory=dict)  # by side
    pit_warm: dict[str, list[float]] = field(default_factory=dict)
    pit_rows: dict[str, int] = field(default_factory=dict)
    comparison: dict[str, Any] = field(default_factory=dict)
    # by (side, backend); mloop also ("mloop (validation)", "sqlite")
    materialize: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    records: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    lookups: dict[tuple[str, str], Lookups] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)  # a profiled mloop materialization

    def add_pit(self, side: str, result: dict[str, Any] | None) -> None:
        if result is None:
            return
        seconds = [float(s) for s in result["seconds"]]
        self.pit_cold.setdefault(side, []).append(seconds[0])
        self.pit_warm.setdefault(side, []).extend(seconds[1:])
        self.pit_rows[side] = int(result["rows"])

    def add_materialize(self, side: str, backend: str, result: dict[str, Any] | None) -> None:
        if result is not None:
            self.materialize.setdefault((side, backend), []).append(float(result["seconds"]))
            self.records.setdefault((side, backend), set()).add(int(result["records"]))

    def add_lookups(self, side: str, backend: str, result: dict[str, Any] | None) -> None:
        if result is None:
            return
        pooled = self.lookups.setdefault((side, backend), Lookups())
        pooled.single += result["single_s"]
        pooled.batch += result["batch_s"]
        pooled.checksums.add((result["single_checksum"], result["batch_checksum"]))
        if "to_dict_s" in result:
            pooled.to_dict.append(result["to_dict_s"])
        pooled.paired_raw += result.get("paired_raw_s", [])
        pooled.paired_mloop += result.get("paired_mloop_s", [])


def run(ctx: Context) -> Section:
    sizes = QUICK if ctx.quick else FULL
    mloop = Side(MLOOP, ctx.mloop_python, WORKERS / "mloop_features.py", _mloop_environment)
    feast = Side(FEAST, ctx.peer_python("feast"), PEERS_DIR / "feast_features.py", lambda _: {})
    floor = Side(FLOOR, ctx.mloop_python, WORKERS / "features_floor.py", lambda _: {})
    measured = Measured()
    errors: list[str] = []
    with ctx.scratch() as data:
        ctx.say(f"features: generating {sizes.entities:,} drivers' rows (untimed)")
        measured.data = run_worker(
            ctx.mloop_python, WORKERS / "features_data.py", "generate",
            {"entities": sizes.entities, "directory": str(data)}, env={}, cwd=data,
        )  # fmt: skip
        # Repetitions interleave the sides, alternating who goes first, so that background
        # load falls on all alike.
        for rep in range(sizes.reps):
            ctx.say(f"features: repetition {rep + 1} of {sizes.reps}")
            sides = [mloop, feast] if rep % 2 == 0 else [feast, mloop]
            measure_pit(ctx, [*sides, floor], data, sizes, measured, save=rep == 0)
            for backend in BACKENDS:
                for side in sides:
                    measure_online_store(ctx, side, backend, data, sizes, measured, errors)
                measure_floor_lookups(ctx, floor, backend, data, sizes, measured)
            measure_validation_cost(ctx, mloop, data, measured)
        profile_materialize(ctx, mloop, data, measured)
        saved = {name: data / _saved_name(name) for name in (MLOOP, FEAST, *ASOF_FLOORS)}
        present = {name: str(path) for name, path in saved.items() if path.exists()}
        if MLOOP in present and len(present) > 1:
            measured.comparison = run_worker(
                ctx.mloop_python, WORKERS / "features_data.py", "compare",
                {"results": present}, env={}, cwd=data,
            )  # fmt: skip
    for database in REDIS_DB:  # leave nothing behind in the benchmark's databases
        _flush(database)
    errors += [f"{side.name}: {side.error}" for side in (mloop, feast, floor) if side.error]
    return Section(
        workload="features",
        title="Feature store: mloop vs Feast" + (" (quick smoke run)" if ctx.quick else ""),
        tables=[targets_table(measured, sizes), figures_table(measured, sizes)],
        peers=["feast"],
        notes=notes(measured, sizes),
        errors=list(dict.fromkeys(errors)),
    )


def measure_pit(
    ctx: Context, sides: list[Side], data: Path, sizes: Sizes, measured: Measured, save: bool
) -> None:
    """Each side's join in its own process; the floor's two queries in one process each."""
    runs: list[tuple[str, Side, str, dict[str, Any]]] = []
    for side in sides:
        if side.name == FLOOR:
            runs += [
                (name, side, "asof", {"narrow": narrow}) for name, narrow in ASOF_FLOORS.items()
            ]
        else:
            runs.append((side.name, side, "historical", {}))
    for name, side, task, extra in runs:
        with ctx.scratch() as directory:
            kwargs: dict[str, Any] = {"data": str(data), "calls": sizes.pit_calls, **extra}
            if save:
                kwargs["save"] = str(data / _saved_name(name))
            if side.name == FEAST:
                kwargs["repo"] = str(directory)
            measured.add_pit(name, side.run(ctx, task, directory, **kwargs))


def _saved_name(name: str) -> str:
    return "pit-" + "".join(c if c.isalnum() else "-" for c in name) + ".parquet"


def measure_online_store(
    ctx: Context,
    side: Side,
    backend: str,
    data: Path,
    sizes: Sizes,
    measured: Measured,
    errors: list[str],
) -> None:
    """Materialize into a fresh store, then look up in a new process on that store."""
    if backend == "redis":
        problem = _flush(side.name.lower())
        if problem:
            errors.append(f"{side.name} on Redis: {problem}")
            return
    with ctx.scratch() as directory:
        kwargs: dict[str, Any] = {"data": str(data), "backend": backend}
        if side.name == FEAST:
            kwargs["repo"] = str(directory)
        else:
            kwargs["validation"] = "off"
        measured.add_materialize(
            side.name, backend, side.run(ctx, "materialize", directory, **kwargs)
        )
        kwargs.pop("validation", None)
        result = side.run(ctx, "online", directory, **kwargs, **_lookup_sizes(sizes))
        measured.add_lookups(side.name, backend, result)


def measure_floor_lookups(
    ctx: Context, floor: Side, backend: str, data: Path, sizes: Sizes, measured: Measured
) -> None:
    with ctx.scratch() as directory:
        kwargs: dict[str, Any] = {"data": str(data), **_lookup_sizes(sizes)}
        if backend == "sqlite":
            kwargs["directory"] = str(directory)
        measured.add_lookups(FLOOR, backend, floor.run(ctx, backend, directory, **kwargs))


def _lookup_sizes(sizes: Sizes) -> dict[str, int]:
    return {k: getattr(sizes, k) for k in ("entities", "lookups", "batches", "warmup")}


def measure_validation_cost(ctx: Context, mloop: Side, data: Path, measured: Measured) -> None:
    """mloop's default policy, validation="error", materialized into SQLite."""
    with ctx.scratch() as directory:
        result = mloop.run(
            ctx, "materialize", directory, data=str(data), backend="sqlite", validation="error"
        )
        measured.add_materialize("mloop (validation)", "sqlite", result)


def profile_materialize(ctx: Context, mloop: Side, data: Path, measured: Measured) -> None:
    """One more mloop materialization into SQLite, under cProfile: where its time goes."""
    with ctx.scratch() as directory:
        result = mloop.run(
            ctx, "materialize", directory, data=str(data), backend="sqlite",
            validation="error", profile=str(directory / "materialize.pstats"),
        )  # fmt: skip
    if result is not None:
        measured.stages = {"total": float(result["seconds"]), **result["stages"]}


def _flush(database: str) -> str | None:
    """Empty one of the benchmark's Redis databases (REDIS_DB); the problem, if Redis refused."""
    client = redis.Redis.from_url(redis_url(database), socket_timeout=10)
    try:
        client.flushdb()
    except redis.RedisError as error:
        return f"cannot flush Redis database {REDIS_DB[database]}: {error}"
    finally:
        client.close()
    return None


# -- the report ---------------------------------------------------------------------------------


def median(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def quantile(values: list[float] | None, q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds >= 1:
        return f"{seconds:,.2f} s"
    if seconds >= 0.001:
        return milliseconds(seconds) if seconds >= 0.01 else f"{seconds * 1000:.2f} ms"
    return f"{seconds * 1e6:,.0f} µs"


def verdict(passed: bool | None, problem: str | None = None) -> str:
    """PASS only for a measured value that meets its target and whose answer checked out."""
    if passed is None:
        return "MISS (no result)"
    if problem is not None:
        return f"MISS ({problem})"
    return "PASS" if passed else "MISS"


def speedup_row(label: str, ours: float | None, theirs: float | None, target: float,
                problem: str | None = None) -> list[str]:  # fmt: skip
    """A row for 'mloop at least `target` × faster than the peer'."""
    factor = None if ours is None or theirs is None or ours == 0 else theirs / ours
    return [
        label, duration(ours), duration(theirs),
        "n/a" if factor is None else f"{ratio(factor)} faster",
        f"≥ {target:g}× faster", verdict(None if factor is None else factor >= target, problem),
    ]  # fmt: skip


def floor_row(label: str, ours: float | None, floor: float | None, target: float,
              problem: str | None = None) -> list[str]:  # fmt: skip
    """A row for 'mloop within `target` × the floor'."""
    factor = None if ours is None or floor is None or floor == 0 else ours / floor
    return [
        label, duration(ours), duration(floor),
        "n/a" if factor is None else f"{ratio(factor)} the floor",
        f"≤ {target:g}× the floor", verdict(None if factor is None else factor <= target, problem),
    ]  # fmt: skip


def pit_floor(times: dict[str, list[float]]) -> float | None:
    """The faster hand-written query's median."""
    medians = [median(times.get(name)) for name in ASOF_FLOORS]
    return min((m for m in medians if m is not None), default=None)


def pit_problem(measured: Measured) -> str | None:
    comparison = measured.comparison
    if not comparison:
        return "results not compared"
    bad = [
        side
        for side, answer in comparison.items()
        if answer.get("mismatched_rows", 0) or answer.get("duplicated_keys", 0)
    ]
    return f"values differ from {', '.join(bad)}" if bad else None


def lookup_problem(measured: Measured, backend: str) -> str | None:
    """Do mloop's lookups return what the others returned (sums of the values looked up)?"""
    ours = measured.lookups.get((MLOOP, backend))
    if ours is None:
        return None
    # Every side and backend looked up the same drivers in the same order.
    others = [checksums for pooled in measured.lookups.values() for checksums in pooled.checksums]
    agree = all(
        math.isclose(a[0], b[0], abs_tol=1e-6) and math.isclose(a[1], b[1], abs_tol=1e-6)
        for a in ours.checksums
        for b in others
    )
    return None if agree else "answers differ"


def _lookup(measured: Measured, side: str, backend: str, kind: str, q: float) -> float | None:
    pooled = measured.lookups.get((side, backend))
    return None if pooled is None else quantile(getattr(pooled, kind), q)


def targets_table(measured: Measured, sizes: Sizes) -> Table:
    m = measured
    pit = pit_problem(m)
    rows = [
        speedup_row(
            "(1) point-in-time join, warm call: mloop vs Feast",
            median(m.pit_warm.get(MLOOP)), median(m.pit_warm.get(FEAST)), PIT_TARGET, pit,
        ),
        floor_row(
            "(1) point-in-time join, warm call: mloop vs the faster hand-written DuckDB query",
            median(m.pit_warm.get(MLOOP)), pit_floor(m.pit_warm), PIT_FLOOR_TARGET, pit,
        ),
    ]  # fmt: skip
    for backend, label in (("sqlite", "SQLite"), ("redis", "Redis")):
        rows.append(
            speedup_row(
                f"(2) materialize {m.data.get('feature_rows', 0):,} rows into {label}",
                median(m.materialize.get((MLOOP, backend))),
                median(m.materialize.get((FEAST, backend))),
                MATERIALIZE_TARGET,
            )
        )
    rows.append(
        speedup_row(
            "(3) online lookup, 1 driver × 10 features, SQLite, p50: mloop vs Feast",
            _lookup(m, MLOOP, "sqlite", "single", 0.5),
            _lookup(m, FEAST, "sqlite", "single", 0.5),
            SQLITE_LOOKUP_TARGET,
            lookup_problem(m, "sqlite"),
        )
    )
    rows.append(
        floor_row(
            "(3) online lookup, 1 driver × 10 features, Redis, p50: mloop vs redis-py GET",
            _lookup(m, MLOOP, "redis", "single", 0.5),
            _lookup(m, FLOOR, "redis", "single", 0.5),
            REDIS_FLOOR_TARGET,
            lookup_problem(m, "redis"),
        )
    )
    rows.append(
        floor_row(
            "(3) the same, each lookup paired with a raw GET of its record in the same process",
            _lookup(m, MLOOP, "redis", "paired_mloop", 0.5),
            _lookup(m, MLOOP, "redis", "paired_raw", 0.5),
            REDIS_FLOOR_TARGET,
            lookup_problem(m, "redis"),
        )
    )
    for backend, label in (("sqlite", "SQLite"), ("redis", "Redis")):
        rows.append(
            speedup_row(
                f"(3) online lookup, batch of 100 drivers, {label}, p50: mloop vs Feast",
                _lookup(m, MLOOP, backend, "batch", 0.5),
                _lookup(m, FEAST, backend, "batch", 0.5),
                BATCH_TARGET,
                lookup_problem(m, backend),
            )
        )
    return Table(
        title=f"Targets ({sizes.entities:,} drivers; medians, lookups p50 over all processes)",
        columns=["Measure", "mloop", "Feast / floor", "Ratio", "Target", "Result"],
        rows=rows,
    )


def figures_table(measured: Measured, sizes: Sizes) -> Table:
    m = measured
    sides = (MLOOP, FEAST, FLOOR)  # the lookups' floors are raw sqlite3 and redis-py

    def pit(values: dict[str, list[float]]) -> list[str]:
        ours, theirs = (duration(median(values.get(side))) for side in (MLOOP, FEAST))
        return [ours, theirs, duration(pit_floor(values))]

    later = f"later calls ({sizes.pit_calls - 1} per process)"
    with_values = {side: answer["with_values"] for side, answer in m.comparison.items()}
    rows = [
        ["(1) point-in-time join, first call in a fresh process", *pit(m.pit_cold)],
        [f"(1) point-in-time join, {later}", *pit(m.pit_warm)],
        ["(1) rows returned", *_pit_counts(m.pit_rows)],
        ["(1) rows with feature values", *_pit_counts(with_values)],
    ]
    for backend, label in (("sqlite", "SQLite"), ("redis", "Redis")):
        ours, theirs = m.materialize.get((MLOOP, backend)), m.materialize.get((FEAST, backend))
        rows.append(
            [
                f"(2) materialize into {label}, validation off",
                duration(median(ours)),
                duration(median(theirs)),
                "-",
            ]
        )
        if backend == "sqlite":
            default = median(m.materialize.get(("mloop (validation)", "sqlite")))
            label = "(2) materialize into SQLite, validation='error' (mloop's default)"
            rows.append([label, duration(default), "-", "-"])
    floors = {"sqlite": "raw sqlite3", "redis": "raw redis-py"}
    for kind, what in (("single", "1 driver"), ("batch", "batch of 100")):
        for backend, label in (("sqlite", "SQLite"), ("redis", "Redis")):
            for q, name in ((0.5, "p50"), (0.95, "p95")):
                figures = [duration(_lookup(m, side, backend, kind, q)) for side in sides]
                rows.append([f"(3) lookup {what}, {label}, {name} ({floors[backend]})", *figures])
    return Table(
        title="All figures (medians over repetitions; lookup percentiles over all lookups)",
        columns=["Measure", "mloop", "Feast", "Floor"],
        rows=rows,
    )


def _pit_counts(counts: dict[str, int]) -> list[str]:
    """mloop's, Feast's and the hand-written queries' counts (one figure when those agree)."""
    cells = [f"{counts[side]:,}" if side in counts else "n/a" for side in (MLOOP, FEAST)]
    floors = sorted({counts[name] for name in ASOF_FLOORS if name in counts})
    return [*cells, " / ".join(f"{count:,}" for count in floors) or "n/a"]


def _versions() -> str:
    found = []
    for package in ("duckdb", "pyarrow", "pandas", "redis"):
        try:
            found.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{package} (not installed)")
    return ", ".join(found)


def _redis_server() -> str:
    client = redis.Redis.from_url(redis_url("floor"), socket_timeout=5)
    try:
        return str(client.info("server").get("redis_version", "?"))
    except redis.RedisError:
        return "unreachable"
    finally:
        client.close()


def notes(measured: Measured, sizes: Sizes) -> list[str]:
    m = measured
    data = m.data
    lines = [
        f"Data: {data.get('feature_rows', 0):,} feature rows ({sizes.entities:,} drivers × 10 "
        f"timestamps × 10 float64 features; {data.get('bytes', 0) / 2**20:.0f} MiB of Parquet "
        f"in row groups of {ROW_GROUP:,}, sorted by event time), tz-aware UTC timestamps; an "
        f"entity frame of {data.get('entity_rows', 0):,} rows (each driver once), of which "
        f"{data.get('early_rows', 0):,} precede their driver's first feature row.",
        f"Repetitions: {sizes.reps}, interleaved (mloop and Feast alternate going first; the "
        "floors follow); every task is a fresh process that applies its definitions untimed "
        "first. mloop, the floors and this driver run in mloop's venv "
        f"({_versions()}); Feast in .venv-bench/feast. Redis server {_redis_server()} on "
        f"127.0.0.1:6379 (databases {REDIS_DB['mloop']} mloop, {REDIS_DB['feast']} Feast, "
        f"{REDIS_DB['floor']} floor, each flushed before its side's run); SQLite "
        f"{sqlite3.sqlite_version}.",
        f"(1) Each process joins {sizes.pit_calls} times; the first call (cold: imports, "
        "caches) is reported apart, the targets use the later calls. mloop: "
        "FeatureStore.get_historical_features (every entity row back, in order, nulls where "
        "nothing matches). Feast: get_historical_features(...).to_df() with its file (dask) "
        "offline store. Floor: the faster of two hand-written DuckDB queries over the "
        "registered entity frame and read_parquet(...), to pandas with `.df()`, in DuckDB's "
        "row order: one `ASOF LEFT JOIN` carrying the ten features, and an `ASOF LEFT JOIN` of "
        "keys and times joined back to the file for the features (DuckDB then sorts narrow "
        "rows). Their medians, first / later calls: "
        + "; ".join(
            f"{name} {duration(median(m.pit_cold.get(name)))} / "
            f"{duration(median(m.pit_warm.get(name)))}"
            for name in ASOF_FLOORS
        )
        + ".",
    ]
    lines += _pit_notes(m)
    lines.append(
        "(2) mloop: FeatureStore.materialize(None, end) with the view's validation='off'; "
        "Feast: materialize(start, end) over a window holding every row. Both write each "
        "driver's latest row: records in the online store afterwards "
        + "; ".join(
            f"{side} {backend} {sorted(records)}" for (side, backend), records in m.records.items()
        )
        + f" (expected {sizes.entities:,})."
    )
    default = median(m.materialize.get(("mloop (validation)", "sqlite")))
    off = median(m.materialize.get((MLOOP, "sqlite")))
    if default is not None and off:
        lines.append(
            "mloop's validation cost: validation='off' skips the checks (validate_frame); the "
            "statistics still run. Materializing into SQLite with 'error' (the default) took "
            f"{duration(default)} against {duration(off)} with 'off' ({default / off - 1:+.0%})."
        )
    if m.stages:
        total = m.stages["total"]
        lines.append(
            "Where mloop's materialization into SQLite with validation='error' spends its time "
            f"(one run under cProfile, {duration(total)} in all): "
            + "; ".join(
                f"{stage} {duration(seconds)} ({seconds / total:.0%})"
                for stage, seconds in m.stages.items()
                if stage != "total"
            )
            + "."
        )
    lines.append(_lookup_note(m, sizes))
    lines.append("Raw repetitions: " + "; ".join(_raw(m)))
    return lines


def _pit_notes(m: Measured) -> list[str]:
    comparison = m.comparison
    if not comparison:
        return ["(1) The point-in-time results were not compared (a side failed)."]
    ours = comparison[MLOOP]
    lines = [
        "(1) Rows returned / with a feature value: "
        + "; ".join(
            f"{side} {answer['rows']:,} / {answer['with_values']:,}"
            for side, answer in comparison.items()
        )
        + f". Feast's file offline store drops the entity rows that precede their driver's "
        f"first feature row ({ours['rows'] - comparison.get(FEAST, ours)['rows']:,} rows) "
        "instead of returning them with nulls."
    ]
    for side, answer in comparison.items():
        if side == MLOOP:
            continue
        lines.append(
            f"(1) mloop vs {side}: {answer['common_rows']:,} rows returned by both, "
            f"{answer['mismatched_rows']:,} with any differing feature value (null = null)."
        )
    return lines


def _lookup_note(m: Measured, sizes: Sizes) -> str:
    sums = "; ".join(
        f"{side} {backend} " + ", ".join(f"({a:.6f}, {b:.6f})" for a, b in sorted(pooled.checksums))
        for (side, backend), pooled in m.lookups.items()
    )
    to_dict = median([t for (side, _), p in m.lookups.items() if side == FEAST for t in p.to_dict])
    return (
        f"(3) Per process: {sizes.warmup} untimed warm-up lookups, then {sizes.lookups:,} "
        f"single-driver lookups (seeded random drivers, the same on every side) and "
        f"{sizes.batches} batches of 100 distinct drivers; percentiles pool every process. "
        "mloop: FeatureStore.get_online_features(...).columns; Feast: "
        "FeatureStore.get_online_features(...) without .to_dict() "
        f"(which adds {duration(to_dict)} per single lookup, measured apart). Floors: a "
        "SELECT of 10 REAL columns by INTEGER PRIMARY KEY (batch: IN of 100) on a WAL file; "
        "redis-py GET of one string key (batch: MGET of 100), unparsed, in a process of its "
        "own after the sides'. Paired (Redis): mloop's process then repeats its single lookups, "
        "each right after a raw redis-py GET (default client, unparsed) of that driver's "
        "record, so both are timed at the same moment under the same load; the separate "
        "floor process meets whatever load the shared machine has then. Sums of the values "
        f"looked up (single, batch), which must agree: {sums}."
    )


def _raw(m: Measured) -> list[str]:
    def listed(values: list[float]) -> str:
        return "[" + ", ".join(duration(v) for v in values) + "]"

    figures = [f"PIT first call {side} {listed(v)}" for side, v in m.pit_cold.items()]
    figures += [f"PIT later calls {side} {listed(v)}" for side, v in m.pit_warm.items()]
    figures += [
        f"materialize {side} {backend} {listed(v)}" for (side, backend), v in m.materialize.items()
    ]
    return figures
