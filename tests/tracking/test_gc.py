"""mloop gc: deleted runs and unreferenced artifacts are purged; nothing in use is touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

import mloop
from mloop.errors import InvalidValueError, NotFoundError
from mloop.tracking import backends, collect_garbage


def log_run(tmp_path: Path, content: bytes, experiment: str = "gc") -> mloop.Run:
    path = tmp_path / f"file-{content[:8].hex()}.bin"
    path.write_bytes(content)
    with mloop.start_run(experiment=experiment) as run:
        run.log_artifact(path, name="blob.bin")
        run.log_metric("m", 1.0)
    return run


def test_gc_purges_deleted_runs_and_their_blobs_only(tmp_path: Path) -> None:
    ctx = backends()
    kept = log_run(tmp_path, b"kept" * 1000)
    doomed = log_run(tmp_path, b"doomed" * 1000)
    shared = log_run(tmp_path, b"kept" * 1000)  # same bytes as `kept`
    ctx.store.delete_run(doomed.id, actor="ann")
    ctx.store.delete_run(shared.id, actor="ann")
    later = datetime.now(UTC) + timedelta(seconds=1)

    # Nothing is old enough with the default 30 days.
    assert collect_garbage(ctx.store, ctx.artifacts).runs == []

    preview = collect_garbage(
        ctx.store, ctx.artifacts, older_than=timedelta(0), dry_run=True, now=later
    )
    assert sorted(preview.runs) == sorted([doomed.id, shared.id])
    assert (preview.blobs, preview.bytes_freed) == (1, 6000)
    assert len(list(ctx.artifacts.iter_blobs())) == 2  # dry run deleted nothing
    assert ctx.store.get_run(doomed.id).deleted_time is not None

    report = collect_garbage(ctx.store, ctx.artifacts, older_than=timedelta(0), now=later)
    assert sorted(report.runs) == sorted([doomed.id, shared.id])
    assert (report.artifact_records, report.blobs, report.bytes_freed) == (1, 1, 6000)
    with pytest.raises(NotFoundError):
        ctx.store.get_run(doomed.id)
    assert ctx.store.get_run(kept.id).status == "finished"
    [edge] = ctx.store.list_lineage(kept.id)
    assert ctx.artifacts.get_bytes(edge.artifact.digest) == b"kept" * 1000
    assert ctx.store.list_audit(limit=1)[0].action == "gc"

    # A second pass finds nothing more.
    again = collect_garbage(ctx.store, ctx.artifacts, older_than=timedelta(0), now=later)
    assert (again.runs, again.blobs) == ([], 0)


def test_gc_removes_orphan_blobs_but_spares_young_ones(tmp_path: Path) -> None:
    ctx = backends()
    orphan = ctx.artifacts.put_bytes(b"written by a writer that died before recording it")
    report = collect_garbage(ctx.store, ctx.artifacts, older_than=timedelta(hours=1))
    assert report.blobs == 0  # too young: a writer may still be about to record it
    report = collect_garbage(
        ctx.store,
        ctx.artifacts,
        older_than=timedelta(0),
        now=datetime.now(UTC) + timedelta(seconds=1),
    )
    assert report.blobs == 1
    assert not ctx.artifacts.exists(orphan.digest)


def test_gc_keeps_datasets_used_by_live_runs() -> None:
    ctx = backends()
    df = pd.DataFrame({"a": range(100)})
    with mloop.start_run() as first:
        first.log_dataset(df, name="d")
    with mloop.start_run() as second:
        second.log_dataset(df, name="d")
    ctx.store.delete_run(first.id, actor="ann")
    report = collect_garbage(
        ctx.store,
        ctx.artifacts,
        older_than=timedelta(0),
        now=datetime.now(UTC) + timedelta(seconds=1),
    )
    assert report.runs == [first.id]
    assert report.blobs == 0
    [edge] = ctx.store.list_lineage(second.id)
    assert ctx.artifacts.exists(edge.artifact.digest)


def test_gc_refuses_a_negative_age() -> None:
    ctx = backends()
    with pytest.raises(InvalidValueError, match="negative"):
        collect_garbage(ctx.store, ctx.artifacts, older_than=timedelta(days=-1))


def test_gc_refuses_an_age_beyond_the_calendar() -> None:
    ctx = backends()
    with pytest.raises(InvalidValueError, match="too large"):
        collect_garbage(ctx.store, ctx.artifacts, older_than=timedelta(days=999_999_999))


@pytest.mark.parametrize("age", ["30d", 30, None])
def test_gc_refuses_an_age_that_is_not_a_timedelta(age: object) -> None:
    ctx = backends()
    with pytest.raises(InvalidValueError, match="timedelta"):
        collect_garbage(ctx.store, ctx.artifacts, older_than=age)  # type: ignore[arg-type]
