"""Sending due webhook deliveries: claim, POST, record the outcome, schedule retries.

Delivery is at least once. A delivery is claimed with a lease before it is sent, so two
deliverers (threads or processes) never send it at the same time; one that dies mid-send
leaves it pending, and it is sent again once the lease runs out. Receivers deduplicate on
``X-Mloop-Delivery`` (the event id).
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from mloop._version import __version__
from mloop.errors import InvalidValueError
from mloop.events._post import Outcome, post
from mloop.events._sign import SIGNATURE_HEADER, signature
from mloop.store import Delivery, Event, Store, from_ms, now_ms

__all__ = ["DeliveryError", "DeliveryReport", "RetryPolicy", "deliver", "event_body"]

log = logging.getLogger("mloop.events")

BATCH = 8  # deliveries claimed, and sent side by side, at a time
MIN_LEASE_MS = 60_000
MAX_SECONDS = 30 * 86_400
_jitter = random.Random()  # noqa: S311 - spreads retries out; nothing secret depends on it


@dataclass(frozen=True)
class DeliveryError:
    """A delivery that did not go through this time: retried at ``retry_at``, or failed."""

    event_id: str
    webhook_id: str
    kind: str
    attempts: int  # attempts made so far, this one included
    error: str
    retry_at: datetime | None  # None: failed for good, it will not be sent again


@dataclass(frozen=True)
class DeliveryReport:
    """What one ``deliver_pending`` call did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    errors: tuple[DeliveryError, ...] = ()

    @property
    def attempted(self) -> int:
        """Deliveries sent (successfully or not) by this call."""
        return self.delivered + self.retrying + self.failed

    @property
    def next_retry(self) -> datetime | None:
        """The earliest retry this call scheduled, if it scheduled any."""
        times = [e.retry_at for e in self.errors if e.retry_at is not None]
        return min(times) if times else None


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait for a receiver and how to space retries (checked on creation)."""

    timeout: float = 5.0
    max_attempts: int = 8
    base_delay: float = 2.0
    max_delay: float = 3600.0

    def __post_init__(self) -> None:
        for name in ("timeout", "base_delay", "max_delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise InvalidValueError(f"{name} must be a number of seconds >= 0, not {value!r}")
        if self.timeout > MAX_SECONDS or self.max_delay > MAX_SECONDS:
            raise InvalidValueError(
                f"timeout and max_delay must be at most {MAX_SECONDS:,} seconds (30 days)"
            )
        if not self.timeout > 0:
            raise InvalidValueError(f"timeout must be more than 0 seconds, not {self.timeout!r}")
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise InvalidValueError(f"max_attempts must be an int, not {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise InvalidValueError(f"max_attempts must be at least 1, not {self.max_attempts}")

    def delay(self, attempts_before: int, retry_after: float | None) -> float:
        """Seconds until the next try: the receiver's Retry-After if it gave one, else
        exponential backoff with jitter."""
        if retry_after is not None:
            return min(self.max_delay, retry_after)
        exponential = self.base_delay * 2.0 ** min(attempts_before, 64)
        return min(self.max_delay, exponential) * _jitter.uniform(0.5, 1.0)

    @property
    def lease_ms(self) -> int:
        """How long a claim lasts: well past the slowest attempt, so nobody else sends it."""
        return max(MIN_LEASE_MS, int(self.timeout * 4_000))


def event_body(event: Event) -> bytes:
    """The JSON a webhook receives for ``event``, as the exact bytes that are signed."""
    document = {
        "id": event.id,
        "kind": event.kind,
        "subject": event.subject,
        "actor": event.actor,
        "created": event.created.astimezone(UTC).isoformat(timespec="milliseconds"),
        "payload": event.payload,
    }
    return json.dumps(document, separators=(",", ":")).encode("ascii")


def _headers(delivery: Delivery, body: bytes) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"mloop/{__version__}",
        "X-Mloop-Event": delivery.event.kind,
        "X-Mloop-Delivery": delivery.event.id,
    }
    if delivery.secret:
        headers[SIGNATURE_HEADER] = signature(body, delivery.secret)
    return headers


def _scrub(text: str, secret: str | None) -> str:
    # Receivers know the secret too and may echo it back; it never goes into the store.
    return text.replace(secret, "[secret]") if secret else text


class _Tally:
    """The outcomes of one ``deliver`` call, as they come."""

    def __init__(self) -> None:
        self.delivered = self.retrying = self.failed = 0
        self.errors: list[DeliveryError] = []

    def add(self, error: DeliveryError | None) -> None:
        if error is None:
            self.delivered += 1
            return
        if error.retry_at is None:
            self.failed += 1
        else:
            self.retrying += 1
        self.errors.append(error)

    def report(self) -> DeliveryReport:
        return DeliveryReport(self.delivered, self.retrying, self.failed, tuple(self.errors))


def _attempt(
    store: Store, delivery: Delivery, policy: RetryPolicy, clock: Callable[[], int]
) -> DeliveryError | None:
    """Send one delivery and record how it went; None when it was delivered."""
    body = event_body(delivery.event)
    outcome: Outcome = post(delivery.url, body, _headers(delivery, body), timeout=policy.timeout)
    event_id, webhook_id = delivery.event.id, delivery.webhook_id
    if outcome.ok:
        store.events.finish_delivery(event_id, webhook_id, ok=True)
        return None
    attempts = delivery.attempts + 1
    error = _scrub(outcome.error or "failed", delivery.secret)
    retry_at_ms: int | None = None
    if outcome.retry and attempts < policy.max_attempts:
        seconds = policy.delay(delivery.attempts, outcome.retry_after)
        retry_at_ms = clock() + int(seconds * 1000)
    elif outcome.retry:
        error = f"{error} (gave up after {attempts} attempts)"
    store.events.finish_delivery(
        event_id, webhook_id, ok=False, error=error, retry_at_ms=retry_at_ms
    )
    log.info("webhook delivery %s to %s: %s", event_id, webhook_id, error)
    return DeliveryError(
        event_id, webhook_id, delivery.event.kind, attempts, error, from_ms(retry_at_ms)
    )


def _send(
    store: Store, batch: list[Delivery], policy: RetryPolicy, clock: Callable[[], int]
) -> list[DeliveryError | None]:
    """Send a batch side by side: one thread per delivery, the caller's thread for the first.

    Plain threads rather than an executor: executors refuse work once the interpreter starts
    shutting down, which is exactly when the background deliverer sends its last batch. Where
    a thread cannot be started, the caller's thread sends that delivery too.
    """
    results: list[DeliveryError | None] = [None] * len(batch)
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            results[index] = _attempt(store, batch[index], policy, clock)
        except BaseException as error:  # noqa: BLE001 - re-raised below, in the caller
            failures.append(error)

    threads = []
    for index in range(1, len(batch)):
        thread = threading.Thread(target=run, args=(index,), name="mloop-webhook", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # the interpreter is finalizing
            run(index)
        else:
            threads.append(thread)
    if batch:
        run(0)
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return results


def deliver(
    store: Store,
    policy: RetryPolicy,
    *,
    limit: int,
    clock: Callable[[], int] = now_ms,
    stop: threading.Event | None = None,
) -> DeliveryReport:
    """Claim and send due deliveries, ``BATCH`` at a time, until none are due or ``limit``
    have been attempted (or ``stop`` is set: then no new batch is claimed)."""
    tally = _Tally()
    attempted = 0
    while attempted < limit and not (stop is not None and stop.is_set()):
        batch = store.events.claim_deliveries(
            limit=min(BATCH, limit - attempted), lease_ms=policy.lease_ms
        )
        if not batch:
            break
        attempted += len(batch)
        for result in _send(store, batch, policy, clock):
            tally.add(result)
    return tally.report()
