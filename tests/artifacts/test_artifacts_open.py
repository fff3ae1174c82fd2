"""open_artifact_store picks the backend from the URI, and the package's public face."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import mloop.artifacts
from mloop.artifacts import FsspecArtifactStore, open_artifact_store
from mloop.errors import InvalidInputError, MissingExtraError

DOCS = Path(__file__).parents[2] / "docs" / "artifacts.md"


def test_an_fsspec_url_opens_an_fsspec_store() -> None:
    store = open_artifact_store("memory://mloop-open-test/prefix")

    assert isinstance(store, FsspecArtifactStore)
    assert store.uri == "memory:///mloop-open-test/prefix"


def test_s3_without_s3fs_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # what Python does when it is not installed

    with pytest.raises(MissingExtraError, match=re.escape("pip install 'mloop[s3]'")):
        open_artifact_store("s3://bucket/prefix")
    with pytest.raises(MissingExtraError, match="S3 artifact storage"):
        open_artifact_store("simplecache::s3://bucket/prefix")


@pytest.mark.parametrize(
    ("uri", "options", "message"),
    [
        ("", {}, "non-empty"),
        (42, {}, "must be a str"),
        ("nosuchprotocol://x/y", {}, "nosuchprotocol"),
        ("file://fileserver/share/store", {}, "local folder"),
        ("file:///srv/store?x=1", {}, "local folder"),
        ("/srv/store", {"anon": True}, "only to fsspec URLs"),
    ],
)
def test_unusable_uris_are_refused(uri: object, options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        open_artifact_store(uri, **options)  # type: ignore[arg-type]


def test_importing_the_package_loads_no_fsspec() -> None:
    code = "import sys, mloop.artifacts; print(sorted({'fsspec', 's3fs'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


def test_all_lists_the_public_names_sorted_and_importable() -> None:
    names = mloop.artifacts.__all__

    assert names == sorted(names)
    assert all(getattr(mloop.artifacts, name) is not None for name in names)
    assert {"ArtifactStore", "Blob", "BlobInfo", "open_artifact_store", "safe_relpath",
            "safe_join", "walk_files", "sha256_file", "sha256_bytes"} <= set(names)  # fmt: skip


def test_every_public_name_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")

    missing = [name for name in mloop.artifacts.__all__ if f"`{name}" not in text]
    assert missing == []
