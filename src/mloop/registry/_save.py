"""``save_model``: write a model package folder (no registry involved)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mloop.errors import InvalidValueError, MloopError
from mloop.registry._package import (
    FLAVOR_DIR,
    INPUT_EXAMPLE,
    MANIFEST,
    Manifest,
    file_digests,
    now_iso,
    python_requirements,
    write_manifest,
)
from mloop.registry._signature import Signature, infer_signature, to_frame
from mloop.registry.flavors import LoadOptions, SaveOptions, detect_flavor, get_flavor

__all__ = ["save_model"]

MAX_EXAMPLE_ROWS = 100


def _example_frame(model: Any, input_example: Any) -> Any:
    """The example as a DataFrame; a bare array takes the estimator's feature names if known."""
    names = getattr(model, "feature_names_in_", None)
    columns = [str(name) for name in names] if names is not None else None
    try:
        import numpy as np

        if isinstance(input_example, np.ndarray | list) and columns is not None:
            return to_frame(input_example, columns)
    except ImportError:  # pragma: no cover - numpy comes with pandas
        pass
    return to_frame(input_example)


def save_model(
    model: Any,
    path: str | Path,
    *,
    input_example: Any = None,
    signature: Signature | Mapping[str, Any] | None = None,
    flavor: str | None = None,
    serializer: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    datasets: list[dict[str, Any]] | None = None,
    options: Mapping[str, Any] | None = None,
) -> Manifest:
    """Write ``model`` as a package into the new folder ``path`` and return its manifest.

    The flavor is detected from the model's type unless given. The signature is inferred from
    ``input_example`` (its first rows are kept in the package) unless given. The package is
    loaded back and run on the example before this returns, so a model that cannot round-trip
    fails here rather than in production.
    """
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidValueError(f"cannot save a model package into {target}: it is not empty")
    chosen = get_flavor(flavor) if flavor is not None else detect_flavor(model)
    example = None
    if input_example is not None:
        example = _example_frame(model, input_example).head(MAX_EXAMPLE_ROWS)
    if isinstance(signature, Mapping):
        signature = Signature.from_dict(signature)
    elif signature is not None and not isinstance(signature, Signature):
        raise InvalidValueError(
            f"signature must be a Signature or its dict form, not {type(signature).__name__}"
        )
    if metadata is not None and not isinstance(metadata, Mapping):
        raise InvalidValueError(f"metadata must be a mapping, not {type(metadata).__name__}")
    if example is not None and signature is not None:
        example = signature.validate(example, extra_columns="drop")

    work = Path(
        tempfile.mkdtemp(
            prefix=".mloop-package-", dir=target.parent if target.parent.exists() else None
        )
    )
    try:
        flavor_dir = work / FLAVOR_DIR
        flavor_dir.mkdir()
        saved = chosen.save(
            model,
            flavor_dir,
            SaveOptions(serializer=serializer, input_example=example, extra=dict(options or {})),
        )
        if example is not None:
            # Our own freshly written files: trust what the flavor reported it needs.
            trusted = tuple(saved.data.get("untrusted_types", ()))
            predictor = chosen.load(
                flavor_dir, saved.data, LoadOptions(allow_pickle=True, trusted_types=trusted)
            )
            try:
                output = predictor.predict(example)
            except MloopError:
                raise
            except Exception as error:
                raise InvalidValueError(
                    f"the {chosen.name} model, saved and loaded back, failed to predict on the "
                    f"input example: {type(error).__name__}: {error}"
                ) from error
            if signature is None:
                signature = infer_signature(example, output)
            example.to_parquet(work / INPUT_EXAMPLE, index=False)
        manifest = Manifest(
            flavor=chosen.name,
            flavor_data=saved.data,
            signature=signature,
            requirements=python_requirements(saved.requirements),
            files=file_digests(work),
            created=now_iso(),
            run_id=run_id,
            datasets=list(datasets or []),
            metadata=dict(metadata or {}),
            input_example=INPUT_EXAMPLE if example is not None else None,
        )
        write_manifest(work, manifest)
        assert (work / MANIFEST).is_file()
        if target.exists():
            target.rmdir()
        shutil.move(str(work), target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return manifest
