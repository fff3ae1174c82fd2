"""One suite for every artifact store backend (local folder, memory://, S3 on moto)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mloop.artifacts import ArtifactStore, Blob, sha256_bytes, sha256_file
from mloop.errors import ArtifactError, IntegrityError, InvalidInputError, NotFoundError

WriteRaw = Callable[[str, bytes], None]
RawKeys = Callable[[], list[str]]


def key_of(digest: str) -> str:
    """The documented layout: ``sha256/<first 2 hex>/<remaining 62 hex>``."""
    return f"sha256/{digest[:2]}/{digest[2:]}"


def test_put_bytes_returns_the_sha256_and_reads_back(store: ArtifactStore) -> None:
    blob = store.put_bytes(b"hello")

    assert blob == Blob(digest=hashlib.sha256(b"hello").hexdigest(), size=5)
    assert store.get_bytes(blob.digest) == b"hello"
    assert store.exists(blob.digest)
    assert store.size(blob.digest) == 5


def test_blobs_are_laid_out_by_digest(store: ArtifactStore, raw_keys: RawKeys) -> None:
    blob = store.put_bytes(b"layout")

    assert raw_keys() == [key_of(blob.digest)]


def test_empty_bytes_are_a_blob_too(store: ArtifactStore) -> None:
    blob = store.put_bytes(b"")

    assert blob.size == 0
    assert store.get_bytes(blob.digest) == b""


def test_put_file_and_get_file_round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights" * 1000)

    blob = store.put_file(source)
    dest = tmp_path / "download" / "nested" / "model.bin"
    store.get_file(blob.digest, dest)

    assert blob == Blob(digest=sha256_file(source), size=7000)
    assert dest.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model.bin"]  # no temp left


def test_get_file_replaces_an_existing_file(store: ArtifactStore, tmp_path: Path) -> None:
    blob = store.put_bytes(b"new")
    dest = tmp_path / "out.txt"
    dest.write_bytes(b"old and longer")

    store.get_file(blob.digest, os.fspath(dest))

    assert dest.read_bytes() == b"new"


def test_get_file_refuses_a_folder_as_destination(store: ArtifactStore, tmp_path: Path) -> None:
    blob = store.put_bytes(b"data")
    (tmp_path / "folder").mkdir()

    with pytest.raises(InvalidInputError, match="folder"):
        store.get_file(blob.digest, tmp_path / "folder")


def test_same_bytes_are_stored_once(
    store: ArtifactStore, tmp_path: Path, raw_keys: RawKeys
) -> None:
    source = tmp_path / "a.txt"
    source.write_bytes(b"same")

    blobs = {store.put_bytes(b"same"), store.put_file(source), store.put_bytes(b"same")}

    assert blobs == {Blob(digest=sha256_bytes(b"same"), size=4)}
    assert [info.digest for info in store.iter_blobs()] == [sha256_bytes(b"same")]
    assert raw_keys() == [key_of(sha256_bytes(b"same"))]


def test_iter_blobs_lists_exactly_what_is_stored(store: ArtifactStore, write_raw: WriteRaw) -> None:
    assert list(store.iter_blobs()) == []
    before = datetime.now(UTC) - timedelta(minutes=5)
    blobs = [store.put_bytes(data) for data in (b"one", b"two", b"three")]
    write_raw("sha256/zz/not-a-blob", b"stray")  # strays are not blobs
    write_raw("sha256/readme.txt", b"stray")
    write_raw(key_of("ab" * 32)[:-1], b"one hex digit short")

    infos = list(store.iter_blobs())

    assert [(i.digest, i.size) for i in infos] == sorted((b.digest, b.size) for b in blobs)
    for info in infos:
        assert info.modified is not None
        assert info.modified.utcoffset() == timedelta(0)
        assert before < info.modified < datetime.now(UTC) + timedelta(minutes=5)


def test_delete_removes_one_blob(store: ArtifactStore) -> None:
    keep, gone = store.put_bytes(b"keep"), store.put_bytes(b"gone")

    assert store.delete(gone.digest) is True
    assert store.delete(gone.digest) is False
    assert not store.exists(gone.digest)
    assert [info.digest for info in store.iter_blobs()] == [keep.digest]
    assert store.put_bytes(b"gone") == gone
    assert store.get_bytes(gone.digest) == b"gone"


def test_a_missing_blob_is_not_found(store: ArtifactStore, tmp_path: Path) -> None:
    digest = sha256_bytes(b"never stored")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    dest = downloads / "out.bin"

    assert not store.exists(digest)
    assert store.delete(digest) is False
    with pytest.raises(NotFoundError, match=digest):
        store.get_bytes(digest)
    with pytest.raises(NotFoundError, match=digest):
        store.size(digest)
    with pytest.raises(NotFoundError, match=digest):
        store.get_file(digest, dest)
    assert list(downloads.iterdir()) == []


BAD_DIGESTS = [
    "",
    "abc",
    "A" * 64,
    "g" * 64,
    "a" * 63,
    "a" * 65,
    "a" * 64 + "\n",
    "../" + "a" * 61,
    "aa/" + "a" * 61,
    "sha256:" + "a" * 64,
    123,
    None,
]


def test_a_digest_must_be_64_lowercase_hex(store: ArtifactStore, tmp_path: Path) -> None:
    operations: dict[str, Callable[[Any], object]] = {
        "get_bytes": store.get_bytes,
        "get_file": lambda digest: store.get_file(digest, tmp_path / "x"),
        "exists": store.exists,
        "size": store.size,
        "delete": store.delete,
    }
    for digest in BAD_DIGESTS:
        for name, operation in operations.items():
            with pytest.raises(InvalidInputError, match="invalid blob digest") as caught:
                operation(digest)
            assert repr(digest)[:20] in str(caught.value), name


def test_tampered_bytes_fail_verification(
    store: ArtifactStore, write_raw: WriteRaw, tmp_path: Path
) -> None:
    blob = store.put_bytes(b"the real model")
    write_raw(key_of(blob.digest), b"a fake model!!")  # same size, so only the hash can tell
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    dest = downloads / "model.bin"
    dest.write_bytes(b"previous download")

    with pytest.raises(IntegrityError, match=blob.digest):
        store.get_bytes(blob.digest)
    with pytest.raises(IntegrityError, match=blob.digest):
        store.get_file(blob.digest, dest)
    assert dest.read_bytes() == b"previous download"
    assert [p.name for p in downloads.iterdir()] == ["model.bin"]  # no temp file left


def test_put_repairs_a_truncated_blob(store: ArtifactStore, write_raw: WriteRaw) -> None:
    blob = store.put_bytes(b"complete bytes")
    write_raw(key_of(blob.digest), b"compl")

    assert store.put_bytes(b"complete bytes") == blob
    assert store.get_bytes(blob.digest) == b"complete bytes"


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_a_put_failing_part_way_leaves_nothing(store: ArtifactStore, raw_keys: RawKeys) -> None:
    kept = store.put_bytes(b"already there")
    # A real file that opens fine and fails on the first read (EIO): address 0 is unmapped.
    with pytest.raises(ArtifactError, match="/proc/self/mem"):
        store.put_file("/proc/self/mem")

    assert raw_keys() == [key_of(kept.digest)]
    assert [info.digest for info in store.iter_blobs()] == [kept.digest]


def test_put_file_refuses_what_is_not_a_regular_file(
    store: ArtifactStore, tmp_path: Path, raw_keys: RawKeys
) -> None:
    with pytest.raises(NotFoundError, match=r"missing\.bin"):
        store.put_file(tmp_path / "missing.bin")
    with pytest.raises(InvalidInputError, match="folder"):
        store.put_file(tmp_path)
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe")
        with pytest.raises(InvalidInputError, match="not a regular file"):
            store.put_file(tmp_path / "pipe")
    assert raw_keys() == []


def test_concurrent_puts_of_the_same_bytes(
    store: ArtifactStore, tmp_path: Path, raw_keys: RawKeys
) -> None:
    data = os.urandom(300_000)
    source = tmp_path / "same.bin"
    source.write_bytes(data)
    results: list[Blob] = []
    barrier = threading.Barrier(8)

    def put(index: int) -> None:
        barrier.wait()
        results.append(store.put_file(source) if index % 2 else store.put_bytes(data))

    threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert set(results) == {Blob(digest=sha256_bytes(data), size=len(data))}
    assert len(results) == 8
    assert raw_keys() == [key_of(sha256_bytes(data))]
    assert store.get_bytes(sha256_bytes(data)) == data


def test_a_big_file_is_streamed_in_and_out(
    store: ArtifactStore, big_file: Path, tmp_path: Path, raw_keys: RawKeys
) -> None:
    blob = store.put_file(big_file)
    dest = tmp_path / "copy.bin"
    store.get_file(blob.digest, dest)

    assert blob == Blob(digest=sha256_file(big_file), size=big_file.stat().st_size)
    assert store.size(blob.digest) == blob.size
    assert sha256_file(dest) == blob.digest
    assert store.put_file(big_file) == blob  # already there: no second upload
    assert raw_keys() == [key_of(blob.digest)]


def test_the_uri_opens_the_same_store(
    store: ArtifactStore, reopen: Callable[[], ArtifactStore]
) -> None:
    blob = store.put_bytes(b"shared")

    again = reopen()

    assert again.uri == store.uri
    assert again.get_bytes(blob.digest) == b"shared"
