"""Events and webhooks: tell other systems when something happens in mloop.

Components record events in the same transaction as the change they describe (a new model
version, an alias moved); each active webhook whose patterns match an event's kind gets it as
an HTTP POST, signed with HMAC-SHA256 when the webhook has a secret. Delivery is at least
once, with retries; receivers deduplicate on the ``X-Mloop-Delivery`` header.

>>> from mloop.events import add_webhook, deliver_pending
>>> add_webhook("https://ci.example.com/hooks/mloop", secret="s3cret")  # doctest: +SKIP
>>> deliver_pending().delivered                                          # doctest: +SKIP
1

See docs/events.md.
"""

from __future__ import annotations

from mloop.events._api import (
    DEFAULT_EVENTS,
    add_webhook,
    deliver_pending,
    emit,
    list_deliveries,
    list_events,
    list_webhooks,
    remove_webhook,
)
from mloop.events._deliver import DeliveryError, DeliveryReport, event_body
from mloop.events._sign import SIGNATURE_HEADER, signature, verify_signature
from mloop.events._soon import deliver_soon
from mloop.store import Delivery, Event, Webhook

__all__ = [
    "DEFAULT_EVENTS",
    "SIGNATURE_HEADER",
    "Delivery",
    "DeliveryError",
    "DeliveryReport",
    "Event",
    "Webhook",
    "add_webhook",
    "deliver_pending",
    "deliver_soon",
    "emit",
    "event_body",
    "list_deliveries",
    "list_events",
    "list_webhooks",
    "remove_webhook",
    "signature",
    "verify_signature",
]
