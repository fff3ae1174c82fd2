"""Fetching a run's artifacts back to disk, safely."""

from __future__ import annotations

import os
from pathlib import Path

from mloop.artifacts import ArtifactStore, safe_join
from mloop.errors import InvalidValueError
from mloop.store import Store
from mloop.tracking._context import backends


def download_artifacts(
    run_id: str,
    dest: str | os.PathLike[str],
    *,
    prefix: str = "",
    store: Store | None = None,
    artifacts: ArtifactStore | None = None,
) -> list[Path]:
    """Write the run's output files (those under ``prefix``) into ``dest``; returns the paths.

    Names are checked again on the way out: a name that would land outside ``dest`` (whoever
    wrote it into the store) raises UnsafePathError and nothing outside ``dest`` is touched.
    Digests are verified as the bytes are written.
    """
    ctx = backends(store, artifacts)
    if not isinstance(dest, str | os.PathLike):
        raise InvalidValueError(f"dest must be a folder path, not {type(dest).__name__}")
    ctx.store.get_run(run_id)  # NotFoundError names the run and how to list them
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for edge in ctx.store.list_lineage(run_id):
        if edge.direction != "output" or not edge.name.startswith(prefix):
            continue
        target = safe_join(root, edge.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        ctx.artifacts.get_file(edge.artifact.digest, target)
        written.append(target)
    return written
