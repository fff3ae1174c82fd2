"""The artifact store on any fsspec file system: S3, GCS, Azure, ``memory://``, ..."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mloop.artifacts._atomic import download
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

__all__ = ["FsspecArtifactStore"]

SMALL_BLOB = 8 * 1024 * 1024
"""Files up to this size are uploaded in one request; bigger ones are streamed."""

# File systems where one write call makes the whole object appear at once, or not at all
# (an S3 PUT or completed multipart upload, a GCS or Azure upload, a dict entry in memory).
_ATOMIC_WRITE_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})
_MODIFIED_FIELDS = ("LastModified", "last_modified", "mtime", "modified", "updated", "created")


class FsspecArtifactStore:
    """Blobs on an fsspec file system, as ``<url>/sha256/<2 hex>/<62 hex>``.

    Small blobs are written with one atomic object write; big files are streamed to a temp
    key below ``<url>/tmp/`` and moved into place once their sha256 is confirmed. A file is
    hashed before it is uploaded, so storing bytes that are already there costs no upload.
    Every read checks the sha256 again.

    >>> store = FsspecArtifactStore("s3://my-bucket/mloop")  # doctest: +SKIP
    """

    def __init__(self, url: str, **storage_options: Any) -> None:
        import fsspec  # a core dependency, imported late to keep `import mloop` fast

        fs, root = fsspec.core.url_to_fs(url, **storage_options)
        self._fs: Any = fs
        self._root: str = root.rstrip("/")
        protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
        self._atomic_writes = bool(protocols & _ATOMIC_WRITE_PROTOCOLS)
        self.uri: str = fs.unstrip_protocol(self._root or "/")

    def __repr__(self) -> str:
        return f"FsspecArtifactStore({self.uri!r})"

    def put_file(self, path: str | os.PathLike[str]) -> Blob:
        """Store the file at ``path``; return its Blob. Nothing is uploaded if it is stored."""
        digest, size = _hash_file(path)
        if self._stored_size(digest) == size:
            return Blob(digest=digest, size=size)
        with source_chunks(path) as chunks:
            if size <= SMALL_BLOB:
                data = b"".join(chunks)
                _check_unchanged(path, digest, sha256_bytes(data))
                self._write_bytes(digest, data)
            else:
                self._write_stream(digest, chunks, path)
        return Blob(digest=digest, size=size)

    def put_bytes(self, data: bytes) -> Blob:
        """Store ``data``; return its Blob. Bytes already stored are not uploaded again."""
        digest = sha256_bytes(data)
        if self._stored_size(digest) != len(data):
            self._write_bytes(digest, data)
        return Blob(digest=digest, size=len(data))

    def get_bytes(self, digest: str) -> bytes:
        """Return the blob's bytes after checking their sha256."""
        key = self._key(digest)
        with self._reading(digest):
            data: bytes = self._fs.cat_file(key)
        if (actual := sha256_bytes(data)) != digest:
            raise IntegrityError(
                f"blob {digest} in {self.uri} has sha256 {actual}: the stored bytes are corrupt"
            )
        return data

    def get_file(self, digest: str, dest: str | os.PathLike[str]) -> None:
        """Copy the blob to ``dest`` through a temp file, renamed only once the sha256 matches."""
        key = self._key(digest)
        with self._reading(digest), self._fs.open(key, "rb") as blob:
            download(iter_chunks(blob), Path(dest), digest)

    def exists(self, digest: str) -> bool:
        """Return True if the blob is stored."""
        return self._stored_size(digest) is not None

    def size(self, digest: str) -> int:
        """Return the blob's size in bytes."""
        found = self._stored_size(digest)
        if found is None:
            raise NotFoundError(f"no blob {digest} in the artifact store {self.uri}")
        return found

    def delete(self, digest: str) -> bool:
        """Remove the blob; return True if there was one."""
        if self._stored_size(digest) is None:  # S3 deletes a missing key without complaint
            return False
        with translate_oserrors(f"delete blob {digest}", self.uri):
            try:
                self._fs.rm_file(self._key(digest))
            except FileNotFoundError:
                return False
        return True

    def iter_blobs(self) -> Iterator[BlobInfo]:
        """Yield every stored blob, ordered by digest; stray objects are skipped."""
        base = f"{self._root}/sha256"
        with translate_oserrors("list blobs", self.uri):
            try:
                found: Mapping[str, Mapping[str, Any]] = self._fs.find(base, detail=True)
            except FileNotFoundError:
                found = {}
            finally:
                self._fs.invalidate_cache(base)
        for name in sorted(found):
            info = found[name]
            digest = digest_from_key(name[len(self._root) :].lstrip("/"))
            if digest is not None and info.get("type", "file") == "file":
                yield BlobInfo(digest=digest, size=int(info["size"]), modified=_modified(info))

    def _key(self, digest: str) -> str:
        return f"{self._root}/{blob_key(check_digest(digest))}"

    def _stored_size(self, digest: str) -> int | None:
        key = self._key(digest)
        self._fs.invalidate_cache(key)  # another process may have written or deleted it
        with translate_oserrors(f"look up blob {digest}", self.uri):
            try:
                info = self._fs.info(key)
            except FileNotFoundError:
                return None
        return int(info["size"]) if info.get("type", "file") == "file" else None

    def _write_bytes(self, digest: str, data: bytes) -> None:
        key = self._key(digest)
        with translate_oserrors(f"store blob {digest}", self.uri):
            if self._atomic_writes:
                self._fs.pipe_file(key, data)
            else:
                self._through_temp(key, lambda temp: self._fs.pipe_file(temp, data))

    def _write_stream(
        self, digest: str, chunks: Iterable[bytes], path: str | os.PathLike[str]
    ) -> None:
        def upload(temp: str) -> None:
            hashed = hashlib.sha256()
            with self._fs.open(temp, "wb") as out:
                for chunk in chunks:
                    hashed.update(chunk)
                    out.write(chunk)
            _check_unchanged(path, digest, hashed.hexdigest())

        with translate_oserrors(f"store blob {digest}", self.uri):
            self._through_temp(self._key(digest), upload)

    def _through_temp(self, key: str, write: Callable[[str], None]) -> None:
        """Call ``write(temp_key)``, then move the temp object to ``key``; no temp is left."""
        temp_folder = f"{self._root}/tmp"  # noqa: S108 - a folder below the store's root
        temp = f"{temp_folder}/{os.urandom(16).hex()}"
        if not self._atomic_writes:  # a file system with real folders (sftp, file, ...)
            self._fs.makedirs(temp_folder, exist_ok=True)
            self._fs.makedirs(key.rsplit("/", 1)[0], exist_ok=True)
        try:
            write(temp)
            self._fs.mv(temp, key)
        except BaseException:
            with contextlib.suppress(OSError):
                self._fs.rm_file(temp)
            raise

    @contextlib.contextmanager
    def _reading(self, digest: str) -> Iterator[None]:
        key = self._key(digest)
        self._fs.invalidate_cache(key)
        with translate_oserrors(f"read blob {digest}", self.uri):
            try:
                yield
            except FileNotFoundError:
                raise NotFoundError(f"no blob {digest} in the artifact store {self.uri}") from None


def _hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    hashed = hashlib.sha256()
    size = 0
    with source_chunks(path) as chunks:
        for chunk in chunks:
            hashed.update(chunk)
            size += len(chunk)
    return hashed.hexdigest(), size


def _check_unchanged(path: str | os.PathLike[str], digest: str, actual: str) -> None:
    if actual != digest:
        raise IntegrityError(
            f"{str(path)!r} changed while it was being stored (sha256 {digest}, then {actual}); "
            "nothing was stored, try again once it is no longer being written"
        )


def _modified(info: Mapping[str, Any]) -> datetime | None:
    """Return when an object was last written, from whichever field its file system fills."""
    for field in _MODIFIED_FIELDS:
        value = info.get(field)
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return _modified({field: datetime.fromisoformat(value)})
    return None
