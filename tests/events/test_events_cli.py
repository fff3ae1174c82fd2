"""mloop webhooks add/list/remove and mloop events list/deliver/deliveries, in-process."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from mloop.backends import backends
from mloop.cli._errors import MloopGroup
from mloop.cli._events import events_app, webhooks_app
from mloop.events import _soon, list_webhooks
from mloop.store import Store

from .helpers import Receiver, Reply

Invoke = Callable[..., Result]

root = typer.Typer(cls=MloopGroup, no_args_is_help=True)
root.add_typer(webhooks_app, name="webhooks")
root.add_typer(events_app, name="events")


@pytest.fixture
def cli(isolated_settings: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    """``mloop webhooks|events ARGS...`` in this test's project folder, as user alice."""
    monkeypatch.setenv("MLOOP_USER", "alice")
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(root, list(args), env={"COLUMNS": "250", **(env or {})})

    yield invoke
    assert _soon.wait_idle(10)


def project_store() -> Store:
    return backends().store


def record(kind: str = "model_version.created", subject: str = "churn/1") -> str:
    # store.events.emit records without background delivery, so `events deliver` has work.
    return project_store().events.emit(kind, subject, {"model": "churn"}, actor="ann").id


def test_nothing_recorded_yet(cli: Invoke, isolated_settings: Path) -> None:
    for args, says in [
        (("webhooks", "list"), "No webhooks yet. Add one with: mloop webhooks add URL"),
        (("events", "list"), "No events yet."),
        (("events", "deliveries"), "No deliveries yet."),
        (("events", "deliver"), "Nothing to deliver: nothing has been recorded here."),
    ]:
        result = cli(*args)
        assert result.exit_code == 0, result.output
        assert says in result.stdout
    assert not (isolated_settings / ".mloop").exists()  # readers leave no empty store behind


def test_add_list_remove(cli: Invoke) -> None:
    added = cli(
        "webhooks",
        "add",
        "https://ci.example.com/hooks/mloop",
        "--event",
        "model_alias.*",
        "-e",
        "alert.fired",
        "--secret-env",
        "HOOK_SECRET",
        env={"HOOK_SECRET": "s3cret-value"},
    )
    assert added.exit_code == 0, added.output
    [hook] = list_webhooks(store=project_store())
    assert hook.events == ("model_alias.*", "alert.fired")
    assert hook.has_secret
    assert hook.created_by == "alice"
    assert f"Added webhook {hook.id} for model_alias.*, alert.fired" in added.stdout
    assert "signed with the secret in HOOK_SECRET" in added.stdout
    assert "s3cret-value" not in added.output

    plain = cli("webhooks", "add", "http://127.0.0.1:9/hook")
    assert plain.exit_code == 0, plain.output
    assert "model_version.*, model_alias.* (unsigned)" in plain.stdout

    listed = cli("webhooks", "list")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["id", "url", "events", "signed", "active", "created"]
    first = next(line for line in lines if hook.id in line)
    assert "https://ci.example.com/hooks/mloop" in first
    assert " yes " in first
    assert "s3cret-value" not in listed.stdout

    removed = cli("webhooks", "remove", hook.id)
    assert removed.exit_code == 0, removed.output
    assert f"Removed webhook {hook.id}." in removed.stdout
    assert hook.id not in cli("webhooks", "list").stdout

    again = cli("webhooks", "remove", hook.id)
    assert again.exit_code == 1
    assert "no webhook" in again.stderr
    assert "mloop webhooks list" in again.stderr


def test_passwords_in_urls_are_not_shown(cli: Invoke) -> None:
    assert cli("webhooks", "add", "https://bot:hunter2@example.com/hook").exit_code == 0
    listed = cli("webhooks", "list").stdout
    assert "https://bot:***@example.com/hook" in listed
    assert "hunter2" not in listed


def test_bad_urls_and_patterns_say_what_is_wrong(cli: Invoke) -> None:
    result = cli("webhooks", "add", "ftp://example.com/hook")
    assert result.exit_code == 1
    assert "error: webhook URL 'ftp://example.com/hook' must start with http://" in result.stderr
    result = cli("webhooks", "add", "https://example.com/", "--event", "Model.*")
    assert result.exit_code == 1
    assert "event pattern 'Model.*' is not valid" in result.stderr


def test_secret_env_must_be_set(cli: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOK_SECRET", raising=False)
    result = cli("webhooks", "add", "https://example.com/", "--secret-env", "HOOK_SECRET")
    assert result.exit_code == 2
    assert "HOOK_SECRET is not set" in result.stderr
    assert list_webhooks(store=project_store()) == []


def test_a_secret_passed_by_mistake_is_not_echoed(cli: Invoke) -> None:
    for mistaken in ("xK9-secret!value", "xK9secretValue"):
        result = cli("webhooks", "add", "https://example.com/", "--secret-env", mistaken)
        assert result.exit_code == 2
        assert mistaken not in result.output
        assert "--secret-env" in result.stderr


def test_events_list_shows_the_newest(cli: Invoke) -> None:
    ids = [record("model_version.created", f"churn/{n}") for n in range(3)]
    record("model_alias.changed", "churn@production")
    listed = cli("events", "list")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines()[0].split() == ["created", "kind", "subject", "actor"]
    assert all(f"churn/{n}" in listed.stdout for n in range(3))
    as_json = json.loads(cli("events", "list", "--json").stdout)
    assert [event["id"] for event in as_json[:3]] == ids
    assert as_json[0]["payload"] == {"model": "churn"}

    aliases = cli("events", "list", "--kind", "model_alias.*").stdout
    assert "churn@production" in aliases
    assert "churn/0" not in aliases

    newest = cli("events", "list", "--limit", "2").stdout
    assert "churn/0" not in newest
    assert "churn/1" not in newest
    assert "churn/2" in newest
    assert "churn@production" in newest
    assert "Showing the newest 2 events; there are more" in newest

    assert "No events match." in cli("events", "list", "--kind", "alert.*").stdout
    bad = cli("events", "list", "--kind", "Bad Kind")
    assert bad.exit_code == 1
    assert "event kind filter 'Bad Kind' is not a valid pattern" in bad.stderr


def test_deliver_and_deliveries(cli: Invoke, receiver: Receiver) -> None:
    assert cli("webhooks", "add", receiver.url(), "-e", "*").exit_code == 0
    delivered_id = record()
    sent = cli("events", "deliver")
    assert sent.exit_code == 0, sent.output
    assert "Delivered 1, retrying 0, failed 0." in sent.stdout
    assert receiver.received[0].headers["x-mloop-delivery"] == delivered_id
    assert "no deliveries are pending" in cli("events", "deliver").stdout

    retried_id = record("alert.fired", "churn@production")
    refused_id = record("alert.fired", "churn@staging")
    receiver.for_event = {retried_id: Reply(500), refused_id: Reply(410)}
    report = cli("events", "deliver")
    assert report.exit_code == 0, report.output
    assert "Delivered 0, retrying 1, failed 1." in report.stdout
    assert "HTTP 500 Internal Server Error" in report.stdout
    assert "gave up" in report.stdout
    assert "receiver refused the event" in report.stdout
    assert "Nothing due now; 1 delivery waits for a retry" in cli("events", "deliver").stdout

    table = cli("events", "deliveries")
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[0].split()[:4] == ["event", "kind", "webhook", "status"]
    assert receiver.url() in table.stdout
    for event_id, status in [
        (delivered_id, "delivered"),
        (retried_id, "pending"),
        (refused_id, "failed"),
    ]:
        line = next(line for line in table.stdout.splitlines() if event_id in line)
        assert status in line

    failed = cli("events", "deliveries", "--status", "failed").stdout
    assert refused_id in failed
    assert delivered_id not in failed
    newest = cli("events", "deliveries", "--limit", "1").stdout
    assert refused_id in newest
    assert delivered_id not in newest
    assert "there are more" in newest

    bad = cli("events", "deliveries", "--status", "sent")
    assert bad.exit_code == 1
    assert "delivery status must be one of pending, delivered, failed" in bad.stderr
