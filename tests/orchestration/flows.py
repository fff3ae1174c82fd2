"""Steps and pipelines the pipeline tests run (module-level, so process-pool workers find them).

Each step that does work appends its name to the file ``log`` names: the tests count real
calls from that file, across processes, instead of mocking anything.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mloop.pipelines import pipeline, step


def note(log: str, what: str) -> None:
    """Append one line to the call log (O_APPEND: safe from several processes)."""
    with open(log, "a") as out:
        out.write(f"{what}\n")


def calls(log: str | Path) -> list[str]:
    path = Path(log)
    return path.read_text().splitlines() if path.exists() else []


@step
def make_frame(log: str, rows: int) -> pd.DataFrame:
    note(log, "make_frame")
    print(f"making {rows} rows")
    return pd.DataFrame({"x": np.arange(rows, dtype="float64"), "y": np.arange(rows) % 2})


@step(outputs=("train", "test"))
def split(log: str, df: pd.DataFrame, fraction: float = 0.25):  # type: ignore[no-untyped-def]
    note(log, "split")
    cut = int(len(df) * (1 - fraction))
    return df.iloc[:cut].reset_index(drop=True), df.iloc[cut:].reset_index(drop=True)


@step
def column_sum(log: str, df: pd.DataFrame, column: str) -> float:
    note(log, f"column_sum:{column}")
    return float(df[column].sum())


@step
def as_array(log: str, df: pd.DataFrame) -> np.ndarray:  # type: ignore[type-arg]
    note(log, "as_array")
    return df.to_numpy()


@step
def report(log: str, train_sum: float, test_sum: float, shape: list[int]) -> dict[str, float]:
    note(log, "report")
    return {"train": train_sum, "test": test_sum, "rows": float(shape[0])}


@step
def shape_of(log: str, array: np.ndarray) -> list[int]:  # type: ignore[type-arg]
    note(log, "shape_of")
    return list(array.shape)


@pipeline
def frames(log: str, rows: int = 20):
    df = make_frame(log, rows)
    train, test = split(log, df)
    return report(
        log,
        column_sum(log, train, "x"),
        column_sum(log, test, "x"),
        shape_of(log, as_array(log, df)),
    )


@step
def slow(log: str, seconds: float, tag: str, after: str = "") -> str:
    note(log, f"start:{tag}:{time.time()}:{os.getpid()}")
    time.sleep(seconds)
    note(log, f"end:{tag}:{time.time()}:{os.getpid()}")
    return tag


@step
def join(parts: list[str]) -> str:
    return "+".join(parts)


@pipeline
def parallel(log: str, seconds: float = 1.0):
    return join([slow(log, seconds, "a"), slow(log, seconds, "b")])


@step(cache=False)
def constant(log: str) -> int:
    note(log, "constant")
    return 7


@step
def echo(log: str, value: int) -> int:
    note(log, "echo")
    return value


@pipeline
def volatile(log: str):
    return echo(log, constant(log))


@step
def seed(log: str) -> int:
    note(log, "seed")
    return 1


@step
def fragile(log: str, flag_file: str) -> int:
    note(log, "fragile")
    if not Path(flag_file).exists():
        raise RuntimeError(f"flag file missing: {flag_file}")
    return 2


@step
def add(log: str, a: int, b: int) -> int:
    note(log, "add")
    return a + b


@step
def double(log: str, value: int) -> int:
    note(log, "double")
    return 2 * value


@pipeline
def recoverable(log: str, flag_file: str):
    total = add(log, seed(log), fragile(log, flag_file))
    return double(log, total), echo(log, 5)


@step(retries=2, retry_delay=0.05, retry_backoff=2.0)
def flaky(log: str, succeed_on: int) -> int:
    note(log, "flaky")
    tries = calls(log).count("flaky")
    if tries < succeed_on:
        raise ConnectionError(f"try {tries} failed")
    return tries


@pipeline
def retrying(log: str, succeed_on: int = 3):
    return flaky(log, succeed_on)


@step(timeout=0.5)
def sleeper(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


@pipeline
def sleepy(seconds: float = 30.0):
    return sleeper(seconds)


@step(timeout=60)
def timed_pid() -> int:
    print("inside the timeout process")
    return os.getpid()


@pipeline
def timed_where():
    return timed_pid()


class Opaque:
    """Neither JSON nor a frame, an array or a model: needs an explicit serializer."""

    def __init__(self, items: list[int]) -> None:
        self.items = items

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.items == self.items

    def __hash__(self) -> int:
        return hash(tuple(self.items))


@step
def opaque(n: int) -> Opaque:
    return Opaque(list(range(n)))


@step(serializer="pickle")
def opaque_pickled(n: int) -> Opaque:
    return Opaque(list(range(n)))


@step
def count_items(log: str, thing: Opaque) -> int:
    note(log, "count_items")
    return len(thing.items)


@pipeline
def unstorable(n: int = 3):
    return opaque(n)


@pipeline
def pickled(log: str, n: int = 3):
    return count_items(log, opaque_pickled(n))


@pipeline
def parallel_chain(log: str, hang: float = 600.0):
    return slow(log, hang, "hang", after=slow(log, 0.0, "first"))


@step(cpu=2)
def whole_machine() -> dict[str, float]:
    import ray

    context = ray.get_runtime_context()
    return {"pid": float(os.getpid()), "cpus": float(context.get_assigned_resources()["CPU"])}


@step(cpu=1)
def frame_on_ray(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(rows, dtype="float64")})


@step
def frame_sum(df: pd.DataFrame) -> float:
    return float(df["x"].sum())


@pipeline
def ray_flow(rows: int = 10):
    return whole_machine(), frame_sum(frame_on_ray(rows))
