"""Unzipped model packages on local disk, one folder per package digest.

A restart, or a second replica on the same host, finds the package here instead of fetching
it again. Every use re-checks the folder against the manifest digest the registry recorded, so
a cached package altered on disk is never loaded: it is set aside and fetched again from the
artifact store (which verifies the blob's own sha256).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from mloop.artifacts import ArtifactStore
from mloop.errors import IntegrityError
from mloop.registry._package import Manifest, unpack, verify_folder

__all__ = ["PackageCache"]

log = logging.getLogger("mloop.registry")


class PackageCache:
    """The cache folder of one project (``<home>/.mloop/cache/models`` by default)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def open(
        self, digest: str, manifest_sha256: str | None, artifacts: ArtifactStore
    ) -> tuple[Path, Manifest]:
        """The verified folder of package ``digest``, fetched and unzipped on first use."""
        return self.open_with(
            digest, manifest_sha256, lambda dest: artifacts.get_file(digest, dest)
        )

    def open_with(
        self, digest: str, manifest_sha256: str | None, fetch: Callable[[Path], None]
    ) -> tuple[Path, Manifest]:
        """Like ``open``, with ``fetch(dest)`` writing the package zip to ``dest`` on a miss."""
        target = self.root / digest
        if target.is_dir():
            try:
                return target, verify_folder(target, manifest_sha256)
            except IntegrityError as error:
                aside = target.with_name(f".corrupt-{digest}-{uuid.uuid4().hex[:8]}")
                log.warning(
                    "cached model package %s failed its check (%s); fetching it again "
                    "(the altered copy is kept at %s)",
                    digest[:12],
                    error,
                    aside,
                )
                os.replace(target, aside)
        self.root.mkdir(parents=True, exist_ok=True)
        work = self.root / f".tmp-{digest[:12]}-{uuid.uuid4().hex}"
        work.mkdir()
        try:
            archive = work / "package.zip"
            fetch(archive)  # the artifact store verifies the zip's sha256 before handing it over
            unpacked = work / "package"
            unpacked.mkdir()
            unpack(archive, unpacked)
            manifest = verify_folder(unpacked, manifest_sha256)
            try:
                os.replace(unpacked, target)
            except OSError:
                if not target.is_dir():  # pragma: no cover - a real filesystem error
                    raise
                # Another process finished first; its copy is as good as ours, once checked.
                manifest = verify_folder(target, manifest_sha256)
            return target, manifest
        finally:
            shutil.rmtree(work, ignore_errors=True)
