"""Feature data checks: each check's rows and counts, dtypes, freshness, policies, records."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pandera.config import config_context

from mloop.errors import InvalidInputError, InvalidValueError
from mloop.features._checks import (
    Constraint,
    FeatureValidationError,
    ValidationReport,
    Violation,
    enforce,
    validate_frame,
)

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def check(frame: pd.DataFrame, fields: dict[str, Any], **kwargs: Any) -> ValidationReport:
    spec = {
        name: value if isinstance(value, tuple) else (value, None) for name, value in fields.items()
    }
    return validate_frame("v", frame, spec, **kwargs)


def found(report: ValidationReport) -> list[tuple[str, str, list[int], int]]:
    return [(v.column, v.check, v.rows, v.count) for v in report.violations]


# -- each check ---------------------------------------------------------------------------------


def test_a_clean_frame_passes() -> None:
    frame = pd.DataFrame({"age": [0, 150, 30], "country": ["eu", "us", "eu"]})
    fields = {
        "age": ("int64", Constraint(not_null=True, min=0, max=150)),
        "country": ("string", Constraint(allowed=("eu", "us"))),
    }
    report = check(frame, fields)
    assert report.ok
    assert report.rows == 3
    assert report.summary() == "feature view 'v': 3 rows, every check passes"


@pytest.mark.parametrize(
    ("dtype", "values", "rows"),
    [
        ("float64", [1.0, np.nan, 2.0, None], [1, 3]),
        ("int64", pd.array([1, None, 3], dtype="Int64"), [1]),
        ("string", pd.array(["a", None, "b", None], dtype="str"), [1, 3]),
        ("bool", pd.array([True, None, False], dtype="boolean"), [1]),
        ("datetime", pd.to_datetime(["2024-01-01", None]), [1]),
        ("string", pd.Series(["a", None, np.nan], dtype=object), [1, 2]),
    ],
)
def test_not_null_finds_every_kind_of_missing_value(
    dtype: str, values: Any, rows: list[int]
) -> None:
    report = check(pd.DataFrame({"x": values}), {"x": (dtype, Constraint(not_null=True))})
    assert found(report) == [("x", "not_null", rows, len(rows))]
    assert report.violations[0].examples == [None]


def test_missing_values_pass_without_not_null_and_skip_value_checks() -> None:
    frame = pd.DataFrame({"x": [np.nan, 1.0, None]})
    assert check(frame, {"x": ("float64", Constraint(min=0, max=1, allowed=(1,)))}).ok


def test_min_and_max_are_inclusive() -> None:
    frame = pd.DataFrame({"x": [-1, 0, 5, 10, 11, 10]})
    report = check(frame, {"x": ("int64", Constraint(min=0, max=10))})
    assert found(report) == [("x", "min", [0], 1), ("x", "max", [4], 1)]
    assert [v.examples for v in report.violations] == [[-1], [11]]
    assert [v.detail for v in report.violations] == [">= 0", "<= 10"]


def test_min_max_with_float_bounds_and_infinities() -> None:
    frame = pd.DataFrame({"x": [0.5, -np.inf, 0.25, np.inf, 1.5]})
    report = check(frame, {"x": ("float64", Constraint(min=0.25, max=1.0))})
    assert found(report) == [("x", "min", [1], 1), ("x", "max", [3, 4], 2)]
    assert report.violations[0].examples == ["-inf"]  # JSON has no infinity
    json.dumps(report.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    ("dtype", "values", "allowed", "rows", "examples"),
    [
        ("string", ["eu", "us", "mars", "eu", "moon", "mars"], ("eu", "us"), [2, 4, 5],
         ["mars", "moon"]),
        ("int64", [1, 2, 3, 2, 7], (1, 2), [2, 4], [3, 7]),
        ("bool", [True, False, True], (True,), [1], [False]),
        ("float64", [0.5, 1.0, 2.5], (1, 0.5), [2], [2.5]),
    ],
)  # fmt: skip
def test_allowed(
    dtype: str, values: list[Any], allowed: tuple[Any, ...], rows: list[int], examples: list[Any]
) -> None:
    report = check(pd.DataFrame({"x": values}), {"x": (dtype, Constraint(allowed=allowed))})
    assert found(report) == [("x", "allowed", rows, len(rows))]
    assert report.violations[0].examples == examples


def test_allowed_on_a_categorical_column() -> None:
    frame = pd.DataFrame({"x": pd.Categorical(["a", "b", "z", None], categories=["a", "b", "z"])})
    report = check(frame, {"x": ("string", Constraint(allowed=("a", "b"), not_null=True))})
    assert found(report) == [("x", "not_null", [3], 1), ("x", "allowed", [2], 1)]


def test_a_missing_column_is_reported_and_other_columns_still_checked() -> None:
    frame = pd.DataFrame({"a": [1, -1]})
    fields = {"a": ("int64", Constraint(min=0)), "b": ("float64", Constraint(not_null=True))}
    report = check(frame, fields)
    assert found(report) == [("a", "min", [1], 1), ("b", "missing", [], 2)]
    assert "column 'b': missing from the frame" in report.summary()


def test_undeclared_columns_are_ignored() -> None:
    frame = pd.DataFrame({"a": [1], "extra": ["anything"]})
    assert check(frame, {"a": "int64"}).ok


# -- dtypes -------------------------------------------------------------------------------------

OBJECT = object


@pytest.mark.parametrize(
    ("dtype", "values", "series_dtype", "rows"),
    [
        # ints: any integer column (an int32 field needs the values to fit), whole floats
        ("int64", [1, 2], "int64", []),
        ("int64", [1, 2], "uint8", []),
        ("int64", [1, None], "Int64", []),
        ("int32", [1, 2**31, -(2**31), 2**31 - 1, -(2**31) - 1], "int64", [1, 4]),
        ("int32", [1, 2], "int16", []),
        ("int64", [2**63, 1], "uint64", [0]),
        ("int64", [1.0, 2.5, np.nan, -3.0, np.inf], "float64", [1, 4]),
        ("int32", [2.0**31, 1.0], "float64", [0]),
        ("int64", ["1", "2"], "str", [0, 1]),
        ("int64", [True, False], "bool", [0, 1]),
        ("int64", [1, "x", None, 2.5, True, np.int32(3)], OBJECT, [1, 3, 4]),
        # floats: any number but a bool
        ("float64", [1, 2], "int64", []),
        ("float32", [1.5, None], "Float64", []),
        ("float64", [True], "bool", [0]),
        ("float64", ["1.5", None], "str", [0]),
        ("float64", [1, 2.5, "x", False], OBJECT, [2, 3]),
        # strings
        ("string", ["a", None], "str", []),
        ("string", ["a", "b"], "category", []),
        ("string", [1, 2], "category", [0, 1]),
        ("string", ["a", 1, None, b"b"], OBJECT, [1, 3]),
        ("string", [1, 2, None], "float64", [0, 1]),
        # bools
        ("bool", [True, False], "bool", []),
        ("bool", [True, None], "boolean", []),
        ("bool", [True, None, np.True_, 1], OBJECT, [3]),
        ("bool", [1, 0], "int64", [0, 1]),
        # datetimes, naive or tz-aware
        ("datetime", ["2024-01-01"], "datetime64[ns]", []),
        ("datetime", ["2024-01-01"], "datetime64[us, Europe/Paris]", []),
        ("datetime", ["2024-01-01", None], "str", [0]),
        ("datetime", [datetime(2024, 1, 1), "2024-01-01", pd.Timestamp(0)], OBJECT, [1]),
    ],
)
def test_dtype(dtype: str, values: list[Any], series_dtype: Any, rows: list[int]) -> None:
    frame = pd.DataFrame({"x": pd.Series(values, dtype=series_dtype)})
    report = check(frame, {"x": dtype})
    if not rows:
        assert report.ok, report.summary()
        return
    assert found(report) == [("x", "dtype", rows, len(rows))]
    assert report.violations[0].detail == f"expected {dtype}, got {frame['x'].dtype}"


def test_value_checks_are_skipped_on_a_column_of_the_wrong_type() -> None:
    frame = pd.DataFrame({"x": ["1", "-5", None]})
    report = check(frame, {"x": ("int64", Constraint(not_null=True, min=0, allowed=(1,)))})
    assert found(report) == [("x", "dtype", [0, 1], 2), ("x", "not_null", [2], 1)]
    assert report.violations[0].examples == ["1", "-5"]


def test_value_checks_of_an_object_column_look_at_its_well_typed_values() -> None:
    frame = pd.DataFrame({"x": pd.Series([5, "x", -1, 99, None, 2.5], dtype=object)})
    report = check(frame, {"x": ("int64", Constraint(min=0, max=10))})
    assert found(report) == [
        ("x", "dtype", [1, 5], 2),
        ("x", "min", [2], 1),
        ("x", "max", [3], 1),
    ]


# -- rows, counts, several violations -----------------------------------------------------------


def test_rows_are_positions_whatever_the_index() -> None:
    frame = pd.DataFrame({"x": [5, -1, 3, -2]}, index=["d", "c", "b", "a"])
    report = check(frame, {"x": ("int64", Constraint(min=0))})
    assert found(report) == [("x", "min", [1, 3], 2)]
    shuffled = pd.DataFrame({"x": [5, -1, 3, -2]}, index=[3, 2, 1, 0])
    assert found(check(shuffled, {"x": ("int64", Constraint(min=0))})) == [("x", "min", [1, 3], 2)]


def test_rows_keep_the_first_20_and_count_all() -> None:
    values = np.arange(1000) % 7  # 0..6 repeating
    frame = pd.DataFrame({"x": values}, index=np.arange(1000)[::-1])
    report = check(frame, {"x": ("int64", Constraint(max=4))})
    [violation] = report.violations
    expected = np.flatnonzero(values > 4)
    assert violation.count == len(expected) == 285
    assert violation.rows == expected[:20].tolist()
    assert violation.examples == [5, 6]
    line = report.summary().splitlines()[1]
    assert line == (
        "  column 'x': max (<= 4) fails on 285 rows; rows 5, 6, 12, 13, 19, 20, 26, 27, 33, 34, …;"
        " e.g. 5, 6"
    )


def test_examples_are_a_few_distinct_values() -> None:
    frame = pd.DataFrame({"x": ["a", "b", "a", "c", "d", "e", "f", "g"]})
    report = check(frame, {"x": ("string", Constraint(allowed=("z",)))})
    assert report.violations[0].examples == ["a", "b", "c", "d", "e"]


def test_one_run_reports_every_violation_in_declaration_order() -> None:
    frame = pd.DataFrame(
        {
            "age": [30, -1, None, 200],
            "country": ["eu", "xx", None, "us"],
            "score": ["high", "low", "mid", None],
            "ts": pd.to_datetime(["2024-01-01", "2024-01-02", None, "2024-01-03"]),
        }
    )
    fields = {
        "age": ("int64", Constraint(not_null=True, min=0, max=150)),
        "country": ("string", Constraint(not_null=True, allowed=("eu", "us"))),
        "score": ("float64", None),
        "absent": ("bool", None),
    }
    report = validate_frame(
        "users", frame, fields, timestamp_field="ts", freshness=timedelta(days=7), now=NOW
    )
    assert not report.ok
    assert found(report) == [
        ("age", "not_null", [2], 1),
        ("age", "min", [1], 1),
        ("age", "max", [3], 1),
        ("country", "not_null", [2], 1),
        ("country", "allowed", [1], 1),
        ("score", "dtype", [0, 1, 2], 3),
        ("absent", "missing", [], 4),
        ("ts", "freshness", [3], 1),
    ]
    data = report.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["view"] == "users"
    assert data["ok"] is False
    assert data["violations"][1] == {
        "column": "age",
        "check": "min",
        "rows": [1],
        "count": 1,
        "examples": [-1.0],
        "detail": ">= 0",
    }
    lines = report.summary().splitlines()
    assert lines[0] == "feature view 'users': 4 rows, 8 violations:"
    assert lines[1] == "  column 'age': not_null fails on 1 row; row 2"
    assert lines[6] == (
        "  column 'score': dtype (expected float64, got str) fails on 3 rows; rows 0, 1, 2;"
        " e.g. 'high', 'low', 'mid'"
    )


def test_empty_frames() -> None:
    frame = pd.DataFrame({"a": pd.Series([], dtype="int64"), "b": pd.Series([], dtype="str")})
    fields = {
        "a": ("int64", Constraint(not_null=True, min=0)),
        "b": ("string", Constraint(allowed=("x",))),
    }
    report = check(frame, fields)
    assert report.ok
    assert report.rows == 0
    assert found(check(pd.DataFrame(), fields)) == [
        ("a", "missing", [], 0),
        ("b", "missing", [], 0),
    ]
    assert check(pd.DataFrame(), {}).ok


def test_pandera_switched_off_globally_does_not_switch_our_checks_off() -> None:
    frame = pd.DataFrame({"x": [-1]})
    with config_context(validation_enabled=False):
        report = check(frame, {"x": ("int64", Constraint(min=0))})
    assert found(report) == [("x", "min", [0], 1)]


# -- freshness ----------------------------------------------------------------------------------


def stamps(*values: str | None, tz: str | None = None) -> pd.DataFrame:
    column = pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601")
    return pd.DataFrame({"ts": column.dt.tz_localize(tz) if tz else column})


def fresh(frame: pd.DataFrame, now: datetime = NOW, within: timedelta = timedelta(hours=1)) -> Any:
    return check(frame, {}, timestamp_field="ts", freshness=within, now=now)


def test_fresh_data_passes_and_the_limit_is_inclusive() -> None:
    assert fresh(stamps("2024-03-01 11:00", None, "2024-02-01")).ok
    assert fresh(stamps("2024-03-01 11:30")).ok


def test_stale_data_names_the_newest_timestamp() -> None:
    report = fresh(stamps("2024-02-01", "2024-03-01 10:59:59", None, "2024-01-01"))
    [violation] = report.violations
    assert (violation.column, violation.check, violation.rows, violation.count) == (
        "ts",
        "freshness",
        [1],
        1,
    )
    assert violation.examples == ["2024-03-01T10:59:59+00:00"]
    assert violation.detail == "the newest must be within 1:00:00 of 2024-03-01T12:00:00+00:00"


def test_naive_timestamps_and_a_naive_now_are_utc() -> None:
    naive_now = datetime(2024, 3, 1, 12, 0)
    assert fresh(stamps("2024-03-01 11:00"), now=naive_now).ok
    assert not fresh(stamps("2024-03-01 10:59"), now=naive_now).ok


def test_tz_aware_timestamps_are_compared_in_utc() -> None:
    # 12:30 in Paris (UTC+1 in March) is 11:30 UTC: fresh at 12:00 UTC, stale at 12:31 UTC
    frame = stamps("2024-03-01 12:30", tz="Europe/Paris")
    assert fresh(frame).ok
    late = datetime(2024, 3, 1, 13, 31, tzinfo=timezone(timedelta(hours=1)))
    report = fresh(frame, now=late)
    assert report.violations[0].examples == ["2024-03-01T11:30:00+00:00"]


def test_no_timestamp_is_not_fresh() -> None:
    report = fresh(stamps(None, None))
    assert found(report) == [("ts", "freshness", [], 2)]
    assert report.violations[0].detail == "no timestamp to judge by"
    assert found(fresh(pd.DataFrame({"ts": pd.Series([], dtype="datetime64[ns]")}))) == [
        ("ts", "freshness", [], 0)
    ]


def test_the_timestamp_field_is_checked_for_presence_and_type() -> None:
    assert found(fresh(pd.DataFrame({"other": [1]}))) == [("ts", "missing", [], 1)]
    report = fresh(pd.DataFrame({"ts": ["2024-03-01"]}))
    assert found(report) == [("ts", "dtype", [0], 1)]


def test_freshness_of_an_object_column_of_datetimes() -> None:
    frame = pd.DataFrame({"ts": pd.Series([datetime(2024, 3, 1, 11, 30), None], dtype=object)})
    assert fresh(frame).ok
    assert not fresh(frame, within=timedelta(minutes=10)).ok


def test_the_default_now_is_the_current_time() -> None:
    recent = datetime.now(UTC) - timedelta(minutes=5)
    frame = pd.DataFrame({"ts": [pd.Timestamp(recent)]})
    assert check(frame, {}, timestamp_field="ts", freshness=timedelta(hours=1)).ok
    assert not check(frame, {}, timestamp_field="ts", freshness=timedelta(minutes=1)).ok


# -- policies -----------------------------------------------------------------------------------


def bad_report() -> ValidationReport:
    frame = pd.DataFrame({"age": [1, -3, 2, -4]})
    return check(frame, {"age": ("int64", Constraint(min=0))})


def test_policy_error_raises_with_the_column_and_rows() -> None:
    report = bad_report()
    with pytest.raises(FeatureValidationError) as caught:
        enforce(report, "error")
    error = caught.value
    assert isinstance(error, InvalidInputError)
    assert isinstance(error, ValueError)
    assert error.report is report
    message = str(error)
    assert "column 'age': min (>= 0) fails on 2 rows; rows 1, 3; e.g. -3, -4" in message
    assert 'validation policy ("warn"' in message


def test_policy_warn_logs_the_summary(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mloop.features"):
        enforce(bad_report(), "warn")
    [record] = caplog.records
    assert record.name == "mloop.features"
    assert record.levelno == logging.WARNING
    assert "column 'age': min (>= 0) fails on 2 rows; rows 1, 3" in record.getMessage()


def test_policy_off_is_silent(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        enforce(bad_report(), "off")
    assert caplog.records == []


@pytest.mark.parametrize("policy", ["error", "warn", "off"])
def test_a_clean_report_passes_every_policy(policy: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        enforce(ValidationReport("v", 3, []), policy)
    assert caplog.records == []


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(InvalidValueError, match="policy must be"):
        enforce(bad_report(), "strict")  # type: ignore[arg-type]


# -- declarations and records -------------------------------------------------------------------


def test_constraint_round_trips_through_json() -> None:
    constraints = [
        Constraint(),
        Constraint(not_null=True, min=0, max=1.5),
        Constraint(allowed=("a", "b")),
        Constraint(allowed=(1, 2.5, True)),
    ]
    for constraint in constraints:
        data = json.loads(json.dumps(constraint.to_dict(), allow_nan=False))
        assert Constraint.from_dict(data) == constraint
    assert Constraint(min=1).to_dict() == {
        "not_null": False,
        "min": 1,
        "max": None,
        "allowed": None,
    }
    assert Constraint.from_dict({}) == Constraint()


def test_constraint_normalizes_numpy_scalars_and_lists() -> None:
    allowed: Any = [np.str_("a")]  # a list, as users write it
    constraint = Constraint(min=np.int64(1), max=np.float32(2.5), allowed=allowed)
    assert constraint == Constraint(min=1, max=2.5, allowed=("a",))
    assert type(constraint.min) is int
    json.dumps(constraint.to_dict())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"minimum": 1}, "unknown key(s) 'minimum'"),
        ({"not_null": "yes"}, "constraint.not_null must be true or false"),
        ({"min": "1"}, "constraint.min must be a number"),
        ({"max": True}, "constraint.max must be a number"),
        ({"max": float("nan")}, "constraint.max must be finite"),
        ({"min": 2, "max": 1}, "constraint.min (2) is more than constraint.max (1)"),
        ({"allowed": "abc"}, "constraint.allowed must be a list or null"),
        ({"allowed": []}, "constraint.allowed is empty"),
        ({"allowed": [None]}, "constraint.allowed takes strings, numbers and booleans"),
        ({"allowed": [{"a": 1}]}, "constraint.allowed takes strings"),
        ([1], "a constraint must be a mapping"),
    ],
)
def test_malformed_constraints_are_refused_by_key(data: Any, message: str) -> None:
    with pytest.raises(InvalidValueError) as caught:
        Constraint.from_dict(data)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"x": ("int", None)}, "field 'x' has dtype 'int'"),
        ({"x": "int64"}, "field 'x' must be given as (dtype, constraint or None)"),
        ({"x": ("string", Constraint(min=0))}, "min and max apply to numeric fields"),
        ({"x": ("datetime", Constraint(max=0))}, "min and max apply to numeric fields"),
        ({"x": ("string", Constraint(allowed=(1,)))}, "allowed value(s) 1 are not string"),
        ({"x": ("int64", Constraint(allowed=(1.5, True)))}, "1.5, True are not int64"),
        ({"x": ("int32", Constraint(allowed=(2**40,)))}, "are not int32"),
        ({"x": ("bool", Constraint(allowed=(1,)))}, "are not bool"),
        ({"x": ("datetime", Constraint(allowed=("2024",)))}, "are not datetime"),
        ({"x": ("int64", {"min": 0})}, "constraint must be a Constraint or None"),
    ],
)
def test_declarations_that_cannot_be_checked_are_refused(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidValueError) as caught:
        validate_frame("v", pd.DataFrame({"x": [1]}), fields)
    assert message in str(caught.value)


def test_bad_arguments_are_refused() -> None:
    frame = pd.DataFrame({"ts": [pd.Timestamp(0)]})
    with pytest.raises(InvalidValueError, match="freshness needs the view's timestamp_field"):
        validate_frame("v", frame, {}, freshness=timedelta(hours=1))
    with pytest.raises(InvalidValueError, match="freshness must be a timedelta > 0"):
        validate_frame("v", frame, {}, timestamp_field="ts", freshness=timedelta(0))
    with pytest.raises(InvalidValueError, match="now must be a datetime"):
        validate_frame(
            "v",
            frame,
            {},
            timestamp_field="ts",
            freshness=timedelta(1),
            now="today",  # type: ignore[arg-type]
        )
    with pytest.raises(InvalidValueError, match="frame must be a pandas DataFrame"):
        validate_frame("v", {"ts": [1]}, {})  # type: ignore[arg-type]
    twice = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(InvalidValueError, match="more than one column named 'a'"):
        validate_frame("v", twice, {"a": ("int64", None)})


def test_violation_and_report_records() -> None:
    violation = Violation("x", "min", [1], 1, [-1], ">= 0")
    assert violation.to_dict() == {
        "column": "x",
        "check": "min",
        "rows": [1],
        "count": 1,
        "examples": [-1],
        "detail": ">= 0",
    }
    report = ValidationReport("v", 2, [violation])
    assert report.to_dict() == {
        "view": "v",
        "rows": 2,
        "ok": False,
        "violations": [violation.to_dict()],
    }
    assert ValidationReport("v", 0, []).ok
