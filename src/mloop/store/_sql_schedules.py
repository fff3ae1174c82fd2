"""Schedule slots and trigger cursors in SQL (``store.schedules``).

Two schedulers (or one restarted) never run a slot twice because a slot is taken with an
``INSERT ... ON CONFLICT DO NOTHING`` on its primary key: of two claimers, the database lets
exactly one insert the row. A claimer that dies mid-run leaves its row ``claimed`` with a lease;
once the lease has run out, a conditional ``UPDATE`` hands the slot to exactly one re-claimer.
Trigger cursors move by compare-and-set (``UPDATE ... WHERE position = expected``) in the same
transaction as the slot their firing claims, so a firing is neither lost nor repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from mloop.errors import InvalidValueError
from mloop.store import _schema as t
from mloop.store._protocol_schedules import SlotRecord, SlotStatus
from mloop.store._records import from_ms

if TYPE_CHECKING:
    from mloop.store._sql import SqlStore

__all__ = ["SqlSchedules"]

MAX_KEY = 256  # schedule_slots.schedule, .claimed_by, trigger_cursors.trigger, .position
MAX_ERROR = 10_000  # characters of a failed slot's error kept
MAX_MS = 2**62  # far beyond any date; keeps BigInteger arithmetic (now + lease) in range
_s = t.schedule_slots.c
_c = t.trigger_cursors.c


def _shown(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _key(value: str, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_KEY or "\x00" in value:
        raise InvalidValueError(
            f"{what} {_shown(value)} must be a non-empty string of at most {MAX_KEY} "
            "characters without NUL"
        )
    return value


def _ms(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_MS:
        raise InvalidValueError(
            f"{what} must be milliseconds since 1970 as a non-negative int, not {_shown(value)}"
        )
    return value


def _lease(lease_ms: int) -> int:
    if isinstance(lease_ms, bool) or not isinstance(lease_ms, int) or not 0 < lease_ms < MAX_MS:
        raise InvalidValueError(f"a lease must be a positive number of ms, not {_shown(lease_ms)}")
    return lease_ms


def _slot(row: Row[Any]) -> SlotRecord:
    slot, claimed, lease = (
        from_ms(row.slot_ms),
        from_ms(row.claimed_ms),
        from_ms(row.lease_until_ms),
    )
    assert slot is not None
    assert claimed is not None
    assert lease is not None
    return SlotRecord(
        schedule=row.schedule,
        slot=slot,
        status=row.status,
        run_id=row.run_id,
        claimed_by=row.claimed_by,
        claimed=claimed,
        lease_until=lease,
        finished=from_ms(row.finished_ms),
        error=row.error,
    )


class SqlSchedules:
    """``store.schedules`` of a SqlStore."""

    def __init__(self, sql: SqlStore) -> None:
        self._sql = sql

    # -- slots ------------------------------------------------------------------------------

    def _insert_slot(
        self,
        conn: Connection,
        schedule: str,
        slot_ms: int,
        status: str,
        claimer: str,
        now: int,
        until: int,
    ) -> bool:
        statement = (
            self._sql._insert(t.schedule_slots)
            .values(
                schedule=schedule,
                slot_ms=slot_ms,
                status=status,
                claimed_by=claimer,
                claimed_ms=now,
                lease_until_ms=until,
            )
            .on_conflict_do_nothing(index_elements=["schedule", "slot_ms"])
            .returning(_s.slot_ms)  # rowcount is not reliable for INSERT on every driver
        )
        return conn.execute(statement).first() is not None

    def claim_slot(
        self, schedule: str, slot_ms: int, *, claimer: str, now_ms: int, lease_ms: int
    ) -> bool:
        """Take a slot: True for exactly one claimer, or for one re-claimer once the lease of
        a claimer that never finished has run out."""
        _key(schedule, "schedule name")
        _key(claimer, "claimer")
        _ms(slot_ms, "slot time")
        _ms(now_ms, "now")
        until = now_ms + _lease(lease_ms)

        def action(conn: Connection) -> bool:
            if self._insert_slot(conn, schedule, slot_ms, "claimed", claimer, now_ms, until):
                return True
            # Taken before: only a claim whose lease ran out changes hands, and only once (the
            # WHERE is evaluated again after a concurrent updater's commit).
            done = conn.execute(
                t.schedule_slots.update()
                .where(
                    _s.schedule == schedule,
                    _s.slot_ms == slot_ms,
                    _s.status == "claimed",
                    _s.lease_until_ms < now_ms,
                )
                .values(claimed_by=claimer, claimed_ms=now_ms, lease_until_ms=until, run_id=None)
            )
            return bool(done.rowcount == 1)

        return self._sql._write("claim a schedule slot", action)

    def skip_slots(
        self, schedule: str, slot_ms: Sequence[int], *, claimer: str, now_ms: int
    ) -> int:
        """Record slots that will not run (catch-up policy); slots already taken are left."""
        _key(schedule, "schedule name")
        _key(claimer, "claimer")
        _ms(now_ms, "now")
        slots = [_ms(ms, "slot time") for ms in slot_ms]

        def action(conn: Connection) -> int:
            return sum(
                self._insert_slot(conn, schedule, ms, "skipped", claimer, now_ms, now_ms)
                for ms in slots
            )

        return self._sql._write("skip schedule slots", action) if slots else 0

    def renew_lease(self, schedule: str, slot_ms: int, *, claimer: str, until_ms: int) -> bool:
        """Push a claimed slot's lease to ``until_ms``; False if ``claimer`` no longer holds it."""
        _ms(until_ms, "lease end")
        statement = (
            t.schedule_slots.update()
            .where(
                _s.schedule == schedule,
                _s.slot_ms == slot_ms,
                _s.status == "claimed",
                _s.claimed_by == claimer,
            )
            .values(lease_until_ms=until_ms)
        )
        done = self._sql._write("renew a schedule slot's lease", lambda c: c.execute(statement))
        return bool(done.rowcount == 1)

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
        if status not in ("finished", "failed"):
            raise InvalidValueError(
                f"a slot finishes as 'finished' or 'failed', not {_shown(status)}"
            )
        _ms(now_ms, "now")
        if run_id is not None and (not isinstance(run_id, str) or len(run_id) > 36):
            raise InvalidValueError(f"run id {_shown(run_id)} is not a run id (36 characters)")
        if error is not None:
            error = str(error)[:MAX_ERROR]
        statement = (
            t.schedule_slots.update()
            .where(
                _s.schedule == schedule,
                _s.slot_ms == slot_ms,
                _s.status == "claimed",
                _s.claimed_by == claimer,
            )
            .values(status=status, run_id=run_id, error=error, finished_ms=now_ms)
        )
        done = self._sql._write("finish a schedule slot", lambda c: c.execute(statement))
        return bool(done.rowcount == 1)

    def expired_slots(
        self, schedules: Sequence[str], *, now_ms: int, limit: int = 100
    ) -> list[SlotRecord]:
        """Claimed slots of ``schedules`` whose lease ran out: their claimer died mid-run."""
        names = list(dict.fromkeys(schedules))
        if not names:
            return []
        query = (
            sa.select(t.schedule_slots)
            .where(
                _s.schedule.in_(names),
                _s.status == "claimed",
                _s.lease_until_ms < _ms(now_ms, "now"),
            )
            .order_by(_s.slot_ms, _s.schedule)
            .limit(max(1, min(int(limit), 10_000)))
        )
        rows = self._sql._read("list expired schedule slots", lambda c: c.execute(query).all())
        return [_slot(row) for row in rows]

    def list_slots(self, *, schedule: str | None = None, limit: int = 100) -> list[SlotRecord]:
        """Slots, newest claim first."""
        query = (
            sa.select(t.schedule_slots)
            .order_by(_s.claimed_ms.desc(), _s.slot_ms.desc(), _s.schedule)
            .limit(max(1, min(int(limit), 10_000)))
        )
        if schedule is not None:
            query = query.where(_s.schedule == _key(schedule, "schedule name"))
        rows = self._sql._read("list schedule slots", lambda c: c.execute(query).all())
        return [_slot(row) for row in rows]

    # -- trigger cursors --------------------------------------------------------------------

    def get_cursor(self, trigger: str) -> str | None:
        """How far ``trigger`` has read (an event id, a fingerprint, a time), or None."""
        query = sa.select(_c.position).where(_c.trigger == _key(trigger, "trigger name"))
        return self._sql._read("read a trigger cursor", lambda c: c.execute(query).scalar())

    def _move(
        self, conn: Connection, trigger: str, expected: str | None, position: str, now: int
    ) -> bool:
        if expected is None:
            statement = (
                self._sql._insert(t.trigger_cursors)
                .values(trigger=trigger, position=position, updated_ms=now)
                .on_conflict_do_nothing(index_elements=["trigger"])
                .returning(_c.trigger)
            )
            return conn.execute(statement).first() is not None
        update = (
            t.trigger_cursors.update()
            .where(_c.trigger == trigger, _c.position == expected)
            .values(position=position, updated_ms=now)
        )
        return bool(conn.execute(update).rowcount == 1)

    def move_cursor(
        self, trigger: str, *, expected: str | None, position: str, now_ms: int
    ) -> bool:
        """Set the cursor to ``position`` if it still is ``expected`` (None: absent)."""
        _key(trigger, "trigger name")
        _key(position, "cursor position")
        _ms(now_ms, "now")
        return self._sql._write(
            "move a trigger cursor", lambda c: self._move(c, trigger, expected, position, now_ms)
        )

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
        _key(trigger, "trigger name")
        _key(position, "cursor position")
        _key(schedule, "schedule name")
        _key(claimer, "claimer")
        _ms(now_ms, "now")
        until = now_ms + _lease(lease_ms)

        def action(conn: Connection) -> int | None:
            if not self._move(conn, trigger, expected, position, now_ms):
                return None
            # The cursor move made this transaction the only firing: a later slot than any
            # before keeps two firings within one millisecond apart.
            last = conn.execute(
                sa.select(sa.func.max(_s.slot_ms)).where(_s.schedule == schedule)
            ).scalar()
            slot_ms = max(now_ms, (last or 0) + 1)
            inserted = self._insert_slot(conn, schedule, slot_ms, "claimed", claimer, now_ms, until)
            assert inserted, "a slot after the newest one cannot be taken"
            return slot_ms

        return self._sql._write("fire a trigger", action)
