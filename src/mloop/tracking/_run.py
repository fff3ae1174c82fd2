"""Run: the handle a training script logs through."""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from mloop.artifacts import safe_relpath, walk_files
from mloop.errors import InvalidValueError, RunNotActiveError
from mloop.store import (
    ArtifactRecord,
    LineageEdge,
    MetricPoint,
    RunRecord,
    RunStatus,
    check_key,
    metric_step,
    metric_value,
)
from mloop.tracking._active import forget
from mloop.tracking._context import Backends, writer_for
from mloop.tracking._datasets import feature_sources, log_dataframe

if TYPE_CHECKING:
    import pandas as pd

    from mloop.registry import LoggedModel

MAX_ERROR = 8000
_INF = float("inf")
_MIN_STEP, _MAX_STEP = -(2**63), 2**63


class Run:
    """One execution that is recorded: params, metrics, tags, artifacts, datasets, lineage.

    Use it as a context manager; leaving the block ends the run as ``finished``, an exception
    as ``failed`` (with the error recorded) and Ctrl-C as ``killed``:

        with mloop.start_run(experiment="churn", params={"C": 1.0}) as run:
            run.log_metric("auc", 0.91)
    """

    def __init__(self, record: RunRecord, backends: Backends) -> None:
        self._record = record
        self._backends = backends
        self._store = backends.store
        self._writer = writer_for(backends.store, backends.settings.flush_interval)
        self._ended = False
        self._steps: dict[str, int] = {}
        self._keys: set[str] = set()
        self._lock = threading.Lock()

    # -- identity -------------------------------------------------------------------------

    @property
    def id(self) -> str:
        """The run's id (a time-ordered UUIDv7)."""
        return self._record.id

    @property
    def experiment_id(self) -> str:
        return self._record.experiment_id

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def parent_run_id(self) -> str | None:
        return self._record.parent_run_id

    @property
    def active(self) -> bool:
        """True until the run has ended."""
        return not self._ended

    def info(self) -> RunRecord:
        """The run as stored now (status, params, tags, latest metrics), after a flush."""
        self._writer.flush()
        return self._store.get_run(self.id)

    def __repr__(self) -> str:
        state = "ended" if self._ended else "active"
        return f"<Run {self.id} {self.name!r} ({state})>"

    # -- logging --------------------------------------------------------------------------

    def _check_active(self) -> None:
        if self._ended:
            raise RunNotActiveError(
                f"run {self.id} has ended; nothing more can be logged to it - start a new run"
            )

    def log_metric(
        self, key: str, value: float, step: int | None = None, *, timestamp: float | None = None
    ) -> None:
        """Record one value of a metric; returns at once (a background thread writes it).

        ``step`` defaults to how many values of ``key`` this run has logged (0, 1, 2, ...);
        ``timestamp`` (seconds since the epoch) defaults to now. NaN and inf are refused.
        """
        if self._ended:
            self._check_active()
        number, step = self._checked(key, value, step)
        with self._lock:
            step = self._next_step(key, step)
        ms = time.time_ns() // 1_000_000 if timestamp is None else _timestamp_ms(timestamp)
        self._writer.add((self.id, key, number, step, ms))

    def log_metrics(
        self,
        metrics: Mapping[str, float],
        step: int | None = None,
        *,
        timestamp: float | None = None,
    ) -> None:
        """Record several metrics at the same step and time."""
        if not isinstance(metrics, Mapping):
            raise InvalidValueError(f"metrics must be a mapping, not {type(metrics).__name__}")
        self._check_active()
        checked = [(key, *self._checked(key, value, step)) for key, value in metrics.items()]
        ms = time.time_ns() // 1_000_000 if timestamp is None else _timestamp_ms(timestamp)
        with self._lock:
            rows = [(self.id, k, v, self._next_step(k, s), ms) for k, v, s in checked]
        self._writer.add_many(rows)

    def _checked(self, key: str, value: Any, step: Any) -> tuple[float, int | None]:
        """The metric value and explicit step, validated (fast paths for the exact types)."""
        if key not in self._keys:
            check_key(key, "metric name")
            self._keys.add(key)
        if type(value) is float and -_INF < value < _INF:
            number = value
        else:
            number = metric_value(key, value)
        if step is not None and (type(step) is not int or not _MIN_STEP <= step < _MAX_STEP):
            step = metric_step(key, step)
        return number, step

    def _next_step(self, key: str, step: int | None) -> int:
        """The step to record (the next one of ``key`` when None); call with the lock held."""
        if step is None:
            step = self._steps.get(key, 0)
        self._steps[key] = step + 1
        return step

    def log_param(self, key: str, value: Any) -> None:
        """Record one param (a setting of the run; fixed once logged)."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record params; logging a param again with a different value raises ConflictError."""
        if not isinstance(params, Mapping):
            raise InvalidValueError(f"params must be a mapping, not {type(params).__name__}")
        self._check_active()
        self._store.log_params(self.id, params)  # the store checks names and values

    def set_tag(self, key: str, value: Any) -> None:
        """Set one tag (a label that may change later)."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags, replacing earlier values of the same keys."""
        if not isinstance(tags, Mapping):
            raise InvalidValueError(f"tags must be a mapping, not {type(tags).__name__}")
        self._check_active()
        self._store.set_tags(self.id, dict(tags))

    def log_artifact(
        self, path: str | os.PathLike[str], name: str | None = None
    ) -> list[LineageEdge]:
        """Store a file, or every file of a folder, as outputs of this run.

        Each file is stored once by content (sha256) and named ``<name>/<relative path>``
        within the run; ``name`` defaults to the file or folder's own name.
        """
        self._check_active()
        if not isinstance(path, str | os.PathLike):
            raise InvalidValueError(
                f"path must be a file or folder path, not {type(path).__name__}"
            )
        source = Path(path)
        if not source.exists():
            raise InvalidValueError(f"cannot log artifact {str(source)!r}: no such file or folder")
        prefix = check_key(name, "artifact name") if name is not None else None
        # A folder's files go under its name; a single file is named after itself.
        folder = (
            (prefix if prefix is not None else source.resolve().name) if source.is_dir() else None
        )
        edges = []
        for relname, file in walk_files(source):
            if folder is not None:
                full = f"{folder}/{relname}"
            else:
                full = prefix if prefix is not None else relname
            full = safe_relpath(full)  # the folder's own name has not been checked yet
            blob = self._backends.artifacts.put_file(file)
            record = self._store.record_artifact(
                digest=blob.digest,
                kind="file",
                size=blob.size,
                uri=self._backends.artifacts.uri,
                meta={},
            )
            self._store.link_artifact(self.id, record.id, "output", full)
            edges.append(LineageEdge(self.id, record, "output", full))
        return edges

    def log_dataset(
        self,
        df: pd.DataFrame,
        *,
        name: str,
        role: str = "train",
        direction: Literal["input", "output"] = "input",
    ) -> ArtifactRecord:
        """Store a DataFrame as a versioned Parquet dataset with its schema and profile.

        The same data logged twice (here or in another run) is the same artifact. ``role``
        (train, test, validation, ...) is recorded with the lineage edge's name,
        ``datasets/<role>/<name>``; ``direction`` says whether the run read or wrote it. A frame
        made by ``FeatureStore.get_historical_features`` also links the feature view versions
        it came from as inputs of the run.
        """
        self._check_active()
        check_key(name, "dataset name")
        check_key(role, "dataset role")
        record = log_dataframe(self._backends, df, name=name)
        self._store.link_artifact(self.id, record.id, direction, f"datasets/{role}/{name}")
        # Training data from the feature store: the run also read those feature view versions.
        for source in feature_sources(df):
            self._store.link_artifact(
                self.id,
                str(source["artifact_id"]),
                "input",
                f"{source.get('kind', 'feature_view')}s/{source['name']}/v{source['version']}",
            )
        return record

    def log_model(
        self,
        model: Any,
        name: str | None = None,
        *,
        input_example: Any = None,
        artifact_path: str = "model",
        alias: str | None = None,
        **options: Any,
    ) -> LoggedModel:
        """Store ``model`` as a package produced by this run; with ``name``, register it as the
        next version of that model (and point ``alias`` at it, if given).

        The signature is inferred from ``input_example``; the package records this run and
        the datasets it logged as inputs. Other keywords (``signature``, ``flavor``,
        ``serializer``, ``metadata``, ``description``, ``tags``, ``options``) are those of
        :func:`mloop.registry.log_model`. Load it back with ``mloop.load_model(...)`` from
        ``"models:/<name>@<alias>"``, ``"models:/<name>/<version>"`` or ``result.uri``.
        """
        from mloop.registry import log_model

        self._check_active()
        b = self._backends
        return log_model(
            model,
            run_id=self.id,
            name=name,
            input_example=input_example,
            artifact_path=artifact_path,
            alias=alias,
            store=b.store,
            artifacts=b.artifacts,
            settings=b.settings,
            **options,
        )

    def lineage(self) -> list[LineageEdge]:
        """The artifacts this run used and produced."""
        return self._store.list_lineage(self.id)

    def metric_history(self, key: str) -> list[MetricPoint]:
        """Every value logged for one metric, after flushing buffered ones."""
        self._writer.flush()
        return self._store.get_metric_history(self.id, key)

    # -- ending ---------------------------------------------------------------------------

    def end(self, status: RunStatus = "finished", *, error: str | None = None) -> None:
        """Write every buffered metric, then end the run with ``status``. Idempotent."""
        if self._ended:
            return
        self._ended = True
        forget(self)
        self._writer.flush_with(
            lambda rows: self._store.end_run(self.id, status, error=error, metrics=rows)
        )
        lost = self._writer.lost.pop(self.id, None)
        if lost is not None:
            raise RunNotActiveError(f"{lost[0]} metrics of run {self.id} were lost: {lost[1]}")

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end("finished")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end("killed", error="KeyboardInterrupt")
        else:
            text = "".join(traceback.format_exception(exc_type, exc, tb))
            self.end("failed", error=text[-MAX_ERROR:])


def _timestamp_ms(timestamp: float) -> int:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        raise InvalidValueError(f"timestamp must be seconds since the epoch, not {timestamp!r}")
    return int(timestamp * 1000)
