"""Small SQL helpers for DuckDB: quoting identifiers, and event times as naive UTC."""

from __future__ import annotations

import duckdb

from mloop.errors import InvalidValueError

__all__ = ["quote", "utc_expression"]


def quote(identifier: str) -> str:
    """``identifier`` as a DuckDB quoted identifier (any characters, quotes doubled)."""
    return '"' + identifier.replace('"', '""') + '"'


def utc_expression(conn: duckdb.DuckDBPyConnection, relation: str, column: str, view: str) -> str:
    """SQL for ``column`` of ``relation`` as a naive UTC TIMESTAMP.

    A TIMESTAMP WITH TIME ZONE is converted to UTC; a naive timestamp or a date is taken as
    UTC already. Anything else is refused, naming the view and the column.
    """
    try:
        described = conn.execute(f"DESCRIBE SELECT {quote(column)} FROM {relation}").fetchall()
    except duckdb.Error as error:
        raise InvalidValueError(
            f"feature view {view!r}: cannot read timestamp column {column!r} from its source "
            f"({str(error).splitlines()[0]})"
        ) from error
    kind = str(described[0][1]).upper()
    if kind in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return f"timezone('UTC', {quote(column)})"
    if kind.startswith("TIMESTAMP") or kind == "DATE":
        return f"CAST({quote(column)} AS TIMESTAMP)"
    raise InvalidValueError(
        f"feature view {view!r}: timestamp column {column!r} has type {kind}; it must be a "
        "timestamp or a date"
    )
