"""``mloop predict``: batch scoring of a file with a registered model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from mloop.cli._console import stdout


def predict(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL_REF",
            help="The model: NAME@ALIAS, NAME/VERSION, runs:/RUN_ID/model or a package folder.",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Where the scores go: a .parquet or .csv file."
        ),
    ],
    input: Annotated[
        Path | None,
        typer.Option(
            "--input",
            "-i",
            metavar="FILE",
            help="Rows to score (.parquet or .csv) with the model's input columns.",
        ),
    ] = None,
    entities: Annotated[
        Path | None,
        typer.Option(
            "--entities",
            metavar="FILE",
            help="Instead of --input: entity keys and a timestamp per row; the model's "
            "features come from the offline feature store as of that time.",
        ),
    ] = None,
    timestamp_column: Annotated[
        str,
        typer.Option("--timestamp-column", metavar="NAME", help="With --entities: the time."),
    ] = "event_timestamp",
    chunk_size: Annotated[
        int,
        typer.Option("--chunk-size", min=1, metavar="ROWS", help="Rows scored per task."),
    ] = 10_000,
    executor: Annotated[
        str | None,
        typer.Option(
            "--executor",
            metavar="BACKEND",
            help="inprocess, process or ray (default: the compute setting).",
        ),
    ] = None,
    experiment: Annotated[
        str | None,
        typer.Option("--experiment", metavar="NAME", help="Record the run here."),
    ] = None,
) -> None:
    """Score a file with a model, chunk by chunk, on the compute backend.

    The output keeps the input's columns the model does not read (ids, keys), then
    `prediction` and, for classifiers, `proba_<class>`. It is written to a temporary file and
    renamed when every chunk has succeeded. The work is recorded as a run (kind
    `batch_scoring`) with the input, the model version and the output as its lineage.
    """
    from mloop.serving import predict_batch

    console = stdout()
    with Progress(
        TextColumn("scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task: TaskID = bar.add_task("scoring", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        result = predict_batch(
            model,
            input,
            output,
            entities=entities,
            timestamp_column=timestamp_column,
            chunk_size=chunk_size,
            executor=executor,
            experiment=experiment,
            progress=progress,
        )
        bar.update(task, completed=result.rows, total=result.rows)
    console.print(
        f"Scored {result.rows:,} rows in {result.chunks:,} chunk(s) with {result.model} in "
        f"{result.seconds:.1f} s: {result.output}"
    )
    console.print(f"Recorded as run {result.run_id} (see it with: mloop runs show {result.run_id})")
