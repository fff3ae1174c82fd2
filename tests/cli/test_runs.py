"""mloop runs list / show / delete / restore, against a real store in a temp folder."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import mloop
from mloop.tracking import backends

from .helpers import Invoke, record_run


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


# -- list -----------------------------------------------------------------------------------


def test_list_without_runs_says_how_to_make_one(cli: Invoke, project: Path) -> None:
    result = cli("runs", "list")
    assert result.exit_code == 0, result.output
    assert "No runs yet" in result.stdout
    assert "mloop demo" in result.stdout
    assert cli("runs", "list", "--json").stdout.strip() == "[]"


@pytest.mark.parametrize(
    "args", [("runs", "list"), ("experiments", "list"), ("gc", "--dry-run"), ("runs", "show", "x")]
)
def test_reading_an_empty_folder_leaves_it_empty(
    cli: Invoke, project: Path, args: tuple[str, ...]
) -> None:
    result = cli(*args)
    assert result.exit_code in (0, 1), result.output
    assert list(project.iterdir()) == []


def test_list_shows_full_ids_names_statuses_and_metrics(cli: Invoke) -> None:
    good = record_run(name="good", metrics={"auc": 0.91, "loss": [0.5, 0.25]})
    bad = record_run(name="bad", fail="boom")
    result = cli("runs", "list")
    assert result.exit_code == 0, result.output
    [good_line] = lines_with(result.stdout, good)
    assert "good" in good_line
    assert "finished" in good_line
    assert "0.91" in good_line
    assert "0.25" in good_line  # the latest value
    [bad_line] = lines_with(result.stdout, bad)
    assert "failed" in bad_line
    header = result.stdout.splitlines()[0]
    assert header.split()[:2] == ["run", "id"]
    assert "auc" in header
    assert "loss" in header
    assert result.stdout.index(bad) < result.stdout.index(good)  # newest first


def test_list_in_a_narrow_terminal_keeps_ids_whole_and_says_what_it_left_out(
    cli: Invoke,
) -> None:
    run_id = record_run(name="a-rather-long-run-name-indeed", metrics={"auc": 0.5, "f1": 0.4})
    result = cli("runs", "list", columns=80)
    assert result.exit_code == 0, result.output
    assert run_id in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    assert "Metrics not shown for lack of width: auc, f1" in " ".join(result.stdout.split())


def test_list_sorted_metric_comes_first(cli: Invoke) -> None:
    record_run(metrics={"auc": 0.5, "zeta": 1.0})
    result = cli("runs", "list", "--order-by", "metrics.zeta DESC")
    header = result.stdout.splitlines()[0]
    assert header.index("zeta") < header.index("auc")


def test_list_filters_by_experiment(cli: Invoke) -> None:
    churn = record_run(experiment="churn")
    fraud = record_run(experiment="fraud")
    result = cli("runs", "list", "--experiment", "fraud")
    assert fraud in result.stdout
    assert churn not in result.stdout
    both = cli("runs", "list", "-e", "fraud", "-e", "churn")
    assert fraud in both.stdout
    assert churn in both.stdout
    assert "experiment" in both.stdout.splitlines()[0]  # runs of several: a column says which


def test_list_unknown_experiment_is_a_clean_error(cli: Invoke) -> None:
    record_run(name="r")
    result = cli("runs", "list", "--experiment", "nope")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: no experiment named 'nope'; see them with: mloop experiments list\n"
    )


def test_list_filter_and_order(cli: Invoke) -> None:
    low = record_run(params={"model": "rf"}, metrics={"auc": 0.7})
    high = record_run(params={"model": "rf"}, metrics={"auc": 0.9})
    other = record_run(params={"model": "lr"}, metrics={"auc": 0.99})
    result = cli(
        "runs",
        "list",
        "--json",
        "--filter",
        "params.model = 'rf'",
        "--order-by",
        "metrics.auc DESC",
    )
    assert result.exit_code == 0, result.output
    assert [run["id"] for run in json.loads(result.stdout)] == [high, low]
    assert other not in result.stdout
    none = cli("runs", "list", "--filter", "metrics.auc > 5")
    assert "No runs match." in none.stdout


@pytest.mark.parametrize(
    ("args", "token"),
    [
        (["--filter", "metrics.auc && 0.5"], "'&&'"),
        (["--filter", "metrics.auc > "], "expected a value"),
        (["--filter", "bogus.field = 1"], "bogus"),
        (["--order-by", "metrics.auc SIDEWAYS"], "'SIDEWAYS'"),
    ],
)
def test_bad_filter_or_order_names_the_token(cli: Invoke, args: list[str], token: str) -> None:
    record_run()
    result = cli("runs", "list", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: invalid ")
    assert token in result.stderr
    assert result.stderr.count("\n") == 1


def test_limit_says_when_there_are_more(cli: Invoke) -> None:
    first = record_run(name="first")
    second = record_run(name="second")
    result = cli("runs", "list", "--limit", "1")
    assert second in result.stdout
    assert first not in result.stdout
    assert "there are more" in result.stdout
    everything = cli("runs", "list", "--limit", "2")
    assert "there are more" not in everything.stdout


@pytest.mark.parametrize("limit", ["0", "-1", "ten", "1000001"])
def test_bad_limit_is_a_usage_error(cli: Invoke, limit: str) -> None:
    result = cli("runs", "list", "--limit", limit)
    assert result.exit_code == 2
    assert "--limit" in result.stderr


def test_list_json_has_everything_of_each_run(cli: Invoke) -> None:
    run_id = record_run(params={"C": 1.0}, metrics={"auc": 0.9}, tags={"team": "ml"})
    result = cli("runs", "list", "--json")
    [run] = json.loads(result.stdout)
    assert run["id"] == run_id
    assert run["experiment"] == "churn"
    assert run["status"] == "finished"
    assert run["params"] == {"C": "1.0"}
    assert run["metrics"] == {"auc": 0.9}
    assert run["tags"] == {"team": "ml"}
    assert run["duration_seconds"] >= 0
    assert run["deleted_time"] is None
    assert cli("runs", "list", "--json", "-f", "metrics.auc > 1").stdout == "[]\n"


# -- show -----------------------------------------------------------------------------------


def test_show_has_every_section(cli: Invoke) -> None:
    with mloop.start_run(experiment="churn", name="full", params={"C": 0.5}) as run:
        run.log_metric("auc", 0.875)
        run.set_tag("stage", "dev")
        run.log_dataset(pd.DataFrame({"x": [1, 2, 3]}), name="customers", role="train")
        report = Path("report.md")
        report.write_text("# hi\n", encoding="utf-8")
        run.log_artifact(report)
    result = cli("runs", "show", run.id)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in (
        run.id,
        "full",
        "churn",
        "finished",
        "alice",
        "C",
        "0.5",
        "auc",
        "0.875",
        "stage",
        "dev",
        "datasets/train/customers",
        "dataset",
        "report.md",
        "Python",
        "packages",
        "command",
    ):
        assert expected in out, expected
    dataset = run.lineage()[0].artifact
    [line] = lines_with(out, "datasets/train/customers")
    assert dataset.digest[:12] in line
    assert "in" in line.split()
    assert "3" in line.split()  # rows


def test_show_failed_run_shows_its_error(cli: Invoke) -> None:
    run_id = record_run(fail="the GPU caught fire")
    result = cli("runs", "show", run_id)
    assert result.exit_code == 0, result.output
    assert "failed" in result.stdout
    assert "RuntimeError: the GPU caught fire" in result.stdout
    assert "Traceback" in result.stdout


def test_show_json_has_lineage_and_environment(cli: Invoke) -> None:
    with mloop.start_run(experiment="churn") as run:
        run.log_dataset(pd.DataFrame({"x": [1.0]}), name="customers", role="test")
    data = json.loads(cli("runs", "show", run.id, "--json").stdout)
    assert data["id"] == run.id
    [edge] = data["lineage"]
    assert edge["direction"] == "input"
    assert edge["name"] == "datasets/test/customers"
    assert len(edge["artifact"]["digest"]) == 64
    assert edge["artifact"]["meta"]["rows"] == 1
    assert "pandas" in data["environment"]["packages"]
    assert data["environment"]["python"].startswith("3.")


HOSTILE_IDS = [
    "nonexistent",
    "../../etc/passwd",
    "x" * 10_000,
    "ünïcødé-😀",
    "[bold red]markup[/bold red]",
    "'; DROP TABLE runs; --",
    "%",
    "",
    "-",
]


@pytest.mark.parametrize("run_id", HOSTILE_IDS, ids=range(len(HOSTILE_IDS)))
@pytest.mark.parametrize("command", ["show", "delete", "restore"])
def test_unknown_or_hostile_run_ids_are_clean_errors(
    cli: Invoke, command: str, run_id: str
) -> None:
    kept = record_run()
    result = cli("runs", command, "--", run_id)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: no run ")
    assert result.stderr.count("\n") == 1
    assert len(result.stderr) < 1100
    assert "Traceback" not in result.stderr
    assert cli("runs", "show", kept).exit_code == 0  # the store is unharmed


# -- delete / restore -----------------------------------------------------------------------


def test_delete_hides_and_restore_brings_back(cli: Invoke) -> None:
    run_id = record_run(name="doomed")
    deleted = cli("runs", "delete", run_id)
    assert deleted.exit_code == 0, deleted.output
    assert f"Deleted run {run_id} (doomed)" in deleted.stdout
    assert f"mloop runs restore {run_id}" in deleted.stdout
    assert run_id not in cli("runs", "list").stdout
    listed = cli("runs", "list", "--deleted")
    [line] = lines_with(listed.stdout, run_id)
    assert "(deleted)" in line
    assert "deleted" in cli("runs", "show", run_id).stdout
    assert "already deleted" in cli("runs", "delete", run_id).stdout

    restored = cli("runs", "restore", run_id)
    assert restored.exit_code == 0, restored.output
    assert f"Restored run {run_id}" in restored.stdout
    assert run_id in cli("runs", "list").stdout
    assert "is not deleted" in cli("runs", "restore", run_id).stdout

    audit = backends().store.list_audit(object_id=run_id)
    assert [(entry.action, entry.actor) for entry in audit] == [
        ("run.restore", "alice"),
        ("run.delete", "alice"),
    ]


def test_delete_takes_child_runs_along(cli: Invoke) -> None:
    with (
        mloop.start_run(experiment="churn", name="parent") as parent,
        mloop.start_run(name="child") as child,
    ):
        pass
    cli("runs", "delete", parent.id)
    listed = cli("runs", "list").stdout
    assert parent.id not in listed
    assert child.id not in listed
