"""mloop models list / versions / show / alias / lineage / card, against a real registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

import mloop
from mloop.backends import backends

from .helpers import Invoke


@pytest.fixture
def registered(project: Path) -> str:
    """Model ``diabetes`` with two versions from two runs; ``production`` → 1."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    for alpha in (1.0, 0.5):
        with mloop.start_run(experiment="diabetes", params={"alpha": alpha}) as run:
            run.log_dataset(X.assign(y=y), name="diabetes", role="train")
            run.log_metric("r2", Ridge(alpha=alpha).fit(X, y).score(X, y))
            run.log_model(Ridge(alpha=alpha).fit(X, y), name="diabetes", input_example=X[:3])
    mloop.registry.set_alias("diabetes", "production", 1)
    return "diabetes"


def test_list_on_an_empty_folder_says_how_to_start_and_creates_nothing(
    cli: Invoke, project: Path
) -> None:
    result = cli("models", "list")
    assert result.exit_code == 0, result.output
    assert "No models yet" in result.stdout
    assert "mloop demo" in result.stdout
    assert cli("models", "list", "--json").stdout.strip() == "[]"
    assert list(project.iterdir()) == []


def test_list_and_versions(cli: Invoke, registered: str) -> None:
    listed = cli("models", "list")
    assert listed.exit_code == 0, listed.output
    [line] = [line for line in listed.stdout.splitlines() if line.startswith("diabetes")]
    assert "production→1" in line
    assert " 2 " in line
    versions = cli("models", "versions", "diabetes")
    assert versions.exit_code == 0, versions.output
    rows = [line.split() for line in versions.stdout.splitlines()[2:]]
    assert [row[0] for row in rows] == ["2", "1"]
    assert rows[1][1] == "production"
    as_json = json.loads(cli("models", "versions", "diabetes", "--json").stdout)
    assert [v["version"] for v in as_json] == [2, 1]
    assert as_json[0]["signature"]["inputs"][0]["name"] == "age"


def test_show_a_model_and_a_version(cli: Invoke, registered: str) -> None:
    model = cli("models", "show", "diabetes")
    assert model.exit_code == 0, model.output
    assert "production→1" in model.stdout
    version = cli("models", "show", "diabetes@production")
    assert version.exit_code == 0, version.output
    assert "diabetes version 1" in version.stdout
    assert "bmi" in version.stdout
    assert "scikit-learn" in version.stdout
    body = json.loads(cli("models", "show", "diabetes/2", "--json").stdout)
    assert body["version"] == 2
    assert body["flavor"] == "sklearn"


def test_alias_moves_removes_and_is_audited(cli: Invoke, registered: str) -> None:
    moved = cli("models", "alias", "diabetes", "production", "2")
    assert moved.exit_code == 0, moved.output
    assert "diabetes@production → version 2 (was version 1)" in moved.stdout
    entry = backends().store.list_audit(object_id="diabetes", limit=1)[0]
    assert (entry.actor, entry.action, entry.details["previous_version"]) == (
        "alice",
        "set_alias",
        1,
    )
    removed = cli("models", "alias", "diabetes", "production", "--delete")
    assert removed.exit_code == 0, removed.output
    assert "was version 2" in removed.stdout
    assert backends().store.models.get_model("diabetes").aliases == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("models", "alias", "diabetes", "production", "7"), "no version 7"),
        (("models", "alias", "diabetes", "pro duction", "1"), "is not allowed"),
        (("models", "alias", "diabetes", "latest", "1"), "reserved"),
        (("models", "alias", "diabetes", "production"), "give a VERSION"),
        (("models", "alias", "diabetes", "staging", "--delete"), "no alias 'staging'"),
        (("models", "show", "nobody"), "no registered model 'nobody'"),
        (("models", "show", "diabetes/9"), "no version 9"),
        (("models", "card", "diabetes@nope"), "no alias 'nope'"),
        (("models", "lineage", "../../etc"), "names no registered version"),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(
    cli: Invoke, registered: str, args: tuple[str, ...], message: str
) -> None:
    result = cli(*args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert backends().store.models.get_model("diabetes").aliases == {"production": 1}


def test_lineage_shows_the_run_its_data_and_the_alias_history(cli: Invoke, registered: str) -> None:
    result = cli("models", "lineage", "diabetes@production")
    assert result.exit_code == 0, result.output
    version = backends().store.models.get_version("diabetes", 1)
    assert version.run_id is not None
    assert version.run_id in result.stdout
    assert "input datasets/train/diabetes" in result.stdout
    assert "set_alias production: None → 1" in result.stdout
    body = json.loads(cli("models", "lineage", "diabetes/1", "--json").stdout)
    assert body["run"]["id"] == version.run_id
    assert body["inputs"][0]["kind"] == "dataset"


def test_card_as_markdown_and_html(cli: Invoke, registered: str, project: Path) -> None:
    markdown = cli("models", "card", "diabetes@production")
    assert markdown.exit_code == 0, markdown.output
    assert markdown.stdout.startswith("# Model card: diabetes version 1")
    assert "| alpha | 1.0 |" in markdown.stdout
    assert "| r2 |" in markdown.stdout
    out = project / "card.html"
    written = cli("models", "card", "diabetes@production", "--html", "-o", str(out))
    assert written.exit_code == 0, written.output
    html = out.read_text()
    assert html.startswith("<!doctype html>")
    assert "<h2>Datasets</h2>" in html


@pytest.mark.parametrize(
    "args",
    [
        ("models", "versions", "churn"),
        ("models", "show", "churn@production"),
        ("models", "lineage", "churn/1"),
        ("models", "card", "churn@production"),
        ("models", "alias", "churn", "production", "1"),
    ],
)
def test_naming_a_model_in_an_empty_folder_is_an_error_that_creates_nothing(
    cli: Invoke, project: Path, args: tuple[str, ...]
) -> None:
    result = cli(*args)
    assert result.exit_code == 1, result.output
    assert "churn" in result.stderr
    assert list(project.iterdir()) == []
