"""``mloop runs``: list, show, delete and restore runs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from mloop.cli._console import stdout
from mloop.cli._format import local_time
from mloop.cli._json import dumps, edge_json, environment_json, run_json
from mloop.cli._run_table import fitting_table, metric_keys
from mloop.cli._run_view import RunDetails, render_run
from mloop.config import load_settings
from mloop.errors import NotFoundError
from mloop.store import Environment, Store
from mloop.tracking import backends

app = typer.Typer(
    help="List, show, delete and restore runs.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="markdown",
)

MAX_LIMIT = 1_000_000
MAX_HIDDEN_NAMED = 4  # metric columns left out for width are named up to this many

RunId = Annotated[
    str, typer.Argument(metavar="RUN_ID", help="The run's id, as `mloop runs list` shows it.")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _experiment_names(store: Store) -> dict[str, str]:
    return {e.id: e.name for e in store.list_experiments(include_deleted=True)}


@app.command("list")
def list_runs(
    experiment: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment",
            "-e",
            metavar="NAME",
            help="Only runs of this experiment (name or id); repeat for several.",
        ),
    ] = None,
    filter: Annotated[
        str | None,
        typer.Option(
            "--filter",
            "-f",
            metavar="EXPR",
            help="Only runs matching EXPR, e.g. \"metrics.auc > 0.9 and params.model = 'rf'\" "
            "(see docs/tracking.md for the language).",
        ),
    ] = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option(
            "--order-by",
            "-o",
            metavar="FIELD",
            help="Sort by FIELD, ascending or with DESC, e.g. 'metrics.auc DESC'; repeatable. "
            "Default: newest first.",
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit", "-n", metavar="N", min=1, max=MAX_LIMIT, help="Show at most N runs."
        ),
    ] = 20,
    deleted: Annotated[
        bool, typer.Option("--deleted", help="Include soft-deleted runs (marked as deleted).")
    ] = False,
    as_json: Json = False,
) -> None:
    """List runs, newest first, with their latest metrics.

    Without --experiment, runs of every experiment are listed.
    """
    try:
        store = backends(create=False).store
    except NotFoundError:  # nothing recorded here yet: say so, and leave no empty store behind
        if as_json:
            typer.echo("[]")
        else:
            uri = load_settings().resolved_tracking_uri()
            stdout().print(f"No runs yet in {uri}. Record one with: mloop demo")
        return
    experiment_ids = [store.get_experiment(name).id for name in experiment] if experiment else None
    runs = store.search_runs(
        experiment_ids=experiment_ids,
        filter=filter,
        order_by=order_by or None,
        limit=limit + 1,  # one more than shown tells whether there are more
        include_deleted=deleted,
    )
    more, runs = len(runs) > limit, runs[:limit]
    names = _experiment_names(store)
    if as_json:
        typer.echo(dumps([run_json(run, names.get(run.experiment_id)) for run in runs]))
        return
    console = stdout()
    if not runs:
        if filter or experiment:
            console.print("No runs match.")
        else:
            console.print(f"No runs yet in {store.uri}. Record one with: mloop demo")
        return
    several = len({run.experiment_id for run in runs}) > 1
    table, hidden = fitting_table(
        console, runs, metric_keys(runs, order_by or []), experiments=names if several else None
    )
    console.print(table)
    if hidden:
        named = ", ".join(hidden[:MAX_HIDDEN_NAMED])
        if len(hidden) > MAX_HIDDEN_NAMED:
            named += f" and {len(hidden) - MAX_HIDDEN_NAMED} more"
        console.print(
            Text(
                f"Metrics not shown for lack of width: {named}. "
                "--order-by 'metrics.KEY DESC' shows KEY first; --json shows all.",
                style="dim",
            )
        )
    if more:
        console.print(
            Text(f"Showing the first {limit} runs; there are more (raise --limit).", style="dim")
        )


@app.command("show")
def show(run_id: RunId, as_json: Json = False) -> None:
    """Show everything a run recorded.

    Status, times, user, git state, command, params, tags, latest metrics, the artifacts it
    used and produced, and the Python environment it ran in.
    """
    store = backends(create=False).store
    run = store.get_run(run_id)
    names = _experiment_names(store)
    environment: Environment | None = None
    if run.environment_id is not None:
        try:
            environment = store.get_environment(run.environment_id)
        except NotFoundError:
            environment = None
    lineage = store.list_lineage(run.id)
    if as_json:
        data = run_json(run, names.get(run.experiment_id))
        data["lineage"] = [edge_json(edge) for edge in lineage]
        data["environment"] = environment_json(environment)
        typer.echo(dumps(data))
        return
    details = RunDetails(run, names.get(run.experiment_id), environment, lineage)
    render_run(stdout(), details)


@app.command("delete")
def delete(run_id: RunId) -> None:
    """Soft-delete a run and its child runs.

    Deleted runs are hidden from `mloop runs list` (unless --deleted); `mloop runs restore`
    brings them back, and `mloop gc` purges them for good once they are old enough.
    """
    ctx = backends(create=False)
    run = ctx.store.get_run(run_id)
    console = stdout()
    if run.deleted_time is not None:
        console.print(
            f"Run {run.id} ({run.name}) was already deleted on {local_time(run.deleted_time)}."
        )
        return
    ctx.store.delete_run(run.id, actor=ctx.settings.user)
    console.print(f"Deleted run {run.id} ({run.name}) and its child runs, if any.")
    console.print(
        Text(
            f"Undo with: mloop runs restore {run.id}\n"
            "mloop gc removes deleted runs for good once they are 30 days old.",
            style="dim",
        )
    )


@app.command("restore")
def restore(run_id: RunId) -> None:
    """Undo the soft delete of a run and its child runs."""
    ctx = backends(create=False)
    run = ctx.store.get_run(run_id)
    console = stdout()
    if run.deleted_time is None:
        console.print(f"Run {run.id} ({run.name}) is not deleted; nothing to restore.")
        return
    ctx.store.restore_run(run.id, actor=ctx.settings.user)
    console.print(f"Restored run {run.id} ({run.name}) and its child runs, if any.")
