"""Datasets as versioned artifacts: Parquet bytes, content-hashed, with schema and profile."""

from __future__ import annotations

import math
import os
import tempfile
from typing import TYPE_CHECKING, Any

import pandas as pd

from mloop.errors import InvalidValueError
from mloop.store import ArtifactRecord

if TYPE_CHECKING:
    from mloop.tracking._context import Backends

MAX_CATEGORIES = 20


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def profile(df: pd.DataFrame) -> dict[str, Any]:
    """A per-column summary: count, nulls, and min/max/mean/std or the most frequent values."""
    columns: dict[str, Any] = {}
    for name in df.columns:
        series = df[name]
        entry: dict[str, Any] = {
            "dtype": str(series.dtype),
            "count": int(series.count()),
            "nulls": int(series.isna().sum()),
        }
        if pd.api.types.is_bool_dtype(series.dtype):
            entry["top"] = {str(k): int(v) for k, v in series.value_counts().head(2).items()}
        elif pd.api.types.is_numeric_dtype(series.dtype):
            entry.update(
                min=_number(series.min()),
                max=_number(series.max()),
                mean=_number(series.mean()),
                std=_number(series.std()),
            )
        elif pd.api.types.is_datetime64_any_dtype(series.dtype):
            entry.update(min=str(series.min()), max=str(series.max()))
        else:
            counts = series.astype("string").value_counts()
            entry["unique"] = len(counts)
            entry["top"] = {str(k): int(v) for k, v in counts.head(MAX_CATEGORIES).items()}
        columns[str(name)] = entry
    return columns


def log_dataframe(backends: Backends, df: pd.DataFrame, *, name: str) -> ArtifactRecord:
    """Write ``df`` as Parquet to the artifact store and record it (kind ``dataset``)."""
    if not isinstance(df, pd.DataFrame):
        raise InvalidValueError(
            f"dataset {name!r} must be a pandas DataFrame, not {type(df).__name__}"
        )
    if not all(isinstance(column, str) for column in df.columns):
        raise InvalidValueError(
            f"dataset {name!r} has non-string column names; Parquet needs strings: "
            "df.columns = df.columns.astype(str)"
        )
    fd, tmp = tempfile.mkstemp(suffix=".parquet")
    os.close(fd)
    try:
        # Same data, same library versions → same bytes → same digest, so it is stored once.
        df.to_parquet(tmp, engine="pyarrow", compression="zstd")
        blob = backends.artifacts.put_file(tmp)
    finally:
        os.unlink(tmp)
    meta = {
        "format": "parquet",
        "rows": len(df),
        "schema": {str(c): str(t) for c, t in df.dtypes.items()},
        "profile": profile(df),
    }
    sources = feature_sources(df)
    if sources:
        meta["feature_views"] = sources
    return backends.store.record_artifact(
        digest=blob.digest, kind="dataset", size=blob.size, uri=backends.artifacts.uri, meta=meta
    )


def feature_sources(df: pd.DataFrame) -> list[dict[str, object]]:
    """The feature view versions a frame came from (``FeatureStore.get_historical_features``
    leaves them in ``df.attrs["mloop.feature_views"]``)."""
    found = df.attrs.get("mloop.feature_views")
    if not isinstance(found, list):
        return []
    return [dict(item) for item in found if isinstance(item, dict) and "artifact_id" in item]


def load_dataframe(backends: Backends, record: ArtifactRecord) -> pd.DataFrame:
    """Read a dataset artifact back (its digest is verified on the way)."""
    fd, tmp = tempfile.mkstemp(suffix=".parquet")
    os.close(fd)
    try:
        backends.artifacts.get_file(record.digest, tmp)
        return pd.read_parquet(tmp, engine="pyarrow")
    finally:
        os.unlink(tmp)
