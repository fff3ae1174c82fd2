"""Events and webhooks in SQL: an outbox written in the same transaction as the change.

An event row and one delivery row per matching webhook are inserted inside the transaction that
makes the change (a new model version, an alias move), so an event exists exactly when its
change does. Deliverers claim due rows with a lease (``next_attempt_ms`` pushed ahead), so two
deliverers never send the same delivery at the same time, and one that dies mid-delivery only
delays it until the lease runs out.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from mloop.errors import InvalidValueError, NotFoundError
from mloop.store import _schema as t
from mloop.store._ids import new_id
from mloop.store._records import from_ms
from mloop.store._records_models import Delivery, DeliveryStatus, Event, Webhook

if TYPE_CHECKING:
    from mloop.store._sql import SqlStore

__all__ = ["SqlEvents", "insert_event"]

_KIND_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
_PATTERN_RE = re.compile(r"[a-z0-9_.*?]{1,64}")
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = ("pending", "delivered", "failed")
MAX_KIND = 64  # events.kind column
MAX_SUBJECT = 512  # events.subject column
MAX_ACTOR = 256  # events.actor, webhooks.created_by columns
MAX_URL = 2000
MAX_PAYLOAD = 64_000  # bytes of JSON: an event says what happened, it does not carry data
MAX_ERROR = 1000  # characters of a delivery's last_error


def _shown(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut short: a hostile argument can be megabytes long."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _event(row: Row[Any]) -> Event:
    created = from_ms(row.created_ms)
    assert created is not None
    return Event(row.id, row.kind, row.subject, row.actor, dict(row.payload), created)


def _check_kind(kind: str) -> str:
    if not isinstance(kind, str) or len(kind) > MAX_KIND or not _KIND_RE.fullmatch(kind):
        raise InvalidValueError(
            f"event kind {_shown(kind)} is not allowed; use dotted lower-case words like "
            f"'model_version.created' (at most {MAX_KIND} characters)"
        )
    return kind


def _check_actor(actor: str) -> str:
    if not isinstance(actor, str) or not actor.strip() or len(actor) > MAX_ACTOR:
        raise InvalidValueError(
            f"actor {_shown(actor)} must be a non-empty string of at most {MAX_ACTOR} "
            "characters (a user name)"
        )
    return actor


def _check_event(subject: str, payload: Mapping[str, Any], actor: str) -> dict[str, Any]:
    """The payload as a plain dict, once subject, payload and actor are known to fit."""
    if not isinstance(subject, str) or not subject.strip() or len(subject) > MAX_SUBJECT:
        raise InvalidValueError(
            f"event subject {_shown(subject)} must be a non-empty string of at most "
            f"{MAX_SUBJECT} characters, naming what the event is about (e.g. 'churn/3')"
        )
    _check_actor(actor)
    if not isinstance(payload, Mapping):
        raise InvalidValueError(
            f"event payload must be a mapping (a dict), not {type(payload).__name__}"
        )
    try:
        size = len(json.dumps(payload, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise InvalidValueError(
            f"event payload must be JSON: strings, numbers, booleans, None, lists and dicts "
            f"with string keys ({error})"
        ) from None
    if size > MAX_PAYLOAD:
        raise InvalidValueError(
            f"event payload is {size:,} bytes of JSON; the limit is {MAX_PAYLOAD:,}. Put large "
            "data in an artifact and its id in the payload"
        )
    return dict(payload)


def _check_url(url: str) -> str:
    if not isinstance(url, str) or not url:
        raise InvalidValueError(
            f"webhook URL must be a non-empty http:// or https:// URL, not {_shown(url)}"
        )
    if len(url) > MAX_URL:
        raise InvalidValueError(
            f"webhook URL {_shown(url)} is {len(url):,} characters; the limit is {MAX_URL:,}"
        )
    if not url.isprintable() or any(c.isspace() for c in url):
        raise InvalidValueError(
            f"webhook URL {_shown(url)} contains spaces or control characters; percent-encode them"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as error:
        raise InvalidValueError(f"webhook URL {_shown(url)} does not parse: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidValueError(
            f"webhook URL {_shown(url)} must start with http:// or https://; "
            "webhooks are delivered as HTTP POST requests"
        )
    if not parts.hostname:
        raise InvalidValueError(f"webhook URL {_shown(url)} has no host name")
    return url


def _check_patterns(events: Sequence[str]) -> list[str]:
    if isinstance(events, str) or not isinstance(events, Sequence) or not events:
        raise InvalidValueError(
            "events must be a non-empty list of kind patterns, like ['model_version.*']"
        )
    if len(events) > 100:
        raise InvalidValueError(f"a webhook takes at most 100 event patterns, not {len(events)}")
    for pattern in events:
        if not isinstance(pattern, str) or not _PATTERN_RE.fullmatch(pattern):
            raise InvalidValueError(
                f"event pattern {_shown(pattern)} is not valid; use kinds like "
                "'model_version.created' or globs like 'model_*.*' (lower-case letters, "
                "digits, _ . * ?; at most 64 characters)"
            )
    return list(dict.fromkeys(events))


def _like(pattern: str) -> str:
    """A kind glob as a LIKE pattern (escape character ``\\``): ``_`` matches only itself."""
    return pattern.replace("_", "\\_").replace("*", "%").replace("?", "_")


def insert_event(
    conn: Connection,
    now_ms: int,
    *,
    kind: str,
    subject: str,
    payload: Mapping[str, Any],
    actor: str,
) -> Event:
    """Record an event and queue it for every active webhook that wants it, in ``conn``'s
    transaction."""
    _check_kind(kind)
    payload = _check_event(subject, payload, actor)
    event_id = new_id()
    conn.execute(
        t.events.insert().values(
            id=event_id,
            kind=kind,
            subject=subject,
            actor=actor,
            payload=payload,
            created_ms=now_ms,
        )
    )
    w = t.webhooks.c
    hooks = conn.execute(sa.select(w.id, w.events).where(w.active.is_(True))).all()
    wanted = [
        {
            "event_id": event_id,
            "webhook_id": hook.id,
            "status": "pending",
            "attempts": 0,
            "next_attempt_ms": now_ms,
        }
        for hook in hooks
        if any(fnmatch.fnmatchcase(kind, pattern) for pattern in hook.events)
    ]
    if wanted:
        conn.execute(t.webhook_deliveries.insert(), wanted)
    created = from_ms(now_ms)
    assert created is not None
    return Event(event_id, kind, subject, actor, payload, created)


class SqlEvents:
    """``store.events`` of a SqlStore."""

    def __init__(self, sql: SqlStore) -> None:
        self._sql = sql

    def emit(self, kind: str, subject: str, payload: Mapping[str, Any], *, actor: str) -> Event:
        """Record an event (and queue its webhook deliveries) in a transaction of its own."""
        return self._sql._write(
            "record an event",
            lambda conn: insert_event(
                conn,
                self._sql._clock(),
                kind=kind,
                subject=subject,
                payload=payload,
                actor=actor,
            ),
        )

    def list_events(
        self, *, kind: str | None = None, after_id: str | None = None, limit: int = 100
    ) -> list[Event]:
        """Events oldest first; ``kind`` may be a glob (``model_alias.*``); page with
        ``after_id``."""
        e = t.events.c
        query = sa.select(t.events).order_by(e.id).limit(max(1, min(int(limit), 10_000)))
        if after_id is not None:
            query = query.where(e.id > after_id)
        if kind is not None:
            if not isinstance(kind, str) or not _PATTERN_RE.fullmatch(kind):
                raise InvalidValueError(
                    f"event kind filter {_shown(kind)} is not a valid pattern; use a kind like "
                    "'model_version.created' or a glob like 'model_alias.*'"
                )
            query = query.where(e.kind.like(_like(kind), escape="\\"))
        return [_event(row) for row in self._sql._read("list events", lambda c: c.execute(query))]

    # -- webhooks ---------------------------------------------------------------------------

    @staticmethod
    def _webhook(row: Row[Any]) -> Webhook:
        created = from_ms(row.created_ms)
        assert created is not None
        return Webhook(
            row.id,
            row.url,
            tuple(row.events),
            row.secret is not None,
            bool(row.active),
            created,
            row.created_by,
        )

    def add_webhook(
        self, url: str, *, events: Sequence[str], actor: str, secret: str | None = None
    ) -> Webhook:
        """Register an HTTP(S) endpoint for events whose kind matches one of ``events``."""
        _check_url(url)
        patterns = _check_patterns(events)
        _check_actor(actor)
        if secret is not None and (not isinstance(secret, str) or not secret or len(secret) > 1000):
            raise InvalidValueError(
                "a webhook secret must be a non-empty string of at most 1000 characters"
            )
        hook_id = new_id()

        def action(conn: Connection) -> Webhook:
            now = self._sql._clock()
            conn.execute(
                t.webhooks.insert().values(
                    id=hook_id,
                    url=url,
                    events=patterns,
                    secret=secret,
                    active=True,
                    created_ms=now,
                    created_by=actor,
                )
            )
            self._sql._audit(conn, actor, "add", "webhook", hook_id, {"url": url})
            return self._webhook(
                conn.execute(t.webhooks.select().where(t.webhooks.c.id == hook_id)).one()
            )

        return self._sql._write("add a webhook", action)

    def list_webhooks(self) -> list[Webhook]:
        """Every webhook, oldest first."""
        query = sa.select(t.webhooks).order_by(t.webhooks.c.id)
        return [
            self._webhook(r) for r in self._sql._read("list webhooks", lambda c: c.execute(query))
        ]

    def remove_webhook(self, webhook_id: str, *, actor: str) -> None:
        """Delete a webhook and its pending deliveries."""

        def action(conn: Connection) -> None:
            done = conn.execute(t.webhooks.delete().where(t.webhooks.c.id == webhook_id))
            if done.rowcount == 0:
                raise NotFoundError(
                    f"no webhook {_shown(webhook_id)}; `mloop webhooks list` shows them"
                )
            self._sql._audit(conn, actor, "remove", "webhook", webhook_id, {})

        self._sql._write("remove a webhook", action)

    # -- deliveries -------------------------------------------------------------------------

    def _deliveries(
        self, conn: Connection, where: Any, limit: int, *, lock: bool = False
    ) -> list[Delivery]:
        d, w = t.webhook_deliveries.c, t.webhooks.c
        query = (
            sa.select(
                t.events,
                d.webhook_id,
                d.status,
                d.attempts,
                d.next_attempt_ms,
                d.last_error,
                d.delivered_ms,
                w.url,
                w.secret,
            )
            .select_from(
                t.webhook_deliveries.join(t.events, t.events.c.id == d.event_id).join(
                    t.webhooks, w.id == d.webhook_id
                )
            )
            .where(where)
            .order_by(d.event_id, d.webhook_id)
            .limit(limit)
        )
        if lock:  # PostgreSQL: rows another claimer holds are skipped; SQLite ignores this
            query = query.with_for_update(of=t.webhook_deliveries, skip_locked=True)
        found = []
        for row in conn.execute(query):
            next_attempt = from_ms(row.next_attempt_ms)
            assert next_attempt is not None
            found.append(
                Delivery(
                    event=_event(row),
                    webhook_id=row.webhook_id,
                    url=row.url,
                    secret=row.secret,
                    status=row.status,
                    attempts=row.attempts,
                    next_attempt=next_attempt,
                    last_error=row.last_error,
                    delivered=from_ms(row.delivered_ms),
                )
            )
        return found

    def claim_deliveries(self, *, limit: int = 50, lease_ms: int = 30_000) -> list[Delivery]:
        """Take up to ``limit`` due deliveries for ``lease_ms``: nobody else gets them meanwhile."""
        d = t.webhook_deliveries.c

        def action(conn: Connection) -> list[Delivery]:
            now = self._sql._clock()
            is_due = (d.status == "pending") & (d.next_attempt_ms <= now)
            due = self._deliveries(
                conn, is_due & t.webhooks.c.active.is_(True), max(1, limit), lock=True
            )
            claimed = []
            for delivery in due:
                # Conditional: under PostgreSQL's READ COMMITTED a concurrent claimer may have
                # read the same row before our lock; whoever updates second finds it not due.
                done = conn.execute(
                    t.webhook_deliveries.update()
                    .where(
                        d.event_id == delivery.event.id,
                        d.webhook_id == delivery.webhook_id,
                        is_due,
                    )
                    .values(next_attempt_ms=now + max(0, lease_ms))
                )
                if done.rowcount == 1:
                    claimed.append(delivery)
            return claimed

        return self._sql._write("claim webhook deliveries", action)

    def finish_delivery(
        self,
        event_id: str,
        webhook_id: str,
        *,
        ok: bool,
        error: str | None = None,
        retry_at_ms: int | None = None,
    ) -> None:
        """Record an attempt: delivered, to be retried at ``retry_at_ms``, or failed for good."""
        d = t.webhook_deliveries.c
        now = self._sql._clock()
        if error is not None:
            error = error[:MAX_ERROR]
        values: dict[str, Any] = {"attempts": d.attempts + 1, "last_error": error}
        if ok:
            values.update(status="delivered", delivered_ms=now, last_error=None)
        elif retry_at_ms is not None:
            values.update(status="pending", next_attempt_ms=retry_at_ms)
        else:
            values.update(status="failed")
        statement = (
            t.webhook_deliveries.update()
            .where(d.event_id == event_id, d.webhook_id == webhook_id, d.status == "pending")
            .values(**values)
        )
        self._sql._write("record a webhook delivery", lambda conn: conn.execute(statement))

    def list_deliveries(self, *, status: str | None = None, limit: int = 100) -> list[Delivery]:
        """Deliveries, oldest event first, optionally only those with ``status``."""
        d = t.webhook_deliveries.c
        if status is not None and status not in DELIVERY_STATUSES:
            raise InvalidValueError(
                f"delivery status must be one of {', '.join(DELIVERY_STATUSES)}, "
                f"not {_shown(status)}"
            )
        where = sa.true() if status is None else d.status == status
        return self._sql._read(
            "list webhook deliveries", lambda conn: self._deliveries(conn, where, max(1, limit))
        )
