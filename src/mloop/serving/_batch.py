"""Batch scoring: a registered model over a Parquet or CSV file, chunk by chunk, as a run.

    result = predict_batch("churn@production", "customers.parquet", "scores.parquet",
                           chunk_size=50_000, executor="process")
    result = predict_batch("churn@production", None, "scores.parquet",
                           entities="entities.parquet")   # features from the offline store

The input is read in chunks of ``chunk_size`` rows (Parquet row groups or CSV blocks, never
the whole file), each chunk is scored on the compute backend (``inprocess``, ``process`` or
``ray``; at most two chunks per worker in flight, so memory stays bounded), and the scores are
written in input order to a temporary file next to ``output`` that is renamed into place when
every chunk has succeeded. With ``entities``, each chunk of the entity table (join keys plus a
timestamp column) gets the model's features from the offline store, point in time; which
features comes from the model's training lineage.

The output holds the input's columns that the model does not read (ids, keys, timestamps,
labels), then ``prediction`` and, for classifiers, ``proba_<class>`` per class. The work is
recorded as a run (kind ``batch_scoring``) whose inputs are the input file (a dataset artifact),
the model version's package and any feature view versions, and whose output is the scores file.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.artifacts import ArtifactStore
from mloop.backends import Backends, backends
from mloop.config import Settings
from mloop.errors import InvalidValueError, MloopError, NotFoundError, SignatureError
from mloop.registry import Model, get_version, load_model, parse_ref
from mloop.store import Store

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from mloop.compute import Executor

__all__ = ["BatchResult", "predict_batch"]

Progress = Callable[[int, int | None], None]  # (rows done, rows in all or None if unknown)
FORMATS = (".parquet", ".csv")
MAX_CHUNK = 10_000_000
_MODELS: dict[tuple[str, str, str], Model] = {}  # per process: (ref, store, artifacts) -> model


@dataclass(frozen=True)
class BatchResult:
    """What ``predict_batch`` did."""

    output: Path
    rows: int
    chunks: int
    model: str  # the exact version scored, "churn/3"
    run_id: str
    seconds: float


def _check_paths(
    input: str | os.PathLike[str] | None,
    output: str | os.PathLike[str],
    entities: str | os.PathLike[str] | None,
) -> tuple[Path, Path]:
    if (input is None) == (entities is None):
        raise InvalidValueError(
            "give exactly one of input (a file with the model's input columns) and entities "
            "(a file of entity keys and timestamps, whose features come from the feature store)"
        )
    source = Path(input if input is not None else entities)  # type: ignore[arg-type]
    target = Path(output)
    for path, what in ((source, "input"), (target, "output")):
        if path.suffix.lower() not in FORMATS:
            raise InvalidValueError(
                f"{what} file {str(path)!r} must end in .parquet or .csv, the formats batch "
                "scoring reads and writes"
            )
    if not source.is_file():
        raise NotFoundError(f"input file {str(source)!r} does not exist")
    if not target.parent.is_dir():
        raise InvalidValueError(
            f"the folder of output file {str(target)!r} does not exist; create it first"
        )
    if target.exists() and target.resolve() == source.resolve():
        raise InvalidValueError(f"output {str(target)!r} is the input file; choose another name")
    if target.is_dir():
        raise InvalidValueError(f"output {str(target)!r} is a folder; give a file name")
    return source, target


def _batches(path: Path, chunk_size: int) -> tuple[Iterator[pa.RecordBatch], int | None]:
    """Record batches of ``path`` and its row count when the format knows it up front."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    try:
        if path.suffix.lower() == ".parquet":
            parquet = pq.ParquetFile(path)
            return parquet.iter_batches(batch_size=chunk_size), parquet.metadata.num_rows
        reader = pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=1 << 22))
        return iter(reader), None
    except (pa.ArrowException, OSError) as error:
        raise InvalidValueError(f"cannot read input file {str(path)!r}: {error}") from error


def _chunks(path: Path, chunk_size: int) -> tuple[Iterator[pd.DataFrame], int | None]:
    """Frames of exactly ``chunk_size`` rows (the last may be shorter)."""
    import pyarrow as pa

    batches, total = _batches(path, chunk_size)

    def frames() -> Iterator[pd.DataFrame]:
        held: list[pa.RecordBatch] = []
        count = 0
        try:
            for batch in batches:
                while batch.num_rows:
                    take = min(chunk_size - count, batch.num_rows)
                    held.append(batch.slice(0, take))
                    batch = batch.slice(take)
                    count += take
                    if count == chunk_size:
                        yield pa.Table.from_batches(held).to_pandas()
                        held, count = [], 0
        except (pa.ArrowException, OSError) as error:
            raise InvalidValueError(f"cannot read input file {str(path)!r}: {error}") from error
        if count:
            yield pa.Table.from_batches(held).to_pandas()

    return frames(), total


def _cache_key(ref: str, settings: Settings) -> tuple[str, str, str]:
    return ref, settings.resolved_tracking_uri(), settings.resolved_artifact_uri()


def _model(ref: str, settings: Settings) -> Model:
    """The model ``ref`` names, loaded once per process (from the local package cache)."""
    key = _cache_key(ref, settings)
    model = _MODELS.get(key)
    if model is None:
        model = _MODELS[key] = load_model(ref, extra_columns="drop", settings=settings)
    return model


def score_frame(model: Model, frame: pd.DataFrame) -> pd.DataFrame:
    """The scores of ``frame``: its columns the model does not read, ``prediction`` and, for
    classifiers, ``proba_<class>`` per class."""
    import pandas as pd

    signature = model.signature
    used = set(signature.columns) if signature is not None else set(frame.columns)
    kept = frame[[c for c in frame.columns if c not in used]].reset_index(drop=True)
    predictions = model.predict(frame)
    columns: dict[str, Any] = {
        "prediction": list(predictions) if predictions.ndim > 1 else predictions
    }
    if model.has_proba:
        proba = model.predict_proba(frame)
        classes = model.classes or list(range(proba.shape[1]))
        for index, label in enumerate(classes):
            columns[f"proba_{label}"] = proba[:, index]
    scores = pd.DataFrame(columns)
    clash = [c for c in scores.columns if c in kept.columns]
    if clash:
        kept = kept.rename(columns={c: f"input_{c}" for c in clash})
    return pd.concat([kept, scores], axis=1)


def _score_chunk(ref: str, settings: Settings, index: int, first_row: int, frame: Any) -> Any:
    """One chunk's scores; runs wherever the executor puts it."""
    try:
        return score_frame(_model(ref, settings), frame)
    except SignatureError as error:
        rows = f"rows {first_row:,}-{first_row + len(frame) - 1:,}"
        raise SignatureError(
            f"chunk {index} ({rows}) of the input does not fit model {ref}: {error}",
            column=error.column,
        ) from None


class _Writer:
    """Scores into a temporary file beside the output, renamed into place at the end."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        self._parquet: Any = None
        self._schema: pa.Schema | None = None
        self._csv_header = True

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.target.suffix.lower() == ".csv":
            frame.to_csv(self.temporary, mode="a", header=self._csv_header, index=False)
            self._csv_header = False
            return
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._parquet is None:
            self._schema = table.schema
            self._parquet = pq.ParquetWriter(self.temporary, table.schema)
        else:
            assert self._schema is not None
            try:
                table = table.cast(self._schema)
            except (pa.ArrowException, ValueError) as error:
                raise InvalidValueError(
                    f"a later chunk's columns do not match the first chunk's ({error}); make "
                    "the input's column types consistent"
                ) from error
        self._parquet.write_table(table)

    def commit(self, empty: pd.DataFrame) -> None:
        if self._parquet is None and self._csv_header:
            self.write(empty)  # no rows at all: still a file with the columns
        if self._parquet is not None:
            self._parquet.close()
        os.replace(self.temporary, self.target)

    def abort(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        self.temporary.unlink(missing_ok=True)


def _feature_plan(b: Backends, version_ref: str) -> tuple[list[str], bool]:
    """The ``view:feature`` refs the model reads from the feature store, from its lineage."""
    from mloop.serving._lookup import feature_needs

    version = get_version(version_ref, store=b.store, settings=b.settings)
    needs = feature_needs(b.store, version)
    if needs is None:
        raise InvalidValueError(
            f"model {version_ref} was not trained on feature store data (its training run read "
            "no feature views whose fields are in its signature); score a file of its input "
            "columns with input= / --input instead"
        )
    return list(needs.refs), needs.full_names


def _link_file(b: Backends, run_id: str, path: Path, direction: str, name: str) -> None:
    blob = b.artifacts.put_file(path)
    record = b.store.record_artifact(
        digest=blob.digest,
        kind="dataset",
        size=blob.size,
        uri=b.artifacts.uri,
        meta={"path": str(path.resolve()), "format": path.suffix.lower().lstrip(".")},
    )
    b.store.link_artifact(run_id, record.id, direction, name)  # type: ignore[arg-type]


def predict_batch(
    model_ref: str,
    input: str | os.PathLike[str] | None,
    output: str | os.PathLike[str],
    *,
    entities: str | os.PathLike[str] | None = None,
    timestamp_column: str = "event_timestamp",
    chunk_size: int = 10_000,
    executor: str | Executor | None = None,
    experiment: str | None = None,
    progress: Progress | None = None,
    store: Store | None = None,
    artifacts: ArtifactStore | None = None,
    settings: Settings | None = None,
) -> BatchResult:
    """Score ``input`` (Parquet or CSV) with ``model_ref`` into ``output`` (.parquet or .csv).

    With ``entities`` instead of ``input``, the rows are entity keys and ``timestamp_column``,
    and the model's features are fetched from the offline store as of each row's time.
    ``executor`` is a backend name (default: the ``compute`` setting) or an Executor of yours
    (left running). ``progress(rows_done, rows_total)`` is called after each chunk.
    """
    # Imported here, not at the top: `mloop serve` imports this package and needs neither, and
    # every import counts in a server's cold start.
    from mloop.compute import get_executor
    from mloop.tracking import start_run

    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise InvalidValueError(f"chunk_size must be a whole number, not {chunk_size!r}")
    if not 1 <= chunk_size <= MAX_CHUNK:
        raise InvalidValueError(f"chunk_size must be 1 to {MAX_CHUNK:,} rows, not {chunk_size}")
    source, target = _check_paths(input, output, entities)
    b = backends(store, artifacts, settings)
    worker_settings = b.settings.model_copy(
        update={"tracking_uri": b.store.uri, "artifact_uri": b.artifacts.uri}
    )
    parsed = parse_ref(model_ref)
    if parsed.path is not None:
        if entities is not None:
            raise InvalidValueError(
                "entities need a registered model (its training lineage names the features); "
                f"{str(model_ref)!r} is a package on disk"
            )
        exact = str(parsed.path.resolve())
        model = load_model(exact, extra_columns="drop", settings=worker_settings)
    else:
        model = load_model(model_ref, extra_columns="drop", store=b.store, artifacts=b.artifacts)
        exact = model.metadata.version_ref  # "churn/3": the alias may move while we score
    refs: list[str] = []
    full_names = False
    if entities is not None:
        refs, full_names = _feature_plan(b, exact)

    chunks, total = _chunks(source, chunk_size)
    pool: Executor
    if executor is None or isinstance(executor, str):
        pool, owned = get_executor(executor, settings=b.settings), True
    else:
        pool, owned = executor, False
    started = time.perf_counter()
    rows = count = 0
    features_used: list[dict[str, Any]] = []
    writer = _Writer(target)
    run = start_run(
        experiment=experiment or "batch-scoring",
        name=f"predict {exact}",
        kind="batch_scoring",
        params={
            "model": exact,
            "model_ref": str(model_ref),
            "input": str(source),
            "output": str(target),
            "mode": "entities" if entities is not None else "input",
            "chunk_size": chunk_size,
            "executor": getattr(pool, "name", type(pool).__name__),
        },
        parent=None,
        store=b.store,
        artifacts=b.artifacts,
        settings=b.settings,
    )
    _MODELS[_cache_key(exact, worker_settings)] = model  # in-process tasks use it as it is
    try:
        with run:
            window = max(2, 2 * int(getattr(pool, "max_workers", 1)))
            pending: deque[tuple[Future[Any], int]] = deque()
            feature_store = None
            if entities is not None:
                from mloop.features import FeatureStore

                feature_store = FeatureStore(
                    store=b.store, artifacts=b.artifacts, settings=b.settings
                )

            def drain(limit: int) -> None:
                nonlocal rows
                while len(pending) > limit:
                    future, size = pending.popleft()
                    writer.write(future.result())
                    rows += size
                    if progress is not None:
                        progress(rows, total)

            first_row = 0
            for count, frame in enumerate(chunks, start=1):
                if feature_store is not None:
                    frame = _with_features(
                        feature_store, frame, refs, full_names, timestamp_column, features_used
                    )
                future = pool.submit(
                    _score_chunk, exact, worker_settings, count - 1, first_row, frame
                )
                pending.append((future, len(frame)))
                first_row += len(frame)
                drain(window)
            drain(0)
            writer.commit(_empty_scores(model))
            _link_file(b, run.id, source, "input", f"datasets/input/{source.name}")
            if model.metadata.digest is not None and parsed.path is None:
                version = get_version(exact, store=b.store, settings=b.settings)
                b.store.link_artifact(run.id, version.artifact_id, "input", f"models/{exact}")
            for view in features_used:
                kind = view.get("kind", "feature_view")
                b.store.link_artifact(
                    run.id,
                    str(view["artifact_id"]),
                    "input",
                    f"{kind}s/{view['name']}/v{view['version']}",
                )
            _link_file(b, run.id, target, "output", f"datasets/predictions/{target.name}")
            seconds = time.perf_counter() - started
            run.log_metrics(
                {"rows": rows, "chunks": count, "seconds": seconds,
                 "rows_per_second": rows / seconds if seconds > 0 else 0.0}
            )  # fmt: skip
    except BaseException:
        writer.abort()
        raise
    finally:
        _MODELS.pop(_cache_key(exact, worker_settings), None)  # in-process: not kept after
        if owned:
            pool.shutdown(wait=True, cancel_futures=True)
    return BatchResult(target, rows, count, exact, run.id, seconds)


def _empty_scores(model: Model) -> pd.DataFrame:
    import pandas as pd

    columns: dict[str, Any] = {"prediction": pd.Series([], dtype="float64")}
    if model.has_proba:
        for label in model.classes or []:
            columns[f"proba_{label}"] = pd.Series([], dtype="float64")
    return pd.DataFrame(columns)


def _with_features(
    store: Any,
    frame: pd.DataFrame,
    refs: Sequence[str],
    full_names: bool,
    timestamp_column: str,
    used: list[dict[str, Any]],
) -> pd.DataFrame:
    """An entity chunk with the model's features joined on, point in time."""
    if timestamp_column not in frame.columns:
        raise InvalidValueError(
            f"the entity file has no timestamp column {timestamp_column!r} (it has "
            f"{list(frame.columns)[:20]}); name it with timestamp_column= / --timestamp-column"
        )
    try:
        joined = store.get_historical_features(
            frame, refs, full_feature_names=full_names, timestamp_column=timestamp_column
        )
    except MloopError:
        raise
    except Exception as error:  # DuckDB on a bad key column type, for one
        raise InvalidValueError(
            f"cannot join the model's features onto the entity rows: {type(error).__name__}: "
            f"{error}"
        ) from error
    if not used:
        used.extend(joined.attrs.get("mloop.feature_views") or [])
    result: pd.DataFrame = joined
    return result
