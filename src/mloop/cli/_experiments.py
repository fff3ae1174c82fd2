"""``mloop experiments``: the experiments runs are grouped in."""

from __future__ import annotations

from typing import Annotated

import typer

from mloop.cli._console import plain_table, stdout
from mloop.cli._format import local_time
from mloop.cli._json import dumps, iso
from mloop.errors import NotFoundError
from mloop.tracking import backends

app = typer.Typer(
    help="List the experiments that group runs.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="markdown",
)


@app.command("list")
def list_experiments(
    deleted: Annotated[
        bool, typer.Option("--deleted", help="Include deleted experiments.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List experiments, oldest first."""
    try:
        experiments = backends(create=False).store.list_experiments(include_deleted=deleted)
    except NotFoundError:  # nothing recorded here yet: say so, and leave no empty store behind
        experiments = []
    if as_json:
        typer.echo(
            dumps(
                [
                    {
                        "id": e.id,
                        "name": e.name,
                        "description": e.description,
                        "created": iso(e.created),
                        "deleted": iso(e.deleted),
                    }
                    for e in experiments
                ]
            )
        )
        return
    console = stdout()
    if not experiments:
        console.print("No experiments yet. Create one with: mloop demo")
        return
    described = any(e.description for e in experiments)
    table = plain_table()
    table.add_column("id", no_wrap=True, style="cyan")
    table.add_column("name", overflow="fold")
    table.add_column("created", no_wrap=True)
    if deleted:
        table.add_column("deleted", no_wrap=True)
    if described:
        table.add_column("description", overflow="fold")
    for e in experiments:
        row = [e.id, e.name, local_time(e.created)]
        if deleted:
            row.append(local_time(e.deleted) if e.deleted else "")
        if described:
            row.append(e.description or "")
        table.add_row(*row)
    console.print(table)
    console.print("See an experiment's runs with: mloop runs list --experiment NAME", style="dim")
