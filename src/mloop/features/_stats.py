"""Per-feature statistics of a frame: the profile monitoring later compares serving data with.

:func:`compute_stats` returns one :class:`FeatureStats` per declared field; ``to_dict`` is
plain JSON (no numpy types, no NaN or infinity). The rules:

- ``count`` is the number of non-null values and ``nulls`` the rest; NaN, None, NaT and pd.NA
  are null (for floats too).
- Numeric fields (int32/64, float32/64): ``min``, ``max``, ``mean`` and ``std`` over the finite
  values, computed in float64 (``min``/``max`` of int fields are exact ints). ``std`` is the
  population standard deviation (``ddof=0``): the spread of the values seen, defined for one
  value (0.0). ±inf are counted in ``count`` and in ``infinite``, and left out of every other
  number, so the histogram never needs an unbounded bin.
- Their ``histogram`` is ``{"edges": [11 floats], "counts": [10 ints]}``: 10 equal-width bins
  from ``min`` to ``max``, each closed on the left, the last also on the right (as
  ``numpy.histogram``). When every finite value is the same (or they are too close to split,
  a few subnormals apart) there is one bin, ``{"edges": [min, max], "counts": [n]}``; without
  finite values, ``{}``.
- String and bool fields: ``distinct`` (exact: hashing 1M strings takes well under a second, so
  no sketch is needed), ``min``/``max`` of strings in code-point order, and a ``histogram`` of
  the 20 most frequent values ``{"values": [...], "counts": [...], "other": n}``, most frequent
  first, ties in ascending value order; ``other`` counts the non-null values not listed.
- Datetime fields: ``min``/``max`` as ISO-8601 strings in UTC (naive values are UTC); no
  mean, std, distinct or histogram.
- A column without values (empty or all null) has ``count`` 0 and None (or ``{}``) elsewhere.
- Statistics never stop a materialization that validation let through: a column whose values
  are of another type (strings in a float field, or numbers in a string one; an object column of
  Python numbers, strings, bools or datetimes is read like the typed column) gets ``count`` and
  ``nulls`` only, and a missing column no entry; the validation report names both.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import (
    infer_dtype,
    is_bool_dtype,
    is_datetime64_any_dtype,
    is_integer_dtype,
    is_numeric_dtype,
    is_object_dtype,
)

from mloop.errors import InvalidValueError
from mloop.features._checks import FEATURE_DTYPES

__all__ = ["BINS", "TOP_VALUES", "FeatureStats", "compute_stats"]

BINS = 10
TOP_VALUES = 20


@dataclass(frozen=True)
class FeatureStats:
    """The profile of one feature in one frame; see the module docstring for each field."""

    name: str
    dtype: str
    count: int
    nulls: int
    min: float | int | str | None
    max: float | int | str | None
    mean: float | None
    std: float | None
    distinct: int | None
    histogram: dict[str, Any] = field(default_factory=dict)
    infinite: int = 0  # ±inf values among ``count`` (float fields)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, keys in a fixed order."""
        return {
            "name": self.name,
            "dtype": self.dtype,
            "count": self.count,
            "nulls": self.nulls,
            "infinite": self.infinite,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "std": self.std,
            "distinct": self.distinct,
            "histogram": _copy_histogram(self.histogram),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureStats:
        """Read :meth:`to_dict`'s form back; malformed keys are refused by name."""
        if not isinstance(data, Mapping):
            raise InvalidValueError(f"feature stats must be a mapping, not {type(data).__name__}")
        unknown = sorted(str(key) for key in data if key not in _KEYS)
        if unknown:
            raise InvalidValueError(
                f"feature stats have unknown key(s) {', '.join(map(repr, unknown))}"
            )
        missing = [key for key in _KEYS if key not in data and key != "infinite"]
        if missing:
            raise InvalidValueError(f"feature stats lack key(s) {', '.join(map(repr, missing))}")
        if not isinstance(data["name"], str):
            raise InvalidValueError(f"feature stats 'name' must be a string: {data['name']!r}")
        if data["dtype"] not in FEATURE_DTYPES:
            raise InvalidValueError(
                f"feature stats 'dtype' is not a feature dtype: {data['dtype']!r}"
            )
        for key in ("count", "nulls", "infinite", "distinct"):
            value = data.get(key, 0)
            if value is None and key == "distinct":
                continue
            if type(value) is not int or value < 0:
                raise InvalidValueError(f"feature stats {key!r} must be an int >= 0, not {value!r}")
        for key in ("min", "max"):
            if (
                data[key] is not None
                and not _is_number(data[key])
                and not isinstance(data[key], str)
            ):
                raise InvalidValueError(
                    f"feature stats {key!r} must be a number, a string or null: {data[key]!r}"
                )
        for key in ("mean", "std"):
            if data[key] is not None and not _is_number(data[key]):
                raise InvalidValueError(
                    f"feature stats {key!r} must be a number or null: {data[key]!r}"
                )
        histogram = data["histogram"]
        if not isinstance(histogram, Mapping) or not _histogram_ok(histogram):
            raise InvalidValueError(
                "feature stats 'histogram' must be {} , {edges, counts} or {values, counts, "
                f"other}}, not {histogram!r}"
            )
        return cls(
            name=data["name"],
            dtype=data["dtype"],
            count=data["count"],
            nulls=data["nulls"],
            min=data["min"],
            max=data["max"],
            mean=data["mean"],
            std=data["std"],
            distinct=data["distinct"],
            histogram=_copy_histogram(histogram),
            infinite=data.get("infinite", 0),
        )


_KEYS = ("name", "dtype", "count", "nulls", "infinite", "min", "max", "mean", "std", "distinct",
         "histogram")  # fmt: skip


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _histogram_ok(histogram: Mapping[str, Any]) -> bool:
    keys = set(histogram)
    counts = histogram.get("counts")
    if not keys:
        return True
    if not isinstance(counts, list) or not all(type(c) is int and c >= 0 for c in counts):
        return False
    if keys == {"edges", "counts"}:
        edges = histogram["edges"]
        return (
            isinstance(edges, list)
            and all(_is_number(e) for e in edges)
            and len(edges) == len(counts) + 1
        )
    if keys == {"values", "counts", "other"}:
        values, other = histogram["values"], histogram["other"]
        return (
            isinstance(values, list)
            and len(values) == len(counts)
            and all(isinstance(v, str | bool) for v in values)
            and type(other) is int
            and other >= 0
        )
    return False


def _copy_histogram(histogram: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: list(value) if isinstance(value, list) else value for key, value in histogram.items()
    }


def compute_stats(frame: pd.DataFrame, fields: Mapping[str, str]) -> dict[str, FeatureStats]:
    """Profile each field (name → feature dtype) of ``frame``, in ``fields`` order.

    Statistics never fail a materialization that its validation policy lets through: a field
    whose column is missing is left out, and one whose values do not have its dtype gets
    ``count`` and ``nulls`` only (the validation report names both).
    """
    if not isinstance(frame, pd.DataFrame):
        raise InvalidValueError(f"frame must be a pandas DataFrame, not {type(frame).__name__}")
    stats: dict[str, FeatureStats] = {}
    for name, dtype in fields.items():
        if dtype not in FEATURE_DTYPES:
            known = ", ".join(FEATURE_DTYPES)
            raise InvalidValueError(
                f"field {name!r} has dtype {dtype!r}; feature dtypes are {known}"
            )
        if name not in frame.columns:
            continue
        if list(frame.columns).count(name) > 1:
            raise InvalidValueError(f"frame has more than one column named {name!r}")
        column = frame[name]
        if dtype in ("int32", "int64", "float32", "float64"):
            profile = _numeric(name, dtype, column)
        elif dtype == "datetime":
            profile = _datetime(name, column)
        else:
            profile = _categorical(name, dtype, column)
        if profile is None:  # values of another type
            nulls = int(column.isna().sum())
            profile = FeatureStats(
                name, dtype, len(column) - nulls, nulls, None, None, None, None, None, {}
            )
        stats[name] = profile
    return stats


def _numeric(name: str, dtype: str, column: pd.Series) -> FeatureStats | None:
    kind = column.dtype
    if is_object_dtype(kind):
        if infer_dtype(column) not in ("integer", "floating", "mixed-integer-float", "empty"):
            return None
        column = pd.to_numeric(column)
        kind = column.dtype
    if not is_numeric_dtype(kind) or is_bool_dtype(kind):
        return None

    null = column.isna().to_numpy()
    nulls = int(null.sum())
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)[~null]
    finite = np.isfinite(values)
    infinite = int(values.size - finite.sum())
    values = values[finite]
    if values.size == 0:
        return FeatureStats(name, dtype, int(null.size - nulls), nulls, None, None, None, None,
                            None, {}, infinite)  # fmt: skip

    low, high = float(values.min()), float(values.max())
    exact_low: float | int = low
    exact_high: float | int = high
    if dtype in ("int32", "int64"):  # ints, also from a float column (ints with NaN)
        if is_integer_dtype(kind):  # float64 rounds ints past 2**53: take them from the column
            exact_low, exact_high = int(column.min()), int(column.max())
        else:
            exact_low, exact_high = (int(v) if v.is_integer() else v for v in (low, high))
    mean, std = _moments(values, low, high)
    return FeatureStats(
        name=name,
        dtype=dtype,
        count=int(null.size - nulls),
        nulls=nulls,
        min=exact_low,
        max=exact_high,
        mean=mean,
        std=std,
        distinct=None,
        histogram=_numeric_histogram(values, low, high),
        infinite=infinite,
    )


def _moments(values: np.ndarray, low: float, high: float) -> tuple[float, float]:
    # Scaled by a power of two (exact) so that neither the sum nor the squares overflow
    # (values near 1.8e308) or underflow (values near 1e-300).
    _, exponent = math.frexp(max(abs(low), abs(high)))
    scaled = np.ldexp(values, -exponent)
    return math.ldexp(float(scaled.mean()), exponent), math.ldexp(float(scaled.std()), exponent)


def _numeric_histogram(values: np.ndarray, low: float, high: float) -> dict[str, Any]:
    one_bin = {"edges": [low, high], "counts": [int(values.size)]}
    if low == high:
        return one_bin
    with np.errstate(over="ignore"):
        wide = not math.isfinite(high - low)  # e.g. -1e308 to 1e308: make edges from halves
    edges = (
        np.linspace(low / 2, high / 2, BINS + 1) * 2 if wide else np.linspace(low, high, BINS + 1)
    )
    if not (np.diff(edges) > 0).all():  # too narrow to split: a few subnormals apart
        return one_bin
    if wide:
        edges[0], edges[-1] = low, high
        counts, edges = np.histogram(values, bins=edges)  # counts by comparing with the edges
    else:
        counts, edges = np.histogram(values, bins=BINS, range=(low, high))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def _datetime(name: str, column: pd.Series) -> FeatureStats | None:
    if not is_datetime64_any_dtype(column.dtype):
        if not is_object_dtype(column.dtype) or infer_dtype(column) not in ("datetime", "empty"):
            return None
        column = pd.to_datetime(column, utc=True)
    nulls = int(column.isna().sum())
    count = len(column) - nulls
    if count == 0:
        return FeatureStats(name, "datetime", 0, nulls, None, None, None, None, None, {})
    return FeatureStats(
        name, "datetime", count, nulls, _iso(column.min()), _iso(column.max()), None, None, None, {}
    )


def _iso(stamp: pd.Timestamp) -> str:
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.isoformat()


def _categorical(name: str, dtype: str, column: pd.Series) -> FeatureStats | None:
    counts = column.value_counts(dropna=True, sort=False)
    counts = counts[counts.to_numpy() > 0]  # a categorical lists unused categories with 0
    nulls = int(column.isna().sum())
    values = counts.index.to_numpy(dtype=object)
    if infer_dtype(values, skipna=False) not in ("empty", _INFERRED[dtype]):
        return None
    if dtype == "bool":
        values = np.array([bool(v) for v in values], dtype=object)
    if values.size == 0:
        return FeatureStats(name, dtype, 0, nulls, None, None, None, None, 0, {})

    tally = counts.to_numpy(dtype=np.int64)
    top = _top(values, tally)
    listed = [_plain(values[i]) for i in top]
    listed_counts = [int(tally[i]) for i in top]
    total = int(tally.sum())
    low = high = None
    if dtype == "string":
        low, high = str(min(values)), str(max(values))
    return FeatureStats(
        name=name,
        dtype=dtype,
        count=total,
        nulls=nulls,
        min=low,
        max=high,
        mean=None,
        std=None,
        distinct=int(values.size),
        histogram={"values": listed, "counts": listed_counts, "other": total - sum(listed_counts)},
    )


_INFERRED = {"string": "string", "bool": "boolean"}


def _top(values: np.ndarray, tally: np.ndarray) -> list[int]:
    """Positions of the TOP_VALUES most frequent values; ties broken by ascending value."""
    if tally.size <= TOP_VALUES:
        return sorted(range(tally.size), key=lambda i: (-int(tally[i]), values[i]))
    threshold = np.partition(tally, tally.size - TOP_VALUES)[tally.size - TOP_VALUES]
    above = np.flatnonzero(tally > threshold).tolist()  # fewer than TOP_VALUES
    tied = np.flatnonzero(tally == threshold).tolist()  # may be many: 1M values seen once
    ranked = sorted(above, key=lambda i: (-int(tally[i]), values[i]))
    return ranked + heapq.nsmallest(TOP_VALUES - len(ranked), tied, key=values.__getitem__)


def _plain(value: Any) -> Any:
    return bool(value) if isinstance(value, np.bool_) else value
