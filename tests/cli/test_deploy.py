"""``mloop deploy``: build contexts and manifests from the command line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

import mloop

from .helpers import Invoke


@pytest.fixture
def churn(project: Path) -> str:
    frame = pd.DataFrame({"age": [20, 35, 50, 65], "income": [20.0, 70.0, 40.0, 90.0]})
    with mloop.start_run(experiment="churn") as run:
        run.log_model(
            LogisticRegression().fit(frame, frame["income"] > 50),
            name="churn",
            input_example=frame,
            alias="production",
        )
    return "churn@production"


def test_deploy_docker_and_kubernetes(cli: Invoke, churn: str, project: Path) -> None:
    result = cli("deploy", churn)
    assert result.exit_code == 0, result.output
    folder = project / "deploy" / "churn-v1" / "docker"
    assert f"Wrote the docker deployment of churn/1 to {folder}" in result.output
    assert "  Dockerfile\n" in result.output
    assert "  model/\n" in result.output
    assert (folder / "model" / "mloop-model.json").is_file()

    result = cli(
        "deploy", churn, "--target", "kubernetes", "-o", "k8s", "--replicas", "2",
        "--image", "example.com/churn:1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "kubectl apply -f k8s" in result.output
    deployment = yaml.safe_load((project / "k8s" / "deployment.yaml").read_text())
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "example.com/churn:1"
    )


def test_deploy_errors(cli: Invoke, churn: str, project: Path) -> None:
    result = cli("deploy", churn, "--target", "ftp")
    assert result.exit_code == 1
    assert "error: --target must be one of docker, kubernetes, local" in result.output
    (project / "busy").mkdir()
    (project / "busy" / "x").write_text("x")
    result = cli("deploy", churn, "-o", "busy")
    assert result.exit_code == 1
    assert "is not empty" in result.output
    result = cli("deploy", "churn@nope")
    assert result.exit_code == 1
    assert result.output.startswith("error: ")
    assert cli("deploy", churn, "--replicas", "0").exit_code == 2
