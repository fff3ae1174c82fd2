"""Request bodies of ``POST /predict``: every accepted shape turned into columns of rows.

Accepted (the first matching key decides):

=====================================================  =======================================
``{"records": [{"a": 1, "b": 2}, ...]}``                rows as objects
``[{"a": 1, "b": 2}, ...]``                             the same, bare
``{"columns": {"a": [1, ...], "b": [2, ...]}}``         one list per column
``{"dataframe_split": {"columns": [...], "data": [[...]]}}``   pandas' ``orient="split"`` (MLflow)
``{"dataframe_records": [...]}``, ``{"inputs": ...}``   MLflow's other names for the above
``{"a": 1, "b": 2}``                                    one row (e.g. entity keys only)
=====================================================  =======================================

Values stay plain Python here; the model's signature checks and casts them for the whole batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Columns", "PayloadError", "parse_predict_body", "records_to_columns"]

Columns = dict[str, list[Any]]

_WRAPPERS = ("records", "dataframe_records", "columns", "dataframe_split", "inputs", "instances")


@dataclass
class PayloadError(Exception):
    """A body this server cannot take: ``status`` is the HTTP status, ``detail`` says why."""

    status: int
    detail: str

    def __str__(self) -> str:
        return self.detail


def _check_rows(count: int, max_rows: int) -> None:
    if count > max_rows:
        raise PayloadError(
            413, f"the request has {count} rows; the limit is {max_rows} (send smaller batches)"
        )
    if count == 0:
        raise PayloadError(422, "the request has no rows; send at least one")


def _check_name(name: object, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise PayloadError(422, f"{where}: column names must be non-empty strings, not {name!r}")
    return name


def records_to_columns(records: list[Any], max_rows: int, where: str = "records") -> Columns:
    """``[{"a": 1}, {"a": 2}]`` → ``{"a": [1, 2]}``; every row must have the same keys."""
    if not isinstance(records, list):
        raise PayloadError(
            422, f"{where} must be a list of objects, one per row, not {_kind(records)}"
        )
    _check_rows(len(records), max_rows)
    first = records[0]
    if not isinstance(first, dict):
        raise PayloadError(
            422, f"{where}[0] must be an object of column: value, not {_kind(first)}"
        )
    names = list(first)
    if not names:
        raise PayloadError(422, f"{where}[0] has no columns; send column: value pairs")
    for name in names:
        _check_name(name, f"{where}[0]")
    columns: Columns = {name: [] for name in names}
    expected = set(names)
    for index, row in enumerate(records):
        if not isinstance(row, dict):
            raise PayloadError(
                422, f"{where}[{index}] must be an object of column: value, not {_kind(row)}"
            )
        if row.keys() != expected:
            missing = sorted(expected - row.keys())
            extra = sorted(row.keys() - expected, key=str)
            what = f"lacks {missing}" if missing else f"has extra keys {extra}"
            raise PayloadError(
                422, f"{where}[{index}] {what}; every row must have the same columns as row 0"
            )
        for name in names:
            columns[name].append(row[name])
    return columns


def _columns(data: Any, max_rows: int) -> Columns:
    if not isinstance(data, dict) or not data:
        raise PayloadError(
            422, f"'columns' must be a non-empty object of column: [values], not {_kind(data)}"
        )
    lengths = set()
    for name, values in data.items():
        _check_name(name, "columns")
        if not isinstance(values, list):
            raise PayloadError(
                422, f"columns[{name!r}] must be a list of values, not {_kind(values)}"
            )
        lengths.add(len(values))
    if len(lengths) != 1:
        raise PayloadError(
            422, f"every column must have the same number of values; got lengths {sorted(lengths)}"
        )
    _check_rows(lengths.pop(), max_rows)
    return {name: list(values) for name, values in data.items()}


def _split(data: Any, max_rows: int) -> Columns:
    if not isinstance(data, dict):
        raise PayloadError(
            422,
            "'dataframe_split' must be an object with 'columns' and 'data' "
            f"(pandas' orient='split'), not {_kind(data)}",
        )
    names, rows = data.get("columns"), data.get("data")
    if not isinstance(names, list) or not names:
        raise PayloadError(422, "dataframe_split.columns must be a non-empty list of names")
    for name in names:
        _check_name(name, "dataframe_split.columns")
    if len(set(names)) != len(names):
        raise PayloadError(422, "dataframe_split.columns names a column twice")
    if not isinstance(rows, list):
        raise PayloadError(422, "dataframe_split.data must be a list of rows (lists of values)")
    _check_rows(len(rows), max_rows)
    columns: Columns = {name: [] for name in names}
    width = len(names)
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            raise PayloadError(
                422,
                f"dataframe_split.data[{index}] must be a list of {width} values, one per column",
            )
        for name, value in zip(names, row, strict=True):
            columns[name].append(value)
    return columns


def parse_predict_body(body: Any, max_rows: int) -> Columns:
    """The columns a decoded JSON body holds (see the module docstring); PayloadError if none."""
    if isinstance(body, list):
        return records_to_columns(body, max_rows)
    if not isinstance(body, dict):
        raise PayloadError(
            422,
            f"the body must be a JSON object or a list of records, not {_kind(body)}; "
            'e.g. {"records": [{"column": 1.0}]}',
        )
    if not body:
        raise PayloadError(422, 'the body is an empty object; e.g. {"records": [{"column": 1.0}]}')
    wrappers = [key for key in _WRAPPERS if key in body]
    if len(wrappers) > 1:
        raise PayloadError(422, f"the body has both {wrappers[0]!r} and {wrappers[1]!r}; send one")
    if not wrappers:
        row = records_to_columns([body], max_rows, "the body")  # one row, plain
        return row
    key = wrappers[0]
    others = [k for k in body if k != key and k != "params"]
    if others:
        raise PayloadError(
            422, f"the body has {key!r} and unknown key(s) {sorted(others, key=str)}; remove them"
        )
    data = body[key]
    if key in ("records", "dataframe_records"):
        return records_to_columns(data, max_rows, key)
    if key == "columns":
        return _columns(data, max_rows)
    if key == "dataframe_split":
        return _split(data, max_rows)
    # MLflow's "inputs"/"instances": records, or an object of columns
    if isinstance(data, dict):
        return _columns(data, max_rows)
    return records_to_columns(data, max_rows, key)


def row_count(columns: Mapping[str, list[Any]]) -> int:
    return len(next(iter(columns.values()))) if columns else 0


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"a {type(value).__name__}"
    )
