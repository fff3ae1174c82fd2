"""The registry's changes reach a webhook without anyone calling deliver: end to end."""

from __future__ import annotations

import json

from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from mloop.events import SIGNATURE_HEADER, _soon, add_webhook, verify_signature
from mloop.registry import register, set_alias
from mloop.store import SqlStore

from .helpers import Receiver


def test_registering_and_promoting_notify_a_signed_webhook(
    soon: SqlStore, receiver: Receiver
) -> None:
    add_webhook(receiver.url(), secret="s3cret", store=soon)
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    register(Ridge().fit(X, y), "diabetes", input_example=X[:3], store=soon)
    set_alias("diabetes", "production", 1, store=soon, actor="release-bot")
    got = receiver.wait_for(2, timeout=20)
    # Deliveries go out side by side: receivers order events by "created", not by arrival.
    bodies = sorted((json.loads(request.body) for request in got), key=lambda b: b["id"])
    assert [(b["kind"], b["subject"]) for b in bodies] == [
        ("model_version.created", "diabetes/1"),
        ("model_alias.changed", "diabetes@production"),
    ]
    assert bodies[1]["actor"] == "release-bot"
    assert bodies[1]["payload"] == {
        "model": "diabetes",
        "alias": "production",
        "version": 1,
        "previous_version": None,
    }
    for request in got:
        header = request.headers[SIGNATURE_HEADER.lower()]
        assert verify_signature(request.body, "s3cret", header)
    assert _soon.wait_idle(10)  # the sender records the outcome after the receiver answers
    assert {d.status for d in soon.events.list_deliveries()} == {"delivered"}
