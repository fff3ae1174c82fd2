"""The floors of bench/features.py: what the same work costs written by hand. mloop's venv.

- `asof`: a point-in-time join in DuckDB, the entity frame against the Parquet file, to a
  pandas DataFrame (in DuckDB's row order, not the entity frame's), written two ways: one
  ASOF LEFT JOIN carrying every feature column (`narrow=False`), or an ASOF LEFT JOIN of the
  keys and times only, joined back to the file on (driver, time) for the features
  (`narrow=True`: DuckDB sorts narrow rows instead of wide ones, which is faster here; the
  data has one row per driver and time, so the join back finds exactly one).
- `sqlite`: each driver's latest features in a plain table (driver_id INTEGER PRIMARY KEY,
  f0 … f9 REAL) of a fresh WAL file; a lookup is one SELECT by primary key (a batch, one
  SELECT … IN), fetched as tuples.
- `redis`: the same rows as one string per driver (the ten floats as text) in database
  REDIS_DB["floor"], flushed first; a lookup is one GET (a batch, one MGET), not parsed.

Lookups, warm-up and batches are those of the sides (features_data), so the checksums agree.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from time import perf_counter
from typing import Any

import duckdb
import redis
from features_data import (
    BATCH,
    FEATURE_FILE,
    FEATURES,
    JOIN_KEY,
    TIMESTAMP,
    checksum,
    lookup_batches,
    lookup_keys,
    read_entity_df,
    redis_url,
    timed,
)
from protocol import serve

COLUMNS = ", ".join(FEATURES)


def asof(data: str, calls: int, narrow: bool, save: str | None = None) -> dict[str, Any]:
    entity_df = read_entity_df(data)
    source = "read_parquet('" + str(Path(data) / FEATURE_FILE).replace("'", "''") + "')"
    on = f"e.{JOIN_KEY} = s.{JOIN_KEY} AND e.{TIMESTAMP} >= s.{TIMESTAMP}"
    features = ", ".join(f"s.{f}" for f in FEATURES)
    if narrow:
        query = (
            f"WITH m AS (SELECT e.{JOIN_KEY}, e.{TIMESTAMP}, s.{TIMESTAMP} AS t "
            f"FROM entity_df AS e ASOF LEFT JOIN (SELECT {JOIN_KEY}, {TIMESTAMP} FROM {source}) "
            f"AS s ON {on}) "
            f"SELECT m.{JOIN_KEY}, m.{TIMESTAMP}, {features} FROM m LEFT JOIN {source} AS s "
            f"ON m.{JOIN_KEY} = s.{JOIN_KEY} AND m.t = s.{TIMESTAMP}"
        )
    else:
        query = (
            f"SELECT e.{JOIN_KEY}, e.{TIMESTAMP}, {features} "
            f"FROM entity_df AS e ASOF LEFT JOIN {source} AS s ON {on}"
        )
    seconds, frame = [], None
    for _ in range(calls):
        start = perf_counter()
        with duckdb.connect() as con:
            con.register("entity_df", entity_df)
            frame = con.sql(query).df()
        seconds.append(perf_counter() - start)
    assert frame is not None
    if save:
        frame[[JOIN_KEY, *FEATURES]].to_parquet(save)
    return {"seconds": seconds, "rows": len(frame)}


def _latest(data: str) -> list[tuple[Any, ...]]:
    """(driver_id, f0, …, f9) of each driver's newest row."""
    source = str(Path(data) / FEATURE_FILE).replace("'", "''")
    query = (
        f"SELECT {JOIN_KEY}, {COLUMNS} FROM read_parquet('{source}') "
        f"QUALIFY row_number() OVER (PARTITION BY {JOIN_KEY} ORDER BY {TIMESTAMP} DESC) = 1"
    )
    with duckdb.connect() as con:
        return con.sql(query).fetchall()


def sqlite(
    data: str, directory: str, entities: int, lookups: int, batches: int, warmup: int
) -> dict[str, Any]:
    db = sqlite3.connect(Path(directory) / "floor.db", isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        floats = ", ".join(f"{f} REAL NOT NULL" for f in FEATURES)
        db.execute(f"CREATE TABLE latest ({JOIN_KEY} INTEGER PRIMARY KEY, {floats})")
        marks = ", ".join("?" * (len(FEATURES) + 1))
        db.execute("BEGIN")
        db.executemany(f"INSERT INTO latest VALUES ({marks})", _latest(data))
        db.execute("COMMIT")
        one = f"SELECT {COLUMNS} FROM latest WHERE {JOIN_KEY} = ?"
        many = f"SELECT {COLUMNS} FROM latest WHERE {JOIN_KEY} IN ({', '.join('?' * BATCH)})"
        timed(lambda key: db.execute(one, (key,)).fetchone(), lookup_keys(entities, warmup, 1))
        single, single_rows = timed(
            lambda key: db.execute(one, (key,)).fetchone(), lookup_keys(entities, lookups)
        )
        batch, batch_rows = timed(
            lambda keys: db.execute(many, keys).fetchall(),
            lookup_batches(entities, batches, BATCH),
        )
    finally:
        db.close()
    return {
        "single_s": single,
        "batch_s": batch,
        "single_checksum": checksum(v for row in single_rows for v in row),
        "batch_checksum": checksum(v for rows in batch_rows for row in rows for v in row),
    }


def redis_get(data: str, entities: int, lookups: int, batches: int, warmup: int) -> dict[str, Any]:
    client = redis.Redis.from_url(redis_url("floor"))
    try:
        client.flushdb()
        latest = _latest(data)
        for start in range(0, len(latest), 10_000):
            chunk = latest[start : start + 10_000]
            client.mset({f"d:{row[0]}": json.dumps(row[1:]) for row in chunk})
        timed(lambda key: client.get(f"d:{key}"), lookup_keys(entities, warmup, 1))
        single, single_raw = timed(
            lambda key: client.get(f"d:{key}"), lookup_keys(entities, lookups)
        )
        batch, batch_raw = timed(
            lambda keys: client.mget([f"d:{key}" for key in keys]),
            lookup_batches(entities, batches, BATCH),
        )
    finally:
        client.close()
    return {
        "single_s": single,
        "batch_s": batch,
        "single_checksum": checksum(v for raw in single_raw for v in json.loads(raw)),
        "batch_checksum": checksum(
            v for raws in batch_raw for raw in raws for v in json.loads(raw)
        ),
    }


if __name__ == "__main__":
    serve({"asof": asof, "sqlite": sqlite, "redis": redis_get})
