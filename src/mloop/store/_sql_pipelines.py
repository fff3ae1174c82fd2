"""The step cache in SQL (``store.pipelines``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mloop.store._sql import SqlStore

__all__ = ["SqlPipelines"]


class SqlPipelines:
    """``store.pipelines`` of a SqlStore."""

    def __init__(self, sql: SqlStore) -> None:
        self._sql = sql
