"""``mloop webhooks`` and ``mloop events``: where events are sent, what happened, what was sent.

Two Typer apps, hung under the root as ``mloop webhooks`` and ``mloop events``. Webhook secrets
are read from an environment variable named on the command line, never from the command line
itself, so they stay out of shell history and ``ps``.
"""

from __future__ import annotations

import json
import os
import re
from collections import deque
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.text import Text

from mloop.backends import backends
from mloop.cli._console import plain_table, stdout
from mloop.cli._format import local_time
from mloop.cli._json import dumps
from mloop.errors import NotFoundError
from mloop.events import (
    DEFAULT_EVENTS,
    Delivery,
    DeliveryReport,
    Event,
    Webhook,
    add_webhook,
    deliver_pending,
    event_body,
    list_deliveries,
    list_events,
    list_webhooks,
    remove_webhook,
)
from mloop.store import Store

_SETTINGS = {"help_option_names": ["-h", "--help"]}

webhooks_app = typer.Typer(
    help="Send events (new model versions, alias moves, ...) to HTTP endpoints.",
    no_args_is_help=True,
    context_settings=_SETTINGS,
    rich_markup_mode="markdown",
)
events_app = typer.Typer(
    help="List recorded events and send their webhook deliveries.",
    no_args_is_help=True,
    context_settings=_SETTINGS,
    rich_markup_mode="markdown",
)

MAX_LIMIT = 100_000
PAGE = 10_000  # events read per query while looking for the newest
STATUS_STYLES = {"pending": "yellow", "delivered": "green", "failed": "bold red"}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_SHOUTED = re.compile(r"[A-Z_][A-Z0-9_]*")  # how environment variables are usually named


def _reader_store() -> Store | None:
    """The store, for commands that only read: None when nothing was recorded here yet."""
    try:
        return backends(create=False).store
    except NotFoundError:
        return None


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _shown_url(url: str) -> str:
    """The URL with any password in it replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
        return f"{scheme}{sep}{userinfo}@{host}{slash}{path}"
    return url


def _secret_from(variable: str) -> str:
    if not _ENV_NAME.fullmatch(variable):
        raise typer.BadParameter(
            "give the NAME of an environment variable that holds the secret "
            "(e.g. --secret-env MLOOP_WEBHOOK_SECRET), not the secret itself",
            param_hint="'--secret-env'",
        )
    secret = os.environ.get(variable, "")
    if not secret:
        # Name the variable only when it looks like one: it may be a secret typed by mistake.
        named = variable if _SHOUTED.fullmatch(variable) else "named by --secret-env"
        raise typer.BadParameter(
            f"the environment variable {named} is not set or is empty; set it to the secret "
            "first (e.g. read -s MLOOP_WEBHOOK_SECRET && export MLOOP_WEBHOOK_SECRET)",
            param_hint="'--secret-env'",
        )
    return secret


# -- mloop webhooks -----------------------------------------------------------------------------


@webhooks_app.command("add")
def add(
    url: Annotated[
        str,
        typer.Argument(
            metavar="URL", help="The http:// or https:// endpoint events are POSTed to."
        ),
    ],
    event: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            "-e",
            metavar="PATTERN",
            help="Send events whose kind matches PATTERN, a kind or a glob such as "
            "'model_alias.*'; repeat for several. Default: model_version.* and model_alias.*.",
        ),
    ] = None,
    secret_env: Annotated[
        str | None,
        typer.Option(
            "--secret-env",
            metavar="VAR",
            help="Sign every delivery (X-Mloop-Signature, HMAC-SHA256) with the secret held in "
            "environment variable VAR.",
        ),
    ] = None,
) -> None:
    """Add a webhook: events recorded from now on are POSTed to URL as JSON.

    Deliveries are sent in the background right after the change that made them; failed
    ones are retried with backoff. `mloop events deliveries` shows how they went.
    """
    secret = _secret_from(secret_env) if secret_env is not None else None
    ctx = backends()
    hook = add_webhook(
        url,
        events=tuple(event) if event else DEFAULT_EVENTS,
        secret=secret,
        actor=ctx.settings.user,
        store=ctx.store,
    )
    console = stdout()
    signed = "signed with the secret in " + str(secret_env) if secret else "unsigned"
    console.print(f"Added webhook {hook.id} for {', '.join(hook.events)} ({signed}).")
    console.print(
        Text(
            "Events recorded from now on are sent to it. Check on them with: "
            "mloop events deliveries",
            style="dim",
        )
    )


def _webhooks_table(hooks: Sequence[Webhook]) -> None:
    table = plain_table()
    table.add_column("id", no_wrap=True, style="cyan")
    table.add_column("url", overflow="fold")
    table.add_column("events", overflow="fold")
    table.add_column("signed", no_wrap=True)
    table.add_column("active", no_wrap=True)
    table.add_column("created", no_wrap=True)
    for hook in hooks:
        table.add_row(
            hook.id,
            _shown_url(hook.url),
            ", ".join(hook.events),
            "yes" if hook.has_secret else "no",
            "yes" if hook.active else "no",
            local_time(hook.created),
        )
    stdout().print(table)


@webhooks_app.command("list")
def list_hooks() -> None:
    """List webhooks, oldest first."""
    store = _reader_store()
    hooks = list_webhooks(store=store) if store is not None else []
    if not hooks:
        stdout().print("No webhooks yet. Add one with: mloop webhooks add URL")
        return
    _webhooks_table(hooks)


@webhooks_app.command("remove")
def remove(
    webhook_id: Annotated[
        str,
        typer.Argument(metavar="ID", help="The webhook's id, as `mloop webhooks list` shows it."),
    ],
) -> None:
    """Remove a webhook. Its deliveries still pending are dropped."""
    ctx = backends(create=False)
    remove_webhook(webhook_id, actor=ctx.settings.user, store=ctx.store)
    stdout().print(f"Removed webhook {webhook_id}.")


# -- mloop events -------------------------------------------------------------------------------


def _newest_events(store: Store, kind: str | None, limit: int) -> tuple[list[Event], bool]:
    """The newest ``limit`` events (oldest of them first), and whether there are older ones."""
    newest: deque[Event] = deque(maxlen=limit)
    seen, after = 0, None
    while True:
        page = list_events(kind=kind, after_id=after, limit=PAGE, store=store)
        newest.extend(page)
        seen += len(page)
        if len(page) < PAGE:
            return list(newest), seen > limit
        after = page[-1].id


@events_app.command("list")
def list_recorded(
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            "-k",
            metavar="PATTERN",
            help="Only events whose kind matches PATTERN, e.g. 'model_alias.*'.",
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit", "-n", metavar="N", min=1, max=MAX_LIMIT, help="Show the newest N events."
        ),
    ] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (with ids and payloads) instead of a table.")
    ] = False,
) -> None:
    """List the newest events, oldest of them first."""
    store = _reader_store()
    found, more = _newest_events(store, kind, limit) if store is not None else ([], False)
    if as_json:
        typer.echo(dumps([json.loads(event_body(event)) for event in found]))
        return
    console = stdout()
    if not found:
        console.print("No events match." if kind else "No events yet.")
        return
    table = plain_table()
    table.add_column("created", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("subject", overflow="fold")
    table.add_column("actor", overflow="fold")
    for event in found:
        table.add_row(
            local_time(event.created).removesuffix(" UTC"),
            event.kind,
            event.subject,
            event.actor,
        )
    console.print(table)
    if more:
        console.print(
            Text(f"Showing the newest {limit} events; there are more (raise --limit).", "dim")
        )


def _render_report(report: DeliveryReport) -> None:
    console = stdout()
    console.print(
        f"Delivered {report.delivered}, retrying {report.retrying}, failed {report.failed}."
    )
    if not report.errors:
        return
    table = plain_table()
    table.add_column("event", no_wrap=True, style="cyan")
    table.add_column("kind", no_wrap=True)
    table.add_column("webhook", no_wrap=True)
    table.add_column("attempts", justify="right")
    table.add_column("next try", no_wrap=True)
    table.add_column("error", overflow="fold")
    for error in report.errors:
        next_try = local_time(error.retry_at) if error.retry_at else Text("gave up", "bold red")
        table.add_row(
            error.event_id,
            error.kind,
            error.webhook_id,
            str(error.attempts),
            next_try,
            error.error,
        )
    console.print(table)


@events_app.command("deliver")
def deliver() -> None:
    """Send the webhook deliveries that are due now, and report how they went.

    Deliveries are normally sent in the background right after a change; this sends what a
    process left behind (it exited first, or a receiver was down) without waiting for the
    next change. Safe to run from cron, and alongside other deliverers.
    """
    store = _reader_store()
    if store is None:
        stdout().print("Nothing to deliver: nothing has been recorded here.")
        return
    report = deliver_pending(store)
    if report.attempted:
        _render_report(report)
        return
    waiting = list_deliveries(status="pending", limit=MAX_LIMIT, store=store)
    if not waiting:
        stdout().print("Nothing to deliver: no deliveries are pending.")
        return
    due = min(d.next_attempt for d in waiting)
    waits = _plural(len(waiting), "delivery waits", "deliveries wait")
    stdout().print(f"Nothing due now; {waits} for a retry (the next at {local_time(due)}).")


def _when(delivery: Delivery) -> str:
    if delivery.status == "delivered":
        return local_time(delivery.delivered)
    if delivery.status == "pending":
        return "next try " + local_time(delivery.next_attempt)
    return "-"


@events_app.command("deliveries")
def deliveries(
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            "-s",
            metavar="STATUS",
            help="Only deliveries that are pending, delivered or failed.",
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            "-n",
            metavar="N",
            min=1,
            max=MAX_LIMIT,
            help="Show the newest N deliveries.",
        ),
    ] = 20,
) -> None:
    """List webhook deliveries: which event went to which webhook, and how it went."""
    store = _reader_store()
    found = (
        list_deliveries(status=status, limit=MAX_LIMIT, store=store) if store is not None else []
    )
    console = stdout()
    if not found:
        console.print("No deliveries match." if status else "No deliveries yet.")
        return
    more, found = len(found) > limit, found[-limit:]
    urls = {hook.id: _shown_url(hook.url) for hook in list_webhooks(store=store)}
    table = plain_table()
    table.add_column("event", no_wrap=True, style="cyan")
    table.add_column("kind", no_wrap=True)
    table.add_column("webhook", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("attempts", justify="right")
    table.add_column("when", no_wrap=True)
    table.add_column("last error", overflow="fold")
    for d in found:
        table.add_row(
            d.event.id,
            d.event.kind,
            urls.get(d.webhook_id, d.webhook_id),
            Text(d.status, STATUS_STYLES.get(d.status, "")),
            str(d.attempts),
            _when(d),
            d.last_error or "",
        )
    console.print(table)
    if more:
        console.print(
            Text(f"Showing the newest {limit} deliveries; there are more (raise --limit).", "dim")
        )
