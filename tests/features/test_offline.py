"""The offline store's point-in-time join: hand-written cases, with exact expected frames."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pandas.testing import assert_frame_equal

from mloop.errors import InvalidValueError
from mloop.features._offline import ViewQuery, point_in_time_join

NAN = float("nan")


def ts(*values: str | None) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), format="ISO8601"))


def parquet(folder: Path, frame: pd.DataFrame, name: str = "source.parquet") -> str:
    path = folder / name
    frame.to_parquet(path, index=False)
    return f"read_parquet('{path}')"


def view(relation: str, **changes: Any) -> ViewQuery:
    fields: dict[str, Any] = {
        "name": "stats",
        "relation": relation,
        "join_keys": ("customer_id",),
        "timestamp_field": "event_timestamp",
        "created_timestamp_field": None,
        "ttl": None,
        "features": ("amount",),
        "output_names": ("amount",),
        **changes,
    }
    return ViewQuery(**fields)


def entities(customers: list[Any], times: list[str | None], **columns: Any) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": customers, "event_timestamp": ts(*times), **columns})


def with_features(entity_df: pd.DataFrame, **columns: Any) -> pd.DataFrame:
    """The frame the join should return: ``entity_df`` untouched plus the given columns."""
    expected = entity_df.copy()
    for name, values in columns.items():
        values = values.array if isinstance(values, pd.Series) else values
        expected[name] = pd.Series(values, index=entity_df.index)
    return expected


@pytest.fixture
def amounts(tmp_path: Path) -> str:
    """Customer 1 has amounts 10, 30, 50 on Jan 1, 3 and 5; customer 2 has 7 on Jan 2."""
    return parquet(
        tmp_path,
        pd.DataFrame(
            {
                "customer_id": [1, 1, 1, 2],
                "event_timestamp": ts("2024-01-03", "2024-01-01", "2024-01-05", "2024-01-02"),
                "amount": [30.0, 10.0, 50.0, 7.0],
            }
        ),
    )


# -- which row matches --------------------------------------------------------------------------


def test_latest_row_at_or_before_each_entity_timestamp(amounts: str) -> None:
    entity_df = entities(
        [1, 1, 1, 1, 2, 9],
        ["2023-12-31", "2024-01-01", "2024-01-04 12:00", "2024-02-01", "2024-01-02", "2024-01-09"],
        label=[0, 1, 0, 1, 1, 0],
    )
    result = point_in_time_join(entity_df, [view(amounts)])
    # before the first row: null; at exactly a row's time: that row; a missing customer: null
    assert_frame_equal(result, with_features(entity_df, amount=[NAN, 10.0, 30.0, 50.0, 7.0, NAN]))


def test_ttl_bounds_are_inclusive(amounts: str) -> None:
    entity_df = entities(
        [1, 1, 1, 1],
        ["2024-01-07", "2024-01-07 00:00:00.000001", "2024-01-06 23:59:59", "2024-01-05"],
    )
    result = point_in_time_join(entity_df, [view(amounts, ttl=timedelta(days=2))])
    # the Jan 5 row is exactly 2 days older than the first row; a microsecond later it is too old
    assert_frame_equal(result, with_features(entity_df, amount=[50.0, NAN, 50.0, 50.0]))


def test_ttl_excludes_a_stale_row_even_when_older_rows_exist(amounts: str) -> None:
    entity_df = entities([1, 1, 2], ["2024-01-04", "2024-01-03", "2024-01-03"])
    result = point_in_time_join(entity_df, [view(amounts, ttl=timedelta(hours=12))])
    assert_frame_equal(result, with_features(entity_df, amount=[NAN, 30.0, NAN]))


def test_zero_ttl_keeps_rows_at_exactly_the_entity_time(amounts: str) -> None:
    entity_df = entities([1, 1], ["2024-01-03", "2024-01-03 00:00:01"])
    result = point_in_time_join(entity_df, [view(amounts, ttl=timedelta(0))])
    assert_frame_equal(result, with_features(entity_df, amount=[30.0, NAN]))


def test_latest_created_timestamp_wins_a_tie_on_event_time(tmp_path: Path) -> None:
    source = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 2, 3, 3],
            "event_timestamp": ts(*["2024-01-01"] * 7),
            "created": ts(
                "2024-01-02", "2024-01-05", "2024-01-03", None, "2024-01-01", "2024-01-01", None
            ),
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        }
    )
    relation = parquet(tmp_path, source)
    entity_df = entities([1, 2, 3], ["2024-01-01"] * 3)
    result = point_in_time_join(entity_df, [view(relation, created_timestamp_field="created")])
    # a row with a created timestamp beats one without, whatever the values
    assert_frame_equal(result, with_features(entity_df, amount=[2.0, 5.0, 6.0]))


def test_complete_ties_go_to_the_greatest_feature_values(tmp_path: Path) -> None:
    source = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 2, 3, 3],
            "event_timestamp": ts(*["2024-01-01"] * 7),
            "a": pd.array([1, 2, 2, 5, None, None, None], dtype="Int64"),
            "b": ["z", "x", "y", "p", "q", None, "r"],
        }
    )
    relation = parquet(tmp_path, source)
    entity_df = entities([1, 2, 3], ["2024-01-02"] * 3)
    query = view(relation, features=("a", "b"), output_names=("a", "b"))
    result = point_in_time_join(entity_df, [query])
    # compared in feature order, a null below any value
    expected = with_features(
        entity_df, a=pd.array([2, 5, None], dtype="Int64"), b=pd.Series(["y", "p", "r"])
    )
    assert_frame_equal(result, expected)


def test_duplicate_entity_rows_come_back_duplicated(amounts: str) -> None:
    entity_df = entities([1, 1, 2, 1], ["2024-01-03", "2024-01-03", "2024-01-09", "2024-01-03"])
    result = point_in_time_join(entity_df, [view(amounts)])
    assert_frame_equal(result, with_features(entity_df, amount=[30.0, 30.0, 7.0, 30.0]))


def test_null_keys_and_missing_timestamps_match_nothing(amounts: str) -> None:
    entity_df = pd.DataFrame(
        {
            "customer_id": pd.array([1, None, 1], dtype="Int64"),
            "event_timestamp": ts("2024-01-03", "2024-01-03", None),
        }
    )
    result = point_in_time_join(entity_df, [view(amounts)])
    assert_frame_equal(result, with_features(entity_df, amount=[30.0, NAN, NAN]))


def test_two_views_with_different_keys(tmp_path: Path, amounts: str) -> None:
    merchants = parquet(
        tmp_path,
        pd.DataFrame(
            {
                "merchant_id": ["m1", "m1", "m2"],
                "ts": ts("2024-01-01", "2024-01-04", "2024-01-02"),
                "risk": [0.1, 0.4, 0.9],
            }
        ),
        "merchants.parquet",
    )
    entity_df = entities(
        [1, 2, 1], ["2024-01-02", "2024-01-02", "2024-01-04"], merchant_id=["m1", "m2", "m1"]
    )
    merchant_view = view(
        merchants,
        name="merchant_stats",
        join_keys=("merchant_id",),
        timestamp_field="ts",
        features=("risk",),
        output_names=("merchant_stats__risk",),
    )
    result = point_in_time_join(entity_df, [view(amounts), merchant_view])
    expected = with_features(
        entity_df, amount=[10.0, 7.0, 30.0], merchant_stats__risk=[0.1, 0.9, 0.4]
    )
    assert_frame_equal(result, expected)


def test_composite_join_keys(tmp_path: Path) -> None:
    relation = parquet(
        tmp_path,
        pd.DataFrame(
            {
                "country": ["de", "de", "fr", "fr"],
                "store": [1, 2, 1, 1],
                "event_timestamp": ts("2024-01-01", "2024-01-01", "2024-01-01", "2024-01-03"),
                "sales": [100, 200, 300, 400],
            }
        ),
    )
    entity_df = pd.DataFrame(
        {
            "store": [1, 2, 1, 1, 2],
            "country": ["de", "de", "fr", "fr", "fr"],
            "event_timestamp": ts(*["2024-01-02"] * 3, "2024-01-03", "2024-01-03"),
        }
    )
    query = view(
        relation, join_keys=("country", "store"), features=("sales",), output_names=("sales",)
    )
    result = point_in_time_join(entity_df, [query])
    sales = pd.array([100, 200, 300, 400, None], dtype="Int64")
    assert_frame_equal(result, with_features(entity_df, sales=sales))


def test_view_without_join_keys_matches_on_time_only(tmp_path: Path) -> None:
    relation = parquet(
        tmp_path,
        pd.DataFrame({"event_timestamp": ts("2024-01-01", "2024-01-03"), "rate": [1.5, 2.5]}),
    )
    entity_df = entities([1, 2, 3], ["2023-12-01", "2024-01-02", "2024-01-09"])
    query = view(relation, join_keys=(), features=("rate",), output_names=("rate",))
    result = point_in_time_join(entity_df, [query])
    assert_frame_equal(result, with_features(entity_df, rate=[NAN, 1.5, 2.5]))


# -- time zones and resolutions -----------------------------------------------------------------


def test_tz_aware_entity_times_compare_in_utc_with_a_naive_source(amounts: str) -> None:
    # Jan 3 00:00 UTC is Jan 3 05:00 at UTC+5
    times = ts("2024-01-03 04:59:59", "2024-01-03 05:00")
    entity_df = pd.DataFrame(
        {"customer_id": [1, 1], "event_timestamp": times.dt.tz_localize("Etc/GMT-5")}
    )
    result = point_in_time_join(entity_df, [view(amounts)])
    assert str(result["event_timestamp"].dtype).endswith("Etc/GMT-5]")
    assert_frame_equal(result, with_features(entity_df, amount=[10.0, 30.0]))


def test_tz_aware_source_compares_in_utc_with_naive_entity_times(tmp_path: Path) -> None:
    local = ts("2024-01-02 19:00", "2024-01-02 20:00")
    relation = parquet(
        tmp_path,
        pd.DataFrame(
            {
                "customer_id": [1, 2],
                "event_timestamp": local.dt.tz_localize("America/New_York"),  # 00:00, 01:00 UTC
                "amount": [1.0, 2.0],
            }
        ),
    )
    entity_df = entities([1, 2, 2], ["2024-01-03", "2024-01-03 00:59:59", "2024-01-03 01:00"])
    result = point_in_time_join(entity_df, [view(relation)])
    assert_frame_equal(result, with_features(entity_df, amount=[1.0, NAN, 2.0]))


def test_nanosecond_entity_times_against_a_microsecond_source(tmp_path: Path) -> None:
    relation = parquet(
        tmp_path,
        pd.DataFrame(
            {
                "customer_id": [1],
                "event_timestamp": ts("2024-01-01 00:00:00.000001").dt.as_unit("us"),
                "amount": [1.0],
            }
        ),
    )
    times = [
        "2024-01-01 00:00:00.000000999",
        "2024-01-01 00:00:00.000002",
        "2024-01-01 00:00:00.000002001",
    ]
    entity_df = pd.DataFrame(
        {"customer_id": [1, 1, 1], "event_timestamp": ts(*times).dt.as_unit("ns")}
    )
    result = point_in_time_join(entity_df, [view(relation, ttl=timedelta(microseconds=1))])
    # 1 ns before the row; exactly 1 us after it; 1 ns too late for a ttl of 1 us
    assert_frame_equal(result, with_features(entity_df, amount=[NAN, 1.0, NAN]))


def test_entity_times_outside_the_nanosecond_range(tmp_path: Path) -> None:
    relation = parquet(
        tmp_path,
        pd.DataFrame(
            {
                "customer_id": [1, 1],
                "event_timestamp": ts("2024-01-01", "2024-06-01").dt.as_unit("ns"),
                "amount": [1.0, 2.0],
            }
        ),
    )
    times = pd.Series([np.datetime64("1500-01-01", "us"), np.datetime64("2500-01-01", "us")])
    entity_df = pd.DataFrame({"customer_id": [1, 1], "event_timestamp": times})
    result = point_in_time_join(entity_df, [view(relation)])
    assert_frame_equal(result, with_features(entity_df, amount=[NAN, 2.0]))
    result = point_in_time_join(entity_df, [view(relation, ttl=timedelta(days=365 * 300))])
    assert_frame_equal(result, with_features(entity_df, amount=[NAN, NAN]))
    result = point_in_time_join(entity_df, [view(relation, ttl=timedelta.max)])
    assert_frame_equal(result, with_features(entity_df, amount=[NAN, 2.0]))


def test_arrow_backed_entity_timestamps(amounts: str) -> None:
    times = ts("2024-01-03 08:59", "2024-01-03 09:00").dt.tz_localize("Asia/Tokyo")
    entity_df = pd.DataFrame(
        {
            "customer_id": [1, 1],
            "event_timestamp": times.astype("timestamp[ns, tz=Asia/Tokyo][pyarrow]"),
        }
    )
    result = point_in_time_join(entity_df, [view(amounts)])
    assert_frame_equal(result, with_features(entity_df, amount=[10.0, 30.0]))


def test_date_event_times_are_midnight_utc(tmp_path: Path) -> None:
    relation = parquet(
        tmp_path,
        pd.DataFrame(
            {
                "customer_id": [1, 1],
                "day": pa.array(
                    [pd.Timestamp("2024-01-01").date(), pd.Timestamp("2024-01-02").date()]
                ),
                "amount": [1.0, 2.0],
            }
        ),
    )
    entity_df = entities([1, 1, 1], ["2024-01-01 23:59", "2024-01-02", "2024-01-03 00:00:01"])
    result = point_in_time_join(
        entity_df, [view(relation, timestamp_field="day", ttl=timedelta(days=1))]
    )
    assert_frame_equal(result, with_features(entity_df, amount=[1.0, 2.0, NAN]))


# -- sources ------------------------------------------------------------------------------------


def test_hive_partitioned_parquet_folder(tmp_path: Path) -> None:
    source = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 2],
            "event_timestamp": ts("2024-01-01", "2024-02-01", "2024-01-15", "2024-02-15"),
            "month": ["2024-01", "2024-02", "2024-01", "2024-02"],
            "amount": [1.0, 2.0, 3.0, 4.0],
        }
    )
    root = tmp_path / "stats"
    pq.write_to_dataset(pa.Table.from_pandas(source), root, partition_cols=["month"])
    relation = f"read_parquet('{root}/**/*.parquet', hive_partitioning = true)"
    entity_df = entities([1, 2, 2], ["2024-01-31", "2024-02-20", "2024-01-01"])
    result = point_in_time_join(entity_df, [view(relation)])
    assert_frame_equal(result, with_features(entity_df, amount=[1.0, 4.0, NAN]))


def test_csv_source(tmp_path: Path) -> None:
    path = tmp_path / "stats.csv"
    path.write_text(
        "customer_id,event_timestamp,amount,note\n"
        "1,2024-01-01 00:00:00,5,first\n"
        "1,2024-01-02 00:00:00,6,second\n"
        "2,2024-01-01 00:00:00+05:00,7,aware\n"
    )
    query = view(f"read_csv('{path}')", features=("amount", "note"), output_names=("a", "n"))
    entity_df = entities([1, 2, 2], ["2024-01-01", "2023-12-31 18:59", "2023-12-31 19:00"])
    result = point_in_time_join(entity_df, [query])
    # the column is TIMESTAMPTZ; the naive text in it is UTC, whatever the machine's time zone
    expected = with_features(
        entity_df,
        a=pd.array([5, None, 7], dtype="Int64"),
        n=pd.Series(["first", None, "aware"], dtype=pd.StringDtype(na_value=np.nan)),
    )
    assert_frame_equal(result, expected)


def test_table_of_a_given_connection(amounts: str) -> None:
    con = duckdb.connect()
    con.execute(f"CREATE TABLE stats AS SELECT * FROM {amounts}")
    entity_df = entities([1, 2], ["2024-01-04", "2024-01-01"])
    result = point_in_time_join(entity_df, [view("stats")], connection=con)
    assert_frame_equal(result, with_features(entity_df, amount=[30.0, NAN]))
    # the connection stays open, with nothing left behind in it
    assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == [("stats",)]
    assert con.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchall() == [
        (0,)
    ]
    con.close()


def test_concurrent_calls_on_one_connection(tmp_path: Path, amounts: str) -> None:
    con = duckdb.connect()
    entity_df = entities([1, 2, 1, 9] * 50, ["2024-01-04", "2024-01-03", "2024-01-06", None] * 50)
    expected = point_in_time_join(entity_df, [view(amounts)])
    results: list[pd.DataFrame] = []

    def work() -> None:
        for _ in range(5):
            results.append(point_in_time_join(entity_df, [view(amounts)], connection=con))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 20
    for result in results:
        assert_frame_equal(result, expected)
    con.close()


# -- the caller's frame -------------------------------------------------------------------------


def test_caller_index_columns_and_dtypes_are_kept(amounts: str) -> None:
    entity_df = pd.DataFrame(
        {
            "label": pd.array([True, False, True], dtype="boolean"),
            "event_timestamp": ts("2024-01-09", "2024-01-01", "2024-01-03").array,
            "customer_id": np.array([2, 1, 1], dtype=np.int32),
            "weight": [0.5, 1.5, 2.5],
        },
        index=pd.Index(["z", "a", "z"], name="request"),
    )
    entity_df.attrs["source"] = "requests.csv"
    before = entity_df.copy()
    result = point_in_time_join(entity_df, [view(amounts)])
    assert_frame_equal(result, with_features(entity_df, amount=[7.0, 10.0, 30.0]))
    assert result.attrs == {"source": "requests.csv"}
    assert_frame_equal(entity_df, before)  # the input is not modified


def test_quoted_and_unicode_column_names(tmp_path: Path) -> None:
    key, time, feature = 'customer "id"', "event time", "größe's 7d; DROP"
    relation = parquet(
        tmp_path,
        pd.DataFrame({key: [1, 1], time: ts("2024-01-01", "2024-01-02"), feature: [1.0, 2.0]}),
    )
    entity_df = pd.DataFrame({key: [1, 1], "when it happened": ts("2024-01-01", "2023-01-01")})
    query = view(
        relation,
        join_keys=(key,),
        timestamp_field=time,
        features=(feature,),
        output_names=('out "1"',),
    )
    result = point_in_time_join(entity_df, [query], timestamp_column="when it happened")
    assert_frame_equal(result, with_features(entity_df, **{'out "1"': [1.0, NAN]}))


def test_feature_dtypes_do_not_depend_on_matches(tmp_path: Path) -> None:
    relation = parquet(
        tmp_path,
        pd.DataFrame(
            {
                "customer_id": [1],
                "event_timestamp": ts("2024-01-01"),
                "count": np.array([3], dtype=np.int32),
                "flag": [True],
                "name": ["a"],
                "seen": ts("2023-06-01"),
            }
        ),
    )
    features = ("count", "flag", "name", "seen")
    query = view(relation, features=features, output_names=features)
    for customers in ([1], [2], [1, 2]):
        entity_df = entities(customers, ["2024-01-02"] * len(customers))
        result = point_in_time_join(entity_df, [query])
        assert [str(result[name].dtype) for name in features] == [
            "Int32",
            "boolean",
            "str",
            str(ts("2023-06-01").dtype),
        ]


def test_empty_entity_frame_returns_the_output_columns(amounts: str) -> None:
    entity_df = entities([], []).astype({"customer_id": "int64"})
    result = point_in_time_join(entity_df, [view(amounts)])
    expected = with_features(entity_df, amount=pd.Series([], dtype="float64"))
    assert_frame_equal(result, expected)


def test_no_views_returns_a_copy(amounts: str) -> None:
    entity_df = entities([1], ["2024-01-01"])
    result = point_in_time_join(entity_df, [])
    assert_frame_equal(result, entity_df)
    assert result is not entity_df


def test_compatible_key_types_match(tmp_path: Path) -> None:
    relation = parquet(
        tmp_path,
        pd.DataFrame(
            {
                "customer_id": pa.array([1, 2], pa.int64()),
                "code": pa.array(["a", "b"], pa.large_string()),
                "event_timestamp": ts("2024-01-01", "2024-01-01"),
                "amount": [1.0, 2.0],
            }
        ),
    )
    entity_df = pd.DataFrame(
        {
            "customer_id": np.array([2, 1], dtype=np.int16),
            "code": pd.Series(["b", "a"], dtype="category"),
            "event_timestamp": ts("2024-01-02", "2024-01-02"),
        }
    )
    query = view(relation, join_keys=("customer_id", "code"))
    result = point_in_time_join(entity_df, [query])
    assert_frame_equal(result, with_features(entity_df, amount=[2.0, 1.0]))


# -- refusals -----------------------------------------------------------------------------------


def refusal(entity_df: pd.DataFrame, views: list[ViewQuery], **kwargs: Any) -> str:
    with pytest.raises(InvalidValueError) as caught:
        point_in_time_join(entity_df, views, **kwargs)
    return str(caught.value)


def test_entity_frame_without_the_timestamp_column(amounts: str) -> None:
    entity_df = pd.DataFrame({"customer_id": [1], "ts": ts("2024-01-01")})
    message = refusal(entity_df, [view(amounts)])
    assert "'event_timestamp'" in message
    assert "timestamp_column=" in message


@pytest.mark.parametrize(
    "values",
    [["2024-01-01"], [pd.Timestamp("2024-01-01").to_pydatetime()], [1704067200]],
    ids=["strings", "datetime-objects", "integers"],
)
def test_entity_timestamps_that_are_not_datetime64(amounts: str, values: list[Any]) -> None:
    entity_df = pd.DataFrame({"customer_id": [1], "when": pd.Series(values, dtype=object)})
    message = refusal(entity_df, [view(amounts)], timestamp_column="when")
    assert "entity_df['when']" in message
    assert "pd.to_datetime" in message


def test_entity_frame_without_a_join_key(amounts: str) -> None:
    entity_df = pd.DataFrame({"client": [1], "event_timestamp": ts("2024-01-01")})
    message = refusal(entity_df, [view(amounts)])
    assert "'customer_id'" in message
    assert "'stats'" in message


@pytest.mark.parametrize(
    ("changes", "missing"),
    [
        ({"join_keys": ("client",)}, "'client' (join key)"),
        ({"timestamp_field": "ts"}, "'ts' (timestamp field)"),
        ({"created_timestamp_field": "created"}, "'created' (created timestamp field)"),
        ({"features": ("amount", "Amount"), "output_names": ("a", "b")}, "'Amount' (feature)"),
        ({"features": ('amount" FROM x; --',)}, "'amount\" FROM x; --' (feature)"),
    ],
)
def test_source_without_a_column(amounts: str, changes: dict[str, Any], missing: str) -> None:
    entity_df = entities([1], ["2024-01-01"], client=[1])
    message = refusal(entity_df, [view(amounts, **changes)])
    assert message.startswith("feature view 'stats': its source has no column " + missing)
    assert "'customer_id', 'event_timestamp', 'amount'" in message


def test_source_timestamp_that_is_not_a_time(tmp_path: Path) -> None:
    relation = parquet(
        tmp_path, pd.DataFrame({"customer_id": [1], "event_timestamp": ["x"], "amount": [1.0]})
    )
    message = refusal(entities([1], ["2024-01-01"]), [view(relation)])
    assert "timestamp field 'event_timestamp' is VARCHAR" in message


def test_unreadable_source(tmp_path: Path) -> None:
    relation = f"read_parquet('{tmp_path}/missing/*.parquet')"
    message = refusal(entities([1], ["2024-01-01"]), [view(relation)])
    assert message.startswith("feature view 'stats': cannot read its source")


def test_join_keys_of_incompatible_types(amounts: str) -> None:
    entity_df = entities(["1"], ["2024-01-01"])
    message = refusal(entity_df, [view(amounts)])
    assert "join key 'customer_id' is BIGINT in the source but VARCHAR in entity_df" in message


def test_join_key_of_mixed_python_objects(amounts: str) -> None:
    entity_df = entities([1, "two"], ["2024-01-01", "2024-01-01"])
    assert "entity_df['customer_id']" in refusal(entity_df, [view(amounts)])


def test_output_name_taken_by_an_entity_column(amounts: str) -> None:
    entity_df = entities([1], ["2024-01-01"], amount=[0.0])
    message = refusal(entity_df, [view(amounts)])
    assert "output column 'amount' is already a column of entity_df" in message


def test_output_name_produced_by_two_views(amounts: str) -> None:
    message = refusal(entities([1], ["2024-01-01"]), [view(amounts), view(amounts, name="other")])
    assert "'amount' is produced by both feature view 'stats' and 'other'" in message


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"output_names": ("a", "b")}, "1 features but 2 output names"),
        ({"features": (), "output_names": ()}, "no features to fetch"),
        ({"ttl": timedelta(seconds=-1)}, "is negative"),
        ({"join_keys": ("a\x00b",)}, "NUL"),
        ({"features": ("",), "output_names": ("x",)}, "non-empty"),
    ],
)
def test_view_query_refuses_bad_definitions(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidValueError, match=expected):
        view("t", **changes)


def test_view_query_freezes_sequences() -> None:
    query = view("t", join_keys=["customer_id"], features=["amount"], output_names=["amount"])
    assert query.join_keys == ("customer_id",)
    assert query.features == ("amount",)
    assert hash(query) == hash(view("t"))
