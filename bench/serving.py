"""Online serving: `mloop serve` against `mlflow models serve` and a bare Starlette floor.

All three serve the same scikit-learn classifier (the bundled breast-cancer data; trained once,
saved with skops, registered on both sides from those bytes), each server in its own process
group on a free port of 127.0.0.1, with its defaults (`mloop serve`: micro-batching on). Per side:

- cold start: process start → first successful prediction, polling every 10 ms, in fresh
  processes started one at a time (the model package already in each side's local store or
  cache, as on a restart);
- load: Debian's wrk (`-t1`, one client thread: the machine has two cores) POSTs the same
  single-row JSON body, in each side's own request format, at concurrency 1 and 16, for a fixed
  duration after a warm-up; requests/s, p50 and p99 latency. The three servers stay up and take
  turns, round after round, so that a change in the machine's load hits every side alike.

Targets (issue 6): mloop at c=16 ≥ 5× MLflow's req/s; mloop's p50 at c=1 ≤ 1.3× the floor's;
mloop's cold start < 1.5 s.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    PEERS_DIR,
    WORKERS,
    Context,
    Section,
    Table,
    WorkerError,
    installed_versions,
    run_worker,
)
from registry import MLFLOW_QUIET
from report import milliseconds, rate, ratio

CONCURRENCY = (1, 16)
POLL_S = 0.010
START_TIMEOUT_S = 120.0
WRK_LUA = WORKERS / "serving_post.lua"
# serving_data.MODEL_NAME @ ALIAS, as each CLI's users write it
MLOOP_REF = "bench-cancer@production"
MLFLOW_REF = "models:/bench-cancer@production"


@dataclass(frozen=True)
class Sizes:
    cold_starts: int  # fresh processes per side
    rounds: int  # load runs per side and concurrency, the sides taking turns
    warmup_s: int
    duration_s: int
    quick: bool


FULL = Sizes(cold_starts=5, rounds=3, warmup_s=2, duration_s=10, quick=False)
QUICK = Sizes(cold_starts=2, rounds=1, warmup_s=1, duration_s=3, quick=True)


@dataclass(frozen=True)
class Side:
    """How to start one server and talk to it."""

    label: str
    command: Callable[[int], list[str]]  # port → argv
    env: dict[str, str]
    cwd: Path
    path: str  # of the prediction endpoint
    body: dict[str, Any]  # one single-row request in the side's own format
    prediction: Callable[[Any], int]  # the response JSON → the row's predicted class


@dataclass(frozen=True)
class Load:
    requests: int
    per_second: float
    p50_s: float
    p99_s: float
    errors: int  # socket errors, timeouts and HTTP statuses > 399


class NotReady(Exception):
    """The server is not listening yet, or answers 503 while it loads its model."""


@dataclass
class Measured:
    cold_start_s: list[float] = field(default_factory=list)
    load: dict[int, list[Load]] = field(default_factory=dict)  # per concurrency, per round
    error: str = ""

    @property
    def cold_start(self) -> float | None:
        return statistics.median(self.cold_start_s) if self.cold_start_s else None

    def median(self, connections: int, pick: Callable[[Load], float]) -> float | None:
        runs = self.load.get(connections, [])
        return statistics.median(pick(run) for run in runs) if runs else None


FAILURES = (WorkerError, NotReady, OSError, ValueError, KeyError, TypeError)


def run(ctx: Context) -> Section:
    sizes = QUICK if ctx.quick else FULL
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: run `apt-get install -y wrk` (Debian's wrk)")
    mloop_python, mlflow_python = ctx.peer_python("mloop-serve"), ctx.peer_python("mlflow")
    mlflow_uvicorn = installed_versions(mlflow_python, ("uvicorn",))["uvicorn"]
    errors: list[str] = []
    with ctx.scratch() as mine, ctx.scratch() as theirs, ctx.scratch() as shared:
        model_path = shared / "model.skops"
        ctx.say("serving: training the model and registering it on both sides (untimed)")
        trained = run_worker(
            mloop_python, WORKERS / "mloop_serving.py", "train",
            {"model_path": str(model_path)}, env=_mloop_env(mine), cwd=mine,
        )  # fmt: skip
        record, expected = trained["record"], int(trained["prediction"])
        checksums = {"trained": int(trained["checksum"])}
        registered = run_worker(
            mloop_python, WORKERS / "mloop_serving.py", "register",
            {"model_path": str(model_path)}, env=_mloop_env(mine), cwd=mine,
        )  # fmt: skip
        checksums["mloop"] = int(registered["checksum"])
        plan = [
            _floor_side(mloop_python, model_path, record, shared),
            _mloop_side(mloop_python, mine, record),
        ]
        try:
            peer = run_worker(
                mlflow_python, PEERS_DIR / "mlflow_serving.py", "register",
                {"model_path": str(model_path)}, env=_mlflow_env(mlflow_python), cwd=theirs,
            )  # fmt: skip
            checksums["MLflow"] = int(peer["checksum"])
            plan.append(_mlflow_side(mlflow_python, theirs, record))
        except WorkerError as exc:
            errors.append(f"MLflow: {exc}")
        sides = {side.label: Measured() for side in plan}
        logs = {side.label: shared / f"server-{index}.log" for index, side in enumerate(plan)}
        # A terminated run must still stop its servers (each in its own session): SIGTERM
        # becomes SystemExit, which unwinds through the `with` blocks that stop them.
        previous = signal.signal(signal.SIGTERM, _exit_on_signal)
        try:
            load_averages = _measure(ctx, wrk, plan, sides, logs, expected, sizes)
        finally:
            signal.signal(signal.SIGTERM, previous)
        errors += [
            f"{label}: {measured.error}" for label, measured in sides.items() if measured.error
        ]
    return Section(
        workload="serving",
        title="Online serving: mloop serve vs mlflow models serve vs a bare Starlette floor"
        + (" (quick smoke run)" if ctx.quick else ""),
        tables=[_load_table(sides, sizes), _targets_table(sides)],
        peers=["mloop-serve", "mlflow"],
        notes=_notes(ctx, sides, sizes, checksums, mlflow_uvicorn, load_averages),
        errors=errors,
    )


# The three sides ---------------------------------------------------------------------------


def _mloop_env(directory: Path) -> dict[str, str]:
    return {
        "MLOOP_TRACKING_URI": f"sqlite:///{directory / 'mloop.db'}",
        "MLOOP_ARTIFACT_URI": str(directory / "artifacts"),
        "MLOOP_MODEL_CACHE": str(directory / "cache"),
        "MLOOP_PREDICTION_LOG": str(directory / "predictions"),
        "MLOOP_HOME": str(directory),
    }


def _mlflow_env(python: Path) -> dict[str, str]:
    # `mlflow models serve --env-manager local` starts `uvicorn` from PATH: its venv's.
    return {
        "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db",  # in the side's cwd
        "PATH": os.pathsep.join([str(python.parent), os.environ.get("PATH", "")]),
        **MLFLOW_QUIET,
    }


def _floor_side(python: Path, model_path: Path, record: dict[str, float], cwd: Path) -> Side:
    floor = WORKERS / "serving_floor.py"
    return Side(
        label="floor (Starlette)",
        command=lambda port: [str(python), str(floor), str(model_path), str(port)],
        env={"PYTHONPATH": str(WORKERS)},
        cwd=cwd,
        path="/predict",
        body={"records": [record]},
        prediction=lambda answer: int(answer["predictions"][0]),
    )


def _mloop_side(python: Path, directory: Path, record: dict[str, float]) -> Side:
    mloop = python.parent / "mloop"
    return Side(
        label="mloop",
        command=lambda port: [
            str(mloop),
            *f"serve {MLOOP_REF} --host 127.0.0.1 --port {port}".split(),
        ],
        env=_mloop_env(directory),
        cwd=directory,
        path="/predict",
        body={"records": [record]},
        prediction=lambda answer: int(answer["predictions"][0]),
    )


def _mlflow_side(python: Path, directory: Path, record: dict[str, float]) -> Side:
    mlflow = python.parent / "mlflow"
    columns = list(record)
    return Side(
        label="MLflow",
        command=lambda port: [
            str(mlflow),
            *f"models serve -m {MLFLOW_REF} --env-manager local --host 127.0.0.1 --port {port} "
            "--workers 1".split(),
        ],
        env=_mlflow_env(python),
        cwd=directory,
        path="/invocations",
        body={"dataframe_split": {"columns": columns, "data": [[record[c] for c in columns]]}},
        prediction=lambda answer: int(answer["predictions"][0]),
    )


# Measuring --------------------------------------------------------------------------------


def _measure(
    ctx: Context,
    wrk: str,
    plan: list[Side],
    sides: dict[str, Measured],
    logs: dict[str, Path],
    expected: int,
    sizes: Sizes,
) -> list[tuple[float, float, float]]:
    """Cold starts, then load runs, the sides taking turns; the load averages of each round."""
    for attempt in range(sizes.cold_starts):
        ctx.say(f"serving: cold starts, round {attempt + 1} of {sizes.cold_starts}")
        for side in plan:
            measured = sides[side.label]
            if measured.error:
                continue
            try:
                with _server(side, expected, logs[side.label]) as (_, seconds):
                    measured.cold_start_s.append(seconds)
            except FAILURES as exc:
                measured.error = str(exc)
    load_averages = []
    with contextlib.ExitStack() as servers:
        ports = {}
        for side in plan:
            if not sides[side.label].error:
                try:
                    ports[side.label], _ = servers.enter_context(
                        _server(side, expected, logs[side.label])
                    )
                except FAILURES as exc:
                    sides[side.label].error = str(exc)
        body_files = {}
        for side in plan:
            body_files[side.label] = logs[side.label].with_suffix(".json")
            body_files[side.label].write_text(json.dumps(side.body))
        for attempt in range(sizes.rounds):
            ctx.say(f"serving: load runs, round {attempt + 1} of {sizes.rounds}")
            load_averages.append(os.getloadavg())
            for side in plan:
                measured = sides[side.label]
                if measured.error or side.label not in ports:
                    continue
                url = f"http://127.0.0.1:{ports[side.label]}{side.path}"
                try:
                    for connections in CONCURRENCY:
                        _wrk(wrk, url, body_files[side.label], connections, sizes.warmup_s)
                        measured.load.setdefault(connections, []).append(
                            _wrk(wrk, url, body_files[side.label], connections, sizes.duration_s)
                        )
                except FAILURES as exc:
                    measured.error = str(exc)
        load_averages.append(os.getloadavg())
        for side in plan:
            measured = sides[side.label]
            if measured.error or side.label not in ports:
                continue
            try:  # still answering right, after the load
                _predict(ports[side.label], side, expected)
            except FAILURES as exc:
                measured.error = f"after the load runs: {exc}"
            failed = sum(run.errors for runs in measured.load.values() for run in runs)
            if failed and not measured.error:
                measured.error = f"wrk counted {failed} failed requests (see the notes)"
    return load_averages


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _server(side: Side, expected: int, log: Path) -> Iterator[tuple[int, float]]:
    """Start the side's server in its own process group; yield its port and its cold start."""
    port = _free_port()
    env = {**os.environ, **side.env}
    with log.open("ab") as out:
        out.write(f"\n--- {' '.join(side.command(port))}\n".encode())
        out.flush()
        start = time.perf_counter()
        process = subprocess.Popen(
            side.command(port), env=env, cwd=side.cwd, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield port, _first_prediction(process, start, port, side, expected, log)
    finally:
        _stop(process)


def _first_prediction(
    process: subprocess.Popen[bytes], start: float, port: int, side: Side, expected: int, log: Path
) -> float:
    """Seconds from `start` to the first successful prediction, polling every POLL_S."""
    tick = start
    while True:
        try:
            _predict(port, side, expected)
            return time.perf_counter() - start
        except NotReady:
            pass
        if process.poll() is not None:
            raise WorkerError(
                f"the server exited with {process.returncode} before its first prediction:\n"
                + _tail(log)
            )
        if time.perf_counter() - start > START_TIMEOUT_S:
            raise WorkerError(f"no prediction within {START_TIMEOUT_S:.0f} s:\n{_tail(log)}")
        tick += POLL_S
        time.sleep(max(0.0, tick - time.perf_counter()))


def _predict(port: int, side: Side, expected: int) -> None:
    """POST the side's request; raise unless it answers 200 with the expected prediction."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "POST", side.path, json.dumps(side.body), {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        payload = response.read()
    except (ConnectionError, TimeoutError, http.client.HTTPException) as exc:
        raise NotReady(str(exc)) from exc
    finally:
        connection.close()
    if response.status in (502, 503):
        raise NotReady(f"HTTP {response.status}")
    if response.status != 200:
        raise ValueError(f"{side.label} answered HTTP {response.status}: {payload[:500]!r}")
    got = side.prediction(json.loads(payload))
    if got != expected:
        raise ValueError(f"{side.label} predicted {got} for the request row, expected {expected}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the server's whole process group (MLflow's CLI runs uvicorn as a child)."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; children that ignored SIGTERM must not outlive it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wrk(wrk: str, url: str, body_file: Path, connections: int, seconds: int) -> Load:
    command = [
        wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
        "-s", str(WRK_LUA), url, "--", str(body_file),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    lines = [line for line in done.stdout.splitlines() if line.startswith("wrk-json ")]
    if done.returncode != 0 or not lines:
        raise WorkerError(f"wrk exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    result = json.loads(lines[-1].removeprefix("wrk-json "))
    errors = sum(int(count) for count in result["errors"].values())
    return Load(
        requests=int(result["requests"]),
        per_second=result["requests"] / (result["duration_us"] / 1e6),
        p50_s=result["latency_us"]["p50"] / 1e6,
        p99_s=result["latency_us"]["p99"] / 1e6,
        errors=errors,
    )


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


# The report --------------------------------------------------------------------------------


def _load_table(sides: dict[str, Measured], sizes: Sizes) -> Table:
    rows = []
    for label, measured in sides.items():
        row = [label]
        for connections in CONCURRENCY:
            row += [
                _cell(measured.median(connections, lambda run: run.per_second), rate),
                _cell(measured.median(connections, lambda run: run.p50_s), milliseconds),
                _cell(measured.median(connections, lambda run: run.p99_s), milliseconds),
            ]
        row.append(_cell(measured.cold_start, milliseconds))
        rows.append(row)
    columns = ["server"]
    for connections in CONCURRENCY:
        columns += [f"c={connections} req/s", f"c={connections} p50", f"c={connections} p99"]
    columns.append("cold start")
    return Table(
        title=f"One-row JSON requests, wrk -t1: medians of {sizes.rounds} run(s) of "
        f"{sizes.duration_s} s per concurrency; cold start: median of {sizes.cold_starts}",
        columns=columns,
        rows=rows,
    )


def _targets_table(sides: dict[str, Measured]) -> Table:
    mloop = sides.get("mloop", Measured())
    floor = sides.get("floor (Starlette)", Measured())
    mlflow = sides.get("MLflow", Measured())
    ours = mloop.median(16, lambda run: run.per_second)
    theirs = mlflow.median(16, lambda run: run.per_second)
    throughput = ["req/s at c=16", _cell(ours, rate), f"MLflow {_cell(theirs, rate)}",
                  *_verdict(ours, theirs, "≥ 5× MLflow", lambda a, b: a >= 5 * b)]  # fmt: skip
    ours, theirs = mloop.median(1, lambda run: run.p50_s), floor.median(1, lambda run: run.p50_s)
    latency = ["p50 at c=1", _cell(ours, milliseconds), f"floor {_cell(theirs, milliseconds)}",
               *_verdict(ours, theirs, "≤ 1.3× floor", lambda a, b: a <= 1.3 * b)]  # fmt: skip
    ours, theirs = mloop.cold_start, mlflow.cold_start
    cold = ["cold start", _cell(ours, milliseconds), f"MLflow {_cell(theirs, milliseconds)}",
            *_verdict(ours, theirs, "< 1.5 s", lambda a, _: a < 1.5)]  # fmt: skip
    return Table(
        title="Targets of issue 6 (ratio = mloop ÷ reference)",
        columns=["measure", "mloop", "reference", "ratio", "target", "verdict"],
        rows=[throughput, latency, cold],
    )


def _cell(value: float | None, show: Callable[[float], str]) -> str:
    return "n/a" if value is None else show(value)


def _verdict(
    ours: float | None,
    theirs: float | None,
    target: str,
    passes: Callable[[float, float], bool],
) -> list[str]:
    if ours is None or not theirs:
        return ["n/a", target, "n/a"]
    return [ratio(ours / theirs), target, "PASS" if passes(ours, theirs) else "MISS"]


def _notes(
    ctx: Context,
    sides: dict[str, Measured],
    sizes: Sizes,
    checksums: dict[str, int],
    mlflow_uvicorn: str,
    load_averages: list[tuple[float, float, float]],
) -> list[str]:
    same = len(set(checksums.values())) == 1
    notes = [
        "Same model everywhere: trained once (StandardScaler + LogisticRegression on "
        "scikit-learn's breast-cancer data, 569 rows × 30 columns), saved with skops, "
        "registered in mloop and MLflow from those bytes; the floor loads the file. "
        + (
            "Predictions on all 569 rows match across the trained model and both registries."
            if same
            else f"Prediction fingerprints differ: {checksums} - investigate."
        ),
        "Requests: one row per request, the same row every time, in each side's own format: "
        'mloop and the floor `{"records": [{column: value, ...}]}` on POST /predict, MLflow '
        '`{"dataframe_split": {"columns": [...], "data": [[...]]}}` on POST /invocations. '
        "Every side's answer to it is checked at its first request and after the load runs; "
        "wrk's counts of failed requests (HTTP status > 399, socket errors, timeouts) are "
        "listed below.",
        "Load: Debian's wrk with bench/workers/serving_post.lua, one thread (-t1), 1 and 16 "
        f"connections, {sizes.duration_s} s per run after a {sizes.warmup_s} s warm-up at the "
        f"same concurrency; {sizes.rounds} round(s), the three servers running side by side "
        "(idle but for the one under load) and taking turns within each round; latency "
        "percentiles are wrk's. Client and server share the machine's 2 cores.",
        "Cold start: from just before the process is spawned to the first correct prediction, "
        f"polling every {POLL_S * 1000:.0f} ms; {sizes.cold_starts} fresh processes per side, "
        "each alone, the sides taking turns. The model package is already in each side's "
        "local store (mloop's unzipped package cache is filled by registering), as on a "
        "restart; MLflow copies it from its artifact folder on every start.",
        "Servers: `mloop serve` (its defaults: one uvicorn worker, micro-batching on) and the "
        "floor run in .venv-bench/mloop-serve, mloop with its "
        "`server` extra only, as a serving host installs it (the same uvicorn for both; the dev "
        "extras' torch would add seconds to each cold start, imported by skops' first load); "
        "`mlflow models serve --env-manager local --workers 1` in .venv-bench/mlflow, whose "
        f"uvicorn {mlflow_uvicorn} has no uvloop/httptools (MLflow's own pins). Each server "
        "runs in its own process group on a free port of 127.0.0.1 and is killed with its "
        "group after.",
        "The floor calls predict only (no validation, no probabilities, no logging): the least "
        "any JSON server of this model must do.",
    ]
    runs = "; ".join(
        f"{label}: "
        + ", ".join(
            f"c={c} [{', '.join(f'{run.per_second:,.0f}/s ({run.errors} failed)' for run in rs)}]"
            for c, rs in measured.load.items()
        )
        for label, measured in sides.items()
    )
    notes.append(f"Load runs, req/s and failed requests per round: {runs}.")
    raw = "; ".join(
        f"{label} [{', '.join(milliseconds(s) for s in measured.cold_start_s)}]"
        for label, measured in sides.items()
    )
    notes.append(f"Cold starts: {raw}.")
    shown = ", ".join("/".join(f"{x:.2f}" for x in triple) for triple in load_averages)
    notes.append(f"Load average (1/5/15 min) before each load round and after the last: {shown}.")
    if ctx.load_at_start > 0.5 or any(triple[0] > 1.0 for triple in load_averages):
        notes.append(
            "The machine was not quiet (see the load averages): other work competed for the "
            "2 cores, so these figures are indicative; re-run on a quiet machine to quote them."
        )
    return notes
