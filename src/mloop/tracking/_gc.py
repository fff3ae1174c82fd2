"""Garbage collection: purge soft-deleted runs and the artifacts nothing references any more."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from mloop.artifacts import ArtifactStore
from mloop.errors import InvalidValueError
from mloop.store import Store


@dataclass
class GcReport:
    """What a garbage collection purged (or would purge, on a dry run)."""

    dry_run: bool
    runs: list[str] = field(default_factory=list)
    artifact_records: int = 0
    blobs: int = 0
    bytes_freed: int = 0


def collect_garbage(
    store: Store,
    artifacts: ArtifactStore,
    *,
    older_than: timedelta = timedelta(days=30),
    dry_run: bool = False,
    actor: str = "mloop gc",
    now: datetime | None = None,
) -> GcReport:
    """Purge runs deleted more than ``older_than`` ago, then unreferenced artifacts and blobs.

    Records go before blobs, so a crash in between leaves only orphan blobs, which the next
    run removes. Blobs younger than ``older_than`` are kept: a writer may not have recorded
    them yet.
    """
    if not isinstance(older_than, timedelta):
        raise InvalidValueError(
            f"older_than must be a datetime.timedelta, not {type(older_than).__name__}: "
            "e.g. timedelta(days=30)"
        )
    if older_than < timedelta(0):
        raise InvalidValueError(f"older_than must not be negative, not {older_than}")
    try:
        cutoff = (now or datetime.now(UTC)) - older_than
    except OverflowError:
        raise InvalidValueError(f"older_than is too large: {older_than}") from None
    report = GcReport(dry_run=dry_run)
    report.runs = store.purge_runs(deleted_before=cutoff, dry_run=dry_run)
    if dry_run:
        # Artifacts used only by the runs that would be purged are freed too.
        purged = set(report.runs)
        candidates = store.unreferenced_artifacts(created_before=cutoff)
        counted = {a.digest for a in candidates}
        for run_id in report.runs:
            for edge in store.list_lineage(run_id):
                users = {r for r, _, _ in store.runs_of_artifact(edge.artifact.id)}
                if users <= purged and edge.artifact.created < cutoff:
                    counted.add(edge.artifact.digest)
                    candidates.append(edge.artifact)
        report.artifact_records = len({a.id for a in candidates})
        referenced = store.referenced_digests() - counted
    else:
        candidates = store.unreferenced_artifacts(created_before=cutoff)
        store.delete_artifact_records([a.id for a in candidates])
        report.artifact_records = len(candidates)
        referenced = store.referenced_digests()
    blobs = [
        blob
        for blob in artifacts.iter_blobs()
        if blob.digest not in referenced and (blob.modified is None or blob.modified < cutoff)
    ]
    if not dry_run and blobs:
        # Listing a large store takes a while: a run may have recorded one of these blobs
        # meanwhile (re-putting stored bytes does not refresh their time). Look again.
        referenced = store.referenced_digests()
        blobs = [blob for blob in blobs if blob.digest not in referenced]
    for blob in blobs:
        report.blobs += 1
        report.bytes_freed += blob.size
        if not dry_run:
            artifacts.delete(blob.digest)
    if not dry_run and (report.runs or report.blobs):
        store.audit(
            actor=actor,
            action="gc",
            object_type="store",
            object_id=store.uri,
            details={
                "runs": len(report.runs),
                "artifact_records": report.artifact_records,
                "blobs": report.blobs,
                "bytes_freed": report.bytes_freed,
            },
        )
    return report
