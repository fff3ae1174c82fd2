"""``mloop run`` and ``mloop pipelines``: run a pipeline with a live view, list, show its DAG.

A pipeline is named by its name in the project's ``pipelines.py`` (``mloop run training``)
or as ``module:function`` (``mloop run flows.training:training``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from mloop.cli._console import plain_table, stderr, stdout
from mloop.cli._options import project_option
from mloop.config import find_project_dir
from mloop.errors import InvalidValueError

if TYPE_CHECKING:
    from mloop.pipelines import Pipeline, StepResult

app = typer.Typer(
    help="Pipelines: list them, and show a pipeline's DAG as text, Mermaid or DOT.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="markdown",
)

Project = Annotated[Path | None, project_option("pipelines.py")]
Params = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-P",
        metavar="NAME=VALUE",
        help="A pipeline parameter; repeat for more. VALUE is read as JSON when it parses "
        "(1, 0.5, true, [1,2]) unless the parameter is declared str.",
    ),
]
STYLE = {
    "pending": "dim",
    "running": "bold yellow",
    "finished": "green",
    "cached": "cyan",
    "failed": "bold red",
    "skipped": "magenta",
}
FORMATS = ("text", "mermaid", "dot")


def _project(project: Path | None) -> Path:
    return project if project is not None else (find_project_dir() or Path.cwd())


def _find(name: str, project: Path | None) -> Pipeline:
    # Imported here: mloop.pipelines loads the registry and compute, which `mloop --help`
    # and the other commands do not need.
    from mloop.pipelines import find_pipeline

    return find_pipeline(name, _project(project))


def parse_params(pipeline: Pipeline, items: list[str] | None) -> dict[str, Any]:
    """``NAME=VALUE`` options as parameters: JSON where it parses, unless declared ``str``."""
    params: dict[str, Any] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidValueError(f"--param {item!r} is not NAME=VALUE, e.g. --param seed=1")
        parameter = pipeline.signature.parameters.get(name)
        declared = getattr(parameter, "annotation", None)
        if declared in (str, "str"):
            params[name] = text
            continue
        try:
            params[name] = json.loads(text)
        except ValueError:
            params[name] = text
    return params


def _table(pipeline: str, steps: dict[str, StepResult], started: float) -> Table:
    table = plain_table()
    table.title = f"{pipeline}  {time.monotonic() - started:.1f} s"
    table.title_justify = "left"
    table.add_column("step")
    table.add_column("state")
    table.add_column("tries", justify="right")
    table.add_column("seconds", justify="right")
    for key, step in steps.items():
        seconds = f"{step.seconds:.2f}" if step.state in ("finished", "failed") else ""
        tries = str(step.attempts) if step.attempts > 1 else ""
        table.add_row(key, Text(step.state, style=STYLE[step.state]), tries, seconds)
    return table


def run(
    pipeline: Annotated[
        str, typer.Argument(help="A pipeline name in pipelines.py, or module:function.")
    ],
    param: Params = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Run every step, even if the cache has it.")
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="RUN_ID",
            help="Resume a failed run: its parameters, and the steps that succeeded, are reused.",
        ),
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(
            "--executor",
            "-e",
            help="Where steps run: inprocess, process or ray (default: compute.backend).",
        ),
    ] = None,
    max_workers: Annotated[
        int | None, typer.Option("--max-workers", min=1, help="Steps that may run at once.")
    ] = None,
    project: Project = None,
) -> None:
    """Run a pipeline, showing each step's state as it goes.

    Steps whose code, parameters and inputs match an earlier successful run come from the
    cache (`cached`); a failed step's traceback is printed, with the command that resumes the
    run once it is fixed.
    """
    found = _find(pipeline, project)
    params = parse_params(found, param)
    from mloop.pipelines import StepResult

    graph = found.graph(**found.bind(params)) if resume is None else None
    steps: dict[str, StepResult] = {}
    if graph is not None:
        steps = {k: StepResult(key=k, step=n.step.name) for k, n in graph.nodes.items()}
    started = time.monotonic()
    console = stdout()
    with Live(
        _table(found.name, steps, started), console=console, refresh_per_second=8, transient=False
    ) as live:

        def observe(step: StepResult) -> None:
            steps[step.key] = step
            live.update(_table(found.name, steps, started))

        result = found.run(
            cache=not no_cache,
            executor=executor,
            resume=resume,
            max_workers=max_workers,
            raise_on_error=False,
            observer=observe,
            **params,
        )
        steps.update(result.steps)
        live.update(_table(found.name, steps, started))
    if not console.is_terminal:
        console.line()  # off a terminal, Live leaves its last line open
    summary = (
        f"{result.pipeline} {result.status}: run {result.run_id}, {len(result.steps)} steps, "
        f"{result.executed} run, {result.cache_hits} from the cache, "
        f"{time.monotonic() - started:.1f} s"
    )
    if result.status == "finished":
        console.print(Text(summary, style="green"))
        return
    errors = stderr()
    for step in result.failed:
        errors.print(Text(f"step {step.key} failed:", style="bold red"))
        errors.print(Text(step.error or ""))
    errors.print(Text(summary, style="bold red"))
    errors.print(Text(f"fix it, then resume with: mloop run {pipeline} --resume {result.run_id}"))
    raise typer.Exit(1)


@app.command("list")
def list_pipelines(project: Project = None) -> None:
    """The pipelines in the project's pipelines.py: name, schedule and parameters."""
    from mloop.pipelines import load_pipelines

    found = load_pipelines(_project(project))
    if not found:
        stdout().print(
            "no pipelines: define @pipeline functions in pipelines.py (see docs/pipelines.md)"
        )
        return
    table = plain_table()
    for column in ("name", "schedule", "parameters", "description"):
        table.add_column(column)
    for name, item in found.items():
        params = ", ".join(
            p.name if p.default is p.empty else f"{p.name}={p.default!r}"
            for p in item.signature.parameters.values()
        )
        doc = (item.fn.__doc__ or "").strip().splitlines()
        schedule = item.schedule
        if schedule is not None and not isinstance(schedule, str):
            schedule = f"{schedule.cron} ({schedule.tz})"
        table.add_row(name, schedule or "", params, doc[0] if doc else "")
    stdout().print(table)


@app.command("show")
def show(
    pipeline: Annotated[
        str, typer.Argument(help="A pipeline name in pipelines.py, or module:function.")
    ],
    format: Annotated[str, typer.Option("--format", "-f", help="text, mermaid or dot.")] = "text",
    param: Params = None,
    project: Project = None,
) -> None:
    """Print a pipeline's DAG: as text, or as Mermaid or DOT for diagrams and the UI."""
    if format not in FORMATS:
        raise InvalidValueError(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
    found = _find(pipeline, project)
    graph = found.graph(**parse_params(found, param))
    text = {"text": graph.to_text, "mermaid": graph.to_mermaid, "dot": graph.to_dot}[format]()
    # Plain print: the output is meant for files and other programs, with no styling.
    typer.echo(text, nl=False)
