"""Content-addressed artifact storage: bytes stored once under their sha256, read back verified.

The default store is a local folder; any fsspec URL (``s3://bucket/prefix``) works for teams.
:func:`safe_relpath`, :func:`safe_join` and :func:`walk_files` check the names users give
artifacts, so that logging and downloading can never reach outside their folder.

>>> from mloop.artifacts import open_artifact_store
>>> store = open_artifact_store(".mloop/artifacts")  # doctest: +SKIP
>>> blob = store.put_bytes(b"hello")                   # doctest: +SKIP
>>> store.get_bytes(blob.digest)                       # doctest: +SKIP
b'hello'
"""

from mloop.artifacts._digest import sha256_bytes, sha256_file
from mloop.artifacts._fsspec import FsspecArtifactStore
from mloop.artifacts._local import LocalArtifactStore
from mloop.artifacts._names import safe_join, safe_relpath
from mloop.artifacts._open import open_artifact_store
from mloop.artifacts._protocol import ArtifactStore, Blob, BlobInfo
from mloop.artifacts._walk import walk_files

__all__ = [
    "ArtifactStore",
    "Blob",
    "BlobInfo",
    "FsspecArtifactStore",
    "LocalArtifactStore",
    "open_artifact_store",
    "safe_join",
    "safe_relpath",
    "sha256_bytes",
    "sha256_file",
    "walk_files",
]
