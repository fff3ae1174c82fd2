"""Property tests of the body parsers: every shape of the same table reads the same."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop.serving._oip import decode_infer
from mloop.serving._payload import PayloadError, parse_predict_body

names = st.lists(
    st.text(alphabet="abcdefghij_", min_size=1, max_size=8), min_size=1, max_size=6, unique=True
)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[Any]]]:
    columns = draw(names)
    rows = draw(st.integers(1, 12))
    data = [[draw(values) for _ in columns] for _ in range(rows)]
    return columns, data


@settings(max_examples=200, deadline=None)
@given(tables())
def test_records_columns_split_and_bare_rows_read_the_same(
    table: tuple[list[str], list[list[Any]]],
) -> None:
    columns, data = table
    expected = {name: [row[i] for row in data] for i, name in enumerate(columns)}
    records = [dict(zip(columns, row, strict=True)) for row in data]
    bodies = [
        {"records": records},
        records,
        {"columns": expected},
        {"dataframe_split": {"columns": columns, "data": data}},
        {"dataframe_records": records},
    ]
    for body in bodies:
        assert parse_predict_body(json.loads(json.dumps(body)), 100) == expected
    if len(data) == 1 and not set(columns) & {"records", "columns", "inputs"}:
        assert parse_predict_body(records[0], 100) == expected


@settings(max_examples=200, deadline=None)
@given(tables(), st.integers(0, 11))
def test_ragged_or_empty_rows_are_refused_not_guessed(
    table: tuple[list[str], list[list[Any]]], victim: int
) -> None:
    columns, data = table
    records = [dict(zip(columns, row, strict=True)) for row in data]
    records[victim % len(records)].pop(columns[-1])
    if len(records) == 1 and len(columns) > 1:
        assert parse_predict_body({"records": records}, 100) == {
            name: [data[0][i]] for i, name in enumerate(columns[:-1])
        }
        return
    with pytest.raises(PayloadError, match=r"same columns|no columns") as refused:
        parse_predict_body({"records": records}, 100)
    assert refused.value.status == 422


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 20), st.integers(1, 8), st.booleans(), st.data())
def test_oip_2d_input_is_read_in_signature_order(
    rows: int, width: int, binary: bool, data: st.DataObject
) -> None:
    columns = tuple(f"c{i}" for i in range(width))
    matrix = np.array(
        data.draw(
            st.lists(
                st.floats(allow_nan=False, allow_infinity=False, width=64),
                min_size=rows * width,
                max_size=rows * width,
            )
        )
    ).reshape(rows, width)
    tensor: dict[str, Any] = {"name": "input-0", "shape": [rows, width], "datatype": "FP64"}
    if binary:
        raw = matrix.astype("<f8").tobytes()
        tensor["parameters"] = {"binary_data_size": len(raw)}
        header = json.dumps({"inputs": [tensor]}).encode()
        got, count, _ = decode_infer(header + raw, str(len(header)), columns, "m", 100)
    else:
        tensor["data"] = matrix.tolist()
        got, count, _ = decode_infer(
            json.dumps({"inputs": [tensor]}).encode(), None, columns, "m", 100
        )
    assert count == rows
    assert got == {c: matrix[:, i].tolist() for i, c in enumerate(columns)}
