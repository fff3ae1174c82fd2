"""``mloop apply``, ``mloop materialize`` and ``mloop features``: the feature store's commands."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from mloop.cli._console import plain_table, stdout
from mloop.cli._format import local_time
from mloop.cli._options import project_option
from mloop.errors import InvalidValueError

if TYPE_CHECKING:
    from mloop.features import FeatureStore

app = typer.Typer(
    help="Feature views: list, show, and serve online lookups over HTTP.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="markdown",
)

Project = Annotated[Path | None, project_option("features.py")]
SYMBOL = {"create": ("+", "green"), "update": ("~", "yellow"), "unchanged": ("=", "dim")}


def _store(project: Path | None) -> FeatureStore:
    from mloop.features import FeatureStore

    return FeatureStore(project)


def apply(
    project: Project = None,
    force: Annotated[
        bool, typer.Option("--force", help="Apply breaking changes that registered models use.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; change nothing.")
    ] = False,
) -> None:
    """Register the definitions in features.py: new versions where they changed.

    Prints the plan first, like a diff: `+` new, `~` changed (with what changed), `=` unchanged.
    Breaking changes (a field removed or retyped) that a registered model's signature uses are
    refused unless --force.
    """
    store = _store(project)
    changes = store.plan() if dry_run else store.apply(force=force)
    console = stdout()
    for change in changes:
        symbol, style = SYMBOL[change.action]
        what = change.kind.replace("_", " ")
        if change.action == "create":
            version = "" if change.new_version is None else f" (version {change.new_version})"
            line = f"{symbol} {what} {change.name}{version}"
        elif change.action == "update":
            after = change.new_version if change.new_version is not None else "next"
            line = f"{symbol} {what} {change.name}: version {change.old_version} → {after}"
        else:
            line = f"{symbol} {what} {change.name} (version {change.old_version}, unchanged)"
        console.print(Text(line, style=style))
        for detail in change.details:
            console.print(Text(f"    {detail}", style=style))
        if change.breaking:
            console.print(Text(f"    breaking: {', '.join(change.breaking)}", style="bold red"))
        for user in change.blocked_by:
            console.print(Text(f"    used by model {user}", style="red"))
    counts = {a: sum(1 for c in changes if c.action == a) for a in SYMBOL}
    verb = "Would apply" if dry_run else "Applied"
    console.print(
        f"{verb}: {counts['create']} new, {counts['update']} changed, "
        f"{counts['unchanged']} unchanged."
    )


def _time(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidValueError(
            f"{what} {value!r} is not an ISO-8601 time, e.g. 2026-11-01 or 2026-11-01T12:00"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def materialize(
    start: Annotated[
        str | None,
        typer.Option("--start", metavar="TIME", help="Window start (ISO-8601; default: all)."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", metavar="TIME", help="Window end (ISO-8601; default: now)."),
    ] = None,
    incremental: Annotated[
        bool,
        typer.Option(
            "--incremental", help="From each view's last materialization to --end (or now)."
        ),
    ] = False,
    view: Annotated[
        list[str] | None,
        typer.Option("--view", "-v", metavar="NAME", help="Only this feature view; repeatable."),
    ] = None,
    project: Project = None,
) -> None:
    """Write the latest feature values into the online store.

    Each view's rows are validated against its constraints and written atomically: a run that
    is interrupted leaves the previous values, and running it again completes it.
    """
    if incremental and start is not None:
        raise InvalidValueError("--incremental starts where the last run ended; drop --start")
    store = _store(project)
    last = _time(end, "--end") or datetime.now(UTC)
    console = stdout()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(name: str, stage: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(f"{name}: reading", total=max(total, 1))
            task = tasks[name]
            bar.update(task, description=f"{name}: {stage}", total=max(total, 1), completed=done)

        if incremental:
            results = store.materialize_incremental(last, views=view, progress=progress)
        else:
            results = store.materialize(
                _time(start, "--start"), last, views=view, progress=progress
            )
    if not results:
        console.print("Nothing to materialize: every view is up to date.")
        return
    table = plain_table()
    for column in ("view", "version", "window start", "window end", "rows", "violations"):
        table.add_column(column)
    for result in results:
        table.add_row(
            result.view,
            str(result.view_version),
            "all history" if result.start is None else local_time(result.start),
            local_time(result.end),
            f"{result.rows:,}",
            str(result.violations),
        )
    console.print(table)
    console.print(f"Online store: {store.online_uri}")


@app.command("list")
def list_views(project: Project = None) -> None:
    """List the applied feature views, entities and on-demand views."""
    from mloop.features._refs import load_applied

    store = _store(project)
    applied = load_applied(store.store)
    console = stdout()
    if not applied.records:
        console.print("No feature definitions applied yet. Write features.py, then: mloop apply")
        return
    table = plain_table()
    for column in ("kind", "name", "version", "entities / keys", "features", "applied"):
        table.add_column(column, overflow="fold")
    for (kind, name), record in sorted(applied.records.items()):
        if kind == "feature_view":
            fv = applied.views[name]
            keys, features = ", ".join(e.name for e in fv.entities), ", ".join(fv.features)
        elif kind == "entity":
            keys, features = ", ".join(applied.entities[name].join_keys), ""
        else:
            odfv = applied.on_demand[name]
            keys, features = "(on demand)", ", ".join(odfv.features)
        table.add_row(
            kind.replace("_", " "),
            name,
            str(record.version),
            keys,
            features,
            local_time(record.created),
        )
    console.print(table)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(metavar="VIEW", help="A feature view's name.")],
    project: Project = None,
) -> None:
    """Show a feature view: source, schema with constraints, and its materializations."""
    store = _store(project)
    fv = store.feature_view(name)
    console = stdout()
    console.print(Text(f"feature view {fv.name}", style="bold"))
    if fv.description:
        console.print(fv.description)
    console.print(
        f"entities: {', '.join(e.name for e in fv.entities)} (keys {', '.join(fv.join_keys)})"
    )
    spec = fv.source.spec()
    source = (
        f"{spec['format']} {spec['path']}"
        + (" (hive partitions)" if spec["hive_partitioning"] else "")
        if spec["type"] == "file"
        else f"SQL: {spec['query']}"
    )
    console.print(f"source: {source}")
    console.print(f"timestamp: {fv.timestamp_field}; ttl: {fv.ttl or 'none'}")
    table = plain_table()
    for column in ("field", "dtype", "constraint"):
        table.add_column(column)
    for field in fv.schema:
        constraint = field.constraint.to_dict() if field.constraint else {}
        shown = ", ".join(
            f"{k}={v}" for k, v in constraint.items() if v is not None and v is not False
        )
        table.add_row(field.name, field.dtype, shown)
    console.print(table)
    runs = store.store.features.list_materializations(view=name, limit=5)
    if runs:
        history = plain_table()
        for column in ("materialized", "status", "rows", "window end", "online store"):
            history.add_column(column, overflow="fold")
        for run in runs:
            history.add_row(
                local_time(run.created), run.status, f"{run.rows:,}", local_time(run.end),
                run.online_store,
            )  # fmt: skip
        console.print(history)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port.")] = 6566,
    project: Project = None,
) -> None:
    """Serve online feature lookups over HTTP (POST /get-online-features), for non-Python
    callers; OpenAPI docs at /docs."""
    try:
        import uvicorn
    except ImportError as error:
        from mloop.errors import MissingExtraError

        raise MissingExtraError("uvicorn", "server", "mloop features serve") from error
    from mloop.serving import create_feature_app

    store = _store(project)
    stdout().print(f"Serving features of {store.project} on http://{host}:{port} (Ctrl-C stops)")
    uvicorn.run(create_feature_app(store), host=host, port=port, log_level="warning")
