"""Prefect's side of bench/pipelines.py; runs in .venv-bench/prefect.

The flows of workers/pipelines_flows.py as Prefect 3 tasks inside flows, all workloads and
repetitions in one process. PREFECT_HOME is the scratch directory, so the ephemeral API server
(started by the first flow call of the process: the warm-up) records into a fresh SQLite file.

- chain: each task called directly (Prefect runs it and returns its value), cache off;
- fanout: `.submit` for the independent tasks (Prefect's fan-out, on its default thread pool
  task runner), the join task given the futures;
- cached: the chain (from its own start) with `cache_policy=INPUTS` and persisted results,
  stored in PREFECT_LOCAL_STORAGE_PATH (the scratch directory).

Each flow returns its value and the time spent inside its body, so the report can show both the
whole flow call and the time inside it.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from pipelines_flows import START, expected, increment, measure, start, total
from prefect import flow, get_client, task
from prefect.cache_policies import INPUTS, NO_CACHE
from protocol import serve

inc = task(increment, name="increment", cache_policy=NO_CACHE, persist_result=False)
inc_cached = task(increment, name="increment_cached", cache_policy=INPUTS, persist_result=True)
join = task(total, name="total", cache_policy=NO_CACHE, persist_result=False)


@flow(name="chain", persist_result=False)
def chain(steps: int, first: int = START) -> tuple[int, float]:
    began = perf_counter()
    x = first
    for _ in range(steps):
        x = inc(x)
    return x, perf_counter() - began


@flow(name="fanout", persist_result=False)
def fanout(steps: int) -> tuple[int, float]:
    began = perf_counter()
    futures = [inc.submit(i) for i in range(steps)]
    value = join.submit(futures).result()
    return value, perf_counter() - began


@flow(name="cached_chain", persist_result=False)
def cached_chain(steps: int, first: int) -> tuple[int, float]:
    began = perf_counter()
    x = first
    for _ in range(steps):
        x = inc_cached(x)
    return x, perf_counter() - began


def run(reps: int, steps: int) -> dict[str, Any]:
    def check(workload: str, result: tuple[int, float]) -> None:
        if result[0] != expected(workload, steps):
            raise AssertionError(f"Prefect's {workload} returned {result[0]}")

    measured = measure(
        {
            "chain": lambda: chain(steps),
            "fanout": lambda: fanout(steps),
            "cached": lambda: cached_chain(steps, start("cached")),
        },
        check,
        reps=reps,
        steps=steps,
        inside=lambda result: result[1],
    )
    return {**measured, **recorded()}


def recorded() -> dict[str, int]:
    """How many flow and task runs the API server holds once the last flow call returned."""
    with get_client(sync_client=True) as client:
        flow_runs = client.count_flow_runs()
        task_runs = client.request("POST", "/task_runs/count", json={}).json()
    return {"flow_runs_recorded": int(flow_runs), "task_runs_recorded": int(task_runs)}


if __name__ == "__main__":
    serve({"run": run})
