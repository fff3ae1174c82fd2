"""The artifact store in a local folder, the default: plain OS calls, no fsspec."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from mloop.artifacts._atomic import download, publish, write_temp
from mloop.artifacts._digest import (
    blob_key,
    check_digest,
    digest_from_key,
    iter_chunks,
    sha256_bytes,
)
from mloop.artifacts._oserrors import translate_oserrors
from mloop.artifacts._protocol import Blob, BlobInfo
from mloop.artifacts._source import source_chunks
from mloop.errors import IntegrityError, NotFoundError

__all__ = ["LocalArtifactStore"]

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


class LocalArtifactStore:
    """Blobs in a local folder, as ``<root>/sha256/<2 hex>/<62 hex>``.

    A put streams into a temp file in ``<root>/tmp/`` while hashing, fsyncs it and renames it
    into place, so readers never see half a blob. Reads refuse a blob file that is a symlink or
    lies outside the root (:class:`~mloop.errors.IntegrityError`): only mloop writes there.

    >>> store = LocalArtifactStore(".mloop/artifacts")  # doctest: +SKIP
    >>> store.put_bytes(b"hello").digest                # doctest: +SKIP
    '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self.uri = self.root.as_uri()

    def __repr__(self) -> str:
        return f"LocalArtifactStore({str(self.root)!r})"

    def put_file(self, path: str | os.PathLike[str]) -> Blob:
        """Store the file at ``path``, hashing it while it is copied; return its Blob."""
        with source_chunks(path) as chunks:
            return self._put(chunks)

    def put_bytes(self, data: bytes) -> Blob:
        """Store ``data``; return its Blob. Bytes already stored are not written again."""
        digest = sha256_bytes(data)
        found = self._lstat(digest)
        if found is not None and stat.S_ISREG(found.st_mode) and found.st_size == len(data):
            return Blob(digest=digest, size=len(data))
        return self._put([data])

    def get_bytes(self, digest: str) -> bytes:
        """Return the blob's bytes after checking their sha256."""
        with translate_oserrors(f"read blob {digest}", self.uri), self._open_blob(digest) as blob:
            data = blob.read()
        if (actual := sha256_bytes(data)) != digest:
            raise IntegrityError(
                f"blob {digest} in {self.uri} has sha256 {actual}: the stored bytes are corrupt"
            )
        return data

    def get_file(self, digest: str, dest: str | os.PathLike[str]) -> None:
        """Copy the blob to ``dest`` through a temp file, renamed only once the sha256 matches."""
        with translate_oserrors(f"copy blob {digest}", self.uri), self._open_blob(digest) as blob:
            download(iter_chunks(blob), Path(dest), digest)

    def exists(self, digest: str) -> bool:
        """Return True if the blob is stored (a symlink in its place does not count)."""
        found = self._lstat(digest)
        return found is not None and stat.S_ISREG(found.st_mode)

    def size(self, digest: str) -> int:
        """Return the blob's size in bytes."""
        found = self._lstat(digest)
        if found is None:
            raise NotFoundError(f"no blob {digest} in the artifact store {self.uri}")
        if not stat.S_ISREG(found.st_mode):
            raise self._tampered(f"blob {digest}", "is a symlink or not a regular file")
        return found.st_size

    def delete(self, digest: str) -> bool:
        """Remove the blob; return True if there was one."""
        path = self._path(digest)
        with translate_oserrors(f"delete blob {digest}", self.uri):
            try:
                path.unlink()
            except FileNotFoundError:
                return False
        return True

    def iter_blobs(self) -> Iterator[BlobInfo]:
        """Yield every stored blob, ordered by digest; stray files are skipped."""
        base = self.root / "sha256"
        if base.is_symlink():
            raise self._tampered("the folder sha256/", "is a symlink")
        with translate_oserrors("list blobs", self.uri):
            for folder in _sorted_entries(base):
                if folder.is_dir(follow_symlinks=False):
                    yield from self._infos(folder)

    def _infos(self, folder: os.DirEntry[str]) -> Iterator[BlobInfo]:
        for entry in _sorted_entries(Path(folder.path)):
            digest = digest_from_key(f"sha256/{folder.name}/{entry.name}")
            if digest is None or not entry.is_file(follow_symlinks=False):
                continue
            try:
                found = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # deleted while listing
                continue
            modified = datetime.fromtimestamp(found.st_mtime, UTC)
            yield BlobInfo(digest=digest, size=found.st_size, modified=modified)

    def _put(self, chunks: Iterable[bytes]) -> Blob:
        temp_folder = self.root / "tmp"
        with translate_oserrors("store a blob", self.uri):
            temp_folder.mkdir(parents=True, exist_ok=True)
            temp, digest, size = write_temp(chunks, temp_folder)
            found = self._lstat(digest)
            if found is not None and stat.S_ISREG(found.st_mode) and found.st_size == size:
                temp.unlink()
            else:  # missing, or damaged (a symlink, truncated) and now replaced by a good copy
                dest = self._path(digest)
                dest.parent.mkdir(parents=True, exist_ok=True)
                publish(temp, dest)
        return Blob(digest=digest, size=size)

    def _open_blob(self, digest: str) -> BinaryIO:
        path = self._path(digest)
        if path.is_symlink():  # O_NOFOLLOW below closes the race where the OS has it
            raise self._tampered(f"blob {digest}", "is a symlink")
        try:
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            raise NotFoundError(f"no blob {digest} in the artifact store {self.uri}") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise self._tampered(f"blob {digest}", "is a symlink") from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise self._tampered(f"blob {digest}", "is not a regular file")
        return os.fdopen(fd, "rb")

    def _lstat(self, digest: str) -> os.stat_result | None:
        try:
            return self._path(digest).lstat()
        except FileNotFoundError:
            return None

    def _path(self, digest: str) -> Path:
        """Return the blob's path, after checking no folder on the way is a symlink."""
        key = blob_key(check_digest(digest))
        path = self.root / key
        expected = self.root.resolve() / key
        if path.parent.resolve() != expected.parent:
            raise self._tampered(f"blob {digest}", f"leads outside, to {path.parent.resolve()}")
        return path

    def _tampered(self, what: str, problem: str) -> IntegrityError:
        return IntegrityError(
            f"{what} in the artifact store {self.uri} {problem}: the store was changed by "
            "something other than mloop, so mloop will not read it; restore it from a backup "
            "or delete the blob and store the file again"
        )


def _sorted_entries(folder: Path) -> list[os.DirEntry[str]]:
    """Return the entries of ``folder`` sorted by name, or none if it does not exist."""
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except FileNotFoundError:
        return []
