"""The SQL the search filter compiles to, where SQLite and PostgreSQL would otherwise differ.

:mod:`mloop.store._filter` parses the language; this module holds the pieces of SQL it is
compiled to: the run attributes' columns, one LEFT OUTER JOIN per metric/param/tag key, a LIKE
that is case-sensitive on both databases, text that compares in byte order on both, and an
ORDER BY that puts missing values last in both directions.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from mloop.errors import InvalidInputError
from mloop.store._schema import latest_metrics, params, runs, tags

__all__ = ["ATTRIBUTE_COLUMNS", "KeyJoins", "compare", "select_run_ids", "sort_keys"]

_MAX_INT64 = 2**63 - 1

# Filterable run attributes in the order error messages list them; run_id is also spelled id.
ATTRIBUTE_COLUMNS: dict[str, sa.Column[Any]] = {
    "run_id": runs.c.id,
    "name": runs.c.name,
    "status": runs.c.status,
    "user": runs.c.user,
    "kind": runs.c.kind,
    "start_time": runs.c.start_ms,
    "end_time": runs.c.end_ms,
    "experiment_id": runs.c.experiment_id,
    "parent_run_id": runs.c.parent_run_id,
    "git_commit": runs.c.git_commit,
    "git_branch": runs.c.git_branch,
}

_ESCAPE = "\\"  # the LIKE escape character: one backslash, as PostgreSQL's default
_VALUE_TABLES: dict[str, sa.Table] = {"metrics": latest_metrics, "params": params, "tags": tags}
_OPERATORS: dict[str, Callable[[Any, Any], sa.ColumnElement[bool]]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


class KeyJoins:
    """One LEFT OUTER JOIN per distinct (kind, key): a run without the key gets NULL, not dropped.

    >>> joins = KeyJoins()
    >>> joins.value("metrics", "auc") is joins.value("metrics", "auc")
    True
    """

    def __init__(self) -> None:
        self._aliases: dict[tuple[str, str], sa.FromClause] = {}

    def value(self, kind: str, key: str) -> sa.ColumnElement[Any]:
        """The value column of ``kind`` ("metrics", "params" or "tags") for ``key``, joined once."""
        alias = self._aliases.get((kind, key))
        if alias is None:
            alias = _VALUE_TABLES[kind].alias(f"{kind[0]}{len(self._aliases)}")
            self._aliases[kind, key] = alias
        column: sa.ColumnElement[Any] = alias.c.value
        return column

    def from_clause(self) -> sa.FromClause:
        """``runs`` LEFT OUTER JOINed to every alias handed out so far."""
        joined: sa.FromClause = runs
        for (_, key), alias in self._aliases.items():
            on = sa.and_(alias.c.run_id == runs.c.id, alias.c.key == key)
            joined = joined.outerjoin(alias, on)
        return joined


class _ByteOrder(FunctionElement[str]):
    inherit_cache = True
    type = sa.Text()


@compiles(_ByteOrder)
def _render_byte_order(element: _ByteOrder, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's default BINARY collation already compares UTF-8 bytes, i.e. code points.
    return compiler.process(element.clauses, **kw)


@compiles(_ByteOrder, "postgresql")
def _render_byte_order_postgresql(element: _ByteOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)} COLLATE "C")'


def _byte_order(column: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    """``column`` compared and sorted by code point on every database, as Python sorts str.

    PostgreSQL otherwise uses the database's locale, where e.g. 'a' < 'B' < 'b'.
    """
    return _ByteOrder(column)


class _CaseSensitiveLike(FunctionElement[bool]):
    inherit_cache = True
    type = sa.Boolean()


@compiles(_CaseSensitiveLike)
def _render_like(element: _CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    column, pattern, _ = element.clauses.clauses
    return f"({compiler.process(column.like(pattern, escape=_ESCAPE), **kw)})"


@compiles(_CaseSensitiveLike, "sqlite")
def _render_like_sqlite(element: _CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's LIKE ignores ASCII case (unless a pragma says otherwise); GLOB never does.
    column, _, glob = element.clauses.clauses
    return f"({compiler.process(column, **kw)} GLOB {compiler.process(glob, **kw)})"


def _like(
    column: sa.ColumnElement[Any], pattern: str, *, ignore_case: bool
) -> sa.ColumnElement[bool]:
    r"""``column LIKE pattern ESCAPE '\'`` (or ILIKE), the same on SQLite as on PostgreSQL.

    LIKE is case-sensitive on both; ILIKE is ``lower(column) LIKE lower(pattern)`` on SQLite.
    ``pattern`` must not end with an unpaired backslash (the parser refuses that).
    """
    if ignore_case:
        return column.ilike(pattern, escape=_ESCAPE)
    return _CaseSensitiveLike(column, sa.literal(pattern), sa.literal(_like_to_glob(pattern)))


def _like_to_glob(pattern: str) -> str:
    r"""The GLOB pattern that matches what LIKE ``pattern`` with ESCAPE '\' matches."""
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        else:
            literal = next(chars, _ESCAPE) if char == _ESCAPE else char
            # In GLOB a one-character set is the only way to write * ? [ literally.
            out.append(f"[{literal}]" if literal in "*?[" else literal)
    return "".join(out)


def compare(
    column: sa.ColumnElement[Any], op: str, value: Any, *, text: bool
) -> sa.ColumnElement[bool]:
    """``column op value`` for one of the filter language's operators (``"NOT LIKE"``, ...).

    ``value`` is a tuple for IN / NOT IN and ignored for IS [NOT] NULL; ``text`` makes the
    ordering operators compare by code point.
    """
    if op in ("IS NULL", "IS NOT NULL"):
        return column.is_(None) if op == "IS NULL" else column.is_not(None)
    if op in ("IN", "NOT IN"):
        return column.in_(value) if op == "IN" else column.not_in(value)
    if op.endswith("LIKE"):
        matches = _like(column, value, ignore_case=op.endswith("ILIKE"))
        return sa.not_(matches) if op.startswith("NOT") else matches
    return _OPERATORS[op](_byte_order(column) if text else column, value)


def sort_keys(
    column: sa.ColumnElement[Any], *, descending: bool, nullable: bool, text: bool
) -> list[sa.UnaryExpression[Any]]:
    """ORDER BY terms for ``column``, NULLs last in both directions on every database.

    SQLite sorts NULL first and PostgreSQL last (ascending), and SQLite before 3.30 has no
    NULLS LAST, so sort on "is it NULL" first. ``text`` sorts by code point.
    """
    keys: list[sa.UnaryExpression[Any]] = []
    if nullable:
        keys.append(sa.case((column.is_(None), 1), else_=0).asc())
    if text:
        column = _byte_order(column)
    keys.append(column.desc() if descending else column.asc())
    return keys


def select_run_ids(
    joins: KeyJoins,
    *,
    where: sa.ColumnElement[bool] | None,
    order: Sequence[sa.UnaryExpression[Any]],
    experiment_ids: Sequence[str] | None,
    include_deleted: bool,
    limit: int | None,
    offset: int,
) -> sa.Select[str]:
    """SELECT runs.id FROM runs and ``joins`` WHERE ... ORDER BY ``order``, then runs.id DESC."""
    _check_count(limit, "limit", minimum=1, none_ok=True)
    _check_count(offset, "offset", minimum=0, none_ok=False)
    conditions = [] if where is None else [where]
    if experiment_ids is not None:
        conditions.append(_in_experiments(experiment_ids))
    if not include_deleted:
        conditions.append(runs.c.deleted_ms.is_(None))
    query = sa.select(runs.c.id).select_from(joins.from_clause()).where(*conditions)
    # A final, unique sort key: pages of limit/offset neither overlap nor skip runs.
    return query.order_by(*order, runs.c.id.desc()).limit(limit).offset(offset)


def _check_count(value: object, name: str, *, minimum: int, none_ok: bool) -> None:
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= _MAX_INT64:
        also = " or None" if none_ok else ""
        raise InvalidInputError(f"{name} must be a whole number ≥ {minimum}{also}, not {value!r}")


def _in_experiments(experiment_ids: Sequence[str]) -> sa.ColumnElement[bool]:
    if isinstance(experiment_ids, str) or not isinstance(experiment_ids, Sequence):
        raise InvalidInputError(
            "experiment_ids must be a list of experiment ids or None, "
            f"not {type(experiment_ids).__name__}"
        )
    if not all(isinstance(experiment_id, str) for experiment_id in experiment_ids):
        raise InvalidInputError("experiment_ids must contain only strings")
    if not experiment_ids:
        return sa.false()
    return runs.c.experiment_id.in_(experiment_ids)
