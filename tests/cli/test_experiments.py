"""mloop experiments list."""

from __future__ import annotations

import json

from .helpers import Invoke, record_run


def test_no_experiments_says_how_to_make_one(cli: Invoke) -> None:
    result = cli("experiments", "list")
    assert result.exit_code == 0, result.output
    assert "No experiments yet" in result.stdout


def test_lists_experiments_oldest_first(cli: Invoke) -> None:
    record_run(experiment="churn")
    record_run(experiment="fraud")
    result = cli("experiments", "list")
    assert result.exit_code == 0, result.output
    assert result.stdout.index("churn") < result.stdout.index("fraud")
    assert "mloop runs list --experiment NAME" in result.stdout


def test_json(cli: Invoke) -> None:
    record_run(experiment="churn")
    [experiment] = json.loads(cli("experiments", "list", "--json").stdout)
    assert experiment["name"] == "churn"
    assert experiment["deleted"] is None
    assert experiment["created"].endswith("+00:00")
