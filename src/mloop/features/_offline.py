"""The offline store's point-in-time join: feature values as they were known at each entity row.

:func:`point_in_time_join` takes an entity frame (join keys plus an event time per row) and one
:class:`ViewQuery` per feature view, and appends the view's features to every row. For an
entity row *e* and a view, the values come from the source row *s* that

1. has the same join key values as *e* (a null key matches nothing);
2. has ``s.event_time <= e.event_time``;
3. if the view has a ``ttl``, has ``s.event_time >= e.event_time - ttl``. Both ends are
   inclusive: ``ttl=timedelta(0)`` keeps only rows at exactly the entity's time; ``None`` is no
   limit;
4. among the rows passing 1-3, has the greatest event time; among rows tied on that, the
   greatest created timestamp (a row without one loses to a row with one); among rows tied on
   that too, the greatest feature values, compared in the order the view lists them, a null
   below any value and a float NaN above any number. The choice never depends on file order or
   on DuckDB's threads.

A source row whose event time is null never matches, nor does an entity row whose timestamp is
NaT. Times are compared as instants: a tz-naive timestamp, on either side, is UTC (also naive
text that DuckDB parses into a TIMESTAMPTZ column), a tz-aware one is converted from whatever
zone it has, and a DATE is midnight UTC. Comparisons are exact at the finer of the two sides'
resolutions (an entity time of 00:00:00.000000999 is before a source time of 00:00:00.000001).

The result is the entity frame unchanged (the same rows in the same order, duplicates included,
with the same index, columns, dtypes and ``attrs``) with the output columns appended, view after
view in the order given. A row without a match gets nulls: NaN for floats, ``<NA>`` for integers
and booleans, NaT for timestamps, and for other types what pyarrow's ``to_pandas`` makes of a
null (NaN in a string column, None in a list column). Integer and boolean features always come
back as pandas' nullable dtypes (``Int64``, ``Int32``, ..., ``boolean``), whether or not a null
occurs, so a column's dtype never depends on the data.

The join runs in DuckDB on the sources as they are (Parquet, CSV, a query), without loading them
into Python: per view, an ``ASOF JOIN`` on (keys, event time) finds the matched event time of
every entity row, the ttl is checked on it, and a join back on (keys, that time) picks the
winning row among the tied ones. Each source is thus read twice, and must not change meanwhile.
"""

from __future__ import annotations

import copy
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mloop.errors import InvalidValueError
from mloop.features._sql import quote

__all__ = ["ViewQuery", "point_in_time_join"]


@dataclass(frozen=True)
class ViewQuery:
    """What to fetch from one feature view's source, and how to match its rows.

    ``relation`` is DuckDB SQL usable after ``FROM`` (trusted: mloop builds it); every other
    name is an identifier, quoted before it reaches SQL.

    Example::

        ViewQuery(
            name="customer_stats",
            relation="read_parquet('/data/stats/**/*.parquet', hive_partitioning = true)",
            join_keys=("customer_id",),
            timestamp_field="event_timestamp",
            created_timestamp_field="created",
            ttl=timedelta(days=7),
            features=("amount_7d",),
            output_names=("customer_stats__amount_7d",),
        )
    """

    name: str
    relation: str
    join_keys: tuple[str, ...]
    timestamp_field: str
    created_timestamp_field: str | None
    ttl: timedelta | None
    features: tuple[str, ...]
    output_names: tuple[str, ...]

    def __post_init__(self) -> None:
        # Sequences are accepted and frozen, so a list from a caller cannot change later.
        for field in ("join_keys", "features", "output_names"):
            object.__setattr__(self, field, tuple(getattr(self, field)))
        names = [*self.join_keys, self.timestamp_field, *self.features, *self.output_names]
        if self.created_timestamp_field is not None:
            names.append(self.created_timestamp_field)
        for name in names:
            if not isinstance(name, str) or not name or "\x00" in name:
                raise InvalidValueError(
                    f"feature view {self.name!r}: column name {name!r} is not a non-empty "
                    "string without NUL characters"
                )
        if not self.features:
            raise InvalidValueError(f"feature view {self.name!r}: no features to fetch")
        if len(self.output_names) != len(self.features):
            raise InvalidValueError(
                f"feature view {self.name!r}: {len(self.features)} features but "
                f"{len(self.output_names)} output names; give one output name per feature"
            )
        if self.ttl is not None and self.ttl < timedelta(0):
            raise InvalidValueError(
                f"feature view {self.name!r}: ttl {self.ttl} is negative; use a duration >= 0, "
                "or None for no limit"
            )


def point_in_time_join(
    entity_df: pd.DataFrame,
    views: Sequence[ViewQuery],
    *,
    timestamp_column: str = "event_timestamp",
    connection: duckdb.DuckDBPyConnection | None = None,
) -> pd.DataFrame:
    """Return ``entity_df`` with each view's features as of each row's timestamp appended.

    The rules are in this module's docstring. With no views, a copy of ``entity_df``. The work
    runs on a fresh in-memory DuckDB, closed afterwards, or on a new cursor of ``connection``
    if one is given: the relations may then name its tables and views, but not its temporary
    objects or registered Python objects, which a cursor does not see. Concurrent calls are
    safe; the caller's connection settings are left alone.

    Raises :class:`~mloop.errors.InvalidValueError` when a column is missing from the entity
    frame or a source, a join key's types cannot be compared, or output names collide.
    """
    times = _entity_times(entity_df, timestamp_column)
    _check_output_names(entity_df, views)
    if not views:
        return entity_df.copy()
    key_names = list(dict.fromkeys(key for view in views for key in view.join_keys))
    con = duckdb.connect() if connection is None else connection.cursor()
    try:
        # Naive timestamps are UTC here, also where DuckDB reads text into TIMESTAMPTZ (CSV);
        # the setting is this connection's or this cursor's own.
        con.execute("SET TimeZone = 'UTC'")
        return _join(con, entity_df, views, times, key_names)
    finally:
        con.close()


# -- the entity side ----------------------------------------------------------------------------

# Nanoseconds per unit of a time value, for the units of pandas, Arrow and DuckDB.
_NS_PER_UNIT = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "D": 86_400 * 10**9}


@dataclass(frozen=True)
class _Times:
    """Entity timestamps as integers in ``unit`` since the epoch (UTC); ``valid`` is not NaT."""

    values: npt.NDArray[np.int64]
    valid: npt.NDArray[np.bool_]
    unit: str


def _entity_times(entity_df: pd.DataFrame, column: str) -> _Times:
    if column not in entity_df.columns:
        raise InvalidValueError(
            f"entity_df has no column {column!r} for the entity timestamps; add it, or name "
            "the column holding them with timestamp_column="
        )
    series = entity_df[column]
    if not isinstance(series, pd.Series):
        raise InvalidValueError(f"entity_df has several columns named {column!r}; keep one")
    dtype = series.dtype
    is_arrow_ts = isinstance(dtype, pd.ArrowDtype) and pa.types.is_timestamp(dtype.pyarrow_dtype)
    if not (is_arrow_ts or isinstance(dtype, pd.DatetimeTZDtype) or dtype.kind == "M"):
        raise InvalidValueError(
            f"entity_df[{column!r}] holds {dtype}, not timestamps; convert it with "
            f"entity_df[{column!r}] = pd.to_datetime(entity_df[{column!r}])"
        )
    # Arrow stores tz-aware timestamps as UTC instants and naive ones as they are: just right.
    array = pa.array(series)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    ints = pc.fill_null(array.view(pa.int64()), 0).to_numpy()
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    return _Times(ints, valid, array.type.unit)


def _time_bounds(
    times: _Times, target: _TimeType, ttl: timedelta | None
) -> tuple[pa.Array, pa.Array | None]:
    """Each row's latest and earliest admissible event time, in the source column's own type.

    For an integer event time ``s`` in the target unit: ``s <= e`` iff ``s <= floor(e)`` and
    ``s >= e - ttl`` iff ``s >= ceil(e - ttl)``, so rounding this way keeps the comparison exact
    whatever the two resolutions are. A row whose bounds fall outside the target type's range
    gets a null upper bound when nothing can match it, and a clamped bound otherwise.
    """
    ttl_ns = None if ttl is None else (ttl // timedelta(microseconds=1)) * 1_000
    step = math.gcd(_NS_PER_UNIT[times.unit], _NS_PER_UNIT[target.unit], ttl_ns or 0)
    scale = _NS_PER_UNIT[times.unit] // step
    divisor = _NS_PER_UNIT[target.unit] // step
    back = 0 if ttl_ns is None else ttl_ns // step
    values = np.where(times.valid, times.values, 0)
    largest = int(np.abs(values).max()) if len(values) else 0
    if largest * scale + back >= 2**62:  # beyond int64: exact Python integers (rare, slow)
        values = values.astype(object)
    scaled = values * scale
    upper = scaled // divisor
    usable = times.valid & (upper >= target.low)
    upper = np.minimum(upper, target.high)
    lower = None
    if ttl_ns is not None:
        lower = -((back - scaled) // divisor)
        usable &= lower <= target.high
        lower = np.maximum(lower, target.low)
    as_arrow = target.as_arrow
    return as_arrow(upper, usable), None if lower is None else as_arrow(lower, usable)


# -- the sources --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TimeType:
    """A DuckDB event-time type: its unit, and how to hand it bounds of the very same type."""

    unit: str
    arrow: pa.DataType
    low: int
    high: int

    def as_arrow(self, values: npt.NDArray[Any], usable: npt.NDArray[np.bool_]) -> pa.Array:
        ints = np.where(usable, values, 0).astype(np.int32 if self.unit == "D" else np.int64)
        return pa.array(ints, mask=~usable).view(self.arrow)


# +-(max - 1) stay clear of DuckDB's +-infinity (+-max) and of Arrow's NaT (min).
_I64 = 2**63 - 2
_I32 = 2**31 - 2
_TIME_TYPES = {
    "timestamp_s": _TimeType("s", pa.timestamp("s"), -_I64, _I64),
    "timestamp_ms": _TimeType("ms", pa.timestamp("ms"), -_I64, _I64),
    "timestamp": _TimeType("us", pa.timestamp("us"), -_I64, _I64),
    "timestamp_ns": _TimeType("ns", pa.timestamp("ns"), -_I64, _I64),
    "timestamp with time zone": _TimeType("us", pa.timestamp("us", "UTC"), -_I64, _I64),
    "timestamptz_ns": _TimeType("ns", pa.timestamp("ns", "UTC"), -_I64, _I64),
    "date": _TimeType("D", pa.date32(), -_I32, _I32),
}

# Join keys of one family compare in DuckDB without surprises; across families they do not
# (DuckDB would cast '7' to 7, or a naive timestamp by the session's time zone).
_NUMBERS = [
    "tinyint",
    "smallint",
    "integer",
    "bigint",
    "hugeint",
    "utinyint",
    "usmallint",
    "uinteger",
    "ubigint",
    "uhugeint",
    "float",
    "double",
    "decimal",
]
_FAMILIES = {
    **dict.fromkeys(_NUMBERS, "number"),
    "varchar": "string",
    "enum": "string",
    **dict.fromkeys(["timestamp_s", "timestamp_ms", "timestamp", "timestamp_ns"], "timestamp"),
    **dict.fromkeys(["timestamp with time zone", "timestamptz_ns"], "timestamptz"),
}


def _family(duckdb_type: Any) -> str:
    return _FAMILIES.get(duckdb_type.id, str(duckdb_type))


def _source_columns(con: duckdb.DuckDBPyConnection, view: ViewQuery) -> dict[str, Any]:
    """The source's column names and DuckDB types, read without scanning the data."""
    try:
        relation = con.sql(f"SELECT * FROM {view.relation}")
    except duckdb.Error as error:
        raise InvalidValueError(
            f"feature view {view.name!r}: cannot read its source {view.relation}: {error}"
        ) from error
    return dict(zip(relation.columns, relation.types, strict=True))


def _check_source(view: ViewQuery, columns: dict[str, Any], entity_types: dict[str, Any]) -> None:
    wanted = {key: "join key" for key in view.join_keys}
    wanted[view.timestamp_field] = "timestamp field"
    if view.created_timestamp_field is not None:
        wanted[view.created_timestamp_field] = "created timestamp field"
    wanted.update((feature, "feature") for feature in view.features if feature not in wanted)
    missing = [f"{name!r} ({role})" for name, role in wanted.items() if name not in columns]
    if missing:
        shown = ", ".join(repr(name) for name in list(columns)[:20])
        shown += ", ..." if len(columns) > 20 else ""
        raise InvalidValueError(
            f"feature view {view.name!r}: its source has no column {', '.join(missing)}; "
            f"fix the view definition or the data (the source has: {shown})"
        )
    time_type = columns[view.timestamp_field]
    if time_type.id not in _TIME_TYPES:
        raise InvalidValueError(
            f"feature view {view.name!r}: timestamp field {view.timestamp_field!r} is "
            f"{time_type}, not a timestamp or date; cast it in the source"
        )
    for key in view.join_keys:
        ours, theirs = entity_types[key], columns[key]
        if "null" not in (ours.id, theirs.id) and _family(ours) != _family(theirs):
            raise InvalidValueError(
                f"feature view {view.name!r}: join key {key!r} is {theirs} in the source but "
                f"{ours} in entity_df; cast the entity column to a matching type"
            )


def _check_output_names(entity_df: pd.DataFrame, views: Sequence[ViewQuery]) -> None:
    owner: dict[str, str] = {}
    for view in views:
        for name in view.output_names:
            if name in entity_df.columns:
                raise InvalidValueError(
                    f"feature view {view.name!r}: output column {name!r} is already a column "
                    "of entity_df; rename the output (e.g. prefix it with the view name)"
                )
            if name in owner:
                raise InvalidValueError(
                    f"output column {name!r} is produced by both feature view "
                    f"{owner[name]!r} and {view.name!r}; prefix outputs with the view name"
                )
            owner[name] = view.name


# -- the query ----------------------------------------------------------------------------------


def _join(
    con: duckdb.DuckDBPyConnection,
    entity_df: pd.DataFrame,
    views: Sequence[ViewQuery],
    times: _Times,
    key_names: list[str],
) -> pd.DataFrame:
    entity: dict[str, pa.Array] = {"rn": pa.array(np.arange(len(entity_df), dtype=np.int64))}
    entity_alias: dict[str, str] = {}
    for index, key in enumerate(key_names):
        entity_alias[key] = f"k{index}"
        entity[f"k{index}"] = _entity_key(entity_df, key, views)
    key_types = con.from_arrow(pa.table(entity)).types[1:]
    entity_types = dict(zip(key_names, key_types, strict=True))

    table_name = f"mloop_entities_{uuid.uuid4().hex}"
    subqueries = []
    for number, view in enumerate(views):
        columns = _source_columns(con, view)
        _check_source(view, columns, entity_types)
        upper, lower = _time_bounds(times, _TIME_TYPES[columns[view.timestamp_field].id], view.ttl)
        entity[f"u{number}"] = upper
        if lower is not None:
            entity[f"l{number}"] = lower
        subqueries.append(_view_sql(number, view, quote(table_name), entity_alias))

    outputs = [
        f"v{number}.f{index} AS o{number}_{index}"
        for number, view in enumerate(views)
        for index in range(len(view.features))
    ]
    joins = " ".join(
        f"LEFT JOIN ({sql}) AS v{number} ON v{number}.rn = e.rn"
        for number, sql in enumerate(subqueries)
    )
    query = f"SELECT {', '.join(outputs)} FROM {quote(table_name)} AS e {joins} ORDER BY e.rn"
    con.register(table_name, pa.table(entity))
    try:
        result = con.sql(query).to_arrow_table()
    except duckdb.Error as error:
        raise InvalidValueError(f"the point-in-time join failed in DuckDB: {error}") from error
    finally:
        con.unregister(table_name)
    features: pd.DataFrame = result.to_pandas(types_mapper=_NULLABLE.get)
    features.columns = pd.Index([name for view in views for name in view.output_names])
    features.index = entity_df.index
    joined = pd.concat([entity_df, features], axis=1)
    joined.attrs = copy.deepcopy(entity_df.attrs)  # as pandas' own methods would keep them
    return joined


def _entity_key(entity_df: pd.DataFrame, key: str, views: Sequence[ViewQuery]) -> pa.Array:
    view = next(view.name for view in views if key in view.join_keys)
    if key not in entity_df.columns:
        raise InvalidValueError(
            f"feature view {view!r}: join key {key!r} is not a column of entity_df; add it"
        )
    series = entity_df[key]
    if not isinstance(series, pd.Series):
        raise InvalidValueError(f"entity_df has several columns named {key!r}; keep one")
    try:
        array = pa.array(series)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
        raise InvalidValueError(
            f"entity_df[{key!r}] (join key of feature view {view!r}) mixes types or holds "
            f"objects DuckDB cannot read: {error}; give it one type"
        ) from error
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _view_sql(number: int, view: ViewQuery, entities: str, entity_alias: dict[str, str]) -> str:
    """One view's matches: (rn, f0, f1, ...) for the entity rows that have one."""
    keys = [f"{quote(key)} AS k{index}" for index, key in enumerate(view.join_keys)]
    time = f"{quote(view.timestamp_field)} AS t"
    created = (
        [f"{quote(view.created_timestamp_field)} AS c"] if view.created_timestamp_field else []
    )
    features = [f"{quote(feature)} AS f{index}" for index, feature in enumerate(view.features)]
    narrow = f"SELECT {', '.join([*keys, time])} FROM {view.relation}"
    wide = f"SELECT {', '.join([*keys, time, *created, *features])} FROM {view.relation}"

    asof_on = [f"e.{entity_alias[key]} = s.k{index}" for index, key in enumerate(view.join_keys)]
    asof_on.append(f"e.u{number} >= s.t")
    ttl = f" WHERE s.t >= e.l{number}" if view.ttl is not None else ""
    matched_keys = "".join(f", s.k{index}" for index in range(len(view.join_keys)))
    matched = (
        f"SELECT e.rn{matched_keys}, s.t FROM {entities} AS e "
        f"ASOF JOIN ({narrow}) AS s ON {' AND '.join(asof_on)}{ttl}"
    )
    back_on = [f"m.k{index} = s.k{index}" for index in range(len(view.join_keys))]
    back_on.append("m.t = s.t")
    order = ["s.c DESC NULLS LAST"] if created else []
    order += [f"s.f{index} DESC NULLS LAST" for index in range(len(view.features))]
    outputs = ", ".join(f"s.f{index}" for index in range(len(view.features)))
    return (
        f"SELECT m.rn, {outputs} FROM ({matched}) AS m JOIN ({wide}) AS s "
        f"ON {' AND '.join(back_on)} "
        f"QUALIFY row_number() OVER (PARTITION BY m.rn ORDER BY {', '.join(order)}) = 1"
    )


# Integer and boolean features keep their kind when a row has no match.
_NULLABLE: dict[pa.DataType, Any] = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}
