"""Opening the artifact store a URI names: a local folder, or any fsspec URL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mloop.artifacts._fsspec import FsspecArtifactStore
from mloop.artifacts._local import LocalArtifactStore
from mloop.artifacts._protocol import ArtifactStore
from mloop.errors import ArtifactError, InvalidInputError, MissingExtraError

__all__ = ["open_artifact_store"]

# Protocols whose fsspec implementation ships in one of mloop's extras.
_EXTRAS = {
    "s3": ("s3fs", "s3", "S3 artifact storage"),
    "s3a": ("s3fs", "s3", "S3 artifact storage"),
}


def open_artifact_store(uri: str | os.PathLike[str], **storage_options: Any) -> ArtifactStore:
    """Return the artifact store at ``uri``: a folder path, ``file://`` URL or fsspec URL.

    A plain path (``~`` is expanded) or a ``file://`` URL opens a :class:`LocalArtifactStore`;
    any other URL (``s3://bucket/prefix``, ``gcs://...``, ``memory://...``) opens an
    :class:`FsspecArtifactStore`, with ``storage_options`` passed on to fsspec
    (e.g. ``client_kwargs={"endpoint_url": ...}`` for an S3-compatible server).

    >>> store = open_artifact_store("s3://my-bucket/mloop")  # doctest: +SKIP
    """
    if not isinstance(uri, str | os.PathLike):
        raise InvalidInputError(f"artifact store URI must be a str or path, not {uri!r}")
    text = os.fspath(uri)
    if not text:
        raise InvalidInputError(f"artifact store URI must be a non-empty str, not {uri!r}")
    if isinstance(uri, os.PathLike) or "://" not in text:
        return _local(Path(text).expanduser(), storage_options)
    if text.startswith("file://"):
        return _local(_file_url_path(text), storage_options)
    _require_extras(text)
    try:
        return FsspecArtifactStore(text, **storage_options)
    except ImportError as exc:
        raise ArtifactError(f"cannot open the artifact store {text!r}: {exc}") from exc
    except ValueError as exc:  # fsspec: "Protocol not known"
        raise InvalidInputError(f"cannot open the artifact store {text!r}: {exc}") from exc


def _local(root: Path, storage_options: dict[str, Any]) -> LocalArtifactStore:
    if storage_options:
        raise InvalidInputError(
            f"storage options {sorted(storage_options)} apply only to fsspec URLs such as "
            f"s3://..., not to the local folder {str(root)!r}"
        )
    return LocalArtifactStore(root)


def _file_url_path(url: str) -> Path:
    # Imported here: urllib.request pulls in http.client and ssl, and only file URLs need it.
    from urllib.request import url2pathname

    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise InvalidInputError(
            f"cannot use {url!r} as an artifact store: a file URL must name a local folder, "
            "like file:///srv/mloop/artifacts"
        )
    return Path(url2pathname(parts.path))


def _require_extras(url: str) -> None:
    """Raise MissingExtraError if the URL needs a package from an extra that is not installed."""
    for part in url.split("::"):
        needed = _EXTRAS.get(part.split("://", 1)[0].lower())
        if needed is None:
            continue
        package, extra, feature = needed
        try:
            __import__(package)
        except ImportError:
            raise MissingExtraError(package, extra, feature) from None
