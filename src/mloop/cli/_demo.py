"""``mloop demo``: train a model as a tracked run here, and show what was recorded."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.text import Text

import mloop.demo
from mloop.cli._console import plain_table, stdout
from mloop.cli._format import human_duration, number
from mloop.demo import MAX_ROWS, MIN_ROWS


def demo(
    rows: Annotated[
        int | None,
        typer.Option(
            "--rows",
            "-n",
            metavar="N",
            min=MIN_ROWS,
            max=MAX_ROWS,
            help=f"Train on this many rows of the data set (default: all {MAX_ROWS}).",
        ),
    ] = None,
) -> None:
    """Train a model here, as a tracked run.

    Trains a classifier on a data set that ships with scikit-learn and records it in this
    folder (under .mloop/): params, cross-validation and learning-curve metrics, the train
    and test data as versioned datasets, the predictions and a report. The model is
    registered as a new version of `breast-cancer` and made `breast-cancer@production`.
    Needs no setup and no network.
    """
    console = stdout()
    with console.status("Training the demo model…"):
        result = mloop.demo.run_demo(rows=rows)
    render_result(result)


def render_result(result: mloop.demo.DemoResult) -> None:
    """Print the run's metrics, where it was recorded, and what to run next."""
    console = stdout()
    took = human_duration(timedelta(seconds=result.seconds))
    console.print(
        Text.assemble(
            "Trained a ",
            (result.model, "bold"),
            f" on scikit-learn's breast-cancer data ({result.rows} rows: {result.train_rows} "
            f"train, {result.test_rows} test) in {took}.",
        )
    )
    console.print()
    table = plain_table()
    table.add_column("metric", no_wrap=True)
    table.add_column("latest", justify="right")
    table.add_column("values logged", justify="right")
    for key, value in result.metrics.items():
        table.add_row(key, number(value), str(result.steps.get(key, 1)))
    console.print(table)
    console.print()
    inputs = sum(1 for edge in result.lineage if edge.direction == "input")
    outputs = len(result.lineage) - inputs
    console.print(
        Text.assemble(
            "Recorded run ",
            (result.run_id, "bold cyan"),
            f" ({result.run_name}) in experiment ",
            (result.experiment, "bold"),
            f": {len(result.params)} params, {len(result.metrics)} metrics, "
            f"{inputs} input and {outputs} output artifacts.",
        )
    )
    before = (
        f"it was version {result.previous_production}"
        if result.previous_production is not None
        else "the first production model"
    )
    console.print(
        Text.assemble(
            "Registered the model as ",
            (f"{result.model_name}/{result.model_version}", "bold cyan"),
            " and made it ",
            (f"{result.model_name}@production", "bold"),
            f" ({before}).",
        )
    )
    if result.pipeline is not None:
        trained = result.pipeline
        work = (
            f"all {trained.cache_hits} steps came from the step cache (nothing retrained)"
            if trained.executed == 0
            else f"{trained.executed} steps ran, {trained.cache_hits} came from the step cache"
        )
        console.print(
            Text.assemble(
                "Ran the training pipeline ",
                (trained.run_id, "bold cyan"),
                f" ({' → '.join(trained.steps)}): {work}; its model ",
                (f"{trained.model_name}/{trained.model_version}", "bold cyan"),
                " is ",
                (f"{trained.model_name}@challenger", "bold"),
                ".",
            )
        )
    if result.feature_view:
        console.print(
            Text.assemble(
                "Training rows came from feature view ",
                (f"{result.feature_view} v{result.feature_view_version}", "bold"),
                " by a point-in-time join; its latest values for "
                f"{result.online_rows} patients are in the online store. Production scored "
                "patients looked up there:",
            )
        )
        for patient, label, proba in result.served:
            console.print(
                f"  patient {patient}: P(benign) = {proba:.3f}  (diagnosis: "
                f"{'benign' if label == 1 else 'malignant'})"
            )
    if result.traffic is not None:
        traffic = result.traffic
        answered = traffic.json_requests + traffic.entity_requests - len(traffic.failures)
        console.print(
            Text.assemble(
                "Served ",
                (f"{result.model_name}@production", "bold"),
                f" over HTTP at {traffic.url}: {traffic.json_requests} JSON requests and "
                f"{traffic.entity_requests} entity-key requests (features looked up by the "
                f"server), {answered} answered"
                + (f", {len(traffic.failures)} failed" if traffic.failures else "")
                + "; the prediction log grew from "
                f"{traffic.log_rows_before} to {traffic.log_rows_after} rows.",
            )
        )
        for failure in traffic.failures[:3]:
            console.print(Text(f"  failed: {failure}", style="red"))
    console.print(Text(f"Metadata: {result.tracking_uri}", style="dim"))
    console.print(Text(f"Artifacts: {result.artifact_uri}", style="dim"))
    console.print()
    console.print("See everything the run recorded, then compare it with the other runs:")
    console.print(Text(f"  mloop runs show {result.run_id}", style="green"))
    console.print(Text("  mloop runs list --order-by 'metrics.test_auc DESC'", style="green"))
    console.print("Look at the registered model, where it came from, and its model card:")
    console.print(Text(f"  mloop models versions {result.model_name}", style="green"))
    console.print(Text(f"  mloop models lineage {result.model_name}@production", style="green"))
    console.print(Text(f"  mloop models card {result.model_name}@production", style="green"))
    console.print(Text(f"  mloop features show {result.feature_view}", style="green"))
    console.print("Serve it yourself, and send it a patient's id:")
    console.print(Text(f"  mloop serve {result.model_name}@production --port 8080", style="green"))
    console.print(
        Text(
            "  curl -s localhost:8080/predict -H 'content-type: application/json' "
            "-d '{\"patient_id\": 9}'",
            style="green",
        )
    )
    if result.pipeline is not None:
        console.print("Look at the training pipeline's DAG and step runs:")
        console.print(Text(f"  mloop runs show {result.pipeline.run_id}", style="green"))
