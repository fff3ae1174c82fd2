"""How step outputs are stored and read back: never a silent pickle.

=========  ==================================================  ====================
codec      what                                                where
=========  ==================================================  ====================
json       JSON values that round-trip unchanged               inline (metadata store)
                                                               up to 16 KiB, else a blob
parquet    pandas DataFrames                                   blob (kind ``dataset``)
npy        NumPy arrays (no object dtype: ``allow_pickle`` off)  blob (kind ``array``)
model      anything a registry flavor saves (scikit-learn,     a model package the step
           XGBoost, LightGBM, ONNX, PyTorch, ``pyfunc``)        run logs (kind ``model``)
custom     whatever a step's explicit ``serializer`` makes     blob (kind ``value``)
=========  ==================================================  ====================

Every stored output has a sha256 digest; downstream cache keys are made of these digests.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import sys
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from mloop import tracking
from mloop.artifacts import ArtifactStore
from mloop.errors import InvalidValueError, PipelineError
from mloop.registry.flavors import detect_flavor
from mloop.store import ArtifactRef

__all__ = [
    "INLINE_LIMIT",
    "PickleSerializer",
    "Serializer",
    "Stored",
    "encode_json",
    "load_value",
    "resolve_serializer",
    "store_value",
]

INLINE_LIMIT = 16 * 1024  # JSON outputs up to this many bytes live in the metadata store
_SCALARS = (int, str, bool, type(None))


@runtime_checkable
class Serializer(Protocol):
    """An explicit way to store outputs mloop has no codec for: ``@step(serializer=...)``."""

    name: str

    def dumps(self, value: Any) -> bytes:
        """The value as bytes."""
        ...

    def loads(self, data: bytes) -> Any:
        """The value back from its bytes."""
        ...


class PickleSerializer:
    """Python's pickle, for outputs nothing else stores. An explicit opt-in: reading a pickle
    runs whatever code it names, so use it only for artifacts your own pipelines wrote."""

    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)  # noqa: S301 - the step's author opted in explicitly


_NAMED: dict[str, Serializer] = {"pickle": PickleSerializer()}


def resolve_serializer(serializer: Serializer | str | None) -> Serializer | None:
    """A serializer from its name (``"pickle"``) or an object with name/dumps/loads."""
    if serializer is None:
        return None
    if isinstance(serializer, str):
        try:
            return _NAMED[serializer]
        except KeyError:
            raise InvalidValueError(
                f"there is no serializer named {serializer!r}; the named ones are: "
                f"{', '.join(_NAMED)}, or pass an object with name, dumps() and loads()"
            ) from None
    if not isinstance(serializer, Serializer) or not isinstance(serializer.name, str):
        raise InvalidValueError(
            f"a serializer needs a name and dumps(value) -> bytes and loads(bytes) methods; "
            f"{type(serializer).__name__} does not have them"
        )
    return serializer


@dataclass(frozen=True)
class Stored:
    """One stored output: its entry (what the step cache keeps) and its artifact record."""

    entry: dict[str, Any]
    artifact: ArtifactRef | None  # None for models: the registry records those


def encode_json(value: Any) -> bytes | None:
    """Canonical JSON bytes of ``value`` if it survives a JSON round trip unchanged, else None."""
    if type(value) in _SCALARS:
        return json.dumps(value).encode()
    if type(value) is float:
        return json.dumps(value).encode() if math.isfinite(value) else None
    if not isinstance(value, list | dict):
        return None
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None
    return text.encode() if json.loads(text) == value else None


def _blob(data: bytes, artifacts: ArtifactStore) -> tuple[str, str]:
    return artifacts.put_bytes(data).digest, artifacts.uri


def store_value(
    value: Any,
    *,
    step: str,
    output: str,
    serializer: Serializer | None,
    artifacts: ArtifactStore,
) -> Stored | None:
    """Store one output; None means "a model": the caller logs it through the registry."""
    if serializer is not None:
        try:
            data = serializer.dumps(value)
        except Exception as error:
            raise PipelineError(
                f"step {step!r}: serializer {serializer.name!r} could not store output "
                f"{output!r}: {type(error).__name__}: {error}"
            ) from error
        if not isinstance(data, bytes):  # a user's object: its type is only a promise
            raise PipelineError(
                f"serializer {serializer.name!r} returned {type(data).__name__}, not bytes"
            )
        digest, uri = _blob(data, artifacts)
        entry = {"name": output, "codec": "custom", "serializer": serializer.name}
        return _stored(entry, digest, "value", len(data), uri, {"serializer": serializer.name})
    text = encode_json(value)
    if text is not None:
        entry = {"name": output, "codec": "json"}
        if len(text) <= INLINE_LIMIT:
            digest = hashlib.sha256(text).hexdigest()
            entry["value"] = value
            meta = {"codec": "json", "value": value}
            return _stored(entry, digest, "value", len(text), "", meta)
        digest, uri = _blob(text, artifacts)
        return _stored(entry, digest, "value", len(text), uri, {"codec": "json"})
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        return _parquet(value, step, output, artifacts)
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray):
        return _npy(value, step, output, artifacts)
    try:
        detect_flavor(value)
    except InvalidValueError:
        raise PipelineError(
            f"step {step!r} returned a {type(value).__qualname__} as output {output!r}, which "
            "mloop stores only through an explicit serializer: return a DataFrame, a NumPy "
            "array, a JSON value (a tuple comes back as a list: declare outputs=N to return "
            "several values) or a model, or pass @step(serializer=...), e.g. "
            "serializer='pickle' for your own trusted objects"
        ) from None
    return None


def _stored(
    entry: dict[str, Any], digest: str, kind: str, size: int, uri: str, meta: dict[str, Any]
) -> Stored:
    entry.update(digest=digest, kind=kind)
    return Stored(entry, ArtifactRef(digest, kind, size, uri, meta))


def _parquet(value: Any, step: str, output: str, artifacts: ArtifactStore) -> Stored:
    if not all(isinstance(column, str) for column in value.columns):
        raise PipelineError(
            f"step {step!r}: output {output!r} is a DataFrame with non-string column names, "
            "which Parquet cannot store; rename them: df.columns = df.columns.astype(str)"
        )
    buffer = io.BytesIO()
    value.to_parquet(buffer, engine="pyarrow", compression="zstd")
    data = buffer.getvalue()
    digest, uri = _blob(data, artifacts)
    meta = {
        "format": "parquet",
        "rows": len(value),
        "schema": {str(c): str(t) for c, t in value.dtypes.items()},
        "profile": tracking.profile(value),
    }
    return _stored({"name": output, "codec": "parquet"}, digest, "dataset", len(data), uri, meta)


def _npy(value: Any, step: str, output: str, artifacts: ArtifactStore) -> Stored:
    import numpy as np

    buffer = io.BytesIO()
    try:
        np.save(buffer, value, allow_pickle=False)
    except ValueError as error:
        raise PipelineError(
            f"step {step!r}: output {output!r} is an array of dtype {value.dtype}, which needs "
            "pickle; return a numeric array or pass @step(serializer=...)"
        ) from error
    data = buffer.getvalue()
    digest, uri = _blob(data, artifacts)
    meta = {"format": "npy", "dtype": str(value.dtype), "shape": list(value.shape)}
    return _stored({"name": output, "codec": "npy"}, digest, "array", len(data), uri, meta)


def load_value(
    entry: dict[str, Any], artifacts: ArtifactStore, serializer: Serializer | None
) -> Any:
    """Read one stored output back (models are the caller's: they need the registry)."""
    codec = entry.get("codec")
    if codec == "json":
        if "value" in entry:
            return entry["value"]
        return json.loads(artifacts.get_bytes(entry["digest"]))
    if codec == "parquet":
        import pandas as pd

        return pd.read_parquet(io.BytesIO(artifacts.get_bytes(entry["digest"])), engine="pyarrow")
    if codec == "npy":
        import numpy as np

        return np.load(io.BytesIO(artifacts.get_bytes(entry["digest"])), allow_pickle=False)
    if codec == "custom":
        wanted = entry.get("serializer")
        if serializer is None or serializer.name != wanted:
            raise PipelineError(
                f"output {entry.get('name')!r} was stored with serializer {wanted!r}, which the "
                "step no longer declares; add it back, or run without the cache (--no-cache)"
            )
        return serializer.loads(artifacts.get_bytes(entry["digest"]))
    raise PipelineError(f"output {entry.get('name')!r} has an unknown codec {codec!r}")
