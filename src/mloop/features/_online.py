"""Online lookups: what a list of feature references reads, and the lookup itself.

Working out what ``["driver_stats:f0", ...]`` reads (which views, which join keys, which
output columns) takes longer than the lookup, so the answer, an :class:`OnlinePlan`, is
computed once per (references, ``full_feature_names``) and kept with the applied definitions
it came from (``Applied.derived``): a new ``apply`` drops it with them. A lookup then costs the
online store's read and the building of the columns, with nothing else on the way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidValueError
from mloop.features._refs import Applied, Resolved, resolve
from mloop.features.online import OnlineStore, Status

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["OnlineFeatures", "OnlinePlan", "check_rows", "online_plan", "read_online"]

_MAX_PLANS = 1024  # plans kept per set of applied definitions


@dataclass(frozen=True, slots=True)
class OnlineFeatures:
    """Online lookup results: a column of values and one of statuses per requested feature,
    plus the entity rows' own fields, in the order the rows were given."""

    columns: dict[str, list[Any]]
    statuses: dict[str, list[Status]]

    def to_dict(self) -> dict[str, list[Any]]:
        return {name: list(values) for name, values in self.columns.items()}

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.columns)


@dataclass(frozen=True, slots=True)
class ViewRead:
    """One read of the online store: a view's features for the rows' join keys."""

    view: str
    join_keys: tuple[str, ...]
    features: tuple[str, ...]
    columns: tuple[str, ...]  # the output column of each feature


@dataclass(frozen=True, slots=True)
class OnlinePlan:
    """What a list of references reads, and the columns of the answer, in order."""

    resolved: Resolved
    reads: tuple[ViewRead, ...]
    key_names: tuple[str, ...]  # every join key, first seen first
    outputs: tuple[str, ...]  # the output columns, in request order
    in_order: bool  # the reads give exactly ``outputs``, in order (no on-demand views)


def online_plan(applied: Applied, features: Sequence[str], *, full_names: bool) -> OnlinePlan:
    """The plan of ``features`` (cached with ``applied``); errors name a bad reference."""
    if isinstance(features, str):
        return _make_plan(applied, features, full_names)  # refused there, with the reason
    refs = tuple(features)
    cache_key = ("online", refs, bool(full_names))
    try:
        plan: OnlinePlan | None = applied.derived.get(cache_key)
    except TypeError:  # an unhashable reference: resolve says what is wrong with it
        return _make_plan(applied, refs, full_names)
    if plan is None:
        plan = _make_plan(applied, refs, full_names)
        if len(applied.derived) >= _MAX_PLANS:
            applied.derived.clear()
        applied.derived[cache_key] = plan
    return plan


def _make_plan(applied: Applied, refs: Sequence[str], full_names: bool) -> OnlinePlan:
    resolved = resolve(applied, refs, full_names=full_names)
    names = {(v, f): c for v, f, c in [*resolved.outputs, *resolved.hidden]}
    reads = []
    key_names: list[str] = []
    for view_name, wanted in resolved.by_view.items():
        view = applied.views[view_name]
        join_keys = view.join_keys
        key_names += [k for k in join_keys if k not in key_names]
        reads.append(
            ViewRead(
                view_name,
                join_keys,
                tuple(wanted),
                tuple(names[(view_name, feature)] for feature in wanted),
            )
        )
    outputs = tuple(c for _, _, c in resolved.outputs)
    read_columns = tuple(column for read in reads for column in read.columns)
    in_order = read_columns == outputs and not resolved.on_demand
    return OnlinePlan(resolved, tuple(reads), tuple(key_names), outputs, in_order)


def check_rows(entity_rows: Any) -> Sequence[Mapping[str, Any]]:
    """``entity_rows`` if it is a list of dicts (any sequence of mappings), else the error."""
    if type(entity_rows) is not list and (
        isinstance(entity_rows, Mapping) or not isinstance(entity_rows, Sequence)
    ):
        raise InvalidValueError("entity_rows must be a list of dicts, one per entity")
    for index, row in enumerate(entity_rows):
        if type(row) is not dict and not isinstance(row, Mapping):
            raise InvalidValueError(f"entity row {index} must be a dict, not {type(row).__name__}")
    return entity_rows


def read_online(
    online: OnlineStore, plan: OnlinePlan, rows: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, list[Any]], dict[str, list[Status]]]:
    """Every planned feature's values and statuses for ``rows``, one online read per view."""
    columns: dict[str, list[Any]] = {}
    statuses: dict[str, list[Status]] = {}
    single = len(rows) == 1
    for read in plan.reads:
        found = online.read(read.view, _keys(rows, read), read.features)
        if single:  # the common serving case: no transposing
            for column, value, status in zip(
                read.columns, found.values[0], found.statuses[0], strict=True
            ):
                columns[column] = [value]
                statuses[column] = [status]
        elif rows:
            for column, values, states in zip(
                read.columns,
                zip(*found.values, strict=True),
                zip(*found.statuses, strict=True),
                strict=True,
            ):
                columns[column] = list(values)
                statuses[column] = list(states)
        else:
            for column in read.columns:
                columns[column] = []
                statuses[column] = []
    return columns, statuses


def _keys(rows: Sequence[Mapping[str, Any]], read: ViewRead) -> list[tuple[Any, ...]]:
    names = read.join_keys
    try:
        if len(names) == 1:
            name = names[0]
            return [(row[name],) for row in rows]
        return [tuple([row[name] for name in names]) for row in rows]
    except KeyError:
        pass
    for index, row in enumerate(rows):
        missing = [name for name in names if name not in row]
        if missing:
            raise InvalidValueError(
                f"entity row {index} lacks join key {missing[0]!r} of feature view {read.view!r}"
            )
    return [tuple([row[name] for name in names]) for row in rows]  # pragma: no cover
