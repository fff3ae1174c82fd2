"""The raw-SQLite floor of bench/tracking.py: the fastest way to persist the same metric rows.

One executemany into an indexed table of a fresh WAL file (synchronous=NORMAL), timed from the
call until the commit returns. Standard library only; runs in mloop's venv interpreter.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path
from time import perf_counter
from typing import Any

from protocol import serve
from tracking_data import metric_rows

SCHEMA = """
CREATE TABLE metrics (
    run_id TEXT NOT NULL, key TEXT NOT NULL, step INTEGER NOT NULL,
    timestamp INTEGER NOT NULL, value REAL NOT NULL
);
CREATE INDEX metrics_run_key_step ON metrics (run_id, key, step);
"""


def executemany(count: int, directory: str) -> dict[str, Any]:
    rows = metric_rows(uuid.uuid4().hex, count, int(time.time() * 1000))
    db = sqlite3.connect(Path(directory) / "floor.db")
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        start = perf_counter()
        db.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", rows)
        db.commit()
        seconds = perf_counter() - start
        stored = db.execute("SELECT count(*) FROM metrics").fetchone()[0]
    finally:
        db.close()
    return {"seconds": seconds, "rows": stored}


if __name__ == "__main__":
    serve({"executemany": executemany})
