"""``store.pipelines``: batched step runs and the step cache, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import threading

import pytest

from mloop.errors import InvalidKeyError, InvalidValueError, NotFoundError
from mloop.store import (
    ArtifactRef,
    CacheEntry,
    NewRun,
    SqlStore,
    StepEdge,
    StepRecord,
    new_id,
    now_ms,
)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def parent(store: SqlStore) -> tuple[str, str]:
    experiment = store.get_or_create_experiment("pipes")
    run = store.create_run(
        NewRun(experiment_id=experiment.id, name="flow", user="u", kind="pipeline")
    )
    return experiment.id, run.id


def record(experiment: str, parent_id: str, name: str, *edges: StepEdge, **tags: str) -> StepRecord:
    now = now_ms()
    return StepRecord(
        id=new_id(),
        experiment_id=experiment,
        parent_run_id=parent_id,
        name=name,
        user="u",
        status="finished",
        start_ms=now,
        end_ms=now,
        params={"n": "3"},
        tags={"mloop.step.state": "finished", **tags},
        edges=edges,
    )


def test_steps_runs_edges_and_cache_in_one_batch(store: SqlStore) -> None:
    experiment, parent_id = parent(store)
    data = ArtifactRef(digest("data"), "value", 4, "", {"codec": "json", "value": 1})
    first = record(
        experiment,
        parent_id,
        "load",
        StepEdge("output", "outputs/output", data),
        **{"mloop.cache.key": digest("k1")},
    )
    second = record(
        experiment,
        parent_id,
        "use",
        StepEdge("input", "inputs/x", data),
        **{"mloop.cache.key": digest("k2")},
    )
    entry = CacheEntry(
        digest("k1"),
        "flow",
        "load",
        first.id,
        [{"name": "output", "codec": "json", "digest": data.digest, "kind": "value", "value": 1}],
    )
    store.pipelines.record_steps([first, second], [entry])

    run = store.get_run(first.id)
    assert (run.parent_run_id, run.kind, run.status, run.params) == (
        parent_id,
        "step",
        "finished",
        {"n": "3"},
    )
    [out] = store.list_lineage(first.id)
    [into] = store.list_lineage(second.id)
    assert out.artifact.id == into.artifact.id  # one artifact record, two edges
    assert out.artifact.meta == {"codec": "json", "value": 1}
    hits = store.pipelines.lookup([digest("k1"), digest("k2")])
    assert list(hits) == [digest("k1")]
    assert hits[digest("k1")].outputs[0]["artifact_id"] == out.artifact.id
    assert hits[digest("k1")].run_id == first.id
    store.end_run(parent_id, "finished")
    recent = store.pipelines.recent(experiment_id=experiment, pipeline="flow")
    assert list(recent) == [digest("k1")]
    assert store.pipelines.recent(experiment_id=experiment, pipeline="other") == {}

    # A deleted step run's outputs are no longer served from the cache.
    store.delete_run(first.id, actor="u")
    assert store.pipelines.lookup([digest("k1")]) == {}
    store.restore_run(first.id, actor="u")
    assert list(store.pipelines.lookup([digest("k1")])) == [digest("k1")]


def test_a_bad_record_writes_nothing(store: SqlStore) -> None:
    experiment, parent_id = parent(store)
    good = record(experiment, parent_id, "good")
    bad_digest = record(
        experiment,
        parent_id,
        "bad",
        StepEdge("output", "outputs/x", ArtifactRef("../../etc", "value", 1, "")),
    )
    with pytest.raises(InvalidValueError, match="is not a sha256"):
        store.pipelines.record_steps([good, bad_digest])
    with pytest.raises(InvalidKeyError):
        store.pipelines.record_steps(
            [good, record(experiment, parent_id, "x", **{"bad key!": "1"})]
        )
    orphan = record(experiment, new_id(), "orphan")
    with pytest.raises(Exception):  # noqa: B017 - the database refuses the missing parent
        store.pipelines.record_steps([good, orphan])
    with pytest.raises(NotFoundError):
        store.get_run(good.id)  # the batch was one transaction: nothing of it was written


def test_concurrent_batches_all_land(store: SqlStore) -> None:
    experiment, parent_id = parent(store)
    errors: list[BaseException] = []
    ids: list[str] = []
    lock = threading.Lock()

    def writer(worker: int) -> None:
        try:
            for batch in range(5):
                shared = ArtifactRef(digest("shared"), "value", 1, "")
                records = [
                    record(
                        experiment,
                        parent_id,
                        f"w{worker}-{batch}-{i}",
                        StepEdge("output", "outputs/output", shared),
                    )
                    for i in range(10)
                ]
                store.pipelines.record_steps(records)
                with lock:
                    ids.extend(r.id for r in records)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(ids) == 200
    artifact_ids = {store.list_lineage(run_id)[0].artifact.id for run_id in ids[::17]}
    assert len(artifact_ids) == 1  # the same artifact, recorded once under contention
