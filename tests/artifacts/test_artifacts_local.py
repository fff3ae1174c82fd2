"""What only the local folder store does: its files on disk, and refusing a tampered folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mloop.artifacts import LocalArtifactStore, open_artifact_store, sha256_bytes
from mloop.errors import IntegrityError

needs_symlinks = pytest.mark.skipif(os.name == "nt", reason="needs POSIX symlinks")


@pytest.fixture
def local(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "store")


def test_blobs_are_plain_files_and_no_temp_file_stays(local: LocalArtifactStore) -> None:
    blob = local.put_bytes(b"on disk")

    path = local.root / "sha256" / blob.digest[:2] / blob.digest[2:]
    assert path.read_bytes() == b"on disk"
    assert list((local.root / "tmp").iterdir()) == []
    assert local.uri == local.root.as_uri()


def test_nothing_is_created_until_the_first_put(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "lazy")

    assert list(store.iter_blobs()) == []
    assert not store.exists(sha256_bytes(b"x"))
    assert not (tmp_path / "lazy").exists()


@needs_symlinks
def test_a_blob_replaced_by_a_symlink_is_not_read(
    local: LocalArtifactStore, tmp_path: Path
) -> None:
    blob = local.put_bytes(b"model")
    path = local.root / "sha256" / blob.digest[:2] / blob.digest[2:]
    secret = tmp_path / "secret"
    secret.write_bytes(b"model")  # even with the right bytes: the store must not follow links
    path.unlink()
    path.symlink_to(secret)

    with pytest.raises(IntegrityError, match="symlink"):
        local.get_bytes(blob.digest)
    with pytest.raises(IntegrityError, match="symlink"):
        local.get_file(blob.digest, tmp_path / "out")
    with pytest.raises(IntegrityError, match="symlink"):
        local.size(blob.digest)
    assert not local.exists(blob.digest)
    assert list(local.iter_blobs()) == []

    assert local.put_bytes(b"model") == blob  # a put replaces the link with the real blob
    assert not path.is_symlink()
    assert local.get_bytes(blob.digest) == b"model"
    assert secret.read_bytes() == b"model"


@needs_symlinks
def test_a_shard_folder_leading_outside_is_not_used(
    local: LocalArtifactStore, tmp_path: Path
) -> None:
    digest = sha256_bytes(b"payload")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / digest[2:]).write_bytes(b"payload")
    (local.root / "sha256").mkdir(parents=True)
    (local.root / "sha256" / digest[:2]).symlink_to(elsewhere)

    for read in (local.get_bytes, local.size, local.exists, local.delete):
        with pytest.raises(IntegrityError, match="outside"):
            read(digest)
    with pytest.raises(IntegrityError, match="outside"):
        local.put_bytes(b"payload")
    assert list(elsewhere.iterdir()) == [elsewhere / digest[2:]]  # nothing written there


@needs_symlinks
def test_a_symlinked_blob_folder_is_not_listed(local: LocalArtifactStore, tmp_path: Path) -> None:
    local.root.mkdir()
    (local.root / "sha256").symlink_to(tmp_path)

    with pytest.raises(IntegrityError, match="symlink"):
        list(local.iter_blobs())


def test_paths_and_file_urls_open_a_local_store(tmp_path: Path) -> None:
    root = tmp_path / "my store"

    for uri in (root, os.fspath(root), root.as_uri(), f"file://localhost{root.as_posix()}"):
        store = open_artifact_store(uri)
        assert isinstance(store, LocalArtifactStore)
        assert store.root == root


def test_a_home_folder_path_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))

    store = open_artifact_store("~/artifacts")

    assert isinstance(store, LocalArtifactStore)
    assert store.root == tmp_path / "artifacts"
