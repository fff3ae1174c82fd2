"""Webhook delivery against a real HTTP server on loopback: outcomes, retries, signatures."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter

import pytest

from mloop import __version__
from mloop.errors import InvalidValueError
from mloop.events import (
    DeliveryReport,
    _soon,
    add_webhook,
    deliver_pending,
    emit,
    list_deliveries,
    list_events,
    signature,
    verify_signature,
)
from mloop.events._deliver import RetryPolicy
from mloop.store import SqlStore

from .helpers import Clock, Receiver, Reply

SECRET = "s3cret-Kq9"


def hook(store: SqlStore, url: str, secret: str | None = None) -> str:
    return add_webhook(url, events=["*"], secret=secret, actor="ann", store=store).id


def record(store: SqlStore, kind: str = "model_version.created") -> str:
    # store.events.emit: records without starting background delivery (mloop.events.emit would)
    return store.events.emit(kind, "churn/3", {"model": "churn", "version": 3}, actor="ann").id


def send(store: SqlStore, clock: Clock, **options: float) -> DeliveryReport:
    settings: dict[str, float] = {"timeout": 2.0, "base_delay": 1.0} | options
    return deliver_pending(store, clock=clock, **settings)  # type: ignore[arg-type]


def test_delivered_on_the_first_try(
    sqlite_store: SqlStore, clock: Clock, receiver: Receiver
) -> None:
    webhook_id = hook(sqlite_store, receiver.url("/hooks/mloop?team=ml"))
    event_id = record(sqlite_store)
    report = send(sqlite_store, clock)
    assert report == DeliveryReport(delivered=1)
    [request] = receiver.received
    assert request.path == "/hooks/mloop?team=ml"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == f"mloop/{__version__}"
    assert request.headers["x-mloop-event"] == "model_version.created"
    assert request.headers["x-mloop-delivery"] == event_id
    assert "x-mloop-signature" not in request.headers
    body = json.loads(request.body)
    assert body == {
        "id": event_id,
        "kind": "model_version.created",
        "subject": "churn/3",
        "actor": "ann",
        "created": "2027-01-15T08:00:00.000+00:00",
        "payload": {"model": "churn", "version": 3},
    }
    [delivery] = list_deliveries(store=sqlite_store)
    assert (delivery.webhook_id, delivery.status, delivery.attempts) == (webhook_id, "delivered", 1)
    assert send(sqlite_store, clock) == DeliveryReport()  # nothing is sent twice
    assert len(receiver.received) == 1


def test_5xx_is_retried_with_backoff_then_delivered(
    sqlite_store: SqlStore, clock: Clock, receiver: Receiver
) -> None:
    hook(sqlite_store, receiver.url())
    record(sqlite_store)
    receiver.reply(Reply(500), Reply(502))

    first = send(sqlite_store, clock, base_delay=10)
    assert (first.retrying, first.delivered, first.failed) == (1, 0, 0)
    [error] = first.errors
    assert error.error == "HTTP 500 Internal Server Error"
    assert error.attempts == 1
    assert error.retry_at is not None
    wait = error.retry_at.timestamp() - clock() / 1000
    assert 5 <= wait <= 10  # base_delay * 2**0, jittered by 0.5-1
    assert send(sqlite_store, clock) == DeliveryReport()  # not due yet
    [pending] = list_deliveries(status="pending", store=sqlite_store)
    assert (pending.attempts, pending.last_error) == (1, "HTTP 500 Internal Server Error")

    clock.advance(10)
    second = send(sqlite_store, clock, base_delay=10)
    assert second.retrying == 1
    assert second.errors[0].error.startswith("HTTP 502")
    wait = second.errors[0].retry_at.timestamp() - clock() / 1000  # type: ignore[union-attr]
    assert 10 <= wait <= 20  # base_delay * 2**1

    clock.advance(20)
    assert send(sqlite_store, clock).delivered == 1
    assert len(receiver.received) == 3
    assert len({r.headers["x-mloop-delivery"] for r in receiver.received}) == 1
    [delivered] = list_deliveries(status="delivered", store=sqlite_store)
    assert (delivered.attempts, delivered.last_error) == (3, None)


def test_delay_is_capped_at_max_delay(
    sqlite_store: SqlStore, clock: Clock, receiver: Receiver
) -> None:
    hook(sqlite_store, receiver.url())
    record(sqlite_store)
    receiver.default = Reply(503)
    report = send(sqlite_store, clock, base_delay=1000, max_delay=4)
    wait = report.errors[0].retry_at.timestamp() - clock() / 1000  # type: ignore[union-attr]
    assert 2 <= wait <= 4


@pytest.mark.parametrize(("status", "header"), [(429, "7"), (503, "7"), (429, " 7 ")])
def test_retry_after_is_honoured(
    sqlite_store: SqlStore, clock: Clock, receiver: Receiver, status: int, header: str
) -> None:
    hook(sqlite_store, receiver.url())
    record(sqlite_store)
    receiver.reply(Reply(status, {"Retry-After": header}))
    [error] = send(sqlite_store, clock).errors
    assert error.retry_at is not None
    assert error.retry_at.timestamp() * 1000 == clock() + 7000


def test_408_is_retried_and_a_date_retry_after_falls_back_to_backoff(
    sqlite_store: SqlStore, clock: Clock, receiver: Receiver
) -> None:
    hook(sqlite_store, receiver.url())
    record(sqlite_store)
    receiver.reply(Reply(408, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    [error] = send(sqlite_store, clock, base_delay=1).errors
    wait = error.retry_at.timestamp() - clock() / 1000  # type: ignore[union-attr]
    assert 0.5 <= wait <= 1


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_other_4xx_fail_at_once(
    sqlite_store: SqlStore, clock: Clock, receiver: Receiver, status: int
) -> None:
    hook(sqlite_store, receiver.url())
    record(sqlite_store)
    receiver.default = Reply(status)
    report = send(sqlite_store, clock)
    assert (report.failed, report.retrying) == (1, 0)
    [error] = report.errors
    assert error.retry_at is None
    assert f"HTTP {status}" in error.error
    assert "refused the event" in error.error
    clock.advance(86_400)
    assert send(sqlite_store, clock) == DeliveryReport()
    assert len(receiver.received) == 1
    [failed] = list_deliveries(status="failed", store=sqlite_store)
    assert failed.last_error == error.error


def test_a_receiver_slower_than_the_timeout_is_retried(
    sqlite_store: SqlStore, clock: Clock, receiver: Receiver
) -> None:
    hook(sqlite_store, receiver.url())
    record(sqlite_store)
    receiver.reply(Reply(delay=2.0))
    started = time.monotonic()
    report = send(sqlite_store, clock, timeout=0.2)
    assert time.monotonic() - started < 1.5
    assert report.retrying == 1
    assert report.errors[0].error == "timed out after 0.2s"
    clock.advance(10)
    assert send(sqlite_store, clock, timeout=0.2).delivered == 1


def test_connection_refused_is_retried(
    sqlite_store: SqlStore, clock: Clock, closed_port: int
) -> None:
    hook(sqlite_store, f"http://127.0.0.1:{closed_port}/hook")
    record(sqlite_store)
    report = send(sqlite_store, clock)
    assert report.retrying == 1
    assert report.errors[0].error == "connection refused"


def test_gives_up_after_max_attempts(
    sqlite_store: SqlStore, clock: Clock, receiver: Receiver
) -> None:
    hook(sqlite_store, receiver.url())
    record(sqlite_store)
    receiver.default = Reply(500)
    for _ in range(2):
        assert send(sqlite_store, clock, max_attempts=3).retrying == 1
        clock.advance(3600)
    last = send(sqlite_store, clock, max_attempts=3)
    assert (last.failed, last.retrying) == (1, 0)
    assert last.errors[0].error == ("HTTP 500 Internal Server Error (gave up after 3 attempts)")
    clock.advance(86_400)
    assert send(sqlite_store, clock, max_attempts=3) == DeliveryReport()
    assert len(receiver.received) == 3
    [failed] = list_deliveries(status="failed", store=sqlite_store)
    assert failed.attempts == 3


def test_redirects_are_not_followed(sqlite_store: SqlStore, clock: Clock) -> None:
    with Receiver() as first, Receiver() as elsewhere:
        hook(sqlite_store, first.url())
        record(sqlite_store)
        first.reply(Reply(307, {"Location": elsewhere.url("/other")}))
        report = send(sqlite_store, clock)
        assert (report.failed, report.retrying) == (1, 0)
        message = report.errors[0].error
        assert "HTTP 307" in message
        assert "redirects to 127.0.0.1" in message
        assert "register the final URL" in message
        assert len(first.received) == 1
        assert elsewhere.received == []


def test_deliveries_are_signed_when_the_webhook_has_a_secret(
    sqlite_store: SqlStore, clock: Clock, receiver: Receiver
) -> None:
    hook(sqlite_store, receiver.url(), secret=SECRET)
    record(sqlite_store)
    assert send(sqlite_store, clock).delivered == 1
    [request] = receiver.received
    header = request.headers["x-mloop-signature"]
    assert header.startswith("sha256=")
    assert header == signature(request.body, SECRET)
    assert verify_signature(request.body, SECRET, header)
    assert verify_signature(request.body, SECRET.encode(), header)
    assert not verify_signature(request.body, "wrong secret", header)
    assert not verify_signature(request.body + b" ", SECRET, header)
    assert not verify_signature(request.body, SECRET, None)
    assert not verify_signature(request.body, SECRET, header.removeprefix("sha256="))
    assert not verify_signature(request.body, SECRET, "sha256=" + "0" * 64)
    assert not verify_signature(request.body, SECRET, "sha256=é")
    with pytest.raises(TypeError, match="raw request body as bytes"):
        verify_signature(request.body.decode(), SECRET, header)  # type: ignore[arg-type]


def test_the_secret_never_reaches_an_error_text(
    sqlite_store: SqlStore, clock: Clock, receiver: Receiver
) -> None:
    hook(sqlite_store, receiver.url(), secret=SECRET)
    record(sqlite_store)
    receiver.reply(Reply(500, reason=f"bad signature, expected {SECRET}"))
    [error] = send(sqlite_store, clock).errors
    assert SECRET not in error.error
    assert "[secret]" in error.error
    [pending] = list_deliveries(store=sqlite_store)
    assert SECRET not in (pending.last_error or "")


def test_concurrent_deliverers_send_each_event_exactly_once(
    store: SqlStore, receiver: Receiver
) -> None:
    hook(store, receiver.url())
    events = {record(store) for _ in range(24)}
    receiver.default = Reply(delay=0.02)
    reports: list[DeliveryReport] = []
    start = threading.Barrier(2)

    def deliverer() -> None:
        start.wait()
        reports.append(deliver_pending(store, timeout=5))

    threads = [threading.Thread(target=deliverer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent = Counter(r.headers["x-mloop-delivery"] for r in receiver.received)
    assert set(sent) == events
    assert set(sent.values()) == {1}
    assert sum(r.delivered for r in reports) == 24
    assert len(list_deliveries(status="delivered", store=store)) == 24


def test_delivery_settings_are_checked(sqlite_store: SqlStore) -> None:
    for bad in (
        {"timeout": 0},
        {"timeout": -1},
        {"max_attempts": 0},
        {"max_attempts": 2.5},
        {"base_delay": -1},
        {"max_delay": float("nan")},
        {"max_delay": 1e12},
        {"limit": 0},
    ):
        with pytest.raises(InvalidValueError, match=next(iter(bad))):
            deliver_pending(sqlite_store, **bad)  # type: ignore[arg-type]


# -- in the background --------------------------------------------------------------------------


def background_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "mloop-events-deliver"]


def test_emit_returns_at_once_and_the_event_is_delivered_in_the_background(
    soon: SqlStore, receiver: Receiver
) -> None:
    hook(soon, receiver.url())
    receiver.default = Reply(delay=1.5)  # a slow receiver must not slow the caller
    started = time.monotonic()
    event = emit("alert.fired", "churn@production", {"rule": "psi > 0.2"}, actor="ann", store=soon)
    assert time.monotonic() - started < 1.0
    [request] = receiver.wait_for(1)
    assert request.headers["x-mloop-delivery"] == event.id
    deadline = time.monotonic() + 5
    while not list_deliveries(status="delivered", store=soon) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(list_deliveries(status="delivered", store=soon)) == 1


def test_a_burst_of_events_is_delivered_by_one_reused_worker(
    soon: SqlStore, receiver: Receiver
) -> None:
    hook(soon, receiver.url())
    ids = {emit("alert.fired", f"churn/{n}", {}, actor="ann", store=soon).id for n in range(30)}
    received = receiver.wait_for(30)
    assert {r.headers["x-mloop-delivery"] for r in received} == ids
    assert len(background_threads()) <= 1


def test_background_retries_a_receiver_that_failed(
    soon: SqlStore, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_soon, "POLICY", RetryPolicy(base_delay=0.05))
    hook(soon, receiver.url())
    receiver.reply(Reply(500))
    emit("alert.fired", "churn/1", {}, actor="ann", store=soon)
    receiver.wait_for(2)
    deadline = time.monotonic() + 5
    while not list_deliveries(status="delivered", store=soon) and time.monotonic() < deadline:
        time.sleep(0.02)
    [delivered] = list_deliveries(status="delivered", store=soon)
    assert delivered.attempts == 2


def test_nothing_starts_without_webhooks(soon: SqlStore) -> None:
    for n in range(50):
        emit("alert.fired", f"churn/{n}", {}, actor="ann", store=soon)
    assert background_threads() == []
    assert len(list_events(store=soon)) == 50


def test_a_webhook_added_by_another_process_is_picked_up(
    soon: SqlStore, store_url: str, receiver: Receiver
) -> None:
    emit("alert.fired", "churn/1", {}, actor="ann", store=soon)  # caches "no webhooks"
    other = SqlStore(store_url)  # another process's store: it cannot clear our cache
    try:
        other.events.add_webhook(receiver.url(), events=["*"], actor="bob")
    finally:
        other.close()
    time.sleep(0.35)  # PRESENCE_TTL, shortened for the tests
    event = emit("alert.fired", "churn/2", {}, actor="ann", store=soon)
    [request] = receiver.wait_for(1)
    assert request.headers["x-mloop-delivery"] == event.id


def test_background_delivery_never_raises_into_the_caller() -> None:
    from mloop.events import deliver_soon

    class Broken:
        uri = "sqlite:///nowhere.db"

        @property
        def events(self) -> object:
            raise RuntimeError("the database went away")

    deliver_soon(Broken())  # type: ignore[arg-type]
    assert background_threads() == []


def test_defaults_come_from_the_settings_in_force(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLOOP_USER", "carol")
    event = emit("alert.fired", "churn@production", {"rule": "psi"})
    assert event.actor == "carol"
    assert list_events(kind="alert.*") == [event]
    hook_ = add_webhook("https://example.com/hook")
    assert hook_.events == ("model_version.*", "model_alias.*")
    assert hook_.created_by == "carol"


def test_credentials_in_the_url_are_sent_as_basic_auth(
    sqlite_store: SqlStore, clock: Clock, receiver: Receiver
) -> None:
    url = receiver.url("/hook").replace("http://", "http://bot:p%40ss@")
    hook(sqlite_store, url)
    record(sqlite_store)
    assert send(sqlite_store, clock).delivered == 1
    [request] = receiver.received
    assert request.path == "/hook"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"bot:p@ss").decode()
