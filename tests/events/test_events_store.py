"""store.events on SQLite and PostgreSQL: the outbox, webhook matching, claims and outcomes."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import sqlalchemy as sa

from mloop.errors import InvalidValueError, NotFoundError
from mloop.store import SqlStore
from mloop.store import _schema as t

from .helpers import START_MS, Clock

HOOK = "http://127.0.0.1:9/hook"


def emit(store: SqlStore, kind: str = "model_version.created", subject: str = "churn/1") -> str:
    return store.events.emit(kind, subject, {"model": "churn"}, actor="ann").id


def pairs(store: SqlStore, status: str | None = None) -> set[tuple[str, str]]:
    """(event kind, webhook id) of every delivery."""
    return {(d.event.kind, d.webhook_id) for d in store.events.list_deliveries(status=status)}


# -- events ---------------------------------------------------------------------------------


def test_emit_returns_the_recorded_event(clocked: SqlStore) -> None:
    event = clocked.events.emit(
        "model_alias.changed", "churn@production", {"version": 3, "ok": [1, None]}, actor="ann"
    )
    assert (event.kind, event.subject, event.actor) == (
        "model_alias.changed",
        "churn@production",
        "ann",
    )
    assert event.payload == {"version": 3, "ok": [1, None]}
    assert event.created.timestamp() * 1000 == START_MS
    assert event.created.tzinfo is not None
    assert clocked.events.list_events() == [event]


def test_events_list_oldest_first_and_page_with_after_id(store: SqlStore) -> None:
    ids = [emit(store, subject=f"churn/{n}") for n in range(7)]
    assert [e.id for e in store.events.list_events()] == ids
    first = store.events.list_events(limit=3)
    second = store.events.list_events(after_id=first[-1].id, limit=3)
    third = store.events.list_events(after_id=second[-1].id, limit=3)
    assert [e.id for e in first + second + third] == ids
    assert store.events.list_events(after_id=ids[-1]) == []


def test_kind_filter_takes_globs_and_underscore_is_literal(store: SqlStore) -> None:
    emit(store, "model_version.created")
    emit(store, "model_alias.changed")
    emit(store, "model_alias.deleted")
    emit(store, "modelxversion.created")  # `_` in a filter must not match any character
    emit(store, "alert.fired")

    def kinds(pattern: str) -> list[str]:
        return [e.kind for e in store.events.list_events(kind=pattern)]

    assert kinds("model_alias.*") == ["model_alias.changed", "model_alias.deleted"]
    assert kinds("model_version.*") == ["model_version.created"]
    assert kinds("*.created") == ["model_version.created", "modelxversion.created"]
    assert kinds("model_alias.d?leted") == ["model_alias.deleted"]
    assert kinds("alert.fired") == ["alert.fired"]
    assert kinds("nothing.*") == []


@pytest.mark.parametrize(
    "kind", ["", "created", "Model.Created", "model version.created", "a." + "x" * 80, "a..b", 42]
)
def test_bad_kinds_are_refused(checker: SqlStore, kind: object) -> None:
    with pytest.raises(InvalidValueError, match="event kind") as caught:
        checker.events.emit(kind, "churn/1", {}, actor="ann")  # type: ignore[arg-type]
    assert len(str(caught.value)) < 300
    assert checker.events.list_events() == []


@pytest.mark.parametrize("pattern", ["", "Model.*", "a b", "[ab].*", "x" * 65, "%", 7])
def test_bad_kind_filters_are_refused(checker: SqlStore, pattern: object) -> None:
    with pytest.raises(InvalidValueError, match="event kind filter"):
        checker.events.list_events(kind=pattern)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("subject", "payload", "actor", "problem"),
    [
        ("", {}, "ann", "subject"),
        ("x" * 513, {}, "ann", "subject"),
        ("churn/1", [1, 2], "ann", "payload must be a mapping"),
        ("churn/1", {"when": object()}, "ann", "payload must be JSON"),
        ("churn/1", {"auc": float("nan")}, "ann", "payload must be JSON"),
        ("churn/1", {"blob": "x" * 70_000}, "ann", "limit is 64,000"),
        ("churn/1", {}, "", "actor"),
    ],
)
def test_bad_events_are_refused(
    checker: SqlStore, subject: str, payload: object, actor: str, problem: str
) -> None:
    with pytest.raises(InvalidValueError, match=problem):
        checker.events.emit("alert.fired", subject, payload, actor=actor)  # type: ignore[arg-type]
    assert checker.events.list_events() == []


# -- webhooks -------------------------------------------------------------------------------


def test_webhooks_round_trip(clocked: SqlStore) -> None:
    hook = clocked.events.add_webhook(HOOK, events=["model_version.*"], actor="ann", secret="s")
    assert (hook.url, hook.events, hook.has_secret, hook.active) == (
        HOOK,
        ("model_version.*",),
        True,
        True,
    )
    assert hook.created_by == "ann"
    assert hook.created.timestamp() * 1000 == START_MS
    assert clocked.events.list_webhooks() == [hook]
    assert [e.action for e in clocked.list_audit(object_id=hook.id)] == ["add"]
    clocked.events.remove_webhook(hook.id, actor="bob")
    assert clocked.events.list_webhooks() == []


def test_each_event_goes_to_the_webhooks_whose_patterns_match(store: SqlStore) -> None:
    versions = store.events.add_webhook(HOOK, events=["model_version.*"], actor="ann").id
    aliases = store.events.add_webhook(
        HOOK, events=["model_alias.changed", "alert.*"], actor="ann"
    ).id
    everything = store.events.add_webhook(HOOK, events=["*"], actor="ann").id
    emit(store, "model_version.created")
    emit(store, "model_alias.changed")
    emit(store, "model_alias.deleted")
    emit(store, "alert.fired")
    assert pairs(store) == {
        ("model_version.created", versions),
        ("model_version.created", everything),
        ("model_alias.changed", aliases),
        ("model_alias.changed", everything),
        ("model_alias.deleted", everything),
        ("alert.fired", aliases),
        ("alert.fired", everything),
    }
    assert pairs(store, "pending") == pairs(store)


def test_an_event_before_a_webhook_existed_is_not_sent_to_it(store: SqlStore) -> None:
    emit(store)
    hook = store.events.add_webhook(HOOK, events=["*"], actor="ann")
    later = emit(store)
    assert [(d.event.id, d.webhook_id) for d in store.events.list_deliveries()] == [
        (later, hook.id)
    ]


def test_removed_webhooks_get_nothing_and_lose_their_pending_deliveries(store: SqlStore) -> None:
    hook = store.events.add_webhook(HOOK, events=["*"], actor="ann")
    emit(store)
    assert len(store.events.list_deliveries()) == 1
    store.events.remove_webhook(hook.id, actor="ann")
    assert store.events.list_deliveries() == []
    emit(store)
    assert store.events.list_deliveries() == []
    assert len(store.events.list_events()) == 2  # the events themselves stay


def test_inactive_webhooks_get_nothing_and_their_deliveries_are_not_claimed(
    store: SqlStore,
) -> None:
    hook = store.events.add_webhook(HOOK, events=["*"], actor="ann")
    emit(store)
    with store._engine.begin() as conn:
        conn.execute(sa.update(t.webhooks).values(active=False))
    emit(store)
    assert len(store.events.list_deliveries()) == 1  # only the event from before
    assert store.events.claim_deliveries() == []
    assert not store.events.list_webhooks()[0].active
    assert store.events.list_webhooks()[0].id == hook.id


def test_unknown_webhooks_cannot_be_removed(checker: SqlStore) -> None:
    with pytest.raises(NotFoundError, match="mloop webhooks list"):
        checker.events.remove_webhook("nope" * 1000, actor="ann")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "non-empty"),
        ("ftp://example.com/hook", "must start with http:// or https://"),
        ("javascript:alert(1)", "must start with http:// or https://"),
        ("file:///etc/passwd", "must start with http:// or https://"),
        ("example.com/hook", "must start with http:// or https://"),
        ("http://", "no host"),
        ("http://exa mple.com/", "spaces or control characters"),
        ("http://example.com/\nX-Injected: 1", "spaces or control characters"),
        ("http://example.com:port/", "does not parse"),
        ("http://example.com/" + "x" * 10_000, "limit is 2,000"),
        (None, "non-empty"),
    ],
)
def test_bad_webhook_urls_are_refused(checker: SqlStore, url: object, problem: str) -> None:
    with pytest.raises(InvalidValueError, match=problem) as caught:
        checker.events.add_webhook(url, events=["*"], actor="ann")  # type: ignore[arg-type]
    assert len(str(caught.value)) < 300  # a 10k URL is not echoed back whole
    assert checker.events.list_webhooks() == []


@pytest.mark.parametrize(
    "events", [[], "model_version.*", [""], ["Model.*"], ["a b"], ["[ab]"], ["x" * 65], [3]]
)
def test_bad_event_patterns_are_refused(checker: SqlStore, events: object) -> None:
    with pytest.raises(InvalidValueError, match="pattern"):
        checker.events.add_webhook(HOOK, events=events, actor="ann")  # type: ignore[arg-type]


def test_empty_secrets_are_refused(checker: SqlStore) -> None:
    with pytest.raises(InvalidValueError, match="secret"):
        checker.events.add_webhook(HOOK, events=["*"], actor="ann", secret="")


# -- claims and outcomes ------------------------------------------------------------------------


def test_a_claim_is_a_lease(clocked: SqlStore, clock: Clock) -> None:
    clocked.events.add_webhook(HOOK, events=["*"], actor="ann", secret="s3cret")
    event_id = emit(clocked)
    [claimed] = clocked.events.claim_deliveries(lease_ms=30_000)
    assert (claimed.event.id, claimed.url, claimed.attempts) == (event_id, HOOK, 0)
    assert claimed.secret == "s3cret"  # the deliverer signs with it
    assert clocked.events.claim_deliveries(lease_ms=30_000) == []
    clock.advance(29.999)
    assert clocked.events.claim_deliveries() == []
    clock.advance(0.001)
    [again] = clocked.events.claim_deliveries()
    assert again.event.id == event_id


def test_claims_take_due_deliveries_oldest_first_up_to_limit(
    clocked: SqlStore, clock: Clock
) -> None:
    clocked.events.add_webhook(HOOK, events=["*"], actor="ann")
    ids = []
    for _ in range(5):
        ids.append(emit(clocked))
        clock.advance(1)
    assert [d.event.id for d in clocked.events.claim_deliveries(limit=2)] == ids[:2]
    assert [d.event.id for d in clocked.events.claim_deliveries(limit=10)] == ids[2:]


def test_finish_delivery_transitions(clocked: SqlStore, clock: Clock) -> None:
    hook = clocked.events.add_webhook(HOOK, events=["*"], actor="ann")
    event_id = emit(clocked)
    (delivery,) = clocked.events.list_deliveries()
    assert (delivery.status, delivery.attempts, delivery.delivered) == ("pending", 0, None)

    retry_at = START_MS + 60_000
    clocked.events.finish_delivery(
        event_id, hook.id, ok=False, error="HTTP 500", retry_at_ms=retry_at
    )
    (delivery,) = clocked.events.list_deliveries()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 1, "HTTP 500")
    assert delivery.next_attempt.timestamp() * 1000 == retry_at
    assert clocked.events.claim_deliveries() == []  # not due yet
    clock.advance(60)
    assert len(clocked.events.claim_deliveries()) == 1

    clocked.events.finish_delivery(event_id, hook.id, ok=True)
    (delivery,) = clocked.events.list_deliveries()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 2, None)
    assert delivery.delivered is not None
    assert delivery.delivered.timestamp() * 1000 == clock.now_ms
    assert clocked.events.list_deliveries(status="pending") == []

    # A late outcome for a finished delivery (another deliverer's lease ran out) changes nothing.
    clocked.events.finish_delivery(event_id, hook.id, ok=False, error="late")
    assert clocked.events.list_deliveries()[0].status == "delivered"


def test_failed_deliveries_are_never_claimed_again(clocked: SqlStore, clock: Clock) -> None:
    hook = clocked.events.add_webhook(HOOK, events=["*"], actor="ann")
    event_id = emit(clocked)
    clocked.events.finish_delivery(event_id, hook.id, ok=False, error="x" * 100_000)
    (delivery,) = clocked.events.list_deliveries(status="failed")
    assert delivery.attempts == 1
    assert delivery.last_error == "x" * 1000  # cut to a bounded length
    clock.advance(86_400)
    assert clocked.events.claim_deliveries() == []


def test_concurrent_claims_never_share_a_delivery(store: SqlStore) -> None:
    for _ in range(2):
        store.events.add_webhook(HOOK, events=["*"], actor="ann")
    for _ in range(30):
        emit(store)
    claimed: Counter[tuple[str, str]] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(4)

    def claim() -> None:
        start.wait()
        while batch := store.events.claim_deliveries(limit=3, lease_ms=600_000):
            with lock:
                claimed.update((d.event.id, d.webhook_id) for d in batch)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == 60
    assert set(claimed.values()) == {1}


def test_bad_delivery_status_filter_is_refused(checker: SqlStore) -> None:
    with pytest.raises(InvalidValueError, match="pending, delivered, failed"):
        checker.events.list_deliveries(status="sent")


def test_the_registry_emits_its_events_with_the_documented_payloads(store: SqlStore) -> None:
    hook = store.events.add_webhook(HOOK, events=["model_*.*"], actor="ann")
    artifact = store.record_artifact(
        digest="0" * 64, kind="model", size=1, uri="/blobs/0", meta={"signature": {}}
    )
    version = store.models.create_version(
        "churn", artifact_id=artifact.id, flavor="sklearn", actor="ann"
    )
    store.models.set_alias("churn", "production", version.version, actor="bob")
    store.models.delete_alias("churn", "production", actor="bob")
    events = store.events.list_events()
    assert [(e.kind, e.subject, e.actor) for e in events] == [
        ("model_version.created", "churn/1", "ann"),
        ("model_alias.changed", "churn@production", "bob"),
        ("model_alias.deleted", "churn@production", "bob"),
    ]
    assert events[0].payload == {
        "model": "churn",
        "version": 1,
        "artifact_id": artifact.id,
        "run_id": None,
        "flavor": "sklearn",
    }
    assert events[1].payload == {
        "model": "churn",
        "alias": "production",
        "version": 1,
        "previous_version": None,
    }
    assert events[2].payload == {
        "model": "churn",
        "alias": "production",
        "version": None,
        "previous_version": 1,
    }
    assert {d.webhook_id for d in store.events.list_deliveries(status="pending")} == {hook.id}
    assert len(store.events.list_deliveries()) == 3
