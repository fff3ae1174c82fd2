"""The public face of mloop.events, and delivery from a process that exits at once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import mloop.events
from mloop.events import add_webhook, list_deliveries
from mloop.store import SqlStore

from .helpers import Receiver, Reply

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"

EMIT_AND_EXIT = """
import sys, time
from mloop.events import emit
from mloop.store import SqlStore
store = SqlStore(sys.argv[1])
for n in range(3):
    emit("alert.fired", f"churn/{n}", {"rule": "psi"}, actor="ann", store=store)
print(time.monotonic(), flush=True)
"""


def test_public_names_resolve_and_are_documented() -> None:
    names = mloop.events.__all__
    assert len(names) == len(set(names))
    documented = DOCS.read_text()
    for name in names:
        assert getattr(mloop.events, name) is not None
    for name in (
        "emit",
        "add_webhook",
        "list_webhooks",
        "remove_webhook",
        "list_events",
        "deliver_pending",
        "deliver_soon",
        "verify_signature",
    ):
        assert f"{name}(" in documented, f"docs/events.md does not show {name}"


def emit_in_a_child(url: str) -> tuple[float, float]:
    """Run a process that emits three events and ends; when it emitted, and when it was gone."""
    child = subprocess.run(
        [sys.executable, "-c", EMIT_AND_EXIT, url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return float(child.stdout.strip()), time.monotonic()


def test_a_process_that_exits_right_after_a_change_still_delivers(
    sqlite_url: str, receiver: Receiver
) -> None:
    store = SqlStore(sqlite_url)
    try:
        add_webhook(receiver.url(), events=["alert.*"], actor="ann", store=store)
        emit_in_a_child(sqlite_url)
        assert len(receiver.received) == 3
        assert [d.status for d in list_deliveries(store=store)] == ["delivered"] * 3
    finally:
        store.close()


def test_a_slow_receiver_holds_up_exit_for_about_a_second_and_loses_nothing(
    sqlite_url: str, receiver: Receiver
) -> None:
    store = SqlStore(sqlite_url)
    try:
        add_webhook(receiver.url(), events=["alert.*"], actor="ann", store=store)
        receiver.default = Reply(delay=20)
        emitted, gone = emit_in_a_child(sqlite_url)
        assert gone - emitted < 2.5
        # Leased by the child; sent again once the lease ends.
        assert [d.status for d in list_deliveries(store=store)] == ["pending"] * 3
    finally:
        store.close()
