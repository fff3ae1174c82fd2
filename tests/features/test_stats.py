"""Per-feature statistics against numpy/scipy oracles, categorical top values, JSON records."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats as scipy_stats

from mloop.errors import InvalidValueError
from mloop.features._stats import FeatureStats, compute_stats

PROPERTY = settings(max_examples=150, deadline=None)


def one(values: Any, dtype: str, series_dtype: Any = None) -> FeatureStats:
    frame = pd.DataFrame({"x": pd.Series(values, dtype=series_dtype)})
    return compute_stats(frame, {"x": dtype})["x"]


def round_trips(stats: FeatureStats) -> None:
    text = json.dumps(stats.to_dict(), allow_nan=False)  # no NaN, no inf, no numpy types
    assert FeatureStats.from_dict(json.loads(text)) == stats


# -- numeric ------------------------------------------------------------------------------------


def test_floats_against_numpy_and_scipy() -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(10, 3, size=5000)
    values[::50] = np.nan
    values[7], values[8] = np.inf, -np.inf
    stats = one(values, "float64")
    finite = values[np.isfinite(values)]
    assert (stats.count, stats.nulls, stats.infinite) == (4900, 100, 2)
    assert (stats.min, stats.max) == (finite.min(), finite.max())
    # std is the population std (ddof=0); scipy's describe gives the sample variance (ddof=1)
    described = scipy_stats.describe(finite)
    n = described.nobs
    assert stats.mean == pytest.approx(described.mean, rel=1e-12)
    assert stats.std == pytest.approx(math.sqrt(described.variance * (n - 1) / n), rel=1e-12)
    assert stats.std == pytest.approx(np.std(finite, ddof=0), rel=1e-12)
    counts, edges = np.histogram(finite, bins=10, range=(finite.min(), finite.max()))
    assert stats.histogram == {"edges": edges.tolist(), "counts": counts.tolist()}
    assert stats.distinct is None
    round_trips(stats)


def test_ints_keep_exact_min_and_max() -> None:
    big = 2**62 + 1  # not a float64
    stats = one([big, -big, 3], "int64")
    assert (stats.min, stats.max) == (-big, big)
    assert type(stats.min) is int
    assert stats.mean == pytest.approx(1.0, abs=2**10)
    round_trips(stats)


def test_nullable_ints() -> None:
    stats = one([1, None, 3, None, 5], "int64", "Int64")
    assert (stats.count, stats.nulls, stats.min, stats.max, stats.mean) == (3, 2, 1, 5, 3.0)
    assert stats.std == pytest.approx(np.std([1, 3, 5]))
    assert sum(stats.histogram["counts"]) == 3


def test_min_and_max_take_the_field_type() -> None:
    assert (one([1.0, np.nan, 3.0], "int64").min, one([1.0, 3.0], "int64").max) == (1, 3)
    assert type(one([1.0, np.nan, 3.0], "int64").min) is int
    assert type(one([1, 3], "float64").max) is float


def test_float_field_of_an_int_column_and_float32() -> None:
    assert one([1, 2, 3], "float64").mean == 2.0
    stats = one([0.1, 0.2], "float32", "float32")
    assert stats.mean == pytest.approx(0.15, rel=1e-7)
    assert type(stats.mean) is float


def test_equal_values_make_one_bin() -> None:
    stats = one([2.5, 2.5, np.nan, 2.5], "float64")
    assert stats.histogram == {"edges": [2.5, 2.5], "counts": [3]}
    assert (stats.std, stats.mean) == (0.0, 2.5)
    round_trips(stats)


@pytest.mark.parametrize(
    ("values", "series_dtype", "count", "nulls", "infinite"),
    [
        ([], "float64", 0, 0, 0),
        ([np.nan, None], "float64", 0, 2, 0),
        ([None, None], "Int64", 0, 2, 0),
        ([np.inf, -np.inf, np.nan], "float64", 2, 1, 2),
    ],
)
def test_numeric_columns_without_finite_values(
    values: list[Any], series_dtype: str, count: int, nulls: int, infinite: int
) -> None:
    stats = one(values, "float64", series_dtype)
    assert (stats.count, stats.nulls, stats.infinite) == (count, nulls, infinite)
    assert (stats.min, stats.max, stats.mean, stats.std, stats.histogram) == (
        None, None, None, None, {},
    )  # fmt: skip
    round_trips(stats)


def test_huge_values_do_not_overflow() -> None:
    stats = one([1.7e308, 1.7e308, -1.7e308], "float64")
    exact = [Fraction(1.7e308)] * 2 + [Fraction(-1.7e308)]
    assert stats.mean == pytest.approx(float(sum(exact) / 3), rel=1e-12)
    assert stats.histogram["counts"] == [1, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    assert stats.histogram["edges"][0] == -1.7e308
    assert stats.histogram["edges"][-1] == 1.7e308
    round_trips(stats)


def test_a_range_too_narrow_to_split_makes_one_bin() -> None:
    stats = one([5e-324, 0.0, 5e-324], "float64")  # subnormals: no 10 distinct edges between
    assert stats.histogram == {"edges": [0.0, 5e-324], "counts": [3]}


def test_a_range_wider_than_the_largest_float_bins_by_comparison() -> None:
    stats = one([-1.7e308, -5e-324, 0.0, 1.7e308], "float64")
    counts = stats.histogram["counts"]
    assert counts == [1, 0, 0, 0, 1, 1, 0, 0, 0, 1]  # -5e-324 below the 0.0 edge, 0.0 on it
    assert stats.histogram["edges"][5] == 0.0


def exact_mean_std(values: np.ndarray) -> tuple[float, float]:
    exact = [Fraction(float(v)) for v in values]
    scale = max(abs(v) for v in exact) or Fraction(1)  # keeps the variance within float range
    mean = sum(exact, Fraction(0)) / len(exact)
    variance = sum((((v - mean) / scale) ** 2 for v in exact), Fraction(0)) / len(exact)
    return float(mean), math.sqrt(variance) * float(scale)


def check_numeric(stats: FeatureStats, values: np.ndarray, nulls: int) -> None:
    finite = values[np.isfinite(values)]
    assert stats.nulls == nulls
    assert stats.count == values.size
    assert stats.infinite == values.size - finite.size
    round_trips(stats)
    if finite.size == 0:
        assert stats.histogram == {}
        assert stats.mean is stats.std is stats.min is stats.max is None
        return
    low, high = float(finite.min()), float(finite.max())
    assert (stats.min, stats.max) == (low, high)
    mean, std = exact_mean_std(finite)
    scale = max(abs(low), abs(high))
    assert stats.mean is not None
    assert stats.std is not None
    assert stats.mean == pytest.approx(mean, rel=1e-9, abs=scale * 1e-12)
    assert stats.std == pytest.approx(std, rel=1e-9, abs=scale * 1e-12)
    assert low <= stats.mean <= high or math.isclose(stats.mean, mean, rel_tol=1e-12)
    with np.errstate(over="ignore"):
        width = high - low
    narrow = math.isfinite(width) and not (np.diff(np.linspace(low, high, 11)) > 0).all()
    if low == high or narrow:
        assert stats.histogram == {"edges": [low, high], "counts": [finite.size]}
        return
    edges, counts = np.array(stats.histogram["edges"]), np.array(stats.histogram["counts"])
    assert (edges.size, counts.size) == (11, 10)
    assert (edges[0], edges[-1]) == (low, high)
    assert counts.sum() == finite.size
    # every value lies in its bin: [edge i, edge i+1), the last bin closed on the right
    placed = np.clip(np.searchsorted(edges, finite, side="right") - 1, 0, 9)
    assert np.bincount(placed, minlength=10).tolist() == counts.tolist()
    if math.isfinite(high - low):
        oracle, oracle_edges = np.histogram(finite, bins=10, range=(low, high))
        assert counts.tolist() == oracle.tolist()
        assert edges.tolist() == oracle_edges.tolist()


FLOATS = hnp.arrays(
    np.float64,
    st.integers(0, 60),
    elements=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(-1e6, 1e6),
        st.sampled_from([0.0, 1.0, -1.0, np.nan]),
    ),
)


@PROPERTY
@given(FLOATS)
def test_float_stats_property(values: np.ndarray) -> None:
    stats = one(values, "float64")
    nulls = int(np.isnan(values).sum())
    check_numeric(stats, values[~np.isnan(values)], nulls)


@PROPERTY
@given(
    st.lists(st.one_of(st.none(), st.integers(-(2**62), 2**62), st.integers(-5, 5)), max_size=60)
)
def test_int_stats_property(values: list[int | None]) -> None:
    stats = one(values, "int64", "Int64")
    present = [v for v in values if v is not None]
    if present:
        assert (stats.min, stats.max) == (min(present), max(present))
    check_numeric(
        FeatureStats(**{**stats.__dict__, "min": None if not present else float(min(present)),
                        "max": None if not present else float(max(present))}),
        np.array(present, dtype=np.float64),
        len(values) - len(present),
    )  # fmt: skip


# -- categorical --------------------------------------------------------------------------------


def test_strings_top_values_and_other() -> None:
    # value "v{i}" appears i + 1 times, for i in 0..24; "tie_a" and "tie_b" tie at 6
    values = [f"v{i:02d}" for i in range(25) for _ in range(i + 1)] + ["tie_b", "tie_a"] * 6
    values += [None, None]
    stats = one(values, "string", "str")
    total = sum(range(1, 26)) + 12
    assert (stats.count, stats.nulls, stats.distinct) == (total, 2, 27)
    assert (stats.min, stats.max) == ("tie_a", "v24")
    expected = [f"v{i:02d}" for i in range(24, 5, -1)]  # counts 25 … 7
    expected.append("tie_a")  # count 6, tied with tie_b and v05: the smallest value wins
    assert stats.histogram["values"] == expected
    assert stats.histogram["counts"] == [*range(25, 6, -1), 6]
    assert stats.histogram["other"] == total - sum(stats.histogram["counts"])
    assert stats.mean is stats.std is None
    round_trips(stats)


def test_all_values_tied_take_the_smallest() -> None:
    values = [f"u{i:03d}" for i in range(100)][::-1]
    stats = one(values, "string")
    assert stats.histogram == {
        "values": [f"u{i:03d}" for i in range(20)],
        "counts": [1] * 20,
        "other": 80,
    }


def test_categorical_columns_ignore_unused_categories() -> None:
    column = pd.Categorical(["b", "a", "b", None], categories=["a", "b", "never"])
    stats = one(column, "string")
    assert (stats.count, stats.nulls, stats.distinct) == (3, 1, 2)
    assert stats.histogram == {"values": ["b", "a"], "counts": [2, 1], "other": 0}
    assert (stats.min, stats.max) == ("a", "b")
    round_trips(stats)


@pytest.mark.parametrize("series_dtype", ["bool", "boolean", object])
def test_bools(series_dtype: Any) -> None:
    values = [True, False, True] if series_dtype == "bool" else [True, None, False, True]
    stats = one(values, "bool", series_dtype)
    assert stats.histogram == {"values": [True, False], "counts": [2, 1], "other": 0}
    assert stats.distinct == 2
    assert stats.min is stats.max is stats.mean is None
    assert type(stats.histogram["values"][0]) is bool
    round_trips(stats)


@pytest.mark.parametrize("dtype", ["string", "bool"])
def test_categorical_columns_without_values(dtype: str) -> None:
    stats = one([None, None], dtype, object)
    assert (stats.count, stats.nulls, stats.distinct, stats.histogram) == (0, 2, 0, {})
    round_trips(stats)
    assert one([], dtype, "str" if dtype == "string" else "bool").count == 0


# -- datetime -----------------------------------------------------------------------------------


def test_datetimes_naive_and_tz_aware_in_utc() -> None:
    naive = one(
        pd.to_datetime(["2024-01-02", None, "2024-01-01 06:00"], format="ISO8601"), "datetime"
    )
    assert (naive.count, naive.nulls) == (2, 1)
    assert (naive.min, naive.max) == ("2024-01-01T06:00:00+00:00", "2024-01-02T00:00:00+00:00")
    aware = one(pd.to_datetime(["2024-01-01 12:00"]).tz_localize("Europe/Paris"), "datetime")
    assert aware.min == aware.max == "2024-01-01T11:00:00+00:00"
    assert aware.mean is aware.distinct is None
    assert aware.histogram == {}
    round_trips(aware)
    empty = one(pd.Series([None], dtype="datetime64[ns]"), "datetime")
    assert (empty.count, empty.nulls, empty.min) == (0, 1, None)


# -- many fields, errors, records ---------------------------------------------------------------


def test_compute_stats_keeps_field_order_and_ignores_other_columns() -> None:
    frame = pd.DataFrame({"a": [1], "b": ["x"], "c": [1.5], "extra": [object()]})
    result = compute_stats(frame, {"c": "float64", "a": "int32", "b": "string"})
    assert list(result) == ["c", "a", "b"]
    assert [s.dtype for s in result.values()] == ["float64", "int32", "string"]


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (["x", None, "1.5"], "float64"),
        ([True, False, None], "int64"),
        ([1, "x", None], "int64"),
        ([1.0, 2.0, None], "string"),
        (["yes", "no", None], "bool"),
        (["2024-01-01", "2024-01-02", None], "datetime"),
        ([1, 2, None], "datetime"),
    ],
)
def test_values_of_another_type_get_counts_only(values: list[Any], dtype: str) -> None:
    stats = one(values, dtype)
    assert stats == FeatureStats("x", dtype, 2, 1, None, None, None, None, None, {})


def test_missing_columns_are_left_out_and_bad_arguments_refused() -> None:
    frame = pd.DataFrame({"a": [1]})
    assert list(compute_stats(frame, {"b": "int64", "a": "int64"})) == ["a"]
    with pytest.raises(InvalidValueError, match="field 'a' has dtype 'int'"):
        compute_stats(frame, {"a": "int"})
    with pytest.raises(InvalidValueError, match="more than one column named 'a'"):
        compute_stats(pd.DataFrame([[1, 2]], columns=["a", "a"]), {"a": "int64"})
    with pytest.raises(InvalidValueError, match="frame must be a pandas DataFrame"):
        compute_stats({"a": [1]}, {"a": "int64"})  # type: ignore[arg-type]


def test_object_columns_of_numbers_and_datetimes() -> None:
    stats = one([1, 2.5, None], "float64", object)
    assert (stats.count, stats.nulls, stats.mean) == (2, 1, 1.75)
    stamps = one([pd.Timestamp("2024-01-01", tz="UTC"), None], "datetime", object)
    assert (stamps.count, stamps.nulls, stamps.min) == (1, 1, "2024-01-01T00:00:00+00:00")


def test_to_dict_shape() -> None:
    stats = one([1.0, 3.0], "float64")
    assert stats.to_dict() == {
        "name": "x",
        "dtype": "float64",
        "count": 2,
        "nulls": 0,
        "infinite": 0,
        "min": 1.0,
        "max": 3.0,
        "mean": 2.0,
        "std": 1.0,
        "distinct": None,
        "histogram": {
            "edges": np.linspace(1.0, 3.0, 11).tolist(),
            "counts": [1, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        },
    }
    data = stats.to_dict()
    data["histogram"]["counts"].append(9)  # a copy: the record is unchanged
    assert len(stats.histogram["counts"]) == 10


def valid() -> dict[str, Any]:
    return one(["a", "b"], "string").to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mean_": 1}, "unknown key(s) 'mean_'"),
        ({"count": None}, "'count' must be an int >= 0"),
        ({"nulls": -1}, "'nulls' must be an int >= 0"),
        ({"distinct": 1.5}, "'distinct' must be an int >= 0"),
        ({"dtype": "text"}, "'dtype' is not a feature dtype"),
        ({"name": 3}, "'name' must be a string"),
        ({"min": [1]}, "'min' must be a number, a string or null"),
        ({"mean": "x"}, "'mean' must be a number or null"),
        ({"std": float("nan")}, "'std' must be a number or null"),
        ({"histogram": {"values": ["a"], "counts": [1]}}, "'histogram' must be"),
        ({"histogram": {"edges": [1.0], "counts": [1]}}, "'histogram' must be"),
        ({"histogram": [1]}, "'histogram' must be"),
    ],
)
def test_from_dict_refuses_malformed_keys(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidValueError) as caught:
        FeatureStats.from_dict(valid() | change)
    assert message in str(caught.value)


def test_from_dict_refuses_missing_keys_and_non_mappings() -> None:
    data = valid()
    del data["histogram"]
    with pytest.raises(InvalidValueError, match="lack key"):
        FeatureStats.from_dict(data)
    with pytest.raises(InvalidValueError, match="must be a mapping"):
        FeatureStats.from_dict([])  # type: ignore[arg-type]
    del data["infinite"]
    data["histogram"] = {}
    assert FeatureStats.from_dict(data).infinite == 0
