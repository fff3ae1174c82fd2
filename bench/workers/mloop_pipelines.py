"""mloop's side of bench/pipelines.py; runs in mloop's venv with MLOOP_TRACKING_URI set.

The flows of pipelines_flows.py as mloop `@step`s in `@pipeline`s, run on the in-process
executor, all workloads and repetitions in one process, each run recorded (the pipeline run and
its step runs) in the metadata store of the scratch directory.

- chain, fanout: `run(executor="inprocess", cache=False)`;
- cached: the chain from its own start with `cache=True`; the warm-up run fills the cache, every
  timed run finds all its steps there.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from typing import Any

from pipelines_flows import START, expected, increment, measure, start, total
from protocol import serve

from mloop.pipelines import pipeline, step

inc = step(increment)
join = step(total)


def chain_pipeline(steps: int) -> Any:
    @pipeline(name="chain")
    def chain(first: int = START) -> Any:
        x = first
        for _ in range(steps):
            x = inc(x)
        return x

    return chain


def fanout_pipeline(steps: int) -> Any:
    @pipeline(name="fanout")
    def fanout() -> Any:
        return join([inc(i) for i in range(steps)])

    return fanout


def run(reps: int, steps: int) -> dict[str, Any]:
    chain, fanout = chain_pipeline(steps), fanout_pipeline(steps)

    def check(workload: str, result: Any) -> None:
        if result.status != "finished":
            raise AssertionError(f"mloop's {workload} run {result.run_id} ended {result.status}")
        value = result.output
        if value != expected(workload, steps):
            raise AssertionError(f"mloop's {workload} run {result.run_id} returned {value}")

    measured = measure(
        {
            "chain": lambda: chain.run(executor="inprocess", cache=False),
            "fanout": lambda: fanout.run(executor="inprocess", cache=False),
            "cached": lambda: chain.run(executor="inprocess", cache=True, first=start("cached")),
        },
        check,
        reps=reps,
        steps=steps,
    )
    return {**measured, **recorded(os.environ["MLOOP_TRACKING_URI"])}


def recorded(tracking_uri: str) -> dict[str, int]:
    """Pipeline runs and step runs (their children) in the store, on a fresh connection."""
    with contextlib.closing(sqlite3.connect(tracking_uri.removeprefix("sqlite:///"))) as db:
        pipelines, steps = db.execute(
            "SELECT count(*) - count(parent_run_id), count(parent_run_id) FROM runs"
        ).fetchone()
    return {"pipeline_runs_recorded": pipelines, "step_runs_recorded": steps}


if __name__ == "__main__":
    serve({"run": run})
