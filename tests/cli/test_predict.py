"""``mloop predict``: batch scoring from the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mloop

from .helpers import Invoke


@pytest.fixture
def data(project: Path) -> pd.DataFrame:
    """churn@production registered in the CLI project; returns the rows to score."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(500),
            "age": rng.integers(18, 90, 500),
            "income": rng.normal(50.0, 15.0, 500),
        }
    )
    model = LogisticRegression().fit(frame[["age", "income"]], frame["income"] > 50)
    with mloop.start_run(experiment="churn") as run:
        run.log_model(
            model, name="churn", input_example=frame[["age", "income"]].head(), alias="production"
        )
    return frame


def test_predict_scores_a_file_and_records_a_run(
    cli: Invoke, data: pd.DataFrame, project: Path
) -> None:
    data.to_csv(project / "rows.csv", index=False)
    result = cli(
        "predict", "churn@production", "--input", "rows.csv", "--output", "scores.parquet",
        "--chunk-size", "200", "--executor", "inprocess",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Scored 500 rows in 3 chunk(s) with churn/1" in result.output
    scores = pd.read_parquet(project / "scores.parquet")
    assert list(scores.columns) == ["customer_id", "prediction", "proba_False", "proba_True"]
    assert scores["customer_id"].tolist() == list(range(500))
    run_id = result.output.split("Recorded as run ")[1].split()[0]
    assert mloop.get_run(run_id).kind == "batch_scoring"


def test_predict_errors_are_one_line(cli: Invoke, data: pd.DataFrame, project: Path) -> None:
    data.drop(columns=["age"]).to_parquet(project / "rows.parquet")
    result = cli(
        "predict", "churn@production", "-i", "rows.parquet", "-o", "out.parquet",
        "--executor", "inprocess",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "error: chunk 0 (rows 0-499) of the input" in result.output
    assert "'age'" in result.output
    assert not (project / "out.parquet").exists()

    result = cli("predict", "churn@production", "-i", "rows.parquet", "-o", "no/out.parquet")
    assert result.exit_code == 1
    assert "create it first" in result.output

    result = cli("predict", "churn@production", "-i", "rows.parquet")
    assert result.exit_code == 2  # --output is required
    result = cli("predict", "churn@production", "-i", "x.parquet", "-o", "o.parquet",
                 "--chunk-size", "0")  # fmt: skip
    assert result.exit_code == 2
