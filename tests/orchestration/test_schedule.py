"""Cron slots: which are due, in which time zone, and which run under each catch-up policy."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop.errors import InvalidValueError
from mloop.pipelines._schedule import Schedule

CRONS = ["* * * * *", "*/7 * * * *", "0 3 * * *", "15 */2 * * 1-5", "0 0 1 * *", "@hourly"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
START = datetime(2025, 1, 1, tzinfo=UTC)

moments = st.integers(0, 2 * 365 * 24 * 3600).map(lambda s: START + timedelta(seconds=s))
spans = st.integers(0, 3 * 24 * 3600).map(lambda s: timedelta(seconds=s))


@settings(max_examples=150, deadline=None)
@given(
    cron=st.sampled_from(CRONS),
    tz=st.sampled_from(ZONES),
    after=moments,
    span=spans,
    max_slots=st.integers(1, 50),
    window=st.integers(0, 4 * 24).map(lambda h: timedelta(hours=h)),
)
def test_due_slots_are_exactly_the_newest_cron_times_in_the_window(
    cron: str, tz: str, after: datetime, span: timedelta, max_slots: int, window: timedelta
) -> None:
    until = after + span
    schedule = Schedule(cron, tz=tz, max_slots=max_slots, max_catchup=window)
    due = schedule.due(after, until)
    floor = max(after, until - window)
    # the reference: walk forward from the floor with croniter, keep the newest max_slots
    walker = croniter(cron, floor.astimezone(ZoneInfo(tz)))
    expected: list[datetime] = []
    while True:
        slot = walker.get_next(datetime).astimezone(UTC)
        if slot > until:
            break
        expected.append(slot)
        if len(expected) > 10_000:
            break
    assert due == expected[-max_slots:]
    assert all(a < b for a, b in itertools.pairwise(due))
    assert all(floor < slot <= until and slot.tzinfo is UTC for slot in due)


@settings(max_examples=150, deadline=None)
@given(
    cron=st.sampled_from(CRONS),
    policy=st.sampled_from(["all", "latest", "skip"]),
    after=moments,
    span=spans,
    grace=st.integers(0, 7200).map(lambda s: timedelta(seconds=s)),
)
def test_a_plan_splits_the_due_slots_by_policy(
    cron: str, policy: str, after: datetime, span: timedelta, grace: timedelta
) -> None:
    until = after + span
    schedule = Schedule(cron, catchup=policy, grace=grace)  # type: ignore[arg-type]
    due = schedule.due(after, until)
    plan = schedule.plan(after, until)
    assert sorted(plan.run + plan.skip) == due
    assert not set(plan.run) & set(plan.skip)
    if policy == "all":
        assert list(plan.run) == due
    elif policy == "latest":
        assert list(plan.run) == due[-1:]
    else:
        assert all(until - s <= grace for s in plan.run)
        assert all(until - s > grace for s in plan.skip)


def test_a_schedule_keeps_local_time_across_daylight_saving() -> None:
    berlin = Schedule("0 3 * * *", tz="Europe/Berlin")
    winter = berlin.due(datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC))
    # 03:00 Berlin is 02:00 UTC before the clocks go forward on 29 March, 01:00 UTC after
    assert [s.strftime("%d %H:%M") for s in winter] == [
        "27 02:00",
        "28 02:00",
        "29 01:00",
        "30 01:00",
    ]
    assert Schedule("0 3 * * *").next_after(datetime(2026, 3, 29, 3, tzinfo=UTC)) == datetime(
        2026, 3, 30, 3, tzinfo=UTC
    )


def test_until_is_inclusive_and_after_exclusive() -> None:
    daily = Schedule("0 3 * * *")
    three = datetime(2026, 5, 1, 3, tzinfo=UTC)
    assert daily.due(three - timedelta(seconds=1), three) == [three]
    assert daily.due(three, three + timedelta(hours=23)) == []


def test_the_catch_up_window_bounds_the_work() -> None:
    minutely = Schedule("* * * * *", catchup="all", max_catchup=timedelta(hours=1), max_slots=10)
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    due = minutely.due(now - timedelta(days=365), now)
    assert due == [now - timedelta(minutes=m) for m in range(9, -1, -1)]
    wide = Schedule("0 * * * *", max_catchup=timedelta(hours=3), max_slots=1000)
    assert len(wide.due(now - timedelta(days=365), now)) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "every day"}, "not a cron expression"),
        ({"cron": "0 3 * *"}, "five fields"),
        ({"cron": "0 0 3 * * * *"}, "five fields"),
        ({"cron": "61 3 * * *"}, "not a cron expression"),
        ({"cron": 3}, "cron expression string"),
        ({"cron": "*" * 500}, "cron expression string"),
        ({"cron": "0 3 * * *", "tz": "Mars/Olympus"}, "time zone"),
        ({"cron": "0 3 * * *", "tz": "../../etc/passwd"}, "time zone"),
        ({"cron": "0 3 * * *", "tz": None}, "time zone"),
        ({"cron": "0 3 * * *", "catchup": "some"}, "catchup"),
        ({"cron": "0 3 * * *", "max_slots": 0}, "max_slots"),
        ({"cron": "0 3 * * *", "max_slots": True}, "max_slots"),
        ({"cron": "0 3 * * *", "max_catchup": 5}, "max_catchup"),
        ({"cron": "0 3 * * *", "grace": timedelta(seconds=-1)}, "grace"),
    ],
)
def test_bad_schedules_are_refused_with_the_reason(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        Schedule(**kwargs)  # type: ignore[arg-type]


def test_naive_times_are_refused() -> None:
    with pytest.raises(InvalidValueError, match="time-zone-aware"):
        Schedule("0 3 * * *").due(datetime(2026, 1, 1), datetime(2026, 1, 2, tzinfo=UTC))
