"""Events and webhooks through the store in force: the functions users and components call."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mloop.backends import backends, current_settings
from mloop.errors import InvalidValueError
from mloop.events._deliver import DeliveryReport, RetryPolicy, deliver
from mloop.events._soon import deliver_soon, webhooks_changed
from mloop.store import Delivery, Event, Store, Webhook, now_ms

__all__ = [
    "DEFAULT_EVENTS",
    "add_webhook",
    "deliver_pending",
    "emit",
    "list_deliveries",
    "list_events",
    "list_webhooks",
    "remove_webhook",
]

DEFAULT_EVENTS = ("model_version.*", "model_alias.*")


def _store(store: Store | None) -> Store:
    return store if store is not None else backends().store


def _actor(actor: str | None) -> str:
    return actor if actor is not None else current_settings().user


def emit(
    kind: str,
    subject: str,
    payload: Mapping[str, Any],
    *,
    actor: str | None = None,
    store: Store | None = None,
) -> Event:
    """Record an event and send it to the webhooks that want it, in the background.

    >>> emit("alert.fired", "churn@production", {"rule": "psi > 0.2"})  # doctest: +SKIP
    """
    store = _store(store)
    event = store.events.emit(kind, subject, payload, actor=_actor(actor))
    deliver_soon(store)
    return event


def list_events(
    kind: str | None = None,
    after_id: str | None = None,
    limit: int = 100,
    store: Store | None = None,
) -> list[Event]:
    """Events, oldest first; ``kind`` may be a glob (``'model_alias.*'``); page with
    ``after_id`` (the last id of the previous page)."""
    return _store(store).events.list_events(kind=kind, after_id=after_id, limit=limit)


def add_webhook(
    url: str,
    events: Sequence[str] = DEFAULT_EVENTS,
    secret: str | None = None,
    actor: str | None = None,
    store: Store | None = None,
) -> Webhook:
    """Send events whose kind matches one of ``events`` (globs) to ``url`` as HTTP POSTs.

    With a ``secret``, each request carries ``X-Mloop-Signature`` for the receiver to check
    with :func:`verify_signature`. Only events recorded from now on are sent.
    """
    store = _store(store)
    webhook = store.events.add_webhook(url, events=events, actor=_actor(actor), secret=secret)
    webhooks_changed(store)
    return webhook


def list_webhooks(store: Store | None = None) -> list[Webhook]:
    """Every webhook, oldest first."""
    return _store(store).events.list_webhooks()


def remove_webhook(id: str, actor: str | None = None, store: Store | None = None) -> None:
    """Remove a webhook; its deliveries still pending are dropped."""
    store = _store(store)
    store.events.remove_webhook(id, actor=_actor(actor))
    webhooks_changed(store)


def list_deliveries(
    status: str | None = None, limit: int = 100, store: Store | None = None
) -> list[Delivery]:
    """Deliveries (``pending``, ``delivered`` or ``failed``), oldest event first."""
    return _store(store).events.list_deliveries(status=status, limit=limit)


def deliver_pending(
    store: Store | None = None,
    *,
    timeout: float = 5.0,
    max_attempts: int = 8,
    base_delay: float = 2.0,
    max_delay: float = 3600.0,
    limit: int = 1000,
    clock: Callable[[], int] = now_ms,
) -> DeliveryReport:
    """Send the deliveries that are due now, and report what happened. Blocks until done.

    2xx from the receiver is delivered. Connection errors, timeouts, 5xx, 408 and 429 are
    retried after ``min(max_delay, base_delay * 2**attempts) * uniform(0.5, 1)`` seconds (or
    the receiver's numeric Retry-After on 429/503), until ``max_attempts``; then the delivery
    has failed. 3xx and any other 4xx fail at once. ``timeout`` (seconds) bounds each network
    step. ``clock`` (milliseconds since the epoch) must agree with the store's clock.
    """
    policy = RetryPolicy(
        timeout=timeout, max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay
    )
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidValueError(f"limit must be a positive int, not {limit!r}")
    return deliver(_store(store), policy, limit=limit, clock=clock)
