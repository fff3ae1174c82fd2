"""The flows of bench/pipelines.py, shared by every side (standard library only).

Each side decorates these same functions with its own step/task/op decorator and times the
same three workloads; the undecorated calls are the bare-Python floor.

- chain: STEPS steps, each taking the previous output and returning it + 1, from `start`;
- fanout: STEPS independent steps `increment(i)`, i in range(STEPS), and one `total` join;
- cached: the chain again, from another start (so that no earlier run's records can serve it),
  with each side's step cache on, after one untimed run filled the cache.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from time import perf_counter, process_time
from typing import Any

STEPS = 100
START = 0
CACHED_START = 1_000_000
WORKLOADS = ("chain", "fanout", "cached")


# One entry per executed `increment`, so that a run shows how many steps really ran (a cached
# step does not call it). list.append is atomic under the GIL, for sides that run steps in threads.
CALLS: list[None] = []


def increment(x: int) -> int:
    CALLS.append(None)
    return x + 1


def total(values: list[int]) -> int:
    return sum(values)


def start(workload: str) -> int:
    """The chain's first input."""
    return CACHED_START if workload == "cached" else START


def expected(workload: str, steps: int = STEPS) -> int:
    """The value a workload's last step returns."""
    if workload == "fanout":
        return sum(i + 1 for i in range(steps))
    return start(workload) + steps


def executed_steps(workload: str, steps: int = STEPS) -> int:
    """Steps in one run of the workload: the chain's, or the fan-out's plus its join."""
    return steps + 1 if workload == "fanout" else steps


def floor_chain(steps: int, first: int = START) -> int:
    x = first
    for _ in range(steps):
        x = increment(x)
    return x


def floor_fanout(steps: int) -> int:
    return total([increment(i) for i in range(steps)])


def floor_seconds(workload: str, steps: int, timings: int = 200) -> float:
    """Median time of the same function calls in bare Python, in this interpreter."""
    seconds = []
    for _ in range(timings):
        began = perf_counter()
        value = floor_fanout(steps) if workload == "fanout" else floor_chain(steps, start(workload))
        seconds.append(perf_counter() - began)
    if value != expected(workload, steps):
        raise AssertionError(f"the floor of {workload} returned {value}")
    return statistics.median(seconds)


def expected_calls(workload: str, steps: int = STEPS, *, first: bool = False) -> int:
    """How many times `increment` runs in one run: none in a cached rerun."""
    return 0 if workload == "cached" and not first else steps


def measure(
    runs: dict[str, Callable[[], Any]],
    check: Callable[[str, Any], None],
    *,
    reps: int,
    steps: int,
    inside: Callable[[Any], float] | None = None,
) -> dict[str, Any]:
    """Time each workload `reps` times, interleaved, after one untimed warm-up run of each.

    `runs[workload]()` runs one whole pipeline and returns what `check(workload, result)`
    verifies; `inside(result)`, if given, is the time the side measured inside its flow. Each
    run must call `increment` as often as `expected_calls` says, or the measure fails.
    """
    result: dict[str, Any] = {
        "warmup_s": {},
        "call_s": {},
        "cpu_s": {},  # this process's CPU time during each timed call
        "inside_s": {},
        "floor_s": {},
    }
    for workload, call in runs.items():
        CALLS.clear()
        began = perf_counter()
        check(workload, call())
        result["warmup_s"][workload] = perf_counter() - began
        _check_calls(workload, steps, first=True)
        for key in ("call_s", "cpu_s", "inside_s"):
            result[key][workload] = []
        result["floor_s"][workload] = floor_seconds(workload, steps)
    for _ in range(reps):
        for workload, call in runs.items():
            CALLS.clear()
            began, began_cpu = perf_counter(), process_time()
            value = call()
            result["call_s"][workload].append(perf_counter() - began)
            result["cpu_s"][workload].append(process_time() - began_cpu)
            check(workload, value)
            _check_calls(workload, steps)
            if inside is not None:
                result["inside_s"][workload].append(inside(value))
    return result


def _check_calls(workload: str, steps: int, *, first: bool = False) -> None:
    want = expected_calls(workload, steps, first=first)
    if len(CALLS) != want:
        run = "first run" if first else "run"
        raise AssertionError(f"{workload}: a {run} executed {len(CALLS)} steps, expected {want}")
