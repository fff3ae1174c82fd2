"""The interface every artifact store implements, and the two records it hands back."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = ["ArtifactStore", "Blob", "BlobInfo"]


@dataclass(frozen=True)
class Blob:
    """Bytes stored under their sha256: ``digest`` is 64 lowercase hex characters."""

    digest: str
    size: int


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob as a listing sees it; ``modified`` is tz-aware UTC, or None if unknown."""

    digest: str
    size: int
    modified: datetime | None


class ArtifactStore(Protocol):
    """A content-addressed blob store: bytes go in, their sha256 digest comes out.

    Putting the same bytes twice stores them once. Writes are atomic: a blob is either
    fully there or not there at all. Reads verify the bytes against their digest and raise
    :class:`~mloop.errors.IntegrityError` when they differ. Every ``digest`` argument must be
    64 lowercase hex characters (:class:`~mloop.errors.InvalidInputError` otherwise).

    >>> store = open_artifact_store("/tmp/mloop-artifacts")  # doctest: +SKIP
    >>> blob = store.put_bytes(b"hello")                       # doctest: +SKIP
    >>> store.get_bytes(blob.digest)                           # doctest: +SKIP
    b'hello'
    """

    uri: str

    def put_file(self, path: str | os.PathLike[str]) -> Blob:
        """Store the file at ``path``, streaming it; return its Blob."""
        ...

    def put_bytes(self, data: bytes) -> Blob:
        """Store ``data``; return its Blob."""
        ...

    def get_bytes(self, digest: str) -> bytes:
        """Return the blob's bytes, verified; NotFoundError if there is none."""
        ...

    def get_file(self, digest: str, dest: str | os.PathLike[str]) -> None:
        """Write the blob to ``dest`` atomically (temp file + rename), verified before renaming."""
        ...

    def exists(self, digest: str) -> bool:
        """Return True if the blob is stored."""
        ...

    def size(self, digest: str) -> int:
        """Return the blob's size in bytes; NotFoundError if there is none."""
        ...

    def delete(self, digest: str) -> bool:
        """Remove the blob; return True if something was deleted."""
        ...

    def iter_blobs(self) -> Iterator[BlobInfo]:
        """Yield every stored blob, ordered by digest."""
        ...
