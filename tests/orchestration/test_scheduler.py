"""The scheduler over a real store and a fake clock: slots run once, per policy, across restarts.

store.schedules itself runs on SQLite and PostgreSQL in tests/store/test_schedules.py; here
one SQLite store serves, except where two schedulers race (both backends).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from mloop.errors import InvalidValueError
from mloop.pipelines._schedule import Schedule, to_slot_ms
from mloop.pipelines._scheduler import Scheduler
from mloop.store import SqlStore

from ._fakes import START, FakeClock, Job

HOURLY = "0 * * * *"


@pytest.fixture
def store(sqlite_url: str) -> Iterator[SqlStore]:
    opened = SqlStore(sqlite_url)
    yield opened
    opened.close()


def make(jobs: list[Job], store: SqlStore, clock: FakeClock, **options: object) -> Scheduler:
    return Scheduler(jobs, store=store, clock=clock, poll_interval=1, **options)  # type: ignore[arg-type]


def slots(store: SqlStore, schedule: str) -> dict[str, str]:
    return {
        r.slot.strftime("%H:%M"): r.status for r in store.schedules.list_slots(schedule=schedule)
    }


def test_a_slot_runs_once_when_due_and_records_its_run(store: SqlStore) -> None:
    clock = FakeClock()
    job = Job("nightly", schedule="0 3 * * *")
    scheduler = make([job], store, clock)
    assert scheduler.tick().fired == []  # first sight: nothing in the past runs
    clock.now = datetime(2026, 6, 1, 2, 59, 59, tzinfo=UTC)
    assert scheduler.tick().fired == []
    clock.advance(seconds=2)
    fired = scheduler.tick().fired
    assert [(f.pipeline, f.slot.hour, f.reason) for f in fired] == [("nightly", 3, "cron")]
    assert scheduler.wait(10)
    assert scheduler.tick().fired == []  # the same slot is not due twice
    assert scheduler.wait(10)
    (record,) = store.schedules.list_slots(schedule="nightly")
    assert (record.status, record.run_id) == ("finished", job.run_ids[0])
    assert job.calls == [{"mloop.schedule": "0 3 * * *", "mloop.slot": "2026-06-01T03:00:00+00:00"}]


def test_two_schedulers_on_one_store_run_each_slot_once(store_url: str) -> None:
    clock = FakeClock()
    first_store, second_store = SqlStore(store_url), SqlStore(store_url)
    try:
        a, b = Job("hourly", schedule=HOURLY), Job("hourly", schedule=HOURLY)
        # leases outlast the fake clock's steps, as ticks every poll_interval make them do
        one = make([a], first_store, clock, lease=timedelta(hours=2))
        two = make([b], second_store, clock, lease=timedelta(hours=2))
        one.tick()
        two.tick()
        for _ in range(5):
            clock.advance(minutes=30)
            # both tick at the same fake moment, in parallel threads
            threads = [threading.Thread(target=s.tick) for s in (one, two)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert one.wait(10)
        assert two.wait(10)
        ran = sorted(call["mloop.slot"] for call in a.calls + b.calls)
        assert ran == [f"2026-06-01T0{h}:00:00+00:00" for h in (1, 2)]
        assert set(slots(first_store, "hourly").values()) == {"finished"}
    finally:
        first_store.close()
        second_store.close()


def test_a_restarted_scheduler_does_not_run_a_slot_again(store: SqlStore) -> None:
    clock = FakeClock()
    job = Job("hourly", schedule=HOURLY)
    before = make([job], store, clock)
    before.tick()
    clock.advance(hours=1)
    assert len(before.tick().fired) == 1
    assert before.wait(10)
    # a new process, same store, same moment and later within the hour
    after = make([job], store, clock)
    assert after.tick().fired == []
    clock.advance(minutes=20)
    assert after.tick().fired == []
    assert len(job.calls) == 1


def test_a_slot_whose_scheduler_died_is_taken_over_after_its_lease(store: SqlStore) -> None:
    clock = FakeClock()
    job = Job("hourly", schedule=HOURLY)
    scheduler = make([job], store, clock, lease=timedelta(minutes=10))
    scheduler.tick()
    # A scheduler that died mid-run left this claim behind (as claim_slot records it).
    slot = datetime(2026, 6, 1, 1, tzinfo=UTC)
    dead_ms = to_slot_ms(slot) + 5_000
    assert store.schedules.claim_slot(
        "hourly", to_slot_ms(slot), claimer="dead:1", now_ms=dead_ms, lease_ms=600_000
    )
    clock.now = slot + timedelta(minutes=5)
    assert scheduler.tick().fired == []  # its lease still runs
    assert job.calls == []
    clock.now = slot + timedelta(minutes=11)
    fired = scheduler.tick().fired
    assert [(f.slot, f.reason) for f in fired] == [(slot, "retry")]
    assert scheduler.wait(10)
    assert slots(store, "hourly") == {"01:00": "finished"}
    assert len(job.calls) == 1


@pytest.mark.parametrize(
    ("policy", "runs", "recorded"),
    [
        ("all", ["01", "02", "03", "04", "05"], dict.fromkeys(["01", "02", "03", "04", "05"], "f")),
        ("latest", ["05"], {"01": "s", "02": "s", "03": "s", "04": "s", "05": "f"}),
        ("skip", [], dict.fromkeys(["01", "02", "03", "04", "05"], "s")),
    ],
)
def test_missed_slots_are_caught_up_or_skipped_by_policy(
    store: SqlStore, policy: str, runs: list[str], recorded: dict[str, str]
) -> None:
    clock = FakeClock()
    job = Job("hourly", schedule=HOURLY, catchup=policy)
    make([job], store, clock).tick()
    # down from 00:00:30 until 05:20: five slots were missed
    clock.now = START.replace(hour=5, minute=20)
    restarted = make([job], store, clock)
    report = restarted.tick()
    assert restarted.wait(10)
    assert [c["mloop.slot"][11:13] for c in job.calls] == runs  # oldest first
    assert all(f.reason == "catch-up" for f in report.fired)
    short = {"finished": "f", "skipped": "s"}
    assert {k[:2]: short[v] for k, v in slots(store, "hourly").items()} == recorded
    # whatever the policy, the next slot on time runs
    clock.now = START.replace(hour=6, second=10)
    assert [f.reason for f in restarted.tick().fired] == ["cron"]
    assert restarted.wait(10)
    assert job.calls[-1]["mloop.slot"][11:13] == "06"


def test_a_schedule_object_carries_its_time_zone_and_bounds(store: SqlStore) -> None:
    clock = FakeClock(datetime(2026, 1, 10, 12, tzinfo=UTC))
    berlin = Schedule("0 3 * * *", tz="Europe/Berlin", catchup="all", max_catchup=timedelta(days=2))
    job = Job("berlin", schedule=berlin)
    scheduler = make([job], store, clock)
    scheduler.tick()
    clock.advance(days=10)
    scheduler.tick()
    assert scheduler.wait(10)
    # 03:00 in Berlin is 02:00 UTC in January; only the last two days are caught up
    assert [c["mloop.slot"] for c in job.calls] == [
        "2026-01-19T02:00:00+00:00",
        "2026-01-20T02:00:00+00:00",
    ]
    assert scheduler.upcoming()[0][1] == datetime(2026, 1, 21, 2, tzinfo=UTC)


def test_a_long_pipeline_does_not_hold_up_ticking(store: SqlStore) -> None:
    clock = FakeClock()
    gate = threading.Event()
    slow = Job("slow", schedule=HOURLY, gate=gate)
    quick = Job("quick", schedule=HOURLY)
    scheduler = make([slow, quick], store, clock, lease=timedelta(minutes=10))
    scheduler.tick()
    clock.advance(hours=1)
    scheduler.tick()
    assert slow.started.wait(10)
    deadline = time.monotonic() + 10
    while not quick.run_ids and time.monotonic() < deadline:
        time.sleep(0.01)
    assert quick.run_ids, "the quick pipeline waited for the slow one"
    # ticking goes on, renewing the slow run's lease so nobody takes it over
    for _ in range(4):
        clock.advance(minutes=6)
        scheduler.tick()
    assert slots(store, "slow") == {"01:00": "claimed"}
    lease = store.schedules.list_slots(schedule="slow")[0].lease_until
    assert lease > clock.now
    gate.set()
    assert scheduler.wait(10)
    assert slots(store, "slow") == {"01:00": "finished"}
    assert len(slow.calls) == 1


def test_a_failing_pipeline_is_recorded_and_the_scheduler_goes_on(store: SqlStore) -> None:
    clock = FakeClock()
    broken = Job("broken", schedule=HOURLY, fail=True)
    failed = Job("failed", schedule=HOURLY, status="failed")
    scheduler = make([broken, failed], store, clock)
    scheduler.tick()
    clock.advance(hours=1)
    scheduler.tick()
    assert scheduler.wait(10)
    (crash,) = store.schedules.list_slots(schedule="broken")
    assert crash.status == "failed"
    assert crash.run_id is None
    assert crash.error is not None
    assert "RuntimeError: broken broke" in crash.error
    assert "Traceback" in crash.error
    (bad,) = store.schedules.list_slots(schedule="failed")
    assert (bad.status, bad.run_id, bad.error) == ("failed", failed.run_ids[0], "step x failed")
    clock.advance(hours=1)
    assert len(scheduler.tick().fired) == 2


def test_stopping_releases_queued_slots_to_the_next_scheduler(store: SqlStore) -> None:
    clock = FakeClock()
    gate = threading.Event()
    job = Job("hourly", schedule=HOURLY, catchup="all", gate=gate)
    first = make([job], store, clock, lease=timedelta(hours=1))
    first.tick()
    clock.advance(hours=3)
    assert len(first.tick().fired) == 3
    assert job.started.wait(10)  # 01:00 runs; 02:00 and 03:00 wait their turn
    first.stop()
    assert first.tick().fired == []  # a stopping scheduler claims nothing
    gate.set()
    assert first.wait(10)
    assert slots(store, "hourly") == {"01:00": "finished", "02:00": "claimed", "03:00": "claimed"}
    clock.advance(seconds=1)
    second = make([Job("hourly", schedule=HOURLY)], store, clock)
    assert sorted(f.slot.hour for f in second.tick().fired) == [2, 3]
    assert second.wait(10)
    assert set(slots(store, "hourly").values()) == {"finished"}


@pytest.mark.parametrize(
    ("pipelines", "message"),
    [
        ([object()], "runs pipelines"),
        ([Job("a"), Job("a")], "share a name"),
        ([Job("a", schedule="every hour")], "pipeline 'a': schedule 'every hour'"),
        ([Job("a", schedule="0 * * * *", catchup="most")], "catchup"),
        ([Job("a", triggers=("new data",))], "is not a trigger"),
    ],
)
def test_bad_pipelines_are_refused_up_front(
    store: SqlStore, pipelines: list[object], message: str
) -> None:
    with pytest.raises(InvalidValueError, match=message):
        Scheduler(pipelines, store=store)


def test_bad_settings_are_refused(store: SqlStore) -> None:
    with pytest.raises(InvalidValueError, match="poll_interval"):
        Scheduler([], store=store, poll_interval=0)
    with pytest.raises(InvalidValueError, match="lease"):
        Scheduler([], store=store, poll_interval=60, lease=timedelta(minutes=1))
    with pytest.raises(InvalidValueError, match="max_parallel"):
        Scheduler([], store=store, max_parallel=0)
    with pytest.raises(InvalidValueError, match="settle"):
        Scheduler([], store=store, settle=timedelta(seconds=-1))
    naive = Scheduler([], store=store, clock=lambda: datetime(2026, 1, 1))
    with pytest.raises(InvalidValueError, match="aware"):
        naive.tick()


def test_serve_forever_ticks_until_stopped(store: SqlStore) -> None:
    clock = FakeClock()

    def stepping() -> datetime:  # time flies: every look at the clock is 20 s later
        return clock.advance(seconds=20)

    job = Job("minutely", schedule="* * * * *")
    scheduler = Scheduler([job], store=store, clock=stepping, poll_interval=0.01)
    server = threading.Thread(target=scheduler.serve_forever)
    server.start()
    deadline = time.monotonic() + 10
    while len(job.run_ids) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    scheduler.stop()
    server.join(10)
    assert not server.is_alive()
    assert len(job.run_ids) >= 3
    assert scheduler.running() == 0
    runs = len(job.calls)
    time.sleep(0.05)
    assert len(job.calls) == runs  # stopped means no more passes
    slots = [c["mloop.slot"] for c in job.calls]
    assert len(set(slots)) == len(slots)
