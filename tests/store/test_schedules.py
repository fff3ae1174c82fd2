"""store.schedules on SQLite and PostgreSQL: slot claims, leases, trigger cursors."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import pytest

from mloop.errors import InvalidValueError
from mloop.store import SqlStore

T = TypeVar("T")
LEASE = 60_000
NOW = 1_780_000_000_000  # 2026-05-28, in ms


def race(url: str, workers: int, action: Callable[[SqlStore, int], T]) -> list[T]:
    """Run ``action`` in ``workers`` threads at once, each with a store (engine) of its own."""
    stores = [SqlStore(url) for _ in range(workers)]
    barrier = threading.Barrier(workers)
    results: list[T | None] = [None] * workers
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = action(stores[index], index)
        except BaseException as error:  # reported by the test below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for opened in stores:
        opened.close()
    assert not errors, errors
    return [r for r in results if r is not None] if results else []


def test_a_slot_is_claimed_once(store: SqlStore) -> None:
    s = store.schedules
    assert s.claim_slot("nightly", NOW, claimer="a", now_ms=NOW, lease_ms=LEASE)
    assert not s.claim_slot("nightly", NOW, claimer="b", now_ms=NOW + 1, lease_ms=LEASE)
    assert not s.claim_slot("nightly", NOW, claimer="a", now_ms=NOW + 2, lease_ms=LEASE)
    # another slot, or the same time of another schedule, is a slot of its own
    assert s.claim_slot("nightly", NOW + 1, claimer="b", now_ms=NOW, lease_ms=LEASE)
    assert s.claim_slot("hourly", NOW, claimer="b", now_ms=NOW, lease_ms=LEASE)
    (slot,) = s.list_slots(schedule="hourly")
    assert (slot.status, slot.claimed_by, slot.run_id) == ("claimed", "b", None)
    assert slot.lease_until.timestamp() * 1000 == NOW + LEASE


def test_an_expired_lease_is_taken_over_by_one_claimer_only_after_it_ran_out(
    store: SqlStore,
) -> None:
    s = store.schedules
    assert s.claim_slot("nightly", NOW, claimer="dead", now_ms=NOW, lease_ms=LEASE)
    assert not s.claim_slot("nightly", NOW, claimer="b", now_ms=NOW + LEASE, lease_ms=LEASE)
    assert s.expired_slots(["nightly"], now_ms=NOW + LEASE) == []
    (expired,) = s.expired_slots(["nightly", "other"], now_ms=NOW + LEASE + 1)
    assert expired.claimed_by == "dead"
    assert s.claim_slot("nightly", NOW, claimer="b", now_ms=NOW + LEASE + 1, lease_ms=LEASE)
    assert not s.claim_slot("nightly", NOW, claimer="c", now_ms=NOW + LEASE + 2, lease_ms=LEASE)
    # the dead claimer, back to life, can neither renew nor finish what is no longer its own
    assert not s.renew_lease("nightly", NOW, claimer="dead", until_ms=NOW + 10 * LEASE)
    assert not s.finish_slot("nightly", NOW, claimer="dead", status="finished", now_ms=NOW)
    assert s.list_slots(schedule="nightly")[0].claimed_by == "b"


def test_renewing_keeps_the_slot_and_finishing_records_the_run(store: SqlStore) -> None:
    s = store.schedules
    s.claim_slot("nightly", NOW, claimer="a", now_ms=NOW, lease_ms=LEASE)
    assert s.renew_lease("nightly", NOW, claimer="a", until_ms=NOW + 3 * LEASE)
    assert not s.claim_slot("nightly", NOW, claimer="b", now_ms=NOW + 2 * LEASE, lease_ms=LEASE)
    run_id = "0190f2a8-0000-7000-8000-000000000001"
    assert s.finish_slot(
        "nightly",
        NOW,
        claimer="a",
        status="failed",
        now_ms=NOW + 5,
        run_id=run_id,
        error="x" * 50_000,
    )
    (slot,) = s.list_slots(schedule="nightly")
    assert (slot.status, slot.run_id) == ("failed", run_id)
    assert slot.error is not None
    assert len(slot.error) == 10_000
    assert slot.finished is not None
    # a finished slot is never handed out again, however old
    assert s.expired_slots(["nightly"], now_ms=NOW + 100 * LEASE) == []
    assert not s.claim_slot("nightly", NOW, claimer="b", now_ms=NOW + 100 * LEASE, lease_ms=LEASE)
    assert not s.finish_slot("nightly", NOW, claimer="a", status="finished", now_ms=NOW + 6)


def test_skipped_slots_leave_claimed_ones_alone(store: SqlStore) -> None:
    s = store.schedules
    s.claim_slot("nightly", NOW, claimer="a", now_ms=NOW, lease_ms=LEASE)
    assert s.skip_slots("nightly", [NOW - 2, NOW - 1, NOW], claimer="b", now_ms=NOW) == 2
    assert s.skip_slots("nightly", [], claimer="b", now_ms=NOW) == 0
    statuses = {int(r.slot.timestamp() * 1000): r.status for r in s.list_slots()}
    assert statuses == {NOW - 2: "skipped", NOW - 1: "skipped", NOW: "claimed"}
    # skipped slots are decided: nobody claims them later
    assert not s.claim_slot("nightly", NOW - 1, claimer="c", now_ms=NOW * 2, lease_ms=LEASE)
    assert s.list_slots(limit=1)[0].schedule == "nightly"


def test_concurrent_claimers_of_one_slot_exactly_one_wins(store_url: str) -> None:
    SqlStore(store_url).close()  # migrate once, before the race
    wins = race(
        store_url,
        6,
        lambda st, i: st.schedules.claim_slot(
            "nightly", NOW, claimer=f"s{i}", now_ms=NOW, lease_ms=LEASE
        ),
    )
    assert sorted(wins) == [False] * 5 + [True]


def test_concurrent_takeovers_of_an_expired_slot_exactly_one_wins(store_url: str) -> None:
    with _Closing(SqlStore(store_url)) as first:
        first.schedules.claim_slot("nightly", NOW, claimer="dead", now_ms=NOW, lease_ms=LEASE)
    later = NOW + 2 * LEASE
    wins = race(
        store_url,
        6,
        lambda st, i: st.schedules.claim_slot(
            "nightly", NOW, claimer=f"s{i}", now_ms=later, lease_ms=LEASE
        ),
    )
    assert sorted(wins) == [False] * 5 + [True]


class _Closing:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def __enter__(self) -> SqlStore:
        return self.store

    def __exit__(self, *_: object) -> None:
        self.store.close()


def test_cursors_move_only_from_the_position_expected(store: SqlStore) -> None:
    s = store.schedules
    assert s.get_cursor("t") is None
    assert s.move_cursor("t", expected=None, position="a", now_ms=NOW)
    assert not s.move_cursor("t", expected=None, position="b", now_ms=NOW)
    assert not s.move_cursor("t", expected="x", position="b", now_ms=NOW)
    assert s.move_cursor("t", expected="a", position="b", now_ms=NOW)
    assert s.get_cursor("t") == "b"


def test_a_firing_moves_the_cursor_and_claims_a_slot_together(store: SqlStore) -> None:
    s = store.schedules
    s.move_cursor("p:on_alert", expected=None, position="e1", now_ms=NOW)
    assert (
        s.fire_trigger(
            "p:on_alert",
            expected="e0",
            position="e2",
            schedule="p:on_alert",
            claimer="a",
            now_ms=NOW,
            lease_ms=LEASE,
        )
        is None
    )
    assert s.list_slots() == []  # a lost race claims nothing
    first = s.fire_trigger(
        "p:on_alert",
        expected="e1",
        position="e2",
        schedule="p:on_alert",
        claimer="a",
        now_ms=NOW,
        lease_ms=LEASE,
    )
    second = s.fire_trigger(
        "p:on_alert",
        expected="e2",
        position="e3",
        schedule="p:on_alert",
        claimer="a",
        now_ms=NOW,
        lease_ms=LEASE,
    )
    assert first == NOW
    assert second == NOW + 1  # two firings in one millisecond are two slots
    assert s.get_cursor("p:on_alert") == "e3"
    assert [r.status for r in s.list_slots(schedule="p:on_alert")] == ["claimed", "claimed"]


def test_concurrent_firings_from_one_cursor_position_fire_once(store_url: str) -> None:
    with _Closing(SqlStore(store_url)) as first:
        first.schedules.move_cursor("p:t", expected=None, position="e1", now_ms=NOW)
    fired = race(
        store_url,
        5,
        lambda st, i: (
            st.schedules.fire_trigger(
                "p:t",
                expected="e1",
                position="e2",
                schedule="p:t",
                claimer=f"s{i}",
                now_ms=NOW + i,
                lease_ms=LEASE,
            )
            or 0
        ),
    )
    assert len([f for f in fired if f]) == 1
    with _Closing(SqlStore(store_url)) as after:
        assert len(after.schedules.list_slots(schedule="p:t")) == 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.claim_slot("", NOW, claimer="a", now_ms=NOW, lease_ms=1), "schedule name"),
        (lambda s: s.claim_slot("x" * 257, NOW, claimer="a", now_ms=NOW, lease_ms=1), "256"),
        (lambda s: s.claim_slot("a\x00b", NOW, claimer="a", now_ms=NOW, lease_ms=1), "NUL"),
        (lambda s: s.claim_slot("n", -1, claimer="a", now_ms=NOW, lease_ms=1), "slot time"),
        (lambda s: s.claim_slot("n", True, claimer="a", now_ms=NOW, lease_ms=1), "slot time"),
        (lambda s: s.claim_slot("n", 1.5, claimer="a", now_ms=NOW, lease_ms=1), "slot time"),
        (lambda s: s.claim_slot("n", 2**63, claimer="a", now_ms=NOW, lease_ms=1), "slot time"),
        (lambda s: s.claim_slot("n", NOW, claimer=7, now_ms=NOW, lease_ms=1), "claimer"),
        (lambda s: s.claim_slot("n", NOW, claimer="a", now_ms=NOW, lease_ms=0), "lease"),
        (lambda s: s.skip_slots("n", [NOW, "x"], claimer="a", now_ms=NOW), "slot time"),
        (
            lambda s: s.finish_slot("n", NOW, claimer="a", status="claimed", now_ms=NOW),
            "'finished' or 'failed'",
        ),
        (
            lambda s: s.finish_slot("n", NOW, claimer="a", status="finished", now_ms=NOW, run_id=3),
            "run id",
        ),
        (lambda s: s.move_cursor("t", expected=None, position="", now_ms=NOW), "position"),
        (lambda s: s.get_cursor("x" * 300), "trigger name"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    sqlite_url: str, call: Callable[..., object], message: str
) -> None:
    # checked before any SQL is sent, so one backend tells it all
    with _Closing(SqlStore(sqlite_url)) as store:
        with pytest.raises(InvalidValueError, match=message):
            call(store.schedules)
        assert store.schedules.list_slots() == []
