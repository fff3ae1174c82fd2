"""``store.schedules``: cron slots claimed by schedulers, and event triggers' read positions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

__all__ = ["SLOT_STATUSES", "ScheduleRecords", "SlotRecord", "SlotStatus"]

SlotStatus = Literal["claimed", "finished", "failed", "skipped"]
SLOT_STATUSES: tuple[SlotStatus, ...] = ("claimed", "finished", "failed", "skipped")


@dataclass(frozen=True)
class SlotRecord:
    """One slot of a schedule (a cron time, or one firing of an event trigger) and its fate."""

    schedule: str
    slot: datetime
    status: SlotStatus
    run_id: str | None
    claimed_by: str
    claimed: datetime
    lease_until: datetime
    finished: datetime | None
    error: str | None


class ScheduleRecords(Protocol):
    """Schedule slots and trigger cursors.

    Every method takes the caller's ``now_ms``, so a scheduler driven by a fake clock sees
    leases expire on that clock.
    """

    def claim_slot(
        self, schedule: str, slot_ms: int, *, claimer: str, now_ms: int, lease_ms: int
    ) -> bool:
        """Take a slot: True for exactly one claimer, or for one re-claimer once the lease of
        a claimer that never finished has run out."""
        ...

    def skip_slots(
        self, schedule: str, slot_ms: Sequence[int], *, claimer: str, now_ms: int
    ) -> int:
        """Record slots that will not run (catch-up policy); slots already taken are left."""
        ...

    def renew_lease(self, schedule: str, slot_ms: int, *, claimer: str, until_ms: int) -> bool:
        """Push a claimed slot's lease to ``until_ms``; False if ``claimer`` no longer holds it."""
        ...

    def finish_slot(
        self,
        schedule: str,
        slot_ms: int,
        *,
        claimer: str,
        status: SlotStatus,
        now_ms: int,
        run_id: str | None = None,
        error: str | None = None,
    ) -> bool:
        """Record how a claimed slot's run ended; False if ``claimer`` no longer holds it."""
        ...

    def expired_slots(
        self, schedules: Sequence[str], *, now_ms: int, limit: int = 100
    ) -> list[SlotRecord]:
        """Claimed slots of ``schedules`` whose lease ran out: their claimer died mid-run."""
        ...

    def list_slots(self, *, schedule: str | None = None, limit: int = 100) -> list[SlotRecord]:
        """Slots, newest claim first."""
        ...

    def get_cursor(self, trigger: str) -> str | None:
        """How far ``trigger`` has read (an event id, a fingerprint, a time), or None."""
        ...

    def move_cursor(
        self, trigger: str, *, expected: str | None, position: str, now_ms: int
    ) -> bool:
        """Set the cursor to ``position`` if it still is ``expected`` (None: absent)."""
        ...

    def fire_trigger(
        self,
        trigger: str,
        *,
        expected: str | None,
        position: str,
        schedule: str,
        claimer: str,
        now_ms: int,
        lease_ms: int,
    ) -> int | None:
        """Move the cursor as :meth:`move_cursor` does and, in the same transaction, claim a
        new slot of ``schedule``; its ``slot_ms``, or None if another scheduler moved first."""
        ...
