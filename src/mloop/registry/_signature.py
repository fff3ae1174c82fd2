"""Model signatures: the columns a model takes and gives, and the check every input passes.

A :class:`Signature` lists a model's input columns (and, for the record, its outputs), each a
:class:`ColumnSpec`: a name, a dtype, and whether missing values are allowed. Serving, batch
scoring and ``load_model(...).predict(df)`` pass every input through :meth:`Signature.validate`,
which returns a new DataFrame with exactly the signature's input columns, in its order, with the
dtypes below; anything it cannot take without guessing is a :class:`~mloop.errors.SignatureError`
naming the column::

    sig = Signature((ColumnSpec("age", "int64"), ColumnSpec("income", "float64", nullable=True)))
    sig.validate([{"age": 41, "income": None}])     # records, as in a REST body

Dtypes, and the column ``validate`` returns for each:

=====================  ==========================================================================
``bool``               numpy ``bool``
``int8`` … ``uint64``  that numpy integer dtype
``float32/64``         that numpy float dtype; missing values are NaN
nullable int/bool      ``float64``, missing values NaN, True/False as 1.0/0.0: every flavor can
                       take it (``to_numpy()`` of pandas' ``Int64``/``boolean`` is an object array)
``string``             pandas' default string dtype (``str`` on pandas 3, ``object`` before)
``datetime``           tz-naive ``datetime64`` in UTC, in pandas' default unit (``us`` on
                       pandas 3, ``ns`` before; finer digits are dropped)
``category``           pandas ``category``, with the categories the input has
=====================  ==========================================================================

The dtype returned depends on the signature alone, never on the batch (but a category column's
categories are the batch's), so scored batches concatenate.

Casts ``validate`` makes, and refuses:

- int/uint → float: always (as numpy rounds: ints past 2**53, or 2**24 for float32, round).
  float → int: only when every value is whole, finite and in range (JSON's ``3.0``).
  int → a narrower int: only when every value fits. float64 → float32: unless it overflows.
- bool is no number: int → bool, bool → int and bool → float are refused (send true/false).
- strings → numbers and numbers → string are refused; string → string, category (of strings)
  → string.
- datetime from datetime64 (any unit), datetime objects or ISO-8601 strings. Tz-aware values are
  converted to UTC and made naive; naive values and strings without an offset are taken as UTC.
- category from a categorical or from strings.
- Missing values (None, NaN, NaT) only in nullable columns. Zero rows are valid.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray
from pandas.api.types import (
    infer_dtype,
    is_bool_dtype,
    is_datetime64_dtype,
    is_float_dtype,
    is_integer_dtype,
    is_string_dtype,
)

from mloop.errors import InvalidValueError, SignatureError

__all__ = ["DTYPES", "ColumnSpec", "Signature", "infer_signature", "to_frame"]

DTYPES = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float32", "float64", "string", "datetime", "category",
)  # fmt: skip
_INTS = frozenset(DTYPES[1:9])
_FLOATS = frozenset({"float32", "float64"})

# What pandas makes of plain strings and datetimes, whichever version is installed.
_STRING_DTYPE: Any = pd.Series(["a"]).dtype
_DATETIME_DTYPE: Any = pd.Series([datetime(2000, 1, 1)]).dtype
_PANDAS_3 = int(pd.__version__.split(".")[0]) >= 3

# What pandas' infer_dtype says of an object column, as a source kind.
_OBJECT_KINDS = {
    "string": "string",
    "integer": "int",
    "floating": "float",
    "mixed-integer-float": "float",
    "boolean": "bool",
    "datetime": "datetime",
    "datetime64": "datetime",
    "date": "datetime",
    "empty": "empty",
}
_KIND_WORDS = {
    "bool": "booleans",
    "int": "integers",
    "float": "numbers",
    "string": "strings",
    "datetime": "datetimes",
    "category": "categories",
}
_HINTS = {
    "bool": "send true/false",
    "int": "send whole numbers",
    "float": "send numbers",
    "string": "send text",
    "datetime": "send ISO-8601 strings such as '2024-05-01T12:00:00Z'",
    "category": "send strings",
}


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a signature, e.g. ``ColumnSpec("age", "int64", nullable=True)``."""

    name: str
    dtype: str
    nullable: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidValueError(f"a column name must be a non-empty string, not {self.name!r}")
        if self.dtype not in DTYPES:
            raise InvalidValueError(f"column {self.name!r}: {_dtype_problem(self.dtype)}")
        if not isinstance(self.nullable, bool):
            raise InvalidValueError(
                f"column {self.name!r}: nullable must be True or False, not {self.nullable!r}"
            )

    @property
    def _family(self) -> str:
        if self.dtype in _INTS:
            return "int"
        return "float" if self.dtype in _FLOATS else self.dtype


@dataclass(frozen=True)
class Signature:
    """The input columns a model takes, in order, and the output columns it gives.

    ``Signature.from_dict(sig.to_dict()) == sig``; :meth:`validate` checks and casts an input.
    """

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[ColumnSpec, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", _spec_tuple("inputs", self.inputs))
        object.__setattr__(self, "outputs", _spec_tuple("outputs", self.outputs))
        if not self.inputs:
            raise InvalidValueError("a signature needs at least one input column")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, keys in a fixed order: ``{"inputs": [{name, dtype, nullable}, ...], ...}``."""
        return {
            "inputs": [_spec_dict(spec) for spec in self.inputs],
            "outputs": [_spec_dict(spec) for spec in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        """Read :meth:`to_dict`'s form back; unknown or malformed fields are refused by name."""
        if not isinstance(data, Mapping):
            raise InvalidValueError(
                f"a signature must be a mapping with 'inputs' and 'outputs', "
                f"not {type(data).__name__}"
            )
        unknown = [key for key in data if key not in ("inputs", "outputs")]
        if unknown:
            raise InvalidValueError(
                f"signature has unknown field(s) {_names(unknown)}; "
                "it takes only 'inputs' and 'outputs'"
            )
        if "inputs" not in data:
            raise InvalidValueError("signature.inputs is missing: a list of input columns")
        return cls(
            _specs_from(data["inputs"], "signature.inputs"),
            _specs_from(data.get("outputs", []), "signature.outputs"),
        )

    @property
    def columns(self) -> list[str]:
        """The input column names, in order."""
        return list(self._plan.names)

    def validate(
        self,
        data: Any,
        *,
        extra_columns: Literal["error", "drop"] = "error",
        max_rows: int | None = None,
    ) -> pd.DataFrame:
        """Check ``data`` against the inputs; return a new frame of their columns and dtypes.

        ``data`` is anything :func:`to_frame` reads; positional rows take the signature's column
        names. Columns not in the signature are an error unless ``extra_columns="drop"``. The
        caller's object is never changed. Raises :class:`~mloop.errors.SignatureError`.
        """
        if extra_columns not in ("error", "drop"):
            raise InvalidValueError(
                f'extra_columns must be "error" or "drop", not {extra_columns!r}'
            )
        if max_rows is not None and (type(max_rows) is not int or max_rows < 0):
            raise InvalidValueError(f"max_rows must be None or an int >= 0, not {max_rows!r}")
        plan = self._plan
        if max_rows is not None and isinstance(data, list | tuple | np.ndarray):
            _check_rows(len(data), max_rows)  # before building a frame of a huge body
        try:
            frame = to_frame(data, plan.names)
        except InvalidValueError as error:
            raise SignatureError(str(error)) from error
        if max_rows is not None:
            _check_rows(len(frame), max_rows)

        names = frame.columns.tolist()
        if names == plan.names:
            selected = frame
        else:  # take() makes a new frame: the caller's stays as it was
            selected = frame.take(plan.positions(names, extra_columns), axis=1)
        missing = selected.isna().to_numpy()
        plan.check_missing(missing)
        todo = [
            position
            for position, (dtype, expected) in enumerate(
                zip(selected.dtypes.tolist(), plan.expected, strict=True)
            )
            if not _matches(dtype, expected)
        ]
        if todo and plan.float_dtype is not None:
            floats = _all_floats(selected, plan.float_dtype)
            if floats is not None:
                return floats
        if len(todo) > 1 and len(todo) * 4 >= len(plan.names):
            # Many columns to cast: building a new frame beats setting them one by one.
            return _rebuilt(selected, plan.specs, set(todo), missing)
        # A shallow copy is a new object; with copy-on-write its columns are the caller's until
        # someone writes to them. Without copy-on-write (pandas 2) copy the data.
        result = selected.copy(deep=not _copy_on_write()) if selected is frame else selected
        for position in todo:
            spec = plan.specs[position]
            column = selected.iloc[:, position]
            result.isetitem(position, _cast(column, spec, missing[:, position]))
        return result

    @cached_property
    def _plan(self) -> _Plan:
        return _Plan(self.inputs)


class _Plan:
    """What validate needs of a signature, worked out once per signature."""

    def __init__(self, specs: tuple[ColumnSpec, ...]) -> None:
        self.specs = specs
        self.names = [spec.name for spec in specs]
        self.index = {name: position for position, name in enumerate(self.names)}
        self.required = np.array([i for i, spec in enumerate(specs) if not spec.nullable], int)
        self.expected = [_expected_dtype(spec) for spec in specs]
        # Set when every input is float32, or every one float64: casts can go in one block.
        dtypes = {spec.dtype for spec in specs}
        self.float_dtype = (
            np.dtype(specs[0].dtype) if dtypes in ({"float32"}, {"float64"}) else None
        )

    def positions(self, names: list[Any], extra_columns: str) -> list[int]:
        """Where each signature column is in ``names``; refuses bad, missing or extra names."""
        odd = [name for name in names if not isinstance(name, str)]
        if odd:
            raise SignatureError(
                f"column names must be strings, not {_names(odd)}; send a DataFrame with named "
                "columns, records, or a mapping of column name to values"
            )
        twice = [name for name, count in Counter(names).items() if count > 1]
        if twice:
            raise SignatureError(
                f"column(s) {_names(twice)} appear more than once in the input; "
                "send each column once",
                column=twice[0],
            )
        present = {name: position for position, name in enumerate(names)}
        absent = [name for name in self.names if name not in present]
        extra = [name for name in names if name not in self.index]
        if absent:
            message = (
                f"input is missing column(s) {_names(absent)}; "
                f"the signature takes {_names(self.names)}"
            )
            if extra:
                message += f"; the input has {_names(extra)}, which it does not (misspelled?)"
            raise SignatureError(message, column=absent[0])
        if extra and extra_columns == "error":
            raise SignatureError(
                f"input has column(s) {_names(extra)} not in the signature; remove them, "
                'or pass extra_columns="drop" to ignore them',
                column=extra[0],
            )
        return [present[name] for name in self.names]

    def check_missing(self, missing: np.ndarray[Any, np.dtype[np.bool_]]) -> None:
        """Refuse missing values in columns that are not nullable, naming rows by position."""
        if not len(self.required) or not missing.size:
            return
        bad = missing[:, self.required].any(axis=0)
        if not bad.any():
            return
        columns = [self.specs[i] for i in self.required[bad]]
        spec = columns[0]
        rows = np.flatnonzero(missing[:, self.index[spec.name]])
        also = f" (so do {_names([c.name for c in columns[1:]])})" if len(columns) > 1 else ""
        raise SignatureError(
            f"column {spec.name!r} has missing values at row position(s) {_rows(rows)}{also}, "
            f"but the signature does not allow them: fill them in, or declare the column "
            f"ColumnSpec({spec.name!r}, {spec.dtype!r}, nullable=True)",
            column=spec.name,
        )


def infer_signature(input_example: Any, output_example: Any = None) -> Signature:
    """The signature of an example input (and output), e.g. the training frame's first rows.

    A column is nullable when the example has a missing value in it. Outputs: a 1-D array is
    one column ``prediction``; a 2-D array of k columns is ``probability_0`` … ``probability_k-1``;
    a DataFrame (or a named Series) keeps its names.
    """
    frame = to_frame(input_example)
    if not len(frame.columns):
        raise InvalidValueError("the input example has no columns; pass at least one")
    inputs = _infer_columns(frame, "input example")
    if output_example is None:
        return Signature(inputs)
    return Signature(inputs, _infer_columns(_output_frame(output_example), "output example"))


def to_frame(data: Any, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read model input as a DataFrame (a DataFrame itself is returned as it is, not copied).

    Accepts a DataFrame; a named Series (one column); a mapping of column → values (columns form)
    or column → value (one record); a list of mappings (records; a key a record lacks is a
    missing value); a 2-D array or list of rows (positional: named by ``columns``, else
    ``c0`` … ``cN-1``).
    """
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        if data.name is None:
            raise InvalidValueError(
                "an unnamed Series is ambiguous; name it (series.rename('x')) or send a DataFrame"
            )
        return data.to_frame()
    if isinstance(data, Mapping):
        return _mapping_frame(data)
    if isinstance(data, list | tuple):
        return _list_frame(data, columns)
    if isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise InvalidValueError(
                f"a {data.ndim}-D array is not a table; send a 2-D array of rows × columns "
                "(one row: array.reshape(1, -1))"
            )
        return _positional(data, data.shape[1], columns)
    raise InvalidValueError(
        f"cannot read a {type(data).__name__} as model input; send a pandas DataFrame, a named "
        "Series, a mapping of column → values (or column → value for one record), a list of "
        "records (mappings), or a 2-D array / list of rows"
    )


# -- reading input ----------------------------------------------------------------------------


def _is_listlike(value: Any) -> bool:
    return isinstance(value, list | tuple | pd.Series | pd.Index | np.ndarray | ExtensionArray)


def _mapping_frame(data: Mapping[Any, Any]) -> pd.DataFrame:
    listlike = [_is_listlike(value) for value in data.values()]
    if not any(listlike):
        return pd.DataFrame([dict(data)])
    if not all(listlike):
        raise InvalidValueError(
            "a mapping must hold a list of values for every column (columns form) or one value "
            "for every column (one record), not a mix of both"
        )
    values = {}
    for name, column in data.items():
        if isinstance(column, np.ndarray) and column.ndim != 1:
            raise InvalidValueError(f"column {name!r} is a {column.ndim}-D array; send a list")
        # Arrays, not Series: pandas would align Series on their index and invent missing rows.
        values[name] = column.array if isinstance(column, pd.Series | pd.Index) else column
    lengths = {len(column) for column in values.values()}
    if len(lengths) > 1:
        counts = ", ".join(f"{name!r}: {len(column)}" for name, column in values.items())
        raise InvalidValueError(
            f"columns have different lengths ({counts}); every column needs one value per row"
        )
    return pd.DataFrame(values)


def _is_row(value: Any) -> bool:
    return isinstance(value, list | tuple) or (isinstance(value, np.ndarray) and value.ndim == 1)


def _list_frame(data: Sequence[Any], columns: Sequence[str] | None) -> pd.DataFrame:
    if not data:
        return pd.DataFrame(columns=list(columns or []))
    if isinstance(data[0], Mapping):
        if not all(isinstance(row, Mapping) for row in data):
            raise InvalidValueError("a list of records must hold only mappings")
        if not all(isinstance(row, dict) for row in data):
            data = [dict(row) for row in data]
        return pd.DataFrame(list(data))
    if _is_row(data[0]):
        if not all(_is_row(row) for row in data):
            raise InvalidValueError("a list of rows must hold only lists (or tuples)")
        widths = sorted(set(map(len, data)))
        if len(widths) > 1:
            raise InvalidValueError(
                f"rows have different lengths ({', '.join(map(str, widths))}); "
                "every row needs one value per column"
            )
        return _positional(list(data), widths[0], columns)
    raise InvalidValueError(
        "a flat list is ambiguous; send a list of records (mappings) or a list of rows, "
        "e.g. [[1.0, 2.0]] for one row"
    )


def _positional(rows: Any, width: int, columns: Sequence[str] | None) -> pd.DataFrame:
    names = [f"c{i}" for i in range(width)] if columns is None else list(columns)
    if len(names) != width:
        raise InvalidValueError(
            f"rows have {width} value(s) but {len(names)} column(s) are expected "
            f"({_names(names)}); send one value per column, in that order"
        )
    return pd.DataFrame(rows, columns=names)


# -- inferring --------------------------------------------------------------------------------


def _kind(column: pd.Series[Any]) -> str:
    """What a column holds: bool, int, float, string, datetime, category, empty or other."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if isinstance(dtype, pd.DatetimeTZDtype) or is_datetime64_dtype(dtype):
        return "datetime"
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        return _OBJECT_KINDS.get(infer_dtype(column, skipna=True), "other")
    if is_bool_dtype(dtype):
        return "bool"
    if is_integer_dtype(dtype):
        return "int"
    if is_float_dtype(dtype):
        return "float"
    return "string" if is_string_dtype(dtype) else "other"


def _infer_columns(frame: pd.DataFrame, what: str) -> tuple[ColumnSpec, ...]:
    names = frame.columns.tolist()
    odd = [name for name in names if not isinstance(name, str)]
    if odd:
        raise InvalidValueError(
            f"the {what} has column names that are not strings ({_names(odd)}); name its "
            "columns, e.g. df.columns = df.columns.astype(str)"
        )
    twice = [name for name, count in Counter(names).items() if count > 1]
    if twice:
        raise InvalidValueError(f"the {what} has column(s) {_names(twice)} more than once")
    specs = []
    for position, name in enumerate(names):
        column = frame.iloc[:, position]
        specs.append(ColumnSpec(name, _infer_dtype(column, name, what), bool(column.isna().any())))
    return tuple(specs)


def _infer_dtype(column: pd.Series[Any], name: str, what: str) -> str:
    kind = _kind(column)
    dtype = column.dtype
    numpy_name = str(getattr(dtype, "numpy_dtype", dtype))  # Int64 → int64
    if kind == "int":
        return numpy_name if numpy_name in _INTS else "int64"
    if kind == "float":
        return numpy_name if numpy_name in _FLOATS else "float64"  # float16 → float64
    if kind in ("bool", "string", "datetime", "category"):
        return kind
    if kind == "empty":
        problem = "has only missing values, so its dtype cannot be inferred"
    elif numpy_name == "object":
        problem = f"mixes values of types {', '.join(_type_names(column))}"
    else:
        problem = f"has dtype {dtype}, which signatures do not support"
    raise InvalidValueError(
        f"column {name!r} of the {what} {problem}; convert it, or pass an explicit "
        f"Signature with ColumnSpec({name!r}, dtype) (dtypes: {', '.join(DTYPES)})"
    )


def _output_frame(example: Any) -> pd.DataFrame:
    if isinstance(example, pd.DataFrame):
        return example
    if isinstance(example, pd.Series):
        return example.to_frame(example.name if isinstance(example.name, str) else "prediction")
    if isinstance(example, list | tuple) and example and isinstance(example[0], Mapping):
        return _list_frame(example, None)
    if isinstance(example, list | tuple) and example and _is_row(example[0]):
        example = pd.DataFrame(list(example)).to_numpy()
    elif isinstance(example, list | tuple):
        return pd.DataFrame({"prediction": pd.Series(list(example))})
    if isinstance(example, np.ndarray) and example.ndim == 1:
        return pd.DataFrame({"prediction": example})
    if isinstance(example, np.ndarray) and example.ndim == 2:
        return pd.DataFrame(example, columns=[f"probability_{i}" for i in range(example.shape[1])])
    if isinstance(example, Mapping):
        return _mapping_frame(example)
    raise InvalidValueError(
        f"cannot read a {type(example).__name__} as an output example; send a 1-D array "
        "(predictions), a 2-D array (probabilities), a Series or a DataFrame"
    )


# -- casting ----------------------------------------------------------------------------------


_CATEGORY = object()  # stands for "any categorical dtype" in _Plan.expected


def _expected_dtype(spec: ColumnSpec) -> Any:
    """The dtype validate returns for ``spec``; None where the values must be looked at."""
    family = spec._family
    if family in ("int", "bool"):
        return np.dtype("float64" if spec.nullable else spec.dtype)
    if family == "float":
        return np.dtype(spec.dtype)
    if family == "string":
        # An object column may hold anything, so object (pandas 2) always gets checked.
        return None if np.dtype(object) == _STRING_DTYPE else _STRING_DTYPE
    return _DATETIME_DTYPE if family == "datetime" else _CATEGORY


def _matches(dtype: Any, expected: Any) -> bool:
    if expected is _CATEGORY:
        return isinstance(dtype, pd.CategoricalDtype)
    return expected is not None and bool(dtype == expected)


def _copy_on_write() -> bool:
    return _PANDAS_3 or pd.get_option("mode.copy_on_write") is True


def _rebuilt(
    frame: pd.DataFrame,
    specs: tuple[ColumnSpec, ...],
    todo: set[int],
    missing: np.ndarray[Any, Any],
) -> pd.DataFrame:
    """A new frame of ``frame``'s columns, those in ``todo`` cast to their spec."""
    columns = {}
    for position, (name, column) in enumerate(frame.items()):
        if position in todo:
            columns[name] = _cast(column, specs[position], missing[:, position])
        else:
            columns[name] = _array(column)
    return pd.DataFrame(columns, index=frame.index, copy=True)


def _all_floats(frame: pd.DataFrame, target: np.dtype[Any]) -> pd.DataFrame | None:
    """``frame`` cast to one float dtype in one block, when every column is a numpy number.

    The same values as casting column by column, in one array operation instead of thirty.
    """
    if not all(isinstance(d, np.dtype) and d.kind in "iuf" for d in frame.dtypes.tolist()):
        return None
    with np.errstate(over="ignore"):  # float64 → float32 overflow is reported below
        result = frame.to_numpy(dtype=target, copy=True)  # nothing shared with the caller
    if target == np.float32 and np.isinf(result).any():
        source = frame.to_numpy(dtype=np.float64)
        overflow = np.isinf(result) & ~np.isinf(source)
        if overflow.any():
            row, position = (int(i[0]) for i in np.nonzero(overflow))
            name = frame.columns[position]
            raise SignatureError(
                f"column {name!r} must be float32 but row {row} holds "
                f"{_show(source[row, position])}, which is too large for float32; "
                f"{_HINTS['float']}",
                column=name,
            )
    return pd.DataFrame(result, columns=frame.columns, index=frame.index)


def _array(column: pd.Series[Any]) -> Any:
    """The values of ``column``, as pandas stores them (no copy)."""
    return column.to_numpy() if isinstance(column.dtype, np.dtype) else column.array


def _cast(column: pd.Series[Any], spec: ColumnSpec, missing: np.ndarray[Any, Any]) -> Any:
    """The values of ``column`` as ``spec`` says, as a new array; or a SignatureError."""
    if missing.all():  # also zero rows: no value to object to
        return _all_missing(spec, len(column))
    kind = _kind(column)
    family = spec._family
    if family in ("int", "float") and kind in ("int", "float"):
        values = _numbers(column, spec, missing)
        if family == "int":
            return _to_int(values, column, spec, missing)
        return _to_float(values, column, spec)
    if family == kind == "bool":
        return column.to_numpy(np.float64 if spec.nullable else np.bool_, na_value=np.nan)
    if family == "string" and (kind == "string" or _is_text_category(column)):
        return _array(column.astype(_STRING_DTYPE))
    if family == "datetime" and kind in ("datetime", "string"):
        return _array(_to_datetime(column, kind, spec, missing))
    if family == "category" and kind == "string":
        return _array(column.astype("category"))
    raise _refusal(column, spec, kind, missing)


def _all_missing(spec: ColumnSpec, rows: int) -> Any:
    family = spec._family
    if family in ("int", "bool", "float"):
        return np.full(rows, np.nan, dtype=_expected_dtype(spec))
    if family == "datetime":
        return np.full(rows, np.datetime64("NaT"), dtype=_DATETIME_DTYPE)
    nothing = pd.Series(np.full(rows, None, dtype=object))
    return _array(nothing.astype(_STRING_DTYPE if family == "string" else "category"))


def _numbers(
    column: pd.Series[Any], spec: ColumnSpec, missing: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """A numpy array of a numeric column's values: missing ones NaN, Python ints as int64."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        return column.to_numpy()
    if missing.any() or is_float_dtype(dtype) or infer_dtype(column) != "integer":
        return column.to_numpy(np.float64, na_value=np.nan)
    for wide in (np.int64, np.uint64):  # Int64/UInt64, or Python ints in an object column
        try:
            return column.to_numpy(wide)
        except OverflowError:
            continue
    huge = [abs(value) >= 2**63 for value in column.to_numpy(dtype=object)]
    raise _bad_value(column, spec, ~missing, f"out of range for {spec.dtype}", np.array(huge))


def _to_int(
    values: np.ndarray[Any, Any],
    column: pd.Series[Any],
    spec: ColumnSpec,
    missing: np.ndarray[Any, Any],
) -> np.ndarray[Any, Any]:
    target = np.dtype(spec.dtype)
    info = np.iinfo(target)
    present = ~missing
    known = values[present] if missing.any() else values
    if values.dtype.kind == "f":
        whole = np.isfinite(known) & (known == np.trunc(known))
        if not whole.all():
            raise _bad_value(column, spec, present, "not a whole number", ~whole)
        # info.max + 1 is a power of two, exact as a float; info.max itself may not be.
        fits = (known >= float(info.min)) & (known < float(info.max) + 1.0)
    elif np.can_cast(values.dtype, target):
        fits = None
    else:  # bounds clamped to the values' own type, so the comparison is exact
        own = np.iinfo(values.dtype)
        fits = (known >= max(info.min, own.min)) & (known <= min(info.max, own.max))
    if fits is not None and not fits.all():
        raise _bad_value(column, spec, present, f"out of range for {spec.dtype}", ~fits)
    return values.astype(np.float64 if spec.nullable else target)


def _to_float(
    values: np.ndarray[Any, Any], column: pd.Series[Any], spec: ColumnSpec
) -> np.ndarray[Any, Any]:
    with np.errstate(over="ignore"):  # reported below, by row
        result = values.astype(spec.dtype)
    if spec.dtype == "float32":
        overflow = np.isinf(result) & ~np.isinf(values)
        if overflow.any():
            everywhere = np.ones(len(values), dtype=bool)
            raise _bad_value(column, spec, everywhere, "too large for float32", overflow)
    return result


def _to_datetime(
    column: pd.Series[Any], kind: str, spec: ColumnSpec, missing: np.ndarray[Any, Any]
) -> pd.Series[Any]:
    """Naive UTC datetimes in pandas' default unit, from datetimes or ISO-8601 strings."""
    try:
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            parsed = column.dt.tz_convert("UTC")
        elif is_datetime64_dtype(column.dtype):
            parsed = column
        else:
            iso = "ISO8601" if kind == "string" else None
            parsed = pd.to_datetime(column, utc=True, errors="coerce", format=iso)
            unread = parsed.isna().to_numpy() & ~missing
            if unread.any():
                what = "not an ISO-8601 datetime" if kind == "string" else "not a datetime"
                raise _bad_value(column, spec, ~missing, what, unread[~missing])
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_localize(None)
        naive: pd.Series[Any] = parsed.astype(_DATETIME_DTYPE)
        return naive
    except SignatureError:
        raise
    except (OverflowError, ValueError, TypeError) as error:
        raise SignatureError(
            f"column {spec.name!r} has datetimes that cannot be read ({error}); "
            f"{_HINTS['datetime']}",
            column=spec.name,
        ) from error


def _is_text_category(column: pd.Series[Any]) -> bool:
    dtype = column.dtype
    return isinstance(dtype, pd.CategoricalDtype) and infer_dtype(dtype.categories) == "string"


# -- messages ---------------------------------------------------------------------------------


def _refusal(
    column: pd.Series[Any], spec: ColumnSpec, kind: str, missing: np.ndarray[Any, Any]
) -> SignatureError:
    """A column of the wrong kind: say what it holds, show a value, and what to send."""
    family = spec._family
    values = column.to_numpy(dtype=object)[~missing]
    accept = _ACCEPTS[family]
    offending = next((i for i, value in enumerate(values) if not accept(value)), 0)
    held = _KIND_WORDS.get(kind) or f"values of types {', '.join(_type_names(column))}"
    position = int(np.flatnonzero(~missing)[offending])
    return SignatureError(
        f"column {spec.name!r} must be {spec.dtype} but holds {held}, e.g. "
        f"{_show(values[offending])} at row {position}; {_HINTS[family]}",
        column=spec.name,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


_ACCEPTS: dict[str, Callable[[Any], bool]] = {
    "bool": lambda value: isinstance(value, bool | np.bool_),
    "int": _is_number,
    "float": _is_number,
    "string": lambda value: isinstance(value, str),
    "category": lambda value: isinstance(value, str),
    "datetime": lambda value: isinstance(value, str | date | np.datetime64),
}


def _bad_value(
    column: pd.Series[Any],
    spec: ColumnSpec,
    present: np.ndarray[Any, Any],
    problem: str,
    bad: np.ndarray[Any, Any] | None = None,
) -> SignatureError:
    """Name the first offending value; ``bad`` indexes the values where ``present`` is True."""
    rows = np.flatnonzero(present)
    position = int(rows[int(np.argmax(bad)) if bad is not None else 0])
    value = column.iloc[position]
    return SignatureError(
        f"column {spec.name!r} must be {spec.dtype} but row {position} holds {_show(value)}, "
        f"which is {problem}; {_HINTS[spec._family]}",
        column=spec.name,
    )


def _check_rows(rows: int, max_rows: int) -> None:
    if rows > max_rows:
        raise SignatureError(
            f"input has {rows} rows but at most {max_rows} are accepted per request; "
            "split it into smaller batches"
        )


def _type_names(column: pd.Series[Any]) -> list[str]:
    return sorted({type(value).__name__ for value in column.dropna().to_numpy(dtype=object)})


def _show(value: Any, width: int = 40) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _names(names: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(_show(name, 100) for name in names[:limit])
    return shown + (f" (and {len(names) - limit} more)" if len(names) > limit else "")


def _rows(positions: np.ndarray[Any, Any], limit: int = 5) -> str:
    shown = ", ".join(str(int(p)) for p in positions[:limit])
    return shown + (f" (and {len(positions) - limit} more)" if len(positions) > limit else "")


def _dtype_problem(dtype: Any) -> str:
    near = difflib.get_close_matches(dtype, DTYPES, n=1) if isinstance(dtype, str) else []
    guess = f" (did you mean {near[0]!r}?)" if near else ""
    return f"{dtype!r} is not a signature dtype{guess}; use one of {', '.join(DTYPES)}"


# -- (de)serializing --------------------------------------------------------------------------


def _spec_dict(spec: ColumnSpec) -> dict[str, Any]:
    return {"name": spec.name, "dtype": spec.dtype, "nullable": spec.nullable}


def _spec_tuple(field: str, specs: Any) -> tuple[ColumnSpec, ...]:
    if not isinstance(specs, list | tuple):
        raise InvalidValueError(
            f"Signature {field} must be a tuple of ColumnSpec, not {type(specs).__name__}"
        )
    for spec in specs:
        if not isinstance(spec, ColumnSpec):
            raise InvalidValueError(
                f"Signature {field} must hold ColumnSpec objects, not {type(spec).__name__}"
            )
    twice = [name for name, count in Counter(spec.name for spec in specs).items() if count > 1]
    if twice:
        raise InvalidValueError(f"Signature {field} name column(s) {_names(twice)} more than once")
    return tuple(specs)


def _specs_from(items: Any, where: str) -> tuple[ColumnSpec, ...]:
    if not isinstance(items, list | tuple):
        raise InvalidValueError(f"{where} must be a list of columns, not {type(items).__name__}")
    specs = []
    for i, item in enumerate(items):
        field = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidValueError(
                f"{field} must be a mapping with name, dtype and nullable, "
                f"not {type(item).__name__}"
            )
        unknown = [key for key in item if key not in ("name", "dtype", "nullable")]
        if unknown:
            raise InvalidValueError(
                f"{field} has unknown field(s) {_names(unknown)}; it takes name, dtype, nullable"
            )
        for key in ("name", "dtype"):
            if key not in item:
                raise InvalidValueError(f"{field}.{key} is missing")
        name, dtype, nullable = item["name"], item["dtype"], item.get("nullable", False)
        if not isinstance(name, str) or not name:
            raise InvalidValueError(f"{field}.name must be a non-empty string, not {name!r}")
        if dtype not in DTYPES:
            raise InvalidValueError(f"{field}.dtype: {_dtype_problem(dtype)}")
        if not isinstance(nullable, bool):
            raise InvalidValueError(f"{field}.nullable must be true or false, not {nullable!r}")
        specs.append(ColumnSpec(name, dtype, nullable))
    return tuple(specs)
