"""Model signatures: reading input, inferring, (de)serializing, and validate's cast rules."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from mloop.errors import InvalidInputError, InvalidValueError, SignatureError
from mloop.registry._signature import (
    DTYPES,
    ColumnSpec,
    Signature,
    infer_signature,
    to_frame,
)

# What pandas makes of plain strings and datetimes on the installed version: what validate returns.
STRING = pd.Series(["a"]).dtype
DATETIME = pd.Series([dt.datetime(2000, 1, 1)]).dtype
OBJECT_STRINGS = np.dtype(object) == STRING  # pandas 2

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def sig(*specs: tuple[str, str] | tuple[str, str, bool]) -> Signature:
    return Signature(tuple(ColumnSpec(*spec) for spec in specs))


def refused(signature: Signature, data: Any, **kwargs: Any) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        signature.validate(data, **kwargs)
    return caught.value


# -- ColumnSpec and Signature -----------------------------------------------------------------


def test_dtype_vocabulary() -> None:
    assert DTYPES == (
        "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "float32", "float64", "string", "datetime", "category",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "int64"), "non-empty string"),
        ((3, "int64"), "non-empty string"),
        (("x", "float"), "'float' is not a signature dtype"),
        (("x", "int"), "did you mean"),
        (("x", "int64", 1), "nullable must be True or False"),
    ],
)
def test_column_spec_refuses_bad_fields(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        ColumnSpec(*args)


def test_signature_needs_unique_inputs_and_takes_lists() -> None:
    with pytest.raises(InvalidValueError, match="at least one input"):
        Signature(())
    with pytest.raises(InvalidValueError, match="'a' more than once"):
        sig(("a", "int64"), ("a", "float64"))
    with pytest.raises(InvalidValueError, match="ColumnSpec objects"):
        Signature(("a",))  # type: ignore[arg-type]
    listed = Signature([ColumnSpec("a", "int64")])  # type: ignore[arg-type]
    assert listed.inputs == (ColumnSpec("a", "int64"),)
    assert hash(listed) == hash(sig(("a", "int64")))
    assert sig(("b", "bool"), ("a", "string")).columns == ["b", "a"]


def test_to_dict_is_json_with_fixed_key_order() -> None:
    signature = Signature(
        (ColumnSpec("age", "int64"), ColumnSpec("city", "string", nullable=True)),
        (ColumnSpec("prediction", "float64"),),
    )
    data = signature.to_dict()
    assert json.dumps(data) == (
        '{"inputs": [{"name": "age", "dtype": "int64", "nullable": false}, '
        '{"name": "city", "dtype": "string", "nullable": true}], '
        '"outputs": [{"name": "prediction", "dtype": "float64", "nullable": false}]}'
    )
    assert Signature.from_dict(json.loads(json.dumps(data))) == signature


def test_from_dict_defaults() -> None:
    signature = Signature.from_dict({"inputs": [{"name": "a", "dtype": "bool"}]})
    assert signature == sig(("a", "bool"))
    assert signature.outputs == ()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a mapping"),
        ({"inputs": [], "extra": 1}, "unknown field.*'extra'"),
        ({"outputs": []}, r"signature\.inputs is missing"),
        ({"inputs": "a"}, r"signature\.inputs must be a list"),
        ({"inputs": [["a", "int64"]]}, r"signature\.inputs\[0\] must be a mapping"),
        ({"inputs": [{"name": "a", "dtype": "int64", "nulable": True}]}, r"\[0\].*'nulable'"),
        ({"inputs": [{"dtype": "int64"}]}, r"signature\.inputs\[0\]\.name is missing"),
        ({"inputs": [{"name": "a"}]}, r"signature\.inputs\[0\]\.dtype is missing"),
        ({"inputs": [{"name": 1, "dtype": "int64"}]}, r"\[0\]\.name must be a non-empty"),
        (
            {"inputs": [{"name": "a", "dtype": "int64"}, {"name": "b", "dtype": "double"}]},
            r"signature\.inputs\[1\]\.dtype: 'double' is not",
        ),
        ({"inputs": [{"name": "a", "dtype": "int64", "nullable": "yes"}]}, r"\.nullable must"),
        ({"inputs": [{"name": "a", "dtype": "int64"}], "outputs": {}}, r"signature\.outputs"),
        ({"inputs": []}, "at least one input"),
    ],
)
def test_from_dict_refuses_malformed(data: Any, message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        Signature.from_dict(data)


# -- to_frame ---------------------------------------------------------------------------------


def test_to_frame_reads_every_accepted_form() -> None:
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert to_frame(df) is df
    assert_frame_equal(to_frame({"a": [1, 2], "b": ["x", "y"]}), df)
    assert_frame_equal(to_frame([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]), df)
    assert_frame_equal(to_frame([[1, "x"], [2, "y"]], ["a", "b"]), df)
    assert_frame_equal(to_frame(((1, "x"), (2, "y")), ["a", "b"]), df)
    assert_frame_equal(to_frame({"a": 1, "b": "x"}), df.iloc[:1])
    assert_frame_equal(to_frame(pd.Series([1, 2], name="a")), df[["a"]])
    assert_frame_equal(to_frame(np.array([[1.0, 2.0]])), pd.DataFrame({"c0": [1.0], "c1": [2.0]}))
    assert to_frame([], ["a", "b"]).columns.tolist() == ["a", "b"]
    assert to_frame([]).shape == (0, 0)


def test_to_frame_does_not_align_series_in_columns_form() -> None:
    frame = to_frame({"a": pd.Series([1, 2], index=[5, 6]), "b": pd.Series([3, 4])})
    assert frame.to_dict("list") == {"a": [1, 2], "b": [3, 4]}


def test_to_frame_records_with_differing_keys_keep_everything() -> None:
    frame = to_frame([{"a": 1, "b": 2.5}, {"c": "x", "a": 3}])
    assert frame.columns.tolist() == ["a", "b", "c"]
    assert frame["a"].tolist() == [1, 3]
    assert frame["b"].isna().tolist() == [False, True]
    assert frame["c"].isna().tolist() == [True, False]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("a,b\n1,2", "cannot read a str"),
        (42, "cannot read a int"),
        (None, "cannot read a NoneType"),
        ({1, 2}, "cannot read a set"),
        (pd.Series([1, 2]), "unnamed Series"),
        ({"a": [1, 2], "b": 3}, "not a mix"),
        ({"a": [1, 2], "b": [3]}, r"different lengths \('a': 2, 'b': 1\)"),
        ({"a": np.zeros((2, 2))}, "2-D array"),
        ([{"a": 1}, [1]], "only mappings"),
        ([[1, 2], {"a": 1}], "only lists"),
        ([[1, 2], [3]], r"different lengths \(1, 2\)"),
        ([1.0, 2.0], "flat list is ambiguous"),
        (np.array([1.0, 2.0]), "1-D array.*reshape"),
        (np.zeros((1, 1, 1)), "3-D array"),
    ],
)
def test_to_frame_refuses_what_it_cannot_read(data: Any, message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        to_frame(data)


def test_to_frame_positional_width_must_match_the_names() -> None:
    with pytest.raises(InvalidValueError, match=r"rows have 3 value\(s\) but 2 column\(s\)"):
        to_frame([[1, 2, 3]], ["a", "b"])


def test_to_frame_names_what_it_accepts() -> None:
    with pytest.raises(InvalidValueError) as caught:
        to_frame(object())
    for form in ("DataFrame", "named Series", "mapping", "records", "2-D array"):
        assert form in str(caught.value)


# -- infer_signature --------------------------------------------------------------------------


def typed_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "flag": [True, False],
            "i8": np.array([1, 2], np.int8),
            "u32": np.array([1, 2], np.uint32),
            "i64": [1, 2],
            "f32": np.array([0.5, np.nan], np.float32),
            "f64": [0.5, 1.5],
            "text": ["a", None],
            "objtext": pd.Series(["a", "b"], dtype=object),
            "when": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "when_tz": pd.to_datetime(["2024-01-01", "2024-01-02"]).tz_localize("Europe/Paris"),
            "kind": pd.Categorical(["x", "y"]),
            "nullable_int": pd.array([1, None], dtype="Int64"),
            "objbool": pd.Series([True, None], dtype=object),
        }
    )


def test_infer_signature_maps_pandas_dtypes() -> None:
    signature = infer_signature(typed_frame())
    assert [(c.name, c.dtype, c.nullable) for c in signature.inputs] == [
        ("flag", "bool", False),
        ("i8", "int8", False),
        ("u32", "uint32", False),
        ("i64", "int64", False),
        ("f32", "float32", True),
        ("f64", "float64", False),
        ("text", "string", True),
        ("objtext", "string", False),
        ("when", "datetime", False),
        ("when_tz", "datetime", False),
        ("kind", "category", False),
        ("nullable_int", "int64", True),
        ("objbool", "bool", True),
    ]
    assert signature.outputs == ()


def test_infer_signature_from_records_and_arrays() -> None:
    assert infer_signature([{"a": 1, "b": "x"}]) == sig(("a", "int64"), ("b", "string"))
    assert infer_signature(np.zeros((2, 2))) == sig(("c0", "float64"), ("c1", "float64"))


@pytest.mark.parametrize(
    ("example", "message"),
    [
        (pd.DataFrame({"a": pd.Series([1, "x"], dtype=object)}), r"column 'a'.*mixes.*int, str"),
        (pd.DataFrame({"a": [None, None]}), "column 'a'.*only missing values"),
        (pd.DataFrame({"d": pd.to_timedelta([1], unit="s")}), "column 'd'.*timedelta64"),
        (pd.DataFrame({0: [1.0]}), "not strings"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "'a' more than once"),
        (pd.DataFrame(), "no columns"),
    ],
)
def test_infer_signature_refuses_what_it_cannot_type(example: Any, message: str) -> None:
    with pytest.raises(InvalidValueError, match=message) as caught:
        infer_signature(example)
    if "column '" in message:
        assert "explicit" in str(caught.value)


PROBABILITIES = [("probability_0", "float64"), ("probability_1", "float64")]


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (np.array([0.1, 0.9]), [("prediction", "float64")]),
        (np.array([0, 1]), [("prediction", "int64")]),
        (["yes", "no"], [("prediction", "string")]),
        (np.array([[0.1, 0.9], [0.8, 0.2]]), PROBABILITIES),
        ([[0, 1]], [("probability_0", "int64"), ("probability_1", "int64")]),
        (pd.DataFrame({"label": ["a"], "n": [0.5]}), [("label", "string"), ("n", "float64")]),
        (pd.Series([1.5], name="price"), [("price", "float64")]),
        (pd.Series([True]), [("prediction", "bool")]),
        ([{"label": "a", "n": 1}], [("label", "string"), ("n", "int64")]),
        ({"label": ["a"]}, [("label", "string")]),
    ],
)  # fmt: skip
def test_infer_signature_outputs(output: Any, expected: list[tuple[str, str]]) -> None:
    signature = infer_signature({"x": [1.0]}, output)
    assert [(c.name, c.dtype) for c in signature.outputs] == expected


def test_infer_signature_refuses_a_scalar_output() -> None:
    with pytest.raises(InvalidValueError, match="output example"):
        infer_signature({"x": [1.0]}, 3.0)


# -- validate: columns ------------------------------------------------------------------------

ABC = sig(("a", "float64"), ("b", "float64"), ("c", "float64"))


def test_validate_returns_signature_order_and_keeps_the_index() -> None:
    df = pd.DataFrame({"c": [3.0], "a": [1.0], "b": [2.0]}, index=[7])
    result = ABC.validate(df)
    assert result.columns.tolist() == ["a", "b", "c"]
    assert result.index.tolist() == [7]
    assert result.iloc[0].tolist() == [1.0, 2.0, 3.0]


def test_missing_columns_are_all_named() -> None:
    error = refused(ABC, {"b": [1.0]})
    assert error.column == "a"
    assert "missing column(s) 'a', 'c'" in str(error)


def test_extra_columns_are_refused_or_dropped() -> None:
    data = {"a": [1.0], "b": [2.0], "c": [3.0], "x": ["?"], "y": [1]}
    error = refused(ABC, data)
    assert error.column == "x"
    assert "'x', 'y'" in str(error)
    assert 'extra_columns="drop"' in str(error)
    assert ABC.validate(data, extra_columns="drop").columns.tolist() == ["a", "b", "c"]
    with pytest.raises(InvalidValueError, match="extra_columns"):
        ABC.validate(data, extra_columns="keep")  # type: ignore[arg-type]


def test_a_misspelled_column_is_reported_with_the_name_sent() -> None:
    error = refused(ABC, {"a": [1.0], "b": [2.0], "cc": [3.0]})
    assert error.column == "c"
    assert "'cc'" in str(error)


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame([[1.0, 2.0, 3.0]]),
        pd.DataFrame([[1.0, 2.0, 3.0, 4.0]], columns=["a", "b", "c", 0]),
    ],
)
def test_non_string_column_names_are_refused(frame: pd.DataFrame) -> None:
    assert "must be strings" in str(refused(ABC, frame, extra_columns="drop"))


def test_duplicate_column_names_are_refused() -> None:
    frame = pd.DataFrame([[1.0, 2.0, 3.0, 4.0]], columns=["a", "b", "c", "a"])
    error = refused(ABC, frame)
    assert error.column == "a"
    assert "more than once" in str(error)


def test_positional_rows_take_the_signature_names() -> None:
    assert ABC.validate([[1, 2, 3]]).iloc[0].tolist() == [1.0, 2.0, 3.0]
    assert ABC.validate(np.array([[1.0, 2.0, 3.0]])).columns.tolist() == ["a", "b", "c"]
    error = refused(ABC, [[1, 2]])
    assert "2 value(s) but 3 column(s)" in str(error)


def test_unreadable_input_is_a_signature_error() -> None:
    error = refused(ABC, "1,2,3")
    assert isinstance(error, InvalidInputError)
    assert isinstance(error, ValueError)
    assert "DataFrame" in str(error)


@pytest.mark.parametrize("limit", [-1, 1.5, True, "10"])
def test_max_rows_must_be_a_count(limit: Any) -> None:
    with pytest.raises(InvalidValueError, match="max_rows"):
        ABC.validate([[1.0, 2.0, 3.0]], max_rows=limit)


def test_max_rows() -> None:
    rows = [[1.0, 2.0, 3.0]] * 3
    assert len(ABC.validate(rows, max_rows=3)) == 3
    for data in (rows, pd.DataFrame(rows, columns=["a", "b", "c"]), {"a": [1.0] * 3}):
        error = refused(ABC, data, max_rows=2)
        assert "3 rows but at most 2" in str(error)


# -- validate: zero rows and missing values ---------------------------------------------------

EVERY = Signature(tuple(ColumnSpec(f"col_{dtype}", dtype) for dtype in DTYPES))
EVERY_NULLABLE = Signature(tuple(ColumnSpec(f"col_{dtype}", dtype, True) for dtype in DTYPES))


def expected_dtype(spec: ColumnSpec) -> Any:
    if spec.dtype in ("bool", *DTYPES[1:9]):
        return np.dtype("float64") if spec.nullable else np.dtype(spec.dtype)
    special = {"string": STRING, "datetime": DATETIME, "category": "category"}
    return special[spec.dtype] if spec.dtype in special else np.dtype(spec.dtype)


@pytest.mark.parametrize("signature", [EVERY, EVERY_NULLABLE], ids=["plain", "nullable"])
@pytest.mark.parametrize("form", ["records", "frame"])
def test_zero_rows_give_an_empty_frame_of_the_right_dtypes(signature: Signature, form: str) -> None:
    data: Any = [] if form == "records" else pd.DataFrame(columns=signature.columns)
    result = signature.validate(data)
    assert result.shape == (0, len(DTYPES))
    assert result.columns.tolist() == signature.columns
    for spec, dtype in zip(signature.inputs, result.dtypes, strict=True):
        assert dtype == expected_dtype(spec), spec


def test_missing_values_in_a_column_that_is_not_nullable() -> None:
    signature = sig(("a", "float64"), ("b", "string"), ("c", "int64"))
    rows = [{"a": 1.0, "b": "x", "c": 1}] * 8
    rows[1] = {"a": None, "b": "x", "c": 1}
    rows[3] = {"a": float("nan"), "b": None, "c": 1}
    for i in range(2, 8):
        rows[i] = {**rows[i], "c": None}
    error = refused(signature, rows)
    assert error.column == "a"
    message = str(error)
    assert "row position(s) 1, 3" in message
    assert "(so do 'b', 'c')" in message
    assert "nullable=True" in message
    error = refused(sig(("c", "int64")), [{"c": 1}] + [{}] * 7)
    assert "1, 2, 3, 4, 5 (and 2 more)" in str(error)


def test_nullable_numbers_and_booleans_become_float64_with_nan() -> None:
    signature = sig(("i", "int32", True), ("b", "bool", True), ("f", "float32", True))
    result = signature.validate([{"i": 1, "b": True, "f": 0.5}, {"i": None, "b": None, "f": None}])
    assert result.dtypes.tolist() == [np.dtype("float64"), np.dtype("float64"), np.dtype("float32")]
    assert result.iloc[0].tolist() == [1.0, 1.0, 0.5]
    assert result.iloc[1].isna().all()
    # The dtype follows the signature, not the batch: no missing value, same dtypes.
    full = signature.validate({"i": [1], "b": [False], "f": [1.0]})
    assert full.dtypes.tolist() == result.dtypes.tolist()


def test_all_missing_nullable_columns() -> None:
    data = {name: [None, None] for name in EVERY_NULLABLE.columns}
    result = EVERY_NULLABLE.validate(data)
    assert result.isna().all().all()
    for spec, dtype in zip(EVERY_NULLABLE.inputs, result.dtypes, strict=True):
        assert dtype == expected_dtype(spec), spec


# -- validate: cast rules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "values", "expected"),
    [
        ("float64", [1, 2], [1.0, 2.0]),
        ("float32", np.array([1, 2], np.int64), [1.0, 2.0]),
        ("float32", [0.5, 1e30], [0.5, np.float32(1e30)]),
        ("int64", [3.0, -2.0], [3, -2]),
        ("int8", [127, -128], [127, -128]),
        ("uint8", np.array([0, 255], np.int64), [0, 255]),
        ("int64", np.array([2**62], np.uint64), [2**62]),
        ("uint64", [2**64 - 1], [2**64 - 1]),
        ("int64", pd.array([1, 2], dtype="Int64"), [1, 2]),
        ("int16", pd.Series([1, 2], dtype=object), [1, 2]),
        ("float64", pd.Series([1, 2.5], dtype=object), [1.0, 2.5]),
        ("bool", pd.Series([True, False], dtype=object), [True, False]),
        ("bool", pd.array([True, False], dtype="boolean"), [True, False]),
        ("string", pd.Series(["a", "b"], dtype=object), ["a", "b"]),
        ("string", pd.Categorical(["a", "b"]), ["a", "b"]),
        ("category", ["a", "b"], ["a", "b"]),
    ],
)
def test_safe_casts(dtype: str, values: Any, expected: list[Any]) -> None:
    result = sig(("x", dtype)).validate({"x": values})
    assert result["x"].tolist() == expected
    assert result["x"].dtype == expected_dtype(ColumnSpec("x", dtype))


@pytest.mark.parametrize(
    ("dtype", "values", "words"),
    [
        ("int64", [1.0, 2.5], ["row 1 holds 2.5", "not a whole number"]),
        ("int64", [1.0, float("inf")], ["row 1 holds inf", "not a whole number"]),
        ("int8", [1, 128], ["row 1 holds 128", "out of range for int8"]),
        ("int8", [1.0, -129.0], ["row 1 holds -129.0", "out of range for int8"]),
        ("uint32", [-1], ["row 0 holds -1", "out of range"]),
        ("int64", np.array([2**63], np.uint64), ["out of range for int64"]),
        ("int64", [2**63 + 5.0], ["out of range for int64"]),
        ("uint64", [1, 2**70], ["row 1 holds 1180591620717411303424", "out of range"]),
        ("float32", [1e39], ["too large for float32"]),
        ("int64", [True, False], ["holds booleans", "True at row 0", "whole numbers"]),
        ("float64", [True], ["holds booleans"]),
        ("bool", [1, 0], ["holds integers", "1 at row 0", "true/false"]),
        ("bool", [1.0], ["holds numbers"]),
        ("float64", ["1.5"], ["holds strings", "'1.5' at row 0", "send numbers"]),
        ("int64", ["x" * 100], ["'xxxxxxxxxx", "...", "at row 0"]),
        ("string", [1, 2], ["holds integers", "send text"]),
        ("string", [1.5], ["holds numbers"]),
        ("string", pd.Categorical([1, 2]), ["holds categories"]),
        ("float64", pd.Series([1.0, "x"], dtype=object), ["types", "float, str", "'x' at row 1"]),
        ("category", [1, 2], ["holds integers", "send strings"]),
        ("datetime", [1700000000], ["holds integers", "ISO-8601"]),
        ("datetime", ["2024-01-01", "yesterday"], ["row 1 holds 'yesterday'", "ISO-8601"]),
        ("datetime", [dt.datetime(2024, 1, 1), "x"], ["holds values of types datetime, str"]),
        ("int64", [dt.datetime(2024, 1, 1)], ["holds datetimes"]),
        ("float64", [[1.0]], ["holds values of types", "list"]),
    ],
)
def test_unsafe_casts_are_refused(dtype: str, values: list[Any], words: list[str]) -> None:
    signature = sig(("extra_long_name_x", dtype))
    error = refused(signature, {"extra_long_name_x": values})
    assert error.column == "extra_long_name_x"
    message = str(error)
    assert message.startswith(f"column 'extra_long_name_x' must be {dtype}")
    for word in words:
        assert word in message, message


def test_offending_values_are_truncated() -> None:
    message = str(refused(sig(("x", "float64")), {"x": ["y" * 500]}))
    assert "'yyyyyyyyyy" in message
    assert len(message) < 200


def test_datetimes_are_naive_utc() -> None:
    signature = sig(("t", "datetime", True))
    expected = pd.Series(
        [dt.datetime(2024, 1, 1, 10), dt.datetime(2024, 1, 1, 8), dt.datetime(2024, 6, 1), None],
        name="t",
        dtype=DATETIME,
    )
    sent = [
        "2024-01-01T10:00:00",  # no offset: taken as UTC
        "2024-01-01T10:00:00+02:00",
        "2024-06-01",
        None,
    ]
    pd.testing.assert_series_equal(signature.validate({"t": sent})["t"], expected)
    aware = pd.Series(pd.to_datetime(pd.Series(sent[:3]), format="ISO8601", utc=True))
    paris = aware.dt.tz_convert("Europe/Paris")
    pd.testing.assert_series_equal(signature.validate({"t": paris})["t"], expected[:3])
    objects = [dt.datetime(2024, 1, 1, 10), dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)]
    assert (
        signature.validate({"t": objects})["t"].tolist() == [pd.Timestamp("2024-01-01 10:00")] * 2
    )
    nanos = pd.Series(pd.to_datetime(["2024-01-01"]).as_unit("ns"))
    assert signature.validate({"t": nanos})["t"].dtype == DATETIME


def test_category_keeps_a_categorical_as_it_is() -> None:
    values = pd.Categorical(["b", "a"], categories=["c", "b", "a"], ordered=True)
    result = sig(("k", "category")).validate({"k": values})
    assert result["k"].cat.categories.tolist() == ["c", "b", "a"]
    assert result["k"].cat.ordered


def test_a_float_signature_casts_whole_frames_like_column_by_column() -> None:
    """The one-block path for all-float signatures gives what the per-column path gives."""
    names = [f"f{i}" for i in range(8)]
    values: dict[str, Any] = {name: [i, 2**53 + 1, -3] for i, name in enumerate(names)}
    values["f1"] = [0.5, 1.5, 2.5]
    values["f2"] = np.array([1, 2, 3], np.uint8)
    for dtype in ("float64", "float32"):
        signature = Signature(tuple(ColumnSpec(n, dtype) for n in names))
        result = signature.validate(values)
        one_by_one = pd.DataFrame({n: pd.Series(values[n]).to_numpy().astype(dtype) for n in names})
        assert_frame_equal(result, one_by_one)
    error = refused(
        Signature(tuple(ColumnSpec(n, "float32") for n in names)), {**values, "f5": [1e40, 0, 0]}
    )
    assert error.column == "f5"
    assert "row 0 holds 1e+40" in str(error)


# -- validate: never changes the caller's data ------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0]}),  # already right
        pd.DataFrame({"c": [3.0], "b": [2.0], "a": [1.0], "x": [0]}),  # reordered, extra
        pd.DataFrame({"a": [1], "b": [2], "c": [3]}),  # all cast
        pd.DataFrame({"a": [1], "b": [2.0], "c": [3.0]}),  # one cast
    ],
)
def test_writing_to_the_result_leaves_the_input_alone(data: pd.DataFrame) -> None:
    before = data.copy(deep=True)
    result = ABC.validate(data, extra_columns="drop")
    assert result is not data
    result.loc[result.index[0], "a"] = -1.0
    assert_frame_equal(data, before)


def test_arrays_and_series_sent_are_left_alone() -> None:
    array = np.array([[1.0, 2.0, 3.0]])
    result = ABC.validate(array)
    result.loc[0, "a"] = -1.0
    assert array.tolist() == [[1.0, 2.0, 3.0]]
    series = pd.Series([1.0], name="x")
    result = sig(("x", "float64")).validate(series)
    result.loc[0, "x"] = -1.0
    assert series.tolist() == [1.0]


def test_the_per_column_paths_give_the_same_frame() -> None:
    """Few casts are set in place; many rebuild the frame: the answer is the same."""
    specs = (("i", "int64"), ("f", "float32"), ("s", "string"), ("b", "bool"), ("t", "datetime"))
    signature = sig(*specs)
    right = pd.DataFrame(
        {
            "i": [1, 2],
            "f": np.array([0.5, 1.5], np.float32),
            "s": pd.Series(["a", "b"], dtype=STRING),
            "b": [True, False],
            "t": pd.Series([dt.datetime(2024, 1, 1)] * 2, dtype=DATETIME),
        }
    )
    one_cast = right.assign(f=[0.5, 1.5])
    many_casts = one_cast.assign(
        i=[1.0, 2.0], s=pd.Series(["a", "b"], dtype=object), t=["2024-01-01"] * 2
    )
    for data in (right, one_cast, many_casts):
        before = data.copy(deep=True)
        result = signature.validate(data)
        assert_frame_equal(result, right)
        result.loc[0, "i"] = -1
        assert_frame_equal(data, before)


# -- REST-like bodies -------------------------------------------------------------------------

CUSTOMER = Signature(
    (
        ColumnSpec("age", "int64"),
        ColumnSpec("income", "float64", nullable=True),
        ColumnSpec("city", "string"),
        ColumnSpec("member", "bool"),
        ColumnSpec("since", "datetime"),
        ColumnSpec("plan", "category"),
        ColumnSpec("visits", "int16"),
    )
)
RECORDS = """[
  {"age": 41, "income": 52000.5, "city": "Lyon", "member": true,
   "since": "2021-03-04T05:06:07Z", "plan": "gold", "visits": 3},
  {"age": 35.0, "income": null, "city": "Oslo", "member": false,
   "since": "2020-01-01", "plan": "basic", "visits": 12.0}
]"""
COLUMNS = """{
  "visits": [3, 12], "age": [41, 35], "income": [52000.5, null], "city": ["Lyon", "Oslo"],
  "member": [true, false], "since": ["2021-03-04T05:06:07", "2020-01-01T00:00:00"],
  "plan": ["gold", "basic"]
}"""


def test_json_bodies_validate_to_the_same_frame_as_a_dataframe() -> None:
    df = pd.DataFrame(
        {
            "age": [41, 35],
            "income": [52000.5, np.nan],
            "city": ["Lyon", "Oslo"],
            "member": [True, False],
            "since": pd.Series(
                [dt.datetime(2021, 3, 4, 5, 6, 7), dt.datetime(2020, 1, 1)], dtype=DATETIME
            ),
            "plan": pd.Categorical(["gold", "basic"]),
            "visits": np.array([3, 12], np.int16),
        }
    )
    expected = CUSTOMER.validate(df)
    assert_frame_equal(expected, df)
    assert_frame_equal(CUSTOMER.validate(json.loads(RECORDS)), expected)
    assert_frame_equal(CUSTOMER.validate(json.loads(COLUMNS)), expected)
    one = CUSTOMER.validate(json.loads(RECORDS)[0])
    assert_frame_equal(one, expected.iloc[:1].astype({"plan": one["plan"].dtype}))


# -- properties -------------------------------------------------------------------------------

NUMBERS = {
    "bool": st.booleans(),
    **{name: st.integers(int(np.iinfo(name).min), int(np.iinfo(name).max)) for name in DTYPES[1:9]},
}
KINDS = [*DTYPES, "datetime_tz"]
TIMES = st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1))


@st.composite
def columns(draw: st.DrawFn, kind: str, rows: int) -> Any:
    def values(element: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(element, min_size=rows, max_size=rows))

    if kind in NUMBERS:
        return np.array(values(NUMBERS[kind]), dtype=kind)
    if kind in ("float32", "float64"):
        return np.array(values(st.floats(width=32 if kind == "float32" else 64)), dtype=kind)
    if kind == "string":
        texts = values(st.none() | st.text(max_size=5))
        if OBJECT_STRINGS and not any(isinstance(text, str) for text in texts):
            texts[0] = "a"  # an object column of only None could hold anything: not inferable
        return pd.Series(texts, dtype=STRING).array
    if kind == "category":
        return pd.Categorical(values(st.none() | st.sampled_from(["a", "b", "c"])))
    times = pd.Series(values(st.none() | TIMES), dtype=object).astype(DATETIME)
    if kind == "datetime_tz":
        zone = draw(st.sampled_from(["UTC", "Europe/Paris", "America/New_York"]))
        times = times.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    return times.array


@st.composite
def frames(draw: st.DrawFn, kinds: list[str] | None = None) -> pd.DataFrame:
    rows = draw(st.integers(1 if OBJECT_STRINGS else 0, 5))
    kinds = kinds or draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=6))
    extra = draw(st.lists(st.sampled_from(KINDS), max_size=3))
    names = draw(
        st.lists(
            st.text(min_size=1, max_size=6),
            min_size=len(kinds + extra),
            max_size=len(kinds + extra),
            unique=True,
        )
    )
    data = {
        name: draw(columns(kind, rows)) for name, kind in zip(names, kinds + extra, strict=True)
    }
    start = draw(st.integers(0, 100))
    return pd.DataFrame(data, index=range(start, start + rows))


def normalized(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as validate returns it: tz-aware datetimes as naive UTC."""
    result = df.copy()
    for name, dtype in df.dtypes.items():
        if isinstance(dtype, pd.DatetimeTZDtype):
            result[name] = df[name].dt.tz_convert("UTC").dt.tz_localize(None).astype(DATETIME)
    return result


@PROPERTY
@given(df=frames())
def test_validate_of_the_inferred_signature_is_the_identity(df: pd.DataFrame) -> None:
    assert_frame_equal(infer_signature(df).validate(df), normalized(df))


@PROPERTY
@given(
    specs=st.lists(
        st.tuples(st.text(min_size=1, max_size=8), st.sampled_from(DTYPES), st.booleans()),
        min_size=1,
        max_size=8,
        unique_by=lambda spec: spec[0],
    ),
    outputs=st.lists(st.sampled_from(DTYPES), max_size=3),
)
def test_to_dict_from_dict_round_trip(
    specs: list[tuple[str, str, bool]], outputs: list[str]
) -> None:
    signature = Signature(
        tuple(ColumnSpec(*spec) for spec in specs),
        tuple(ColumnSpec(f"out_{i}", dtype) for i, dtype in enumerate(outputs)),
    )
    assert Signature.from_dict(json.loads(json.dumps(signature.to_dict()))) == signature


def loosened(df: pd.DataFrame, how: list[bool]) -> pd.DataFrame:
    """The same values as a REST body might bring them: object strings, floats for small ints."""
    result = df.copy()
    for (name, dtype), loosen in zip(df.dtypes.items(), how, strict=False):
        if not loosen:
            continue
        if isinstance(dtype, np.dtype) and dtype.kind in "iu" and dtype.itemsize <= 4:
            result[name] = df[name].astype("float64")
        elif dtype in (STRING, np.dtype(bool)):
            result[name] = df[name].astype(object)
    return result


@PROPERTY
@given(df=frames(), data=st.data())
def test_validate_never_changes_its_input_and_ignores_column_order(
    df: pd.DataFrame, data: st.DataObject
) -> None:
    signature = infer_signature(df)
    expected = normalized(df)
    order = data.draw(st.permutations(df.columns.tolist()))
    sent = loosened(df[order], data.draw(st.lists(st.booleans(), min_size=len(order))))
    extra = data.draw(st.booleans())
    if extra:
        sent["__extra__"] = 1
    before = sent.copy(deep=True)
    result = signature.validate(sent, extra_columns="drop" if extra else "error")
    assert_frame_equal(sent, before)
    assert_frame_equal(result, expected)


@PROPERTY
@given(df=frames(), data=st.data())
def test_a_renamed_column_is_named_in_the_error(df: pd.DataFrame, data: st.DataObject) -> None:
    signature = infer_signature(df)
    old = data.draw(st.sampled_from(df.columns.tolist()))
    new = data.draw(st.text(min_size=1, max_size=6).filter(lambda name: name not in df.columns))
    error = refused(signature, df.rename(columns={old: new}))
    assert error.column == old
    assert repr(old) in str(error)
    assert repr(new) in str(error)


@PROPERTY
@given(
    df=frames(["float64", "string"]).filter(
        lambda df: len(df) > 0 and df.iloc[:, 1].notna().all() and df.iloc[:, 0].notna().any()
    )
)
def test_swapped_columns_are_named_in_the_error(df: pd.DataFrame) -> None:
    signature = infer_signature(df)
    number, text = df.columns[:2]
    error = refused(signature, df.rename(columns={number: text, text: number}))
    assert error.column in (number, text)
    assert repr(error.column) in str(error)
