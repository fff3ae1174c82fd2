"""``load_model``: a reference in, a verified, validated ``Model`` out."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path

from mloop.artifacts import ArtifactStore, sha256_file
from mloop.backends import backends
from mloop.config import Settings
from mloop.errors import InvalidValueError, NotFoundError
from mloop.registry._cache import PackageCache
from mloop.registry._model import ExtraColumns, Model, ModelMetadata
from mloop.registry._package import FLAVOR_DIR, Manifest, verify_folder
from mloop.registry._refs import ModelRef, parse_ref
from mloop.registry._register import find_run_package
from mloop.registry.flavors import LoadOptions, get_flavor
from mloop.store import ArtifactRecord, ModelVersion, Store

__all__ = ["load_model", "resolve_version"]

log = logging.getLogger("mloop.registry")


def resolve_version(store: Store, ref: ModelRef) -> ModelVersion:
    """The registered version a ``name@alias`` / ``name/3`` reference names."""
    assert ref.name is not None
    if ref.version is not None:
        return store.models.get_version(ref.name, ref.version)
    return store.models.get_version_by_alias(ref.name, ref.alias or "latest")


def _warn_on_mismatch(manifest: Manifest, ref: str) -> None:
    """Log (not fail) when the libraries here differ from the ones the model was saved with."""
    differing = []
    for name, saved in manifest.requirements.items():
        if name in ("python", "mloop"):
            continue
        try:
            here = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            here = "not installed"
        if here.split(".")[:2] != saved.split(".")[:2]:
            differing.append(f"{name} {saved} (here: {here})")
    if differing:
        log.warning("model %s was saved with %s; predictions may differ", ref, ", ".join(differing))


def _open_archive(path: Path, cache: PackageCache) -> tuple[Path, Manifest, str]:
    """A zipped package on disk (a local file: trusted as it is, checked for consistency)."""
    digest = sha256_file(path)

    def fetch(dest: Path) -> None:
        shutil.copyfile(path, dest)

    folder, manifest = cache.open_with(digest, None, fetch)
    return folder, manifest, digest


def _metadata(
    manifest: Manifest,
    ref: str,
    digest: str | None,
    name: str | None = None,
    version: int | None = None,
    aliases: tuple[str, ...] = (),
) -> ModelMetadata:
    """What a loaded model says of itself: its package manifest, and how it was asked for."""
    return ModelMetadata(
        ref=ref,
        name=name,
        version=version,
        digest=digest,
        flavor=manifest.flavor,
        run_id=manifest.run_id,
        created=manifest.created,
        requirements=manifest.requirements,
        datasets=manifest.datasets,
        aliases=aliases,
        extra=manifest.metadata,
    )


def load_model(
    ref: str | Path,
    *,
    extra_columns: ExtraColumns = "error",
    allow_pickle: bool | None = None,
    trusted_types: Sequence[str] | None = None,
    store: Store | None = None,
    artifacts: ArtifactStore | None = None,
    settings: Settings | None = None,
) -> Model:
    """Load a model by reference: ``"models:/churn@production"``, ``"models:/churn/3"``,
    ``"churn@production"``, ``"runs:/<run_id>/model"`` or a package folder.

    The package's sha256 is checked against the registry before anything in it is read, and a
    package that does not match is refused. Pickle-based packages load only with
    ``allow_pickle=True`` (or the ``allow_pickle_models`` setting); scikit-learn packages may
    contain only skops' safe types plus ``trusted_types`` (and the ``trusted_types`` setting).
    """
    if extra_columns not in ("error", "drop"):
        raise InvalidValueError(f"extra_columns must be 'error' or 'drop', not {extra_columns!r}")
    parsed = parse_ref(ref)
    if parsed.path is not None and store is None and artifacts is None:
        b_settings = settings
        if b_settings is None:
            from mloop.backends import current_settings

            b_settings = current_settings()
        cache = PackageCache(b_settings.resolved_model_cache())
        if parsed.path.is_file():
            folder, manifest, digest = _open_archive(parsed.path, cache)
            meta = _metadata(manifest, str(parsed.path), digest)
        elif parsed.path.is_dir():
            folder = parsed.path
            manifest = verify_folder(folder, None)
            meta = _metadata(manifest, str(folder), None)
        else:
            raise NotFoundError(f"no model package at {parsed.path}")
        return _finish(
            folder, manifest, meta, b_settings, extra_columns, allow_pickle, trusted_types
        )

    b = backends(store, artifacts, settings, create=False)
    cache = PackageCache(b.settings.resolved_model_cache())
    artifact: ArtifactRecord
    aliases: tuple[str, ...] = ()
    if parsed.run_id is not None:
        assert parsed.artifact_path is not None
        artifact = find_run_package(b.store, parsed.run_id, parsed.artifact_path)
        name, number = None, None
    elif parsed.name is not None:
        version = resolve_version(b.store, parsed)
        artifact = ArtifactRecord(
            version.artifact_id, version.digest, "model", 0, "", version.meta, version.created
        )
        name, number, aliases = version.name, version.version, version.aliases
    else:
        raise InvalidValueError(f"cannot load {ref!r}: pass a store-less path or a model reference")
    expected = artifact.meta.get("manifest_sha256")
    folder, manifest = cache.open(artifact.digest, expected, b.artifacts)
    meta = _metadata(manifest, str(parsed), artifact.digest, name, number, tuple(aliases))
    return _finish(folder, manifest, meta, b.settings, extra_columns, allow_pickle, trusted_types)


def _finish(
    folder: Path,
    manifest: Manifest,
    meta: ModelMetadata,
    settings: Settings,
    extra_columns: ExtraColumns,
    allow_pickle: bool | None,
    trusted_types: Sequence[str] | None,
) -> Model:
    if isinstance(trusted_types, str):
        raise InvalidValueError("trusted_types must be a list of type names, not one string")
    options = LoadOptions(
        allow_pickle=settings.allow_pickle_models if allow_pickle is None else bool(allow_pickle),
        trusted_types=tuple(trusted_types or ()) + tuple(settings.trusted_types),
    )
    _warn_on_mismatch(manifest, meta.version_ref)
    flavor = get_flavor(manifest.flavor)
    predictor = flavor.load(folder / FLAVOR_DIR, manifest.flavor_data, options)
    return Model(predictor, manifest, meta, folder, extra_columns=extra_columns)
