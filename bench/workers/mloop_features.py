"""mloop's side of bench/features.py; runs in mloop's venv with MLOOP_HOME set to a scratch dir.

The same tasks as peers/feast_features.py, through mloop.features' public API: every task
applies the entity and the feature view (untimed), then times its work. Redis: database
REDIS_DB["mloop"], flushed by the driver. `profile` names a file for cProfile's statistics
of the timed part (used to find hotspots; not in the report's timings).
"""

from __future__ import annotations

import cProfile
import os
import pstats
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter
from typing import Any, Literal

from features_data import (
    BATCH,
    ENTITY,
    FEATURE_FILE,
    FEATURES,
    JOIN_KEY,
    REFS,
    TIMESTAMP,
    VIEW,
    WINDOW_END,
    Rows,
    checksum,
    entity_rows,
    lookup_batches,
    lookup_keys,
    read_entity_df,
    redis_url,
    timed,
)
from protocol import serve

from mloop.features import Entity, FeatureStore, FeatureView, Field, FileSource

Validation = Literal["error", "warn", "off"]


def _online_uri(backend: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{Path(os.environ['MLOOP_HOME']) / 'online.db'}"
    return redis_url("mloop")


def _store(data: str, backend: str, validation: Validation) -> FeatureStore:
    driver = Entity(ENTITY, join_keys=[JOIN_KEY])
    view = FeatureView(
        name=VIEW,
        entities=[driver],
        source=FileSource(str(Path(data) / FEATURE_FILE)),
        schema=[Field(name, "float64") for name in FEATURES],
        timestamp_field=TIMESTAMP,
        ttl=None,
        validation=validation,
    )
    store = FeatureStore(os.environ["MLOOP_HOME"], online_store=_online_uri(backend))
    store.apply([driver, view])
    return store


@contextmanager
def _profiled(path: str | None) -> Iterator[None]:
    if path is None:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiler.dump_stats(path)


def historical(
    data: str, calls: int, save: str | None = None, profile: str | None = None
) -> dict[str, Any]:
    store = _store(data, "sqlite", "off")
    entity_df = read_entity_df(data)
    seconds, frame = [], None
    with _profiled(profile):
        for _ in range(calls):
            start = perf_counter()
            frame = store.get_historical_features(entity_df, list(REFS))
            seconds.append(perf_counter() - start)
    assert frame is not None
    if save:
        frame[[JOIN_KEY, *FEATURES]].to_parquet(save)
    return {"seconds": seconds, "rows": len(frame)}


def materialize(
    data: str, backend: str, validation: Validation, profile: str | None = None
) -> dict[str, Any]:
    store = _store(data, backend, validation)
    with _profiled(profile):
        start = perf_counter()
        results = store.materialize(None, WINDOW_END)
        seconds = perf_counter() - start
    answer = {"seconds": seconds, "records": sum(result.rows for result in results)}
    if profile is not None:
        answer["stages"] = _stages(profile, MATERIALIZE_STAGES)
    return answer


# Where a materialization spends its time: mloop's functions (module path, name) by stage.
MATERIALIZE_STAGES = {
    "select latest rows (DuckDB)": ("duckdb/_relation.py", "to_arrow_table"),
    "validate (validate_frame)": ("mloop/features/_checks.py", "validate_frame"),
    "statistics (compute_stats)": ("mloop/features/_stats.py", "compute_stats"),
    "encode records (pack_arrow)": ("mloop/features/online/_codec.py", "pack_arrow"),
    "online store write": ("mloop/features/online/", "write_batch"),
}


def _stages(path: str, stages: dict[str, tuple[str, str]]) -> dict[str, float]:
    """Cumulative seconds, under cProfile, of each stage's function."""
    table = pstats.Stats(path).stats  # type: ignore[attr-defined]
    return {
        stage: sum(
            row[3]
            for (filename, _, function), row in table.items()
            if function == name and where in filename.replace("\\", "/")
        )
        for stage, (where, name) in stages.items()
    }


def online(
    data: str,
    backend: str,
    entities: int,
    lookups: int,
    batches: int,
    warmup: int,
    profile: str | None = None,
) -> dict[str, Any]:
    store = _store(data, backend, "off")
    refs = list(REFS)

    def lookup(rows: Rows) -> dict[str, list[Any]]:
        return store.get_online_features(refs, rows).columns

    timed(lookup, entity_rows([[key] for key in lookup_keys(entities, warmup, seed=1)]))
    single_rows = entity_rows([[key] for key in lookup_keys(entities, lookups)])
    batch_rows = entity_rows(lookup_batches(entities, batches, BATCH))
    with _profiled(profile):
        single, single_answers = timed(lookup, single_rows)
        batch, batch_answers = timed(lookup, batch_rows)
    answer: dict[str, Any] = {
        "single_s": single,
        "batch_s": batch,
        "single_checksum": checksum(v for c in single_answers for f in FEATURES for v in c[f]),
        "batch_checksum": checksum(v for c in batch_answers for f in FEATURES for v in c[f]),
    }
    if backend == "redis":
        answer["paired_raw_s"], answer["paired_mloop_s"] = _paired_redis(lookup, single_rows)
    return answer


def _paired_redis(
    lookup: Callable[[Rows], dict[str, list[Any]]], requests: list[Rows]
) -> tuple[list[float], list[float]]:
    """The same lookups again, each right after a raw redis-py GET of the driver's record (its
    bytes, unparsed) on a client of its own: both sides of the ratio at the same moment, so a
    shared machine's changing load falls on both alike."""
    import redis

    client = redis.Redis.from_url(redis_url("mloop"))
    raw, ours = [], []
    try:
        for rows in requests:
            name = f"mloop:{VIEW}:[{rows[0][JOIN_KEY]}]"  # the store's key (see online._redis)
            start = perf_counter()
            found = client.get(name)
            middle = perf_counter()
            lookup(rows)
            end = perf_counter()
            assert found is not None
            raw.append(middle - start)
            ours.append(end - middle)
    finally:
        client.close()
    return raw, ours


if __name__ == "__main__":
    serve({"historical": historical, "materialize": materialize, "online": online})
