"""Feast's side of bench/features.py; runs in .venv-bench/feast, in a scratch repo directory.

Every task writes the repo's feature_store.yaml (a file registry, the file offline store and
the SQLite or Redis online store), applies the same entity and feature view as mloop's side
(untimed), then times its work. Redis: database REDIS_DB["feast"], flushed by the driver.
"""

from __future__ import annotations

import logging
import sqlite3
import warnings
from pathlib import Path
from time import perf_counter
from typing import Any

import redis
import yaml
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.online_response import OnlineResponse
from feast.types import Float64
from features_data import (
    BATCH,
    ENTITY,
    FEATURE_FILE,
    FEATURES,
    JOIN_KEY,
    REDIS_DB,
    REDIS_HOST,
    REFS,
    TIMESTAMP,
    VIEW,
    WINDOW_END,
    WINDOW_START,
    Rows,
    checksum,
    entity_rows,
    lookup_batches,
    lookup_keys,
    read_entity_df,
    timed,
)
from protocol import serve


def _online_config(backend: str, repo: Path) -> dict[str, Any]:
    if backend == "sqlite":
        return {"type": "sqlite", "path": str(repo / "online.db")}
    return {"type": "redis", "connection_string": f"{REDIS_HOST},db={REDIS_DB['feast']}"}


def _store(data: str, repo: str, backend: str) -> FeatureStore:
    """Write the repo's config, apply the definitions and return the store (untimed)."""
    path = Path(repo)
    config = {
        "project": "bench",
        "provider": "local",
        "registry": str(path / "registry.db"),
        "offline_store": {"type": "file"},
        "online_store": _online_config(backend, path),
        "entity_key_serialization_version": 3,
    }
    (path / "feature_store.yaml").write_text(yaml.safe_dump(config))
    driver = Entity(name=ENTITY, join_keys=[JOIN_KEY], value_type=ValueType.INT64)
    view = FeatureView(
        name=VIEW,
        entities=[driver],
        ttl=None,
        schema=[Field(name=name, dtype=Float64) for name in FEATURES],
        source=FileSource(path=str(Path(data) / FEATURE_FILE), timestamp_field=TIMESTAMP),
        online=True,
    )
    store = FeatureStore(repo_path=str(path))
    store.apply([driver, view])
    return store


def historical(data: str, repo: str, calls: int, save: str | None = None) -> dict[str, Any]:
    store = _store(data, repo, "sqlite")
    entity_df = read_entity_df(data)
    seconds, frame = [], None
    for _ in range(calls):
        start = perf_counter()
        frame = store.get_historical_features(entity_df=entity_df, features=list(REFS)).to_df()
        seconds.append(perf_counter() - start)
    assert frame is not None
    if save:
        frame[[JOIN_KEY, *FEATURES]].to_parquet(save)
    return {"seconds": seconds, "rows": len(frame)}


def materialize(data: str, repo: str, backend: str) -> dict[str, Any]:
    store = _store(data, repo, backend)
    start = perf_counter()
    store.materialize(WINDOW_START, WINDOW_END)
    return {"seconds": perf_counter() - start, "records": _records(repo, backend)}


def _records(repo: str, backend: str) -> int:
    """Entities in the online store after materializing (Feast keeps a row per feature)."""
    if backend == "sqlite":
        with sqlite3.connect(Path(repo) / "online.db") as db:
            (table,) = [
                name
                for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if name.endswith(VIEW)
            ]
            query = f'SELECT count(DISTINCT entity_key) FROM "{table}"'
            return int(db.execute(query).fetchone()[0])
    client = redis.Redis.from_url(f"redis://{REDIS_HOST}/{REDIS_DB['feast']}")
    try:
        return int(client.dbsize())
    finally:
        client.close()


def online(
    data: str, repo: str, backend: str, entities: int, lookups: int, batches: int, warmup: int
) -> dict[str, Any]:
    store = _store(data, repo, backend)
    refs = list(REFS)

    def lookup(rows: Rows) -> OnlineResponse:
        return store.get_online_features(features=refs, entity_rows=rows)

    timed(lookup, entity_rows([[key] for key in lookup_keys(entities, warmup, seed=1)]))
    single_rows = entity_rows([[key] for key in lookup_keys(entities, lookups)])
    batch_rows = entity_rows(lookup_batches(entities, batches, BATCH))
    single, single_answers = timed(lookup, single_rows)
    batch, batch_answers = timed(lookup, batch_rows)
    # Converting a response to Python values is left out of the timings (mloop's include it),
    # and timed here on its own.
    start = perf_counter()
    single_dicts = [response.to_dict() for response in single_answers]
    to_dict_s = (perf_counter() - start) / len(single_answers)
    batch_dicts = [response.to_dict() for response in batch_answers]
    return {
        "single_s": single,
        "batch_s": batch,
        "to_dict_s": to_dict_s,
        "single_checksum": checksum(v for d in single_dicts for f in FEATURES for v in d[f]),
        "batch_checksum": checksum(v for d in batch_dicts for f in FEATURES for v in d[f]),
    }


if __name__ == "__main__":
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    serve({"historical": historical, "materialize": materialize, "online": online})
