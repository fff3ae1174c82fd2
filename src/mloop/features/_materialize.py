"""Materialization: the latest row per entity of a feature view, checked, into the online store.

For a window ``[start, end]`` of event time (``start`` None: from the beginning), each entity's
newest row with event time ≤ ``end`` (ties broken by the created timestamp) is selected in
DuckDB, as long as it is within the view's ``ttl`` of ``end`` - exactly what the offline store
returns for that entity at ``end``. The rows are validated against the view's constraints
(policy ``error`` blocks the write), their statistics computed, and then written to the online
store in one atomic batch: a crash leaves the previous values, and re-running completes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from mloop.errors import InvalidValueError
from mloop.features._checks import FeatureValidationError, enforce, validate_frame
from mloop.features._defs import FeatureView
from mloop.features._sql import quote, utc_expression
from mloop.features._stats import compute_stats
from mloop.features.online import OnlineStore
from mloop.store import Store, to_ms

__all__ = ["MaterializeResult", "Progress", "materialize_view"]

log = logging.getLogger("mloop.features")

# (view, stage, done, total): stages "read", "validate", "write", "done"
Progress = Callable[[str, str, int, int], None]


@dataclass(frozen=True)
class MaterializeResult:
    """What one view's materialization did."""

    view: str
    view_version: int
    start: datetime | None
    end: datetime
    rows: int
    status: str  # finished | failed
    materialization_id: str
    violations: int
    error: str | None = None


def _latest_rows_sql(
    view: FeatureView, relation: str, ts: str, start: datetime | None, end: datetime
) -> str:
    keys = ", ".join(quote(k) for k in view.join_keys)
    columns = ", ".join(quote(c) for c in (*view.join_keys, *view.features))
    order = "__ts DESC"
    created = ""
    if view.created_timestamp_field:
        created = f", {quote(view.created_timestamp_field)} AS __created"
        order += ", __created DESC NULLS LAST"
    lower = []
    if start is not None:
        lower.append(f"__ts >= {_literal(start)}")
    if view.ttl is not None:
        lower.append(f"__ts >= {_literal(end - view.ttl)}")
    where = " AND ".join([f"__ts <= {_literal(end)}", *lower])
    return (
        f"SELECT {columns}, epoch_ms(__ts) AS __event_ms FROM ("
        f"SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY {order}) AS __rank FROM ("
        f"SELECT *, {ts} AS __ts{created} FROM {relation}) WHERE {where}"
        f") WHERE __rank = 1"
    )


def _literal(moment: datetime) -> str:
    naive = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    return f"TIMESTAMP '{naive.isoformat(sep=' ')}'"


def materialize_view(
    view: FeatureView,
    view_version: int,
    *,
    project: Path,
    store: Store,
    online: OnlineStore,
    online_uri: str,
    start: datetime | None,
    end: datetime,
    actor: str,
    progress: Progress | None = None,
) -> MaterializeResult:
    """Materialize one view for the window ``[start, end]``; see the module docstring."""
    if start is not None and start > end:
        raise InvalidValueError(f"materialize start {start} is after its end {end}")
    say = progress or (lambda *_: None)
    record = store.features.start_materialization(
        view.name,
        view_version,
        online_uri,
        None if start is None else to_ms(start),
        to_ms(end),
        actor=actor,
    )
    try:
        say(view.name, "read", 0, 1)
        with duckdb.connect() as conn:
            relation = view.source.relation(project)
            ts = utc_expression(conn, relation, view.timestamp_field, view.name)
            table = conn.sql(_latest_rows_sql(view, relation, ts, start, end)).to_arrow_table()
        rows = table.num_rows
        say(view.name, "validate", 0, rows)
        frame = table.drop_columns(["__event_ms"]).to_pandas()
        fields = {f.name: (f.dtype, f.constraint) for f in view.schema}
        checked = frame[list(view.features)].assign(
            __event_time=pd.to_datetime(table.column("__event_ms").to_numpy(), unit="ms", utc=True)
        )
        report = validate_frame(
            view.name,
            checked,
            fields,
            timestamp_field="__event_time",
            freshness=view.freshness,
            now=end,
        )
        stats = compute_stats(frame, {f.name: f.dtype for f in view.schema})
        stats_json = {name: value.to_dict() for name, value in stats.items()}
        try:
            enforce(report, view.validation)
        except FeatureValidationError as error:
            store.features.finish_materialization(
                record,
                status="failed",
                rows=0,
                stats=stats_json,
                validation=report.to_dict(),
                error=str(error),
            )
            raise
        keys = list(zip(*(table.column(k).to_pylist() for k in view.join_keys), strict=True))
        values = list(zip(*(table.column(f).to_pylist() for f in view.features), strict=True))
        event_ms = table.column("__event_ms").to_pylist()
        say(view.name, "write", 0, rows)
        written = online.write(view.name, keys, values, list(view.features), event_ms)
        say(view.name, "write", rows, rows)
        store.features.finish_materialization(
            record,
            status="finished",
            rows=written,
            stats=stats_json,
            validation=report.to_dict(),
        )
        say(view.name, "done", rows, rows)
        return MaterializeResult(
            view.name, view_version, start, end, written, "finished", record,
            len(report.violations),
        )  # fmt: skip
    except FeatureValidationError:
        raise
    except BaseException as error:
        _fail(store, record, error)
        raise


def _fail(store: Store, record: str, error: BaseException) -> None:
    try:
        store.features.finish_materialization(
            record, status="failed", error=f"{type(error).__name__}: {error}"
        )
    except Exception as secondary:  # noqa: BLE001 - the original error matters more
        log.warning("could not record the failed materialization %s: %s", record, secondary)


def window_for(value: Any, what: str) -> datetime:
    """A datetime given as a datetime or an ISO-8601 string; naive means UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as error:
            raise InvalidValueError(f"{what} {value!r} is not an ISO-8601 time") from error
    if not isinstance(value, datetime):
        raise InvalidValueError(f"{what} must be a datetime, not {type(value).__name__}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)
