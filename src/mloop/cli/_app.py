"""The root ``mloop`` command: global options, and every command group hung under it."""

from __future__ import annotations

from typing import Annotated

import typer

from mloop import __version__
from mloop.cli import (
    _demo,
    _deploy,
    _events,
    _experiments,
    _features,
    _gc,
    _info,
    _models,
    _pipelines,
    _predict,
    _runs,
    _serve,
)
from mloop.cli._errors import DEBUG_ENV, DEBUG_KEY, MloopGroup
from mloop.cli._scheduler import app as scheduler_app

# The order `mloop --help` lists commands in: the way a new user meets them.
COMMANDS = (
    "demo",
    "runs",
    "experiments",
    "apply",
    "materialize",
    "features",
    "run",
    "pipelines",
    "scheduler",
    "models",
    "serve",
    "predict",
    "deploy",
    "webhooks",
    "events",
    "gc",
    "version",
)


class RootGroup(MloopGroup):
    """The ``mloop`` group: mloop's error policy, and commands listed in ``COMMANDS`` order."""

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        rank = {name: index for index, name in enumerate(COMMANDS)}
        return sorted(super().list_commands(ctx), key=lambda name: rank.get(name, len(rank)))


app = typer.Typer(
    name="mloop",
    cls=RootGroup,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,  # --debug prints Python's own traceback, for bug reports
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mloop {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", envvar=DEBUG_ENV, help="Show the full traceback when a command fails."
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """mloop: the whole machine-learning loop in one package.

    Start with `mloop demo`: it trains a model and records the run in this folder.

    Then `mloop runs list` and `mloop runs show RUN_ID` show what was recorded.
    """
    ctx.meta[DEBUG_KEY] = debug


app.command("demo", rich_help_panel="Start here")(_demo.demo)
app.add_typer(_runs.app, name="runs", rich_help_panel="Tracking")
app.add_typer(_experiments.app, name="experiments", rich_help_panel="Tracking")
app.command("apply", rich_help_panel="Features")(_features.apply)
app.command("materialize", rich_help_panel="Features")(_features.materialize)
app.add_typer(_features.app, name="features", rich_help_panel="Features")
app.command("run", rich_help_panel="Pipelines")(_pipelines.run)
app.add_typer(_pipelines.app, name="pipelines", rich_help_panel="Pipelines")
app.add_typer(_models.app, name="models", rich_help_panel="Registry")
app.command("serve", rich_help_panel="Serving")(_serve.serve)
app.command("predict", rich_help_panel="Serving")(_predict.predict)
app.command("deploy", rich_help_panel="Serving")(_deploy.deploy)
app.add_typer(scheduler_app, name="scheduler", rich_help_panel="Pipelines")
app.add_typer(_events.webhooks_app, name="webhooks", rich_help_panel="Events")
app.add_typer(_events.events_app, name="events", rich_help_panel="Events")
app.command("gc", rich_help_panel="Maintenance")(_gc.gc)
app.command("version", rich_help_panel="Maintenance")(_info.version)


def main() -> None:
    """Entry point of the ``mloop`` console script."""
    app(prog_name="mloop")
