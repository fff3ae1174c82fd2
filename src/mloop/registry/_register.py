"""Putting packages into the registry: ``log_model`` (a run's output) and ``register``."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mloop.artifacts import ArtifactStore
from mloop.backends import Backends, backends
from mloop.config import Settings
from mloop.errors import InvalidValueError, NotFoundError
from mloop.events import deliver_soon
from mloop.registry._package import Manifest, pack, read_manifest, verify_folder
from mloop.registry._refs import ModelRef, parse_ref
from mloop.registry._save import save_model
from mloop.registry._signature import Signature
from mloop.store import ArtifactRecord, ModelVersion, Store, check_key, check_model_name

__all__ = ["LoggedModel", "find_run_package", "log_model", "register"]

MODEL_KIND = "model"


@dataclass(frozen=True)
class LoggedModel:
    """A package a run logged, and the registered version made of it (if a name was given)."""

    run_id: str
    artifact_path: str
    artifact: ArtifactRecord
    version: ModelVersion | None

    @property
    def uri(self) -> str:
        """``runs:/<run_id>/<artifact_path>``: loadable, and registerable later."""
        return f"runs:/{self.run_id}/{self.artifact_path}"


def _store_package(
    folder: Path, manifest_sha256: str, manifest: Manifest, b: Backends
) -> ArtifactRecord:
    """Zip the package folder, store the zip by digest and record it as a ``model`` artifact."""
    with tempfile.TemporaryDirectory(prefix="mloop-pack-") as tmp:
        archive = Path(tmp) / "package.zip"
        pack(folder, archive)
        blob = b.artifacts.put_file(archive)
    meta: dict[str, Any] = {
        "flavor": manifest.flavor,
        "manifest_sha256": manifest_sha256,
        "signature": None if manifest.signature is None else manifest.signature.to_dict(),
        "requirements": manifest.requirements,
        "run_id": manifest.run_id,
        "datasets": manifest.datasets,
        "created": manifest.created,
    }
    return b.store.record_artifact(
        digest=blob.digest, kind=MODEL_KIND, size=blob.size, uri=b.artifacts.uri, meta=meta
    )


def _run_datasets(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The datasets a run read, as a package records them."""
    return [
        {"name": edge.name, "digest": edge.artifact.digest, "artifact_id": edge.artifact.id}
        for edge in store.list_lineage(run_id)
        if edge.direction == "input" and edge.artifact.kind == "dataset"
    ]


def find_run_package(store: Store, run_id: str, artifact_path: str) -> ArtifactRecord:
    """The model package run ``run_id`` logged under ``artifact_path``."""
    store.get_run(run_id)  # NotFoundError names the run if there is none
    packages = [
        edge
        for edge in store.list_lineage(run_id)
        if edge.direction == "output" and edge.artifact.kind == MODEL_KIND
    ]
    for edge in packages:
        if edge.name == artifact_path:
            return edge.artifact
    logged = ", ".join(repr(edge.name) for edge in packages) or "none"
    raise NotFoundError(
        f"run {run_id} logged no model named {artifact_path!r} (its models: {logged})"
    )


def _register_artifact(
    b: Backends,
    name: str,
    artifact: ArtifactRecord,
    *,
    run_id: str | None,
    description: str,
    tags: Mapping[str, Any],
    alias: str | None,
) -> ModelVersion:
    store = b.store
    version = store.models.create_version(
        name,
        artifact_id=artifact.id,
        flavor=str(artifact.meta.get("flavor", "unknown")),
        actor=b.settings.user,
        run_id=run_id,
        description=description,
        tags=tags,
    )
    if alias is not None:
        store.models.set_alias(name, alias, version.version, actor=b.settings.user)
        version = store.models.get_version(name, version.version)
    deliver_soon(store)
    return version


def _check_common(name: str | None, description: object, tags: object, alias: object) -> None:
    if name is not None:
        check_model_name(name)
    if not isinstance(description, str):
        raise InvalidValueError(f"description must be a string, not {type(description).__name__}")
    if tags is not None and not isinstance(tags, Mapping):
        raise InvalidValueError(f"tags must be a mapping, not {type(tags).__name__}")
    if alias is not None and name is None:
        raise InvalidValueError("an alias needs a model name to register the version under")


def log_model(
    model: Any,
    *,
    run_id: str,
    name: str | None = None,
    artifact_path: str = "model",
    input_example: Any = None,
    signature: Signature | Mapping[str, Any] | None = None,
    flavor: str | None = None,
    serializer: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    description: str = "",
    tags: Mapping[str, Any] | None = None,
    alias: str | None = None,
    store: Store | None = None,
    artifacts: ArtifactStore | None = None,
    settings: Settings | None = None,
) -> LoggedModel:
    """Save ``model`` as an output of run ``run_id`` and, if ``name`` is given, register it.

    Usually called as ``run.log_model(...)``. The package records the run and the datasets the
    run read, so the registry's lineage leads from a version to its data.
    """
    _check_common(name, description, tags, alias)
    artifact_path = check_key(artifact_path, "artifact path")
    b = backends(store, artifacts, settings)
    record = b.store.get_run(run_id)
    datasets = _run_datasets(b.store, record.id)
    with tempfile.TemporaryDirectory(prefix="mloop-model-") as tmp:
        folder = Path(tmp) / "package"
        save_model(
            model,
            folder,
            input_example=input_example,
            signature=signature,
            flavor=flavor,
            serializer=serializer,
            metadata=metadata,
            run_id=record.id,
            datasets=datasets,
            options=options,
        )
        manifest, manifest_sha256 = read_manifest(folder)
        artifact = _store_package(folder, manifest_sha256, manifest, b)
    b.store.link_artifact(record.id, artifact.id, "output", artifact_path)
    version = None
    if name is not None:
        version = _register_artifact(
            b,
            name,
            artifact,
            run_id=record.id,
            description=description,
            tags=tags or {},
            alias=alias,
        )
    return LoggedModel(record.id, artifact_path, artifact, version)


def register(
    model: Any,
    name: str,
    *,
    input_example: Any = None,
    signature: Signature | Mapping[str, Any] | None = None,
    flavor: str | None = None,
    serializer: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    description: str = "",
    tags: Mapping[str, Any] | None = None,
    alias: str | None = None,
    store: Store | None = None,
    artifacts: ArtifactStore | None = None,
    settings: Settings | None = None,
) -> ModelVersion:
    """Register a new version of ``name`` from a model object, a run's logged package
    (``"runs:/<run_id>/model"``) or a package folder written by ``save_model``.
    """
    _check_common(name, description, tags, alias)
    b = backends(store, artifacts, settings)
    ref: ModelRef | None = None
    if isinstance(model, str | Path):
        ref = parse_ref(model)
        if ref.name is not None:
            raise InvalidValueError(
                f"{model!r} is already a registered model; to give it another name, load it "
                "and register the loaded model's .native object, or register its run's package"
            )
    if ref is not None and ref.run_id is not None:
        assert ref.artifact_path is not None
        artifact = find_run_package(b.store, ref.run_id, ref.artifact_path)
        return _register_artifact(
            b,
            name,
            artifact,
            run_id=ref.run_id,
            description=description,
            tags=tags or {},
            alias=alias,
        )
    if ref is not None and ref.path is not None:
        folder = ref.path
        if not folder.is_dir():
            raise InvalidValueError(f"{folder} is not a model package folder")
        manifest = verify_folder(folder, None)
        _, manifest_sha256 = read_manifest(folder)
        artifact = _store_package(folder, manifest_sha256, manifest, b)
        return _register_artifact(
            b,
            name,
            artifact,
            run_id=manifest.run_id,
            description=description,
            tags=tags or {},
            alias=alias,
        )
    with tempfile.TemporaryDirectory(prefix="mloop-model-") as tmp:
        folder = Path(tmp) / "package"
        save_model(
            model,
            folder,
            input_example=input_example,
            signature=signature,
            flavor=flavor,
            serializer=serializer,
            metadata=metadata,
            options=options,
        )
        manifest, manifest_sha256 = read_manifest(folder)
        artifact = _store_package(folder, manifest_sha256, manifest, b)
        shutil.rmtree(folder, ignore_errors=True)
    return _register_artifact(
        b, name, artifact, run_id=None, description=description, tags=tags or {}, alias=alias
    )


def check_json(value: Mapping[str, Any], what: str) -> None:
    """Refuse metadata that the manifest could not store."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidValueError(f"{what} must be JSON-serializable: {error}") from error
