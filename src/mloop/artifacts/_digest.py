"""sha256 digests: computing them, checking them, and where a digest lives in a store."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from typing import BinaryIO

from mloop.errors import InvalidInputError

__all__ = [
    "CHUNK_SIZE",
    "blob_key",
    "check_digest",
    "digest_from_key",
    "iter_chunks",
    "sha256_bytes",
    "sha256_file",
]

CHUNK_SIZE = 1024 * 1024
"""Bytes read or written at a time when streaming (1 MiB)."""

_DIGEST = re.compile(r"[0-9a-f]{64}")
_PREFIX = "sha256"


def sha256_bytes(data: bytes) -> str:
    """Return the sha256 of ``data`` as 64 lowercase hex characters."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the sha256 of the file at ``path``, reading it 1 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter_chunks(stream):
            digest.update(chunk)
    return digest.hexdigest()


def iter_chunks(stream: BinaryIO) -> Iterator[bytes]:
    """Yield the rest of ``stream`` in chunks of at most :data:`CHUNK_SIZE` bytes."""
    while chunk := stream.read(CHUNK_SIZE):
        yield chunk


def check_digest(digest: object) -> str:
    """Return ``digest`` if it is 64 lowercase hex characters, else raise InvalidInputError.

    Every store method checks its digest argument first, so that a digest can never
    smuggle a path (``../x``) or a URL into a key.
    """
    if isinstance(digest, str) and _DIGEST.fullmatch(digest):
        return digest
    shown = repr(digest) if len(repr(digest)) <= 80 else repr(digest)[:77] + "..."
    raise InvalidInputError(
        f"invalid blob digest {shown}: expected a sha256 as 64 lowercase hex characters"
    )


def blob_key(digest: str) -> str:
    """Return where a blob lives below a store's root: ``sha256/<2 hex>/<62 hex>``."""
    return f"{_PREFIX}/{digest[:2]}/{digest[2:]}"


def digest_from_key(key: str) -> str | None:
    """Return the digest a ``sha256/<2 hex>/<62 hex>`` key stands for, or None if it is not one."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != _PREFIX or len(parts[1]) != 2:
        return None
    digest = parts[1] + parts[2]
    return digest if _DIGEST.fullmatch(digest) else None
