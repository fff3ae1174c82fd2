"""The metadata store suite: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from mloop.errors import (
    ConflictError,
    InvalidKeyError,
    InvalidValueError,
    NotFoundError,
    RunNotActiveError,
)
from mloop.store import Environment, NewRun, SqlStore


def new_run(store: SqlStore, experiment: str = "exp", **fields: object) -> str:
    exp = store.get_or_create_experiment(experiment)
    return store.create_run(NewRun(experiment_id=exp.id, name="r", user="ann", **fields)).id  # type: ignore[arg-type]


def test_experiments_are_created_once(store: SqlStore) -> None:
    first = store.get_or_create_experiment("churn")
    again = store.get_or_create_experiment("churn")
    assert first == again
    assert store.get_experiment("churn") == first
    assert store.get_experiment(first.id) == first
    assert [e.name for e in store.list_experiments()] == ["churn"]


def test_unknown_experiment_names_the_command_to_list_them(store: SqlStore) -> None:
    with pytest.raises(NotFoundError, match="mloop experiments list"):
        store.get_experiment("nope")


@pytest.mark.parametrize("name", ["", "   ", "x" * 257, "tab\there", 42])
def test_bad_experiment_names_are_refused(store: SqlStore, name: object) -> None:
    with pytest.raises(InvalidValueError, match="experiment name"):
        store.get_or_create_experiment(name)  # type: ignore[arg-type]


def test_run_round_trip(store: SqlStore) -> None:
    env_id = store.put_environment(Environment("3.11.7", "Linux", {"numpy": "2.0"}))
    run_id = new_run(
        store,
        git_commit="a" * 40,
        git_dirty=True,
        git_branch="main",
        command="python t.py",
        environment_id=env_id,
    )
    run = store.get_run(run_id)
    assert run.status == "running"
    assert run.end_time is None
    assert (run.git_commit, run.git_dirty, run.git_branch) == ("a" * 40, True, "main")
    assert store.get_environment(env_id).packages == {"numpy": "2.0"}
    assert run.start_time.tzinfo is not None
    store.end_run(run_id, "finished")
    ended = store.get_run(run_id)
    assert ended.status == "finished"
    assert ended.end_time is not None
    assert ended.end_time >= ended.start_time


def test_environments_are_deduplicated(store: SqlStore) -> None:
    env = Environment("3.11.7", "Linux", {"b": "1", "a": "2"})
    assert store.put_environment(env) == store.put_environment(
        Environment("3.11.7", "Linux", {"a": "2", "b": "1"})
    )
    assert store.put_environment(env) != store.put_environment(
        Environment("3.11.8", "Linux", {"a": "2", "b": "1"})
    )


def test_run_ids_sort_by_creation(store: SqlStore) -> None:
    ids = [new_run(store) for _ in range(20)]
    assert ids == sorted(ids)


def test_unknown_run(store: SqlStore) -> None:
    with pytest.raises(NotFoundError, match="mloop runs list"):
        store.get_run("0190a000-0000-7000-8000-000000000000")


def test_unknown_parent_run(store: SqlStore) -> None:
    exp = store.get_or_create_experiment("e")
    with pytest.raises(NotFoundError, match="parent run"):
        store.create_run(NewRun(exp.id, "r", "u", parent_run_id="missing"))


def test_params_are_fixed_once_logged(store: SqlStore) -> None:
    run_id = new_run(store)
    store.log_params(run_id, {"lr": "0.1", "model": "rf"})
    store.log_params(run_id, {"lr": "0.1"})  # same value again: fine
    with pytest.raises(ConflictError, match=r"param 'lr' .* already '0.1'.*'0.2'"):
        store.log_params(run_id, {"lr": "0.2", "new": "x"})
    # nothing of the refused batch was written
    assert store.get_run(run_id).params == {"lr": "0.1", "model": "rf"}


def test_tags_can_change(store: SqlStore) -> None:
    run_id = new_run(store)
    store.set_tags(run_id, {"stage": "dev"})
    store.set_tags(run_id, {"stage": "prod", "team": "ml"})
    assert store.get_run(run_id).tags == {"stage": "prod", "team": "ml"}


@pytest.mark.parametrize("key", ["", "a" * 251, "bad\nkey", "../x", "/abs", " lead", 3])
def test_bad_keys_are_refused(store: SqlStore, key: object) -> None:
    run_id = new_run(store)
    with pytest.raises(InvalidKeyError):
        store.log_params(run_id, {key: "v"})  # type: ignore[dict-item]


def test_metrics_history_and_latest(store: SqlStore) -> None:
    run_id = new_run(store)
    store.log_metrics([(run_id, "loss", 0.9, 0, 1000), (run_id, "loss", 0.5, 1, 1001)])
    store.log_metrics([(run_id, "loss", 0.7, 0, 1002)])  # late value of an old step
    store.log_metrics([(run_id, "auc", 0.8, 5, 1003)])
    history = store.get_metric_history(run_id, "loss")
    assert [(p.step, p.value) for p in history] == [(0, 0.9), (0, 0.7), (1, 0.5)]
    assert store.get_run(run_id).metrics == {"loss": 0.5, "auc": 0.8}


def test_metric_values_round_trip_exactly(store: SqlStore) -> None:
    run_id = new_run(store)
    values = [0.1, 1e-300, 1.7976931348623157e308, -0.0, 123456789.123456789, 2.0**-1074]
    store.log_metrics([(run_id, "m", v, i, 1) for i, v in enumerate(values)])
    assert [p.value for p in store.get_metric_history(run_id, "m")] == values


def test_nothing_can_be_logged_to_an_ended_run(store: SqlStore) -> None:
    run_id = new_run(store)
    store.end_run(run_id, "failed", error="boom")
    assert store.get_run(run_id).error == "boom"
    with pytest.raises(RunNotActiveError, match="has ended"):
        store.log_metrics([(run_id, "m", 1.0, 0, 1)])
    with pytest.raises(RunNotActiveError):
        store.log_params(run_id, {"a": "b"})
    with pytest.raises(RunNotActiveError):
        store.end_run(run_id, "finished")


def test_end_run_status_must_be_final(store: SqlStore) -> None:
    run_id = new_run(store)
    with pytest.raises(InvalidValueError, match="finished, failed or killed"):
        store.end_run(run_id, "running")


def test_soft_delete_cascades_to_children_and_restores(store: SqlStore) -> None:
    parent = new_run(store)
    child = new_run(store, parent_run_id=parent)
    grandchild = new_run(store, parent_run_id=child)
    other = new_run(store)
    store.delete_run(parent, actor="ann")
    for run_id in (parent, child, grandchild):
        assert store.get_run(run_id).deleted_time is not None
    assert store.get_run(other).deleted_time is None
    assert {r.id for r in store.search_runs()} == {other}
    assert len(store.search_runs(include_deleted=True)) == 4
    store.restore_run(parent, actor="bob")
    assert store.get_run(grandchild).deleted_time is None
    actions = [(e.action, e.actor) for e in store.list_audit(object_id=parent)]
    assert actions == [("run.restore", "bob"), ("run.delete", "ann")]


def test_purge_removes_rows_of_old_deleted_runs(store: SqlStore) -> None:
    keep = new_run(store)
    doomed = new_run(store)
    store.log_params(doomed, {"a": "1"})
    store.log_metrics([(doomed, "m", 1.0, 0, 1)])
    store.delete_run(doomed, actor="ann")
    future = datetime.now(UTC) + timedelta(seconds=5)
    assert store.purge_runs(deleted_before=future, dry_run=True) == [doomed]
    assert store.get_run(doomed).params == {"a": "1"}  # dry run changed nothing
    assert store.purge_runs(deleted_before=datetime.now(UTC) - timedelta(days=1)) == []
    assert store.purge_runs(deleted_before=future) == [doomed]
    with pytest.raises(NotFoundError):
        store.get_run(doomed)
    assert store.get_metric_history(doomed, "m") == []
    assert store.get_run(keep).status == "running"


def test_artifacts_are_recorded_once_per_digest_and_kind(store: SqlStore) -> None:
    run_id = new_run(store)
    digest = "ab" * 32
    first = store.record_artifact(digest=digest, kind="file", size=3, uri="/a", meta={"k": 1})
    again = store.record_artifact(digest=digest, kind="file", size=3, uri="/a", meta={})
    other = store.record_artifact(digest=digest, kind="dataset", size=3, uri="/a", meta={})
    assert first == again
    assert other.id != first.id
    assert first.meta == {"k": 1}
    store.link_artifact(run_id, first.id, "output", "model/a.bin")
    store.link_artifact(run_id, first.id, "output", "model/a.bin")  # idempotent
    store.link_artifact(run_id, other.id, "input", "datasets/train/x")
    with pytest.raises(ConflictError, match="already has an output named"):
        store.link_artifact(run_id, other.id, "output", "model/a.bin")
    edges = store.list_lineage(run_id)
    assert [(e.direction, e.name, e.artifact.id) for e in edges] == [
        ("input", "datasets/train/x", other.id),
        ("output", "model/a.bin", first.id),
    ]
    assert store.runs_of_artifact(first.id) == [(run_id, "output", "model/a.bin")]
    with pytest.raises(NotFoundError):
        store.link_artifact(run_id, "no-such-artifact", "output", "x")
    with pytest.raises(InvalidValueError):
        store.link_artifact(run_id, first.id, "sideways", "x")  # type: ignore[arg-type]


def test_unreferenced_artifacts_after_purge(store: SqlStore) -> None:
    run_id = new_run(store)
    used = store.record_artifact(digest="1" * 64, kind="file", size=1, uri="/", meta={})
    lonely = store.record_artifact(digest="2" * 64, kind="file", size=1, uri="/", meta={})
    store.link_artifact(run_id, used.id, "output", "a")
    assert [a.id for a in store.unreferenced_artifacts()] == [lonely.id]
    store.delete_run(run_id, actor="ann")
    store.purge_runs(deleted_before=datetime.now(UTC) + timedelta(seconds=1))
    assert {a.id for a in store.unreferenced_artifacts()} == {used.id, lonely.id}
    store.delete_artifact_records([used.id, lonely.id])
    assert store.referenced_digests() == set()


def test_audit_log_records_actor_and_details(store: SqlStore) -> None:
    store.audit(
        actor="ann",
        action="model.alias",
        object_type="model",
        object_id="churn",
        details={"from": 1, "to": 2},
    )
    [entry] = store.list_audit(object_id="churn")
    assert (entry.actor, entry.action, entry.details) == (
        "ann",
        "model.alias",
        {"from": 1, "to": 2},
    )


def test_search_runs_hydrates_in_order(store: SqlStore) -> None:
    exp = store.get_or_create_experiment("s").id
    ids = []
    for i in range(5):
        run_id = store.create_run(NewRun(exp, f"r{i}", "ann")).id
        store.log_params(run_id, {"model": "rf" if i % 2 else "lr"})
        store.log_metrics([(run_id, "auc", 0.5 + i / 10, 0, 1)])
        ids.append(run_id)
    found = store.search_runs(
        experiment_ids=[exp], filter="params.model = 'rf'", order_by=["metrics.auc DESC"]
    )
    assert [r.id for r in found] == [ids[3], ids[1]]
    assert found[0].metrics == {"auc": pytest.approx(0.8)}
    assert found[0].params == {"model": "rf"}


def test_deleting_twice_keeps_the_first_time_and_restore_spares_earlier_deletes(
    store: SqlStore,
) -> None:
    parent = new_run(store)
    child = new_run(store, parent_run_id=parent)
    store.delete_run(child, actor="ann")
    child_deleted = store.get_run(child).deleted_time
    time.sleep(0.01)  # a later millisecond than the child's deletion
    store.delete_run(parent, actor="ann")
    parent_deleted = store.get_run(parent).deleted_time
    assert store.get_run(child).deleted_time == child_deleted  # not pushed back
    store.delete_run(parent, actor="ann")  # again: no change, no audit entry
    assert store.get_run(parent).deleted_time == parent_deleted
    assert [e.action for e in store.list_audit(object_id=parent)] == ["run.delete"]
    store.restore_run(parent, actor="ann")
    assert store.get_run(parent).deleted_time is None
    assert store.get_run(child).deleted_time == child_deleted  # deleted on its own: stays


def test_purging_a_parent_removes_its_childrens_metrics(store: SqlStore) -> None:
    parent = new_run(store)
    child = new_run(store, parent_run_id=parent)
    store.log_metrics([(child, "m", 1.0, 0, 1), (parent, "m", 2.0, 0, 1)])
    store.delete_run(parent, actor="ann")
    store.purge_runs(deleted_before=datetime.now(UTC) + timedelta(seconds=1))
    for run_id in (parent, child):
        assert store.get_metric_history(run_id, "m") == []


def test_ending_a_run_with_its_last_metrics_is_all_or_nothing(store: SqlStore) -> None:
    run_id = new_run(store)
    store.end_run(run_id, "finished", metrics=[(run_id, "m", 1.0, 0, 1)])
    assert store.get_run(run_id).metrics == {"m": 1.0}
    with pytest.raises(RunNotActiveError):
        store.end_run(run_id, "failed", metrics=[(run_id, "m", 2.0, 1, 2)])
    assert [p.value for p in store.get_metric_history(run_id, "m")] == [1.0]
    assert store.get_run(run_id).status == "finished"


def test_latest_metrics_in_run_records_round_trip_exactly(store: SqlStore) -> None:
    values = {
        "tenth": 0.1,
        "tiny": 1e-300,
        "huge": 1.7976931348623157e308,
        "neg_zero": -0.0,
        "subnormal": 2.0**-1074,
        "long": 123456789.123456789,
        "third": 1 / 3,
        "neg": -2.5e-7,
    }
    run_id = new_run(store)
    store.log_params(run_id, {"a b": "x\x1f\x1ey", "quote": 'say "hi"', "uni": "ünï ✓"})
    store.set_tags(run_id, {"json": '{"k": [1, 2]}'})
    store.log_metrics([(run_id, key, value, 0, 1) for key, value in values.items()])
    for run in (store.get_run(run_id), store.search_runs()[0]):
        assert run.metrics == values
        assert all(repr(run.metrics[k]) == repr(v) for k, v in values.items() if v != 0)
        assert run.params == {"a b": "x\x1f\x1ey", "quote": 'say "hi"', "uni": "ünï ✓"}
        assert run.tags == {"json": '{"k": [1, 2]}'}
