"""``store.schedules``: cron slots claimed by schedulers, and event triggers' read positions."""

from __future__ import annotations

from typing import Protocol

__all__ = ["ScheduleRecords"]


class ScheduleRecords(Protocol):
    """Schedule slots and trigger cursors."""
