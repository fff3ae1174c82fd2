"""Schedule slots and trigger cursors in SQL (``store.schedules``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mloop.store._sql import SqlStore

__all__ = ["SqlSchedules"]


class SqlSchedules:
    """``store.schedules`` of a SqlStore."""

    def __init__(self, sql: SqlStore) -> None:
        self._sql = sql
