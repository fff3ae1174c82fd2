"""Properties of the scheduler over any sequence of passes and restarts (a fake clock).

Whatever the times of the passes, and however often the scheduler is replaced by a new one
over the same store: no slot runs twice, and every cron slot after the first pass is accounted
for — run or, by the catch-up policy, skipped.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.pipelines import Schedule, Scheduler
from mloop.store import SqlStore

from ._fakes import START, FakeClock, Job

passes = st.lists(
    st.tuples(st.integers(1, 6 * 60), st.booleans()),  # (minutes until the pass, restart first)
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    cron=st.sampled_from(["*/15 * * * *", "0 * * * *", "30 */2 * * *", "5,10 3 * * *"]),
    policy=st.sampled_from(["all", "latest", "skip"]),
    steps=passes,
)
def test_every_slot_is_run_or_skipped_exactly_once(
    cron: str, policy: str, steps: list[tuple[int, bool]]
) -> None:
    schedule = Schedule(cron, catchup=policy, max_slots=10_000)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as folder:
        store = SqlStore(f"sqlite:///{Path(folder) / 'mloop.db'}")
        try:
            clock = FakeClock()
            job = Job("job", schedule=schedule)

            def start() -> Scheduler:
                return Scheduler(
                    [job], store=store, clock=clock, poll_interval=1, lease=timedelta(days=30)
                )

            scheduler = start()
            scheduler.tick()
            for minutes, restart in steps:
                clock.advance(minutes=minutes)
                if restart:
                    assert scheduler.wait(10)
                    scheduler = start()
                scheduler.tick()
            assert scheduler.wait(10)

            ran = [call["mloop.slot"] for call in job.calls]
            assert len(ran) == len(set(ran)), "a slot ran twice"
            records = {r.slot: r.status for r in store.schedules.list_slots(limit=10_000)}
            expected = schedule.due(START, clock.now)
            assert sorted(records) == expected  # nothing lost, nothing extra
            run_slots = sorted(slot for slot, status in records.items() if status != "skipped")
            assert sorted(ran) == [slot.isoformat() for slot in run_slots]
            assert set(records.values()) <= {"finished", "skipped"}
            if policy == "all":
                assert set(records.values()) <= {"finished"}
        finally:
            store.close()
