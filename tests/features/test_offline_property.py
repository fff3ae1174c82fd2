"""The point-in-time join against a pure-Python reference, on random small cases.

Sources have few keys and few distinct times, so ties on event time and on created time are
common; time zones and resolutions differ between the two sides; entity rows repeat, miss
keys, and sit one tick before or after a source row or a ttl boundary. Each case joins up to
three views of the same source at once (differing in ttl, created field and feature order).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from mloop.features._offline import ViewQuery, point_in_time_join

SECOND = 10**9
BASE = 1_704_067_200 * SECOND  # 2024-01-01T00:00:00Z, in ns
TICK = {"s": SECOND, "ms": 10**6, "us": 10**3, "ns": 1}
ZONES = [None, "UTC", "Asia/Kolkata", "America/St_Johns", "Etc/GMT+12", "Pacific/Kiritimati"]
STRING = pd.StringDtype(na_value=np.nan)


@dataclass(frozen=True)
class Row:
    key: int
    time: int  # ns since BASE
    created: int | None  # seconds since BASE
    a: int | None
    b: str | None


@dataclass(frozen=True)
class View:
    ttl: timedelta | None
    has_created: bool
    features: tuple[str, ...]  # ("a", "b") or ("b", "a"): the tie-break order

    @property
    def ttl_ns(self) -> int | None:
        return None if self.ttl is None else self.ttl // timedelta(microseconds=1) * 1_000


@dataclass(frozen=True)
class Case:
    rows: list[Row]
    source_unit: str
    source_zone: str | None
    views: list[View]
    entity_keys: list[int | None]
    entity_times: list[int | None]  # ns since BASE
    entity_unit: str
    entity_zone: str | None


def sometimes_none(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``values``, or None about one time in five."""
    return st.tuples(st.integers(0, 4), values).map(lambda pair: None if pair[0] == 0 else pair[1])


rows = st.lists(
    st.builds(
        Row,
        key=st.integers(0, 1),
        time=st.integers(0, 4).map(lambda s: s * SECOND),
        created=sometimes_none(st.integers(0, 2)),
        a=sometimes_none(st.integers(-2, 2)),
        b=sometimes_none(st.sampled_from(["a", "b", "é"])),
    ),
    min_size=2,
    max_size=16,
)
views = st.builds(
    View,
    ttl=st.none()
    | st.builds(
        lambda s, us: timedelta(seconds=s, microseconds=us),
        st.integers(0, 3),
        st.sampled_from([0, 1, 999_999]),
    ),
    has_created=st.booleans(),
    features=st.sampled_from([("a", "b"), ("b", "a")]),
)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    source = draw(rows)
    chosen = draw(st.lists(views, min_size=1, max_size=3))
    # Entity times at source rows and at their ttl boundaries (rounded down to the entity's
    # resolution), or one tick either side.
    entity_unit = draw(st.sampled_from(list(TICK)))
    tick = TICK[entity_unit]
    shifts = {0} | {view.ttl_ns for view in chosen if view.ttl_ns is not None}
    near = sorted({0, 6 * SECOND} | {row.time + shift for row in source for shift in shifts})
    times = st.builds(
        lambda time, off: (time // tick + off) * tick,
        st.sampled_from(near),
        st.sampled_from([-1, 0, 1]),
    )
    size = draw(st.integers(1, 12))
    return Case(
        rows=source,
        source_unit=draw(st.sampled_from(list(TICK))),
        source_zone=draw(st.sampled_from(ZONES)),
        views=chosen,
        entity_keys=draw(st.lists(sometimes_none(st.integers(0, 2)), min_size=size, max_size=size)),
        entity_times=draw(st.lists(sometimes_none(times), min_size=size, max_size=size)),
        entity_unit=entity_unit,
        entity_zone=draw(st.sampled_from(ZONES)),
    )


def as_times(ns: list[int | None], unit: str, zone: str | None) -> pd.Series:
    """Timestamps at ``ns`` after BASE in ``unit``: naive UTC, or tz-aware in ``zone``."""
    stamps = pd.Series(
        [pd.NaT if v is None else pd.Timestamp(BASE + v, unit="ns") for v in ns],
        dtype="datetime64[ns]",
    ).dt.as_unit(unit)
    return stamps if zone is None else stamps.dt.tz_localize("UTC").dt.tz_convert(zone)


def rank(value: Any) -> tuple[Any, ...]:
    return (0,) if value is None else (1, value)


def reference(case: Case, view: View) -> list[Row | None]:
    """For each entity row, the matching source row, by a loop over the candidates."""
    ttl = view.ttl_ns

    def order(row: Row) -> tuple[Any, ...]:
        created = row.created if view.has_created else None
        return (row.time, rank(created), *(rank(getattr(row, f)) for f in view.features))

    matches: list[Row | None] = []
    for key, time in zip(case.entity_keys, case.entity_times, strict=True):
        candidates = [
            row
            for row in case.rows
            if key is not None
            and time is not None
            and row.key == key
            and row.time <= time
            and (ttl is None or row.time >= time - ttl)
        ]
        matches.append(max(candidates, key=order) if candidates else None)
    return matches


def source_table(case: Case) -> pa.Table:
    times = as_times([row.time for row in case.rows], case.source_unit, case.source_zone)
    created = [None if row.created is None else row.created * SECOND for row in case.rows]
    return pa.table(
        {
            "key": pa.array([row.key for row in case.rows], pa.int64()),
            "ts": pa.array(times),
            "created": pa.array(as_times(created, "us", None)),
            "a": pa.array([row.a for row in case.rows], pa.int64()),
            "b": pa.array([row.b for row in case.rows], pa.string()),
        }
    )


@settings(max_examples=150, deadline=None)
@given(cases())
def test_matches_the_reference(case: Case) -> None:
    entity_df = pd.DataFrame(
        {
            "key": pd.array(case.entity_keys, dtype="Int64"),
            "event_timestamp": as_times(case.entity_times, case.entity_unit, case.entity_zone),
        }
    )
    entity_df.index = pd.Index([f"r{i}" for i in reversed(range(len(entity_df)))])
    queries = [
        ViewQuery(
            name=f"v{number}",
            relation="source",
            join_keys=("key",),
            timestamp_field="ts",
            created_timestamp_field="created" if view.has_created else None,
            ttl=view.ttl,
            features=view.features,
            output_names=tuple(f"v{number}__{f}" for f in view.features),
        )
        for number, view in enumerate(case.views)
    ]
    con = duckdb.connect()
    try:
        con.register("arrow_source", source_table(case))
        con.execute("CREATE TABLE source AS SELECT * FROM arrow_source")
        result = point_in_time_join(entity_df, queries, connection=con)
    finally:
        con.close()

    expected = entity_df.copy()
    for number, view in enumerate(case.views):
        matches = reference(case, view)
        for feature in view.features:
            values = [None if m is None else getattr(m, feature) for m in matches]
            dtype = "Int64" if feature == "a" else STRING
            expected[f"v{number}__{feature}"] = pd.Series(
                values, dtype=dtype, index=entity_df.index
            )
    assert_frame_equal(result, expected)
