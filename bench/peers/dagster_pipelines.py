"""Dagster's side of bench/pipelines.py; runs in .venv-bench/dagster.

The flows of workers/pipelines_flows.py as Dagster ops in jobs, run with `execute_in_process`
(Dagster's in-process executor: one step after another), all workloads and repetitions in one
process. By default the runs are recorded in a persistent instance in DAGSTER_HOME (the scratch
directory: SQLite run, event and schedule storage), as mloop's are in its metadata store;
`instance="memory"` uses the in-memory instance `execute_in_process` makes by default. The
console logger is set to WARNING: at its default DEBUG it writes every event to stderr (the
events are still stored).

- chain: op `step_i` takes the output of `step_{i-1}`; the first one's input comes from the
  run config;
- fanout: the independent ops take their inputs from the run config, the join op their outputs
  as one list (Dagster's fan-in);
- cached: Dagster has no step cache (ops always execute), so the side does not run it.
"""

from __future__ import annotations

import os
from typing import Any

from dagster import DagsterInstance, In, JobDefinition, job, op
from pipelines_flows import START, expected, increment, measure, total
from protocol import serve

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

inc = op(name="increment")(increment)
join = op(name="total", ins={"values": In(list[int])})(total)


def chain_job(steps: int) -> JobDefinition:
    @job(name="chain")
    def chain() -> None:
        x = inc.alias("step_0")()
        for i in range(1, steps):
            x = inc.alias(f"step_{i}")(x)

    return chain


def fanout_job(steps: int) -> JobDefinition:
    @job(name="fanout")
    def fanout() -> None:
        join([inc.alias(f"step_{i}")() for i in range(steps)])

    return fanout


def run(reps: int, steps: int, instance: str = "sqlite") -> dict[str, Any]:
    if instance == "sqlite":
        # DAGSTER_HOME is the scratch directory; with no dagster.yaml, SQLite storage there.
        dagster_instance = DagsterInstance.get()
    elif instance == "memory":
        dagster_instance = DagsterInstance.ephemeral()
    else:
        raise ValueError(f"unknown instance {instance!r}: use 'sqlite' or 'memory'")
    chain, fanout = chain_job(steps), fanout_job(steps)
    chain_config = {**QUIET, "ops": {"step_0": {"inputs": {"x": START}}}}
    fanout_config = {**QUIET, "ops": {f"step_{i}": {"inputs": {"x": i}} for i in range(steps)}}
    last = {"chain": f"step_{steps - 1}", "fanout": "total"}

    def check(workload: str, result: Any) -> None:
        value = result.output_for_node(last[workload]) if result.success else None
        if value != expected(workload, steps):
            raise AssertionError(f"Dagster's {workload} returned {value} ({result.success=})")

    measured = measure(
        {
            "chain": lambda: chain.execute_in_process(
                run_config=chain_config, instance=dagster_instance
            ),
            "fanout": lambda: fanout.execute_in_process(
                run_config=fanout_config, instance=dagster_instance
            ),
        },
        check,
        reps=reps,
        steps=steps,
    )
    measured["runs_recorded"] = len(dagster_instance.get_run_records())
    measured["dagster_home"] = os.environ.get("DAGSTER_HOME", "")
    return measured


if __name__ == "__main__":
    serve({"run": run})
