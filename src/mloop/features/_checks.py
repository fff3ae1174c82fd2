"""Data checks of a feature view: declared constraints, checked by pandera, reported by row.

Each field of a view has a dtype and, optionally, a :class:`Constraint`; the view may ask for
freshness. :func:`validate_frame` checks a frame against them and returns a
:class:`ValidationReport`; :func:`enforce` applies the view's policy to it (``"error"`` raises
:class:`FeatureValidationError`, ``"warn"`` logs to the ``mloop.features`` logger, ``"off"``
does nothing)::

    fields = {"age": ("int64", Constraint(not_null=True, min=0, max=150))}
    enforce(validate_frame("users", frame, fields), "error")

The checks, and the ``check`` name a :class:`Violation` carries:

``missing``    a declared column (or the timestamp field) is not in the frame.
``dtype``      a value does not have the field's type. Integer columns suit int fields (an
               int32 field also needs the values to fit), and so do float columns whose values
               are whole and in range; any non-bool number suits a float field; pandas string
               columns and categoricals of strings suit string fields; bool columns suit bool
               fields; datetime64 columns (naive or tz-aware) suit datetime fields. In an object
               column each value is checked on its own. A column of another type fails on
               every non-null row, and its value checks are not run.
``not_null``   a value is missing (None, NaN, NaT, pd.NA), and the constraint says ``not_null``.
``min/max``    a number is below ``min`` or above ``max`` (both inclusive; numeric fields only).
``allowed``    a value is not one of ``allowed``.
``freshness``  the newest timestamp is older than ``now - freshness``. Naive timestamps are
               UTC. A frame without any timestamp is not fresh either.

Only ``not_null`` looks at missing values; the other checks skip them. pandera (lazy mode)
runs every check, so one report lists every violation. Columns not declared are ignored.

``rows`` are positions in the frame (0 is its first row, whatever its index), the first 20;
``count`` counts them all. A ``missing`` column counts every row and lists none; ``freshness``
points at the row of the newest timestamp (count 1), or at none when there is no timestamp.
``examples`` holds up to 5 distinct offending values as JSON (infinities as ``"inf"``,
timestamps as ISO-8601 strings); ``detail`` says the rule in words (``">= 0"``).
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandas.api.types import (
    infer_dtype,
    is_bool_dtype,
    is_datetime64_any_dtype,
    is_float_dtype,
    is_integer_dtype,
    is_numeric_dtype,
    is_object_dtype,
    is_string_dtype,
)
from pandera.config import config_context
from pandera.errors import SchemaError, SchemaErrors

from mloop.errors import InvalidInputError, InvalidValueError

__all__ = [
    "FEATURE_DTYPES",
    "CheckName",
    "Constraint",
    "FeatureDtype",
    "FeatureValidationError",
    "Policy",
    "ValidationReport",
    "Violation",
    "enforce",
    "validate_frame",
]

FeatureDtype = Literal["int32", "int64", "float32", "float64", "string", "bool", "datetime"]
FEATURE_DTYPES: tuple[str, ...] = get_args(FeatureDtype)
Policy = Literal["error", "warn", "off"]
CheckName = Literal["missing", "dtype", "not_null", "min", "max", "allowed", "freshness"]

MAX_ROWS = 20  # row positions kept per violation
MAX_EXAMPLES = 5  # distinct offending values kept per violation

logger = logging.getLogger("mloop.features")

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_NUMERIC = ("int32", "int64", "float32", "float64")


@dataclass(frozen=True)
class Constraint:
    """What a field's values must satisfy; declared next to the field in a view.

    ``Constraint(not_null=True, min=0, max=150)``, ``Constraint(allowed=("eu", "us"))``.
    ``min`` and ``max`` are inclusive.
    """

    not_null: bool = False
    min: float | int | None = None
    max: float | int | None = None
    allowed: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        if type(self.not_null) is not bool:
            raise InvalidValueError(
                f"constraint.not_null must be true or false, not {self.not_null!r}"
            )
        for key in ("min", "max"):
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, _bound(key, value))
        if self.min is not None and self.max is not None and self.min > self.max:
            raise InvalidValueError(
                f"constraint.min ({self.min!r}) is more than constraint.max ({self.max!r})"
            )
        if self.allowed is not None:
            object.__setattr__(self, "allowed", _allowed(self.allowed))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, every key always present, in a fixed order."""
        return {
            "not_null": self.not_null,
            "min": self.min,
            "max": self.max,
            "allowed": None if self.allowed is None else list(self.allowed),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Constraint:
        """Read :meth:`to_dict`'s form back; absent keys take their defaults.

        Unknown keys and values of the wrong type are refused with
        :class:`~mloop.errors.InvalidValueError` naming the key.
        """
        if not isinstance(data, Mapping):
            raise InvalidValueError(f"a constraint must be a mapping, not {type(data).__name__}")
        unknown = sorted(str(key) for key in data if key not in _CONSTRAINT_KEYS)
        if unknown:
            raise InvalidValueError(
                f"constraint has unknown key(s) {', '.join(map(repr, unknown))}; "
                f"it takes {', '.join(map(repr, _CONSTRAINT_KEYS))}"
            )
        allowed = data.get("allowed")
        if allowed is not None and not isinstance(allowed, list | tuple):
            raise InvalidValueError(
                f"constraint.allowed must be a list or null, not {type(allowed).__name__}"
            )
        return cls(
            not_null=data.get("not_null", False),
            min=data.get("min"),
            max=data.get("max"),
            allowed=None if allowed is None else tuple(allowed),
        )


_CONSTRAINT_KEYS = ("not_null", "min", "max", "allowed")


def _bound(key: str, value: Any) -> int | float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise InvalidValueError(f"constraint.{key} must be a number or null, not {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    number = float(value)
    if not math.isfinite(number):
        raise InvalidValueError(f"constraint.{key} must be finite, not {value!r}")
    return number


def _allowed(values: Any) -> tuple[Any, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidValueError(
            f"constraint.allowed must be a list or tuple of values, not {values!r}"
        )
    out: list[Any] = []
    for value in values:
        if isinstance(value, bool | np.bool_):
            out.append(bool(value))
        elif isinstance(value, str):
            out.append(str(value))
        elif isinstance(value, numbers.Real):
            out.append(_bound("allowed", value))
        else:
            raise InvalidValueError(
                f"constraint.allowed takes strings, numbers and booleans, not {value!r}"
            )
    if not out:
        raise InvalidValueError("constraint.allowed is empty: no value could pass")
    return tuple(out)


@dataclass(frozen=True)
class Violation:
    """One check failing on one column: which rows (the first 20), how many, and examples."""

    column: str
    check: str  # one of CheckName
    rows: list[int]
    count: int
    examples: list[Any]
    detail: str = ""  # the rule in words: ">= 0", "expected int64, got str", ...

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, keys in a fixed order."""
        return {
            "column": self.column,
            "check": self.check,
            "rows": list(self.rows),
            "count": self.count,
            "examples": list(self.examples),
            "detail": self.detail,
        }

    def line(self) -> str:
        """One line of text: the column, the check, the count and the first rows."""
        if self.check == "missing":
            return f"column {self.column!r}: missing from the frame"
        rule = f" ({self.detail})" if self.detail else ""
        noun = "row" if self.count == 1 else "rows"
        text = f"column {self.column!r}: {self.check}{rule} fails on {self.count:,} {noun}"
        if self.rows:
            shown = ", ".join(map(str, self.rows[:10]))
            more = ", …" if self.count > len(self.rows[:10]) else ""
            text += f"; {'row' if self.count == 1 else 'rows'} {shown}{more}"
        if self.examples and self.check != "not_null":
            text += f"; e.g. {', '.join(map(repr, self.examples[:3]))}"
        return text


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of :func:`validate_frame`: every violation found in one pass."""

    view: str
    rows: int
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return not self.violations

    def summary(self) -> str:
        """Human text: a headline, then one line per violation."""
        head = f"feature view {self.view!r}: {self.rows:,} rows"
        if self.ok:
            return f"{head}, every check passes"
        noun = "violation" if len(self.violations) == 1 else "violations"
        lines = [f"{head}, {len(self.violations)} {noun}:"]
        lines += [f"  {violation.line()}" for violation in self.violations]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, keys in a fixed order."""
        return {
            "view": self.view,
            "rows": self.rows,
            "ok": self.ok,
            "violations": [violation.to_dict() for violation in self.violations],
        }


class FeatureValidationError(InvalidInputError):
    """A frame failed its view's checks under the ``"error"`` policy; ``report`` says how."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(
            f"{report.summary()}\nFix the data, or relax the view's constraints or its "
            'validation policy ("warn" logs instead of failing).'
        )
        self.report = report


def enforce(report: ValidationReport, policy: Policy) -> None:
    """Apply ``policy`` to ``report``: raise, log a warning, or do nothing.

    ``"error"`` raises :class:`FeatureValidationError`; ``"warn"`` logs the summary to the
    ``mloop.features`` logger; ``"off"`` ignores the report. A clean report passes silently.
    """
    if policy not in get_args(Policy):
        raise InvalidValueError(f'policy must be "error", "warn" or "off", not {policy!r}')
    if policy == "off" or report.ok:
        return
    if policy == "warn":
        logger.warning("%s", report.summary())
        return
    raise FeatureValidationError(report)


def validate_frame(
    view: str,
    frame: pd.DataFrame,
    fields: Mapping[str, tuple[str, Constraint | None]],
    *,
    timestamp_field: str | None = None,
    freshness: timedelta | None = None,
    now: datetime | None = None,
) -> ValidationReport:
    """Check ``frame`` against the declared ``fields`` and freshness; never raises on bad data.

    ``fields`` maps a column name to its feature dtype and constraint (or None). Freshness
    needs ``timestamp_field``; ``now`` defaults to the current time (naive means UTC).
    Declarations that cannot be checked (an unknown dtype, ``min`` on a string field) raise
    :class:`~mloop.errors.InvalidValueError`.
    """
    if not isinstance(frame, pd.DataFrame):
        raise InvalidValueError(f"frame must be a pandas DataFrame, not {type(frame).__name__}")
    declared = {name: _declaration(name, spec) for name, spec in fields.items()}
    if freshness is not None:
        if not isinstance(freshness, timedelta) or freshness <= timedelta(0):
            raise InvalidValueError(f"freshness must be a timedelta > 0, not {freshness!r}")
        if timestamp_field is None:
            raise InvalidValueError("freshness needs the view's timestamp_field")
    if timestamp_field is not None and timestamp_field not in declared:
        declared[timestamp_field] = ("datetime", None)
    duplicated = sorted({str(name) for name in frame.columns[frame.columns.duplicated()]})
    clash = [name for name in duplicated if name in declared]
    if clash:
        raise InvalidValueError(
            f"frame has more than one column named {', '.join(map(repr, clash))}"
        )

    present = [name for name in declared if name in frame.columns]
    data = frame[present]
    if not data.index.equals(pd.RangeIndex(len(data))):
        data = data.set_axis(pd.RangeIndex(len(data)), axis=0)  # labels become positions

    columns: dict[str, pa.Column] = {}
    kinds: dict[str, list[str]] = {}
    details: dict[str, list[str]] = {}
    for name, (dtype, constraint) in declared.items():
        column = data[name] if name in data.columns else None
        checks = _plan_checks(dtype, constraint or Constraint(), column)
        columns[name] = pa.Column(
            checks=[check for _, _, check in checks], nullable=True, required=True, name=name
        )
        kinds[name] = [kind for kind, _, _ in checks]
        details[name] = [detail for _, detail, _ in checks]

    schema = pa.DataFrameSchema(columns, strict=False)
    found: list[Violation] = []
    # PANDERA_VALIDATION_ENABLED=False (or a caller's config_context) must not skip the checks.
    with config_context(validation_enabled=True, validation_depth="SCHEMA_AND_DATA"):
        try:
            schema.validate(data, lazy=True)
        except SchemaErrors as errors:
            found = [_violation(error, len(data), kinds, details) for error in errors.schema_errors]

    if freshness is not None and timestamp_field is not None and timestamp_field in data.columns:
        stale = _freshness(data[timestamp_field], timestamp_field, freshness, _now(now))
        if stale is not None:
            found.append(stale)

    order = {name: index for index, name in enumerate(declared)}
    ranks = {name: index for index, name in enumerate(get_args(CheckName))}
    found.sort(
        key=lambda v: (v.check == "freshness", order.get(v.column, 0), ranks.get(v.check, 99))
    )
    return ValidationReport(view=view, rows=len(frame), violations=found)


def _now(now: datetime | None) -> pd.Timestamp:
    if now is None:
        return pd.Timestamp(datetime.now(UTC))
    if not isinstance(now, datetime):
        raise InvalidValueError(f"now must be a datetime, not {now!r}")
    return _utc(pd.Timestamp(now))


def _declaration(name: str, spec: Any) -> tuple[str, Constraint | None]:
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise InvalidValueError(f"field {name!r} must be given as (dtype, constraint or None)")
    dtype, constraint = spec
    if dtype not in FEATURE_DTYPES:
        raise InvalidValueError(
            f"field {name!r} has dtype {dtype!r}; feature dtypes are {', '.join(FEATURE_DTYPES)}"
        )
    if constraint is None:
        return dtype, None
    if not isinstance(constraint, Constraint):
        raise InvalidValueError(f"field {name!r}: constraint must be a Constraint or None")
    if (constraint.min is not None or constraint.max is not None) and dtype not in _NUMERIC:
        raise InvalidValueError(f"field {name!r}: min and max apply to numeric fields, not {dtype}")
    if constraint.allowed is not None:
        wrong = [value for value in constraint.allowed if not _fits(dtype, value)]
        if wrong:
            raise InvalidValueError(
                f"field {name!r}: allowed value(s) {', '.join(map(repr, wrong))} "
                f"are not {dtype} values"
            )
    return dtype, constraint


def _fits(dtype: str, value: Any) -> bool:
    if dtype in ("int32", "int64"):
        low, high = _INT_RANGES[dtype]
        return type(value) is int and low <= value <= high
    if dtype in ("float32", "float64"):
        return type(value) in (int, float)
    return type(value) is {"string": str, "bool": bool}.get(dtype)


# --- building the pandera checks --------------------------------------------------------

SeriesCheck = Callable[[pd.Series], pd.Series]
_Plan = list[tuple[str, str, pa.Check]]  # (our check name, detail, the pandera check)


def _plan_checks(dtype: str, constraint: Constraint, column: pd.Series | None) -> _Plan:
    """The pandera checks of one column; their order is the order pandera numbers them in."""
    plan: _Plan = []
    if constraint.not_null:
        notna: SeriesCheck = pd.Series.notna
        plan.append(("not_null", "", _check(notna, ignore_na=False)))
    if column is None:  # pandera reports the column as missing; nothing else can be checked
        return plan
    typed = _typed(dtype, column)
    detail = f"expected {dtype}, got {column.dtype}"
    if typed is _no_value_typed:
        plan.append(("dtype", detail, _check(typed)))
        return plan  # comparing values of the wrong type would be meaningless
    if typed is not None:
        plan.append(("dtype", detail, _check(typed)))
    object_column = is_object_dtype(column.dtype)
    for name, rule, builtin, test in _value_rules(constraint):
        if object_column:  # mixed types: compare only the values that have the field's type
            assert typed is not None
            plan.append((name, rule, _check(_among_typed(typed, test))))
        else:
            plan.append((name, rule, builtin))
    return plan


def _value_rules(constraint: Constraint) -> list[tuple[str, str, pa.Check, SeriesCheck]]:
    rules: list[tuple[str, str, pa.Check, SeriesCheck]] = []
    low, high, allowed = constraint.min, constraint.max, constraint.allowed
    if low is not None:
        rules.append(("min", f">= {low!r}", _limit(pa.Check.ge(low)), lambda s: s >= low))
    if high is not None:
        rules.append(("max", f"<= {high!r}", _limit(pa.Check.le(high)), lambda s: s <= high))
    if allowed is not None:
        shown = ", ".join(map(repr, allowed[:10])) + (", ..." if len(allowed) > 10 else "")
        rules.append(
            (
                "allowed",
                f"one of {shown}",
                _limit(pa.Check.isin(allowed)),
                lambda s: s.isin(allowed),
            )
        )
    return rules


def _check(test: SeriesCheck, *, ignore_na: bool = True) -> pa.Check:
    return pa.Check(test, ignore_na=ignore_na, n_failure_cases=MAX_ROWS)


def _limit(check: pa.Check) -> pa.Check:
    # pandera keeps (and formats into its message) every failure case unless told otherwise:
    # 18 s for 1M failing rows × 9 columns. Counts come from the check's output instead.
    check.n_failure_cases = MAX_ROWS
    return check


def _among_typed(typed: SeriesCheck, test: SeriesCheck) -> SeriesCheck:
    def check(series: pd.Series) -> pd.Series:
        ok = typed(series).to_numpy(dtype=bool)
        result = pd.Series(True, index=series.index)
        if ok.any():
            result[ok] = test(series[ok].infer_objects()).to_numpy(dtype=bool)
        return result

    return check


def _no_value_typed(series: pd.Series) -> pd.Series:
    return pd.Series(False, index=series.index)


def _typed(dtype: str, column: pd.Series) -> SeriesCheck | None:
    """Which values of ``column`` have ``dtype``: None when all must, ``_no_value_typed`` when
    none can (a column of another type), else a check that looks at the values."""
    kind = column.dtype
    if is_object_dtype(kind):
        return _elementwise(_PYTHON_TYPES[dtype])
    if dtype in ("int32", "int64"):
        low, high = _INT_RANGES[dtype]
        if is_integer_dtype(kind):
            info = np.iinfo(getattr(kind, "numpy_dtype", kind))
            return None if low <= info.min and info.max <= high else _between(low, high)
        if is_float_dtype(kind):
            return _whole_between(low, high)
        return _no_value_typed
    if dtype in ("float32", "float64"):
        return None if is_numeric_dtype(kind) and not is_bool_dtype(kind) else _no_value_typed
    if dtype == "string":
        if isinstance(kind, pd.CategoricalDtype):
            strings = infer_dtype(kind.categories) in ("string", "empty")
            return None if strings else _no_value_typed
        return None if is_string_dtype(kind) else _no_value_typed
    if dtype == "bool":
        return None if is_bool_dtype(kind) else _no_value_typed
    return None if is_datetime64_any_dtype(kind) else _no_value_typed


def _int_value(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _real_value(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


_PYTHON_TYPES: dict[str, Callable[[Any], bool]] = {
    "int32": lambda v: _int_value(v) and -(2**31) <= v < 2**31,
    "int64": lambda v: _int_value(v) and -(2**63) <= v < 2**63,
    "float32": _real_value,
    "float64": _real_value,
    "string": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool | np.bool_),
    "datetime": lambda v: isinstance(v, datetime),
}


def _elementwise(test: Callable[[Any], bool]) -> SeriesCheck:
    def check(series: pd.Series) -> pd.Series:
        return series.map(test).astype(bool)

    return check


def _between(low: int, high: int) -> SeriesCheck:
    def check(series: pd.Series) -> pd.Series:
        return (series >= low) & (series <= high)

    return check


def _whole_between(low: int, high: int) -> SeriesCheck:
    def check(series: pd.Series) -> pd.Series:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        ok = np.isfinite(values) & (np.floor(values) == values)
        ok &= (values >= low) & (values < float(high) + 1)  # float(2**63 - 1) rounds up
        return pd.Series(ok, index=series.index)

    return check


# --- reading pandera's verdict ----------------------------------------------------------


def _violation(
    error: SchemaError, rows: int, kinds: dict[str, list[str]], details: dict[str, list[str]]
) -> Violation:
    cases = error.failure_cases
    if error.check == "column_in_dataframe":
        return Violation(str(cases), "missing", [], rows, [], "not in the frame")
    column = str(error.column_name)
    index, output = error.check_index, error.check_output
    if not isinstance(index, int) or output is None:
        # pandera could not run the check (it raised): report that rather than hide it
        kind = kinds[column][index] if isinstance(index, int) else str(error.check)
        return Violation(column, kind, [], rows, [], f"could not be checked: {cases}"[:300])
    kind, detail = kinds[column][index], details[column][index]
    failed = ~output.to_numpy(dtype=bool)
    positions = output.index.to_numpy()[failed][:MAX_ROWS]
    values: list[Any] = []
    if isinstance(cases, pd.DataFrame) and "failure_case" in cases.columns:
        for value in cases["failure_case"].head(MAX_ROWS):
            example = _jsonable(value)
            if example not in values and len(values) < MAX_EXAMPLES:
                values.append(example)
    return Violation(column, kind, [int(p) for p in positions], int(failed.sum()), values, detail)


def _freshness(
    column: pd.Series, name: str, freshness: timedelta, now: pd.Timestamp
) -> Violation | None:
    if is_datetime64_any_dtype(column.dtype):
        stamps = column
    elif is_object_dtype(column.dtype):  # values that are not datetimes fail the dtype check
        typed = column.map(_PYTHON_TYPES["datetime"]).astype(bool)
        stamps = pd.to_datetime(column.where(typed), utc=True)
    else:
        return None  # a column of another type: the dtype check reports it
    if stamps.dt.tz is None:
        stamps = stamps.dt.tz_localize(UTC)
    if stamps.isna().all():
        return Violation(name, "freshness", [], len(column), [], "no timestamp to judge by")
    position = int(stamps.argmax())  # skips NaT
    newest = _utc(stamps.iloc[position])
    if newest >= now - freshness:
        return None
    return Violation(
        name,
        "freshness",
        [position],
        1,
        [newest.isoformat()],
        f"the newest must be within {freshness} of {now.isoformat()}",
    )


def _utc(stamp: pd.Timestamp) -> pd.Timestamp:
    return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)


def _jsonable(value: Any) -> Any:
    """A JSON-able form of one failure case: numbers as numbers, timestamps as ISO-8601."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return None
        return number if math.isfinite(number) else str(number)  # "inf", "-inf"
    if isinstance(value, str):
        return str(value)
    if isinstance(value, pd.Timestamp):
        return _utc(value).isoformat() if not pd.isna(value) else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return repr(value)
