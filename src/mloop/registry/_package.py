"""The model package: a folder with a manifest, the flavor's files and an input example.

::

    mloop-model.json         the manifest: flavor, signature, requirements, lineage, file digests
    model/...                whatever the flavor wrote (model.skops, model.ubj, model.onnx, ...)
    input_example.parquet    the example the signature was inferred from, if one was given

In the registry a package is stored as one deterministic zip (sorted entries, fixed times, no
compression), so the same model saved twice is the same blob, and its sha256 is the digest the
registry records. The manifest's own sha256 is recorded too: a cached, unzipped package is
checked file by file against the manifest, and the manifest against the registry, before any
flavor reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import stat
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from mloop._version import __version__
from mloop.artifacts import safe_join, safe_relpath, sha256_file, walk_files
from mloop.errors import IntegrityError, InvalidValueError
from mloop.registry._signature import Signature

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "Manifest",
    "pack",
    "read_manifest",
    "unpack",
    "verify_folder",
]

MANIFEST = "mloop-model.json"
FLAVOR_DIR = "model"
INPUT_EXAMPLE = "input_example.parquet"
FORMAT_VERSION = 1
MAX_PACKAGE_BYTES = 20 * 1024**3  # a zip claiming more than this is refused before extraction
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Manifest:
    """What a package says about itself."""

    flavor: str
    flavor_data: dict[str, Any]
    signature: Signature | None
    requirements: dict[str, str]  # distribution -> version used to save (incl. "python")
    files: dict[str, str]  # relative path -> sha256, every file but the manifest
    created: str  # ISO-8601 UTC
    run_id: str | None = None
    datasets: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    input_example: str | None = None
    format: int = FORMAT_VERSION

    def to_json(self) -> bytes:
        """Canonical JSON: sorted keys, so equal manifests are equal bytes."""
        body = {
            "format": self.format,
            "flavor": self.flavor,
            "flavor_data": self.flavor_data,
            "signature": None if self.signature is None else self.signature.to_dict(),
            "requirements": self.requirements,
            "files": self.files,
            "created": self.created,
            "run_id": self.run_id,
            "datasets": self.datasets,
            "metadata": self.metadata,
            "input_example": self.input_example,
        }
        return json.dumps(body, sort_keys=True, indent=1, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        try:
            body = json.loads(data)
            if not isinstance(body, dict):
                raise TypeError("the manifest is not a JSON object")
            if body.get("format") != FORMAT_VERSION:
                raise InvalidValueError(
                    f"model package format {body.get('format')!r} is not one this mloop reads "
                    f"(it reads {FORMAT_VERSION}); upgrade mloop"
                )
            signature = body["signature"]
            return cls(
                flavor=str(body["flavor"]),
                flavor_data=dict(body["flavor_data"]),
                signature=None if signature is None else Signature.from_dict(signature),
                requirements={str(k): str(v) for k, v in body["requirements"].items()},
                files={str(k): str(v) for k, v in body["files"].items()},
                created=str(body["created"]),
                run_id=body.get("run_id"),
                datasets=list(body.get("datasets") or []),
                metadata=dict(body.get("metadata") or {}),
                input_example=body.get("input_example"),
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as error:
            raise IntegrityError(f"the model package manifest is malformed: {error}") from error


def python_requirements(packages: Mapping[str, str]) -> dict[str, str]:
    """The versions a package needs: Python, mloop, pandas and numpy, plus the flavor's."""
    found = {"python": platform.python_version(), "mloop": __version__}
    for name in ("numpy", "pandas", "pyarrow"):
        try:
            found[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:  # pragma: no cover - base dependencies
            continue
    found.update(packages)
    return dict(sorted(found.items()))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` except the manifest, by relative path."""
    return {
        name: sha256_file(path) for name, path in sorted(walk_files(folder)) if name != MANIFEST
    }


def write_manifest(folder: Path, manifest: Manifest) -> str:
    """Write the manifest into ``folder``; return its sha256."""
    data = manifest.to_json()
    (folder / MANIFEST).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def read_manifest(folder: Path) -> tuple[Manifest, str]:
    """The manifest of the package in ``folder`` and its sha256."""
    path = folder / MANIFEST
    if not path.is_file():
        raise InvalidValueError(
            f"{folder} is not a model package: it has no {MANIFEST}; save one with "
            "mloop.registry.save_model"
        )
    data = path.read_bytes()
    return Manifest.from_json(data), hashlib.sha256(data).hexdigest()


def verify_folder(folder: Path, expected_manifest_sha256: str | None) -> Manifest:
    """Check an unzipped package: its manifest (against the registry's digest, when one is
    known) and every file against the manifest. IntegrityError names the first mismatch."""
    manifest, digest = read_manifest(folder)
    if expected_manifest_sha256 is not None and digest != expected_manifest_sha256:
        raise IntegrityError(
            f"the manifest of the model package in {folder} has sha256 {digest[:12]}..., but the "
            f"registry recorded {expected_manifest_sha256[:12]}...; the package was altered "
            "after it was registered - it will not be loaded"
        )
    present = {name for name, _ in walk_files(folder)} - {MANIFEST}
    if present != set(manifest.files):
        extra = sorted(present - set(manifest.files))
        missing = sorted(set(manifest.files) - present)
        raise IntegrityError(
            f"the model package in {folder} does not match its manifest "
            f"(unexpected files: {extra[:5]}, missing files: {missing[:5]}); it will not be loaded"
        )
    for name, expected in manifest.files.items():
        actual = sha256_file(folder / name)
        if actual != expected:
            raise IntegrityError(
                f"file {name!r} of the model package in {folder} has sha256 {actual[:12]}..., "
                f"but its manifest says {expected[:12]}...; the package was altered - it will "
                "not be loaded"
            )
    return manifest


def pack(folder: Path, dest: Path) -> None:
    """Zip the package in ``folder`` into ``dest``, byte-for-byte reproducibly."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, path in sorted(walk_files(folder)):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_STORED
            with path.open("rb") as source, archive.open(info, "w", force_zip64=True) as target:
                shutil.copyfileobj(source, target, 1024 * 1024)


def unpack(archive_path: Path, dest: Path) -> None:
    """Unzip a package into the empty folder ``dest``, refusing anything but plain files with
    safe relative names (no ``..``, absolute paths, links or devices) and absurd sizes."""
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members = archive.infolist()
            total = sum(member.file_size for member in members)
            if total > MAX_PACKAGE_BYTES:
                raise IntegrityError(
                    f"the model package claims {total:,} bytes uncompressed; the limit is "
                    f"{MAX_PACKAGE_BYTES:,}"
                )
            for member in members:
                if member.is_dir():
                    continue
                mode = member.external_attr >> 16
                if mode and not stat.S_ISREG(mode):
                    raise IntegrityError(
                        f"the model package holds {member.filename!r}, which is not a plain file"
                    )
                target = safe_join(dest, safe_relpath(member.filename))
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, target.open("xb") as out:
                    shutil.copyfileobj(source, out, 1024 * 1024)
    except zipfile.BadZipFile as error:
        raise IntegrityError(f"the model package is not a valid zip file: {error}") from error


def folder_size(folder: Path) -> int:
    return sum(os.path.getsize(path) for _, path in walk_files(folder))
