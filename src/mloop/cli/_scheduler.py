"""``mloop scheduler``: run a project's pipelines on their cron schedules and event triggers.

``mloop scheduler`` prints what it will run and when, then ticks until SIGTERM or Ctrl-C;
``--once`` does one pass, waits for the runs it started, and exits (for cron and CI);
``mloop scheduler status`` lists the slots recorded lately. Any number of schedulers may run
against one store: a slot is run by exactly one of them.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from mloop.backends import backends
from mloop.cli._console import plain_table, stderr, stdout
from mloop.cli._format import local_time
from mloop.cli._options import project_option
from mloop.errors import InvalidValueError, NotFoundError
from mloop.store import SlotRecord

if TYPE_CHECKING:
    from mloop.pipelines import Scheduler

app = typer.Typer(
    help="Run pipelines on their schedules (cron) and triggers (new data, alerts, alias moves).",
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="markdown",
)

Project = Annotated[Path | None, project_option("pipelines.py")]
SLOT_STYLES = {"claimed": "yellow", "finished": "green", "failed": "bold red", "skipped": "dim"}


def _scheduler(project: Path | None, poll: float = 30.0) -> Scheduler:
    # Imported when the command runs: pipelines pull in pandas and pyarrow, which every other
    # `mloop` command would otherwise wait for.
    from mloop.pipelines import Scheduler, load_pipelines

    settings = backends().settings
    folder = (project if project is not None else settings.home).resolve()
    if not folder.is_dir():
        raise NotFoundError(f"project folder {folder} does not exist; give one with --project")
    found = load_pipelines(folder)
    chosen = [p for p in found.values() if p.schedule is not None or p.triggers]
    if not chosen:
        what = (
            f"none of its {len(found)} pipelines has a schedule or triggers"
            if found
            else "it defines no pipelines"
        )
        raise InvalidValueError(
            f"nothing to schedule in {folder / 'pipelines.py'}: {what}; add "
            "schedule='0 3 * * *' or triggers=[on_new_data('data/')] to an @pipeline"
        )
    lease = timedelta(seconds=max(300.0, 3 * poll))
    return Scheduler(chosen, poll_interval=poll, lease=lease, project_dir=folder)


def _print_plan(scheduler: Scheduler, now: datetime) -> None:
    table = plain_table()
    for column in ("pipeline", "schedule", "catch-up", "triggers", "next slot"):
        table.add_column(column)
    for item, upcoming in scheduler.upcoming(now):
        schedule = item.schedule
        table.add_row(
            item.name,
            "-" if schedule is None else f"{schedule.cron} ({schedule.tz})",
            "-" if schedule is None else schedule.catchup,
            ", ".join(t.describe() for _, t in item.triggers) or "-",
            local_time(upcoming),
        )
    stdout().print(table)


def _log_to_stderr() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("mloop.scheduler")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


@app.callback(invoke_without_command=True)
def scheduler(
    ctx: typer.Context,
    project: Project = None,
    once: Annotated[
        bool,
        typer.Option("--once", help="Do one pass, wait for the runs it started, and exit."),
    ] = False,
    poll: Annotated[
        float,
        typer.Option(
            "--poll", metavar="SECONDS", min=0.1, max=86400, help="Seconds between passes."
        ),
    ] = 30.0,
) -> None:
    """Run pipelines on their schedules and triggers until SIGTERM or Ctrl-C.

    A pipeline takes part when its `@pipeline` has `schedule="0 3 * * *"` or `triggers=[...]`.
    Several schedulers may share one store: each slot runs once. Stopping lets running
    pipelines finish (a second Ctrl-C leaves them to another scheduler after their lease).
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = project  # `mloop scheduler --project DIR status` means that project
        return
    runner = _scheduler(project, poll)
    now = datetime.now(UTC)
    console = stdout()
    _print_plan(runner, now)
    handler = _log_to_stderr()
    try:
        if once:
            report = runner.tick(now)
            runner.wait()
            taken = {(f.schedule, f.slot) for f in report.fired}
            records = [r for r in runner.recent(limit=200) if (r.schedule, r.slot) in taken]
            for record in records:
                line = Text(f"{record.schedule} {local_time(record.slot)}: ")
                line.append(record.status, style=SLOT_STYLES.get(record.status, ""))
                if record.run_id:
                    line.append(f" (run {record.run_id})")
                console.print(line)
            if report.skipped:
                console.print(
                    f"{len(report.skipped)} missed slot(s) skipped by the catch-up policy",
                    style="dim",
                )
            if report.first_look:
                console.print(
                    f"first pass for {', '.join(report.first_look)}: schedules start from "
                    "now, triggers fire on what happens from now on",
                    style="dim",
                )
            if not report.fired:
                console.print("nothing was due")
            for message in report.errors:
                stderr().print(Text("error: ", style="bold red") + Text(message))
            if report.errors or any(r.status == "failed" for r in records):
                raise typer.Exit(1)
            return
        console.print(
            f"scheduler {runner.claimer}: a pass every {poll:g}s; Ctrl-C or SIGTERM stops it",
            style="dim",
        )
        runner.serve_forever()
        console.print("scheduler stopped")
    finally:
        logging.getLogger("mloop.scheduler").removeHandler(handler)


@app.command("status")
def status(
    ctx: typer.Context,
    project: Project = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=10_000, help="How many slots to list.")
    ] = 20,
) -> None:
    """The slots recorded lately for this project's pipelines, newest first."""
    if project is None and isinstance(ctx.obj, Path):
        project = ctx.obj
    runner = _scheduler(project)
    now = datetime.now(UTC)
    _print_plan(runner, now)
    slots: list[SlotRecord] = runner.recent(limit=limit)
    if not slots:
        stdout().print("no slots recorded yet; start `mloop scheduler`")
        return
    table = plain_table()
    for column in ("schedule", "slot", "status", "run", "claimed by", "finished"):
        table.add_column(column)
    for record in slots:
        table.add_row(
            record.schedule,
            local_time(record.slot),
            Text(record.status, style=SLOT_STYLES.get(record.status, "")),
            record.run_id or "-",
            record.claimed_by,
            local_time(record.finished),
        )
    stdout().print(table)
