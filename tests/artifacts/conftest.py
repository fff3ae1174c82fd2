"""Artifact store backends for the shared suite: a local folder, memory://, and S3 on moto.

Each backend is a real store plus ways to reach behind its back: ``write_raw`` puts bytes at a
key below the store's root (to tamper with a blob or leave a stray object), ``raw_keys`` lists
everything below the root (to check that nothing half-written is left over), and ``reopen``
opens the store again from its ``uri``. Adding a backend means adding one factory to
``BACKENDS``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mloop.artifacts import ArtifactStore, FsspecArtifactStore, open_artifact_store


@dataclass
class Backend:
    """A store under test and raw access to what it keeps."""

    name: str
    store: ArtifactStore
    write_raw: Callable[[str, bytes], None]
    keys: Callable[[], list[str]]
    options: dict[str, Any] = field(default_factory=dict)


def _local(tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    root = tmp_path / "store"
    return Backend("local", open_artifact_store(root), *_raw_folder_access(root))


def _fsspec_file(tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    # fsspec's local file system has no atomic single write, so this covers the temp-key path;
    # its uri (file://...) reopens as a LocalArtifactStore: the two share one layout.
    root = tmp_path / "store"
    store = FsspecArtifactStore(root.as_uri())
    return Backend("fsspec-file", store, *_raw_folder_access(root))


def _raw_folder_access(root: Path) -> tuple[Callable[[str, bytes], None], Callable[[], list[str]]]:
    def write_raw(key: str, data: bytes) -> None:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def keys() -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir())

    return write_raw, keys


def _memory(tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    import fsspec

    fs = fsspec.filesystem("memory")
    root = f"/mloop-test-{uuid.uuid4().hex}"
    request.addfinalizer(lambda: fs.rm(root, recursive=True) if fs.exists(root) else None)

    def write_raw(key: str, data: bytes) -> None:
        fs.pipe_file(f"{root}/{key}", data)

    def keys() -> list[str]:
        return sorted(name.removeprefix(f"{root}/") for name in fs.find(root))

    return Backend("memory", open_artifact_store(f"memory://{root}"), write_raw, keys)


def _s3(tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    endpoint = request.getfixturevalue("s3_endpoint")
    client = _boto3_client(endpoint)
    bucket = f"mloop-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    prefix = "team/artifacts"
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        # S3's smallest part size, so that the big-file test makes a real multipart upload
        "default_block_size": 5 * 1024 * 1024,
    }

    def write_raw(key: str, data: bytes) -> None:
        client.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=data)

    def keys() -> list[str]:
        listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        # An unfinished multipart upload is garbage too, even though it is not an object.
        return sorted(
            [item["Key"].removeprefix(f"{prefix}/") for item in listed]
            + [f"unfinished upload of {item['Key']}" for item in uploads]
        )

    store = open_artifact_store(f"s3://{bucket}/{prefix}", **options)
    return Backend("s3", store, write_raw, keys, options)


BACKENDS: dict[str, Callable[[Path, pytest.FixtureRequest], Backend]] = {
    "local": _local,
    "fsspec-file": _fsspec_file,
    "memory": _memory,
    "s3": _s3,
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Every artifact store backend in turn, empty."""
    return BACKENDS[request.param](tmp_path, request)


@pytest.fixture
def store(backend: Backend) -> ArtifactStore:
    """The store under test."""
    return backend.store


@pytest.fixture
def write_raw(backend: Backend) -> Callable[[str, bytes], None]:
    """Write bytes at a key below the store's root, behind the store's back."""
    return backend.write_raw


@pytest.fixture
def raw_keys(backend: Backend) -> Callable[[], list[str]]:
    """List every key below the store's root (and, for S3, unfinished uploads)."""
    return backend.keys


@pytest.fixture
def reopen(backend: Backend) -> Callable[[], ArtifactStore]:
    """Open the store again from its ``uri`` (plus the storage options it needs)."""
    return lambda: open_artifact_store(backend.store.uri, **backend.options)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API (moto in server mode) on a free loopback port, for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _boto3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


BIG_FILE_MIB = 24


@pytest.fixture(scope="session")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24 MiB file of random bytes: 24 reads, 3 x the one-request upload limit, 5 S3 parts."""
    path = tmp_path_factory.mktemp("big") / "big.bin"
    with path.open("wb") as out:
        for _ in range(BIG_FILE_MIB):
            out.write(os.urandom(1024 * 1024))
    return path
