"""The data of bench/features.py, and what every side is asked, identical in every venv.

Imported by mloop's worker, the floors and Feast's worker (numpy, pyarrow and pandas are in
both venvs). As a script, in mloop's venv, it generates the data (`generate`) and compares the
sides' point-in-time results (`compare`).

The feature rows: `entities` drivers × TIMESTAMPS_PER_ENTITY event times × N_FEATURES float64
features. Driver d's first row is at START + a random offset within a day; the next ones follow
a day apart. The entity frame names every driver once, in a shuffled order; EARLY_FRACTION of
its timestamps fall before that driver's first row (no feature value exists then), the others
anywhere in the driver's ten days. Times are tz-aware UTC with microseconds, so no entity time
equals a feature row's time.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ENTITY = "driver"
JOIN_KEY = "driver_id"
TIMESTAMP = "event_timestamp"
VIEW = "driver_stats"
N_FEATURES = 10
FEATURES = tuple(f"f{index}" for index in range(N_FEATURES))
REFS = tuple(f"{VIEW}:{feature}" for feature in FEATURES)
TIMESTAMPS_PER_ENTITY = 10
EARLY_FRACTION = 0.125
SEED = 20261122

START = datetime(2026, 1, 1, tzinfo=UTC)
DAY_US = 86_400 * 1_000_000
# Materialization covers every row: from a day before the first to a day after the last.
WINDOW_START = START - timedelta(days=1)
WINDOW_END = START + timedelta(days=TIMESTAMPS_PER_ENTITY + 1)

FEATURE_FILE = "stats.parquet"
ENTITY_FILE = "entity_df.parquet"
ROW_GROUP = 100_000
BATCH = 100  # entities per batch lookup

# Redis databases of the benchmark, one per side: bench/features.py flushes a side's database
# (and no other) before each of that side's runs; the floor worker flushes its own.
REDIS_HOST = "127.0.0.1:6379"
REDIS_DB = {"floor": 13, "mloop": 14, "feast": 15}


def redis_url(side: str) -> str:
    return f"redis://{REDIS_HOST}/{REDIS_DB[side]}"


def feature_table(entities: int) -> pa.Table:
    """The feature rows, sorted by event time as an append-only log would hold them."""
    rng = np.random.default_rng(SEED)
    start_us = int(START.timestamp() * 1_000_000)
    first = start_us + rng.integers(0, DAY_US, size=entities)
    ids = np.repeat(np.arange(entities, dtype=np.int64), TIMESTAMPS_PER_ENTITY)
    steps = np.tile(np.arange(TIMESTAMPS_PER_ENTITY, dtype=np.int64), entities)
    times = np.repeat(first, TIMESTAMPS_PER_ENTITY) + steps * DAY_US
    values = rng.standard_normal((len(ids), N_FEATURES))
    order = np.argsort(times, kind="stable")
    columns: dict[str, Any] = {
        JOIN_KEY: pa.array(ids[order]),
        TIMESTAMP: pa.array(times[order], type=pa.timestamp("us", tz="UTC")),
    }
    for index, name in enumerate(FEATURES):
        columns[name] = pa.array(values[order, index])
    return pa.table(columns)


def entity_table(entities: int) -> pa.Table:
    """One row per driver, shuffled; EARLY_FRACTION of them before the driver's first row."""
    rng = np.random.default_rng(SEED)
    start_us = int(START.timestamp() * 1_000_000)
    first = start_us + rng.integers(0, DAY_US, size=entities)  # the same draw as feature_table
    rng = np.random.default_rng(SEED + 1)
    ids = rng.permutation(entities).astype(np.int64)
    early = rng.random(entities) < EARLY_FRACTION
    before = rng.integers(1, DAY_US, size=entities)
    within = rng.integers(1, TIMESTAMPS_PER_ENTITY * DAY_US, size=entities)
    times = np.where(early, first[ids] - before, first[ids] + within)
    return pa.table(
        {
            JOIN_KEY: pa.array(ids),
            TIMESTAMP: pa.array(times, type=pa.timestamp("us", tz="UTC")),
        }
    )


def read_entity_df(directory: str | Path) -> pd.DataFrame:
    return pd.read_parquet(Path(directory) / ENTITY_FILE)


def lookup_keys(entities: int, count: int, seed: int = SEED) -> list[int]:
    """The drivers looked up one at a time, the same sequence on every side."""
    rng = random.Random(seed)
    return [rng.randrange(entities) for _ in range(count)]


def lookup_batches(entities: int, count: int, size: int, seed: int = SEED + 2) -> list[list[int]]:
    """`count` batches of `size` distinct drivers."""
    rng = random.Random(seed)
    return [rng.sample(range(entities), size) for _ in range(count)]


Rows = list[dict[str, int]]
T = TypeVar("T")


def entity_rows(batches: list[list[int]]) -> list[Rows]:
    return [[{JOIN_KEY: key} for key in keys] for keys in batches]


def timed(lookup: Callable[[T], Any], requests: Sequence[T]) -> tuple[list[float], list[Any]]:
    """Each request's lookup time and answer; the requests are built before the timer starts."""
    seconds, answers = [], []
    for request in requests:
        start = perf_counter()
        answers.append(lookup(request))
        seconds.append(perf_counter() - start)
    return seconds, answers


def checksum(values: Any) -> float:
    """The sum of the looked-up values (None as 0): the sides must agree on it."""
    return float(sum(value for value in values if value is not None))


def generate(entities: int, directory: str) -> dict[str, Any]:
    target = Path(directory)
    features = feature_table(entities)
    pq.write_table(features, target / FEATURE_FILE, row_group_size=ROW_GROUP)
    entity = entity_table(entities)
    pq.write_table(entity, target / ENTITY_FILE)
    firsts = features.group_by(JOIN_KEY).aggregate([(TIMESTAMP, "min")])
    first_of = dict(
        zip(firsts[JOIN_KEY].to_pylist(), firsts[f"{TIMESTAMP}_min"].to_pylist(), strict=True)
    )
    early = sum(
        t < first_of[d]
        for d, t in zip(entity[JOIN_KEY].to_pylist(), entity[TIMESTAMP].to_pylist(), strict=True)
    )
    return {
        "feature_rows": features.num_rows,
        "entity_rows": entity.num_rows,
        "early_rows": early,
        "bytes": (target / FEATURE_FILE).stat().st_size,
    }


def compare(results: dict[str, str]) -> dict[str, Any]:
    """Rows with a feature value per side, and value mismatches of each side against the first.

    `results` maps a side's name to the Parquet file of its point-in-time result (driver_id and
    the features). A row's values match when every feature is equal or null on both sides.
    """
    frames = {
        side: pd.read_parquet(path, columns=[JOIN_KEY, *FEATURES]).set_index(JOIN_KEY)
        for side, path in results.items()
    }
    (first, reference), *others = frames.items()
    answer: dict[str, Any] = {
        side: {
            "rows": len(frame),
            "with_values": int(frame[list(FEATURES)].notna().any(axis=1).sum()),
            "duplicated_keys": int(frame.index.duplicated().sum()),
        }
        for side, frame in frames.items()
    }
    for side, frame in others:
        common = reference.index.intersection(frame.index)
        ours = reference.loc[common, list(FEATURES)].to_numpy(dtype=float)
        theirs = frame.loc[common, list(FEATURES)].to_numpy(dtype=float)
        same = (ours == theirs) | (np.isnan(ours) & np.isnan(theirs))
        answer[side]["common_rows"] = len(common)
        answer[side]["mismatched_rows"] = int((~same.all(axis=1)).sum())
        answer[side]["reference"] = first
    return answer


if __name__ == "__main__":
    # Only a worker process has workers/ on its path; bench/features.py imports this module too.
    from protocol import serve

    serve({"generate": generate, "compare": compare})
