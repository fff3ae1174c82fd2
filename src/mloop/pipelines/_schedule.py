"""Cron schedules: which slots are due between the last check and now, and which of them run.

A slot is one time a cron expression names (``0 3 * * *`` in ``Europe/Berlin``: 03:00 Berlin
time every day, whatever UTC offset that day has). A scheduler that was down, or a new tick,
finds the slots due since the last check; the catch-up policy says which of them run:

- ``"all"``: every due slot runs, oldest first (a backfill);
- ``"latest"``: only the newest due slot runs; older ones are recorded as skipped;
- ``"skip"``: only slots that are on time (at most ``grace`` old) run; missed ones are skipped.

``max_catchup`` (a time window) and ``max_slots`` (a count) bound the work of one check: slots
older than either are not looked at at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter  # type: ignore[import-untyped, unused-ignore]

from mloop.errors import InvalidValueError

__all__ = ["CATCHUP_POLICIES", "CatchupPolicy", "Schedule", "SlotPlan", "to_slot_ms"]

CatchupPolicy = Literal["all", "latest", "skip"]
CATCHUP_POLICIES: tuple[CatchupPolicy, ...] = ("all", "latest", "skip")
_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
MAX_CRON = 200  # characters
MAX_SLOTS = 10_000


def _shown(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def to_slot_ms(moment: datetime) -> int:
    """A slot's time as integer milliseconds since 1970 (UTC), the way the store keys it."""
    return round(moment.timestamp() * 1000)


def _aware(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise InvalidValueError(
            f"{what} must be a time-zone-aware datetime (e.g. datetime.now(UTC)), "
            f"not {_shown(moment)}"
        )
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class SlotPlan:
    """What one check decided: slots to run and slots to record as skipped, oldest first."""

    run: tuple[datetime, ...]
    skip: tuple[datetime, ...]


@dataclass(frozen=True)
class Schedule:
    """A cron expression in a time zone, with its catch-up policy.

    >>> Schedule("0 3 * * *", tz="Europe/Berlin").next_after(datetime(2026, 7, 1, tzinfo=UTC))
    datetime.datetime(2026, 7, 1, 1, 0, tzinfo=datetime.timezone.utc)
    """

    cron: str
    tz: str = "UTC"
    catchup: CatchupPolicy = "latest"
    max_catchup: timedelta = timedelta(days=7)
    max_slots: int = 100
    grace: timedelta = timedelta(minutes=1)

    def __post_init__(self) -> None:
        cron = self.cron
        if not isinstance(cron, str) or len(cron) > MAX_CRON:
            raise InvalidValueError(
                f"a schedule must be a cron expression string like '0 3 * * *', not {_shown(cron)}"
            )
        fields = cron.split()
        macro = len(fields) == 1 and fields[0].lower() in _MACROS
        if not (macro or len(fields) == 5) or not croniter.is_valid(cron):
            raise InvalidValueError(
                f"schedule {_shown(cron)} is not a cron expression; use five fields "
                "(minute hour day-of-month month day-of-week) like '0 3 * * *' or "
                f"one of {', '.join(_MACROS)}"
            )
        if not isinstance(self.tz, str):
            raise InvalidValueError(
                f"a schedule's tz must be a time zone name, not {_shown(self.tz)}"
            )
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidValueError(
                f"time zone {_shown(self.tz)} is unknown; use an IANA name like 'UTC' or "
                "'Europe/Berlin'"
            ) from None
        if self.catchup not in CATCHUP_POLICIES:
            raise InvalidValueError(
                f"catchup {_shown(self.catchup)} is not a policy; use one of "
                f"{', '.join(repr(p) for p in CATCHUP_POLICIES)}"
            )
        for name in ("max_catchup", "grace"):
            value = getattr(self, name)
            if not isinstance(value, timedelta) or value < timedelta(0):
                raise InvalidValueError(
                    f"a schedule's {name} must be a timedelta of 0 or more, not {_shown(value)}"
                )
        slots = self.max_slots
        if isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= MAX_SLOTS:
            raise InvalidValueError(
                f"a schedule's max_slots must be an int from 1 to {MAX_SLOTS:,}, "
                f"not {_shown(slots)}"
            )

    def next_after(self, moment: datetime) -> datetime:
        """The first slot strictly after ``moment``, in UTC."""
        start = _aware(moment, "moment").astimezone(ZoneInfo(self.tz))
        found: datetime = croniter(self.cron, start).get_next(datetime)
        return found.astimezone(UTC)

    def due(self, after: datetime, until: datetime) -> list[datetime]:
        """Slots in ``(after, until]`` within the catch-up bounds, oldest first, in UTC."""
        after, until = _aware(after, "after"), _aware(until, "until")
        floor = max(after, until - self.max_catchup)
        if until <= floor:
            return []
        # Walk back from just past ``until``: the newest slots are the ones that matter, and
        # walking back stops after max_slots however dense the expression is.
        walker = croniter(self.cron, (until + timedelta(seconds=1)).astimezone(ZoneInfo(self.tz)))
        found: list[datetime] = []
        while len(found) < self.max_slots:
            slot = walker.get_prev(datetime).astimezone(UTC)
            if slot <= floor:
                break
            if slot <= until and (not found or slot < found[-1]):
                found.append(slot)
        found.reverse()
        return found

    def plan(self, after: datetime, until: datetime) -> SlotPlan:
        """Which due slots run and which are skipped, by this schedule's catch-up policy."""
        due = self.due(after, until)
        if not due or self.catchup == "all":
            return SlotPlan(tuple(due), ())
        if self.catchup == "latest":
            return SlotPlan((due[-1],), tuple(due[:-1]))
        cutoff = _aware(until, "until") - self.grace
        return SlotPlan(tuple(s for s in due if s >= cutoff), tuple(s for s in due if s < cutoff))
